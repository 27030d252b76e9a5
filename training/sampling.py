"""Balanced patch sampling (paper 2.3) and patch augmentation (paper 2.5).

Per image a target number of patch centres: ``lesion_fraction`` of them on lesion voxels, the rest
uniformly on brain-mask voxels (lesion-free images take all centres from the brain). A
``mined_fraction`` of the centres goes to *mined* negatives instead: where the model being trained
currently answers "blood" away from any lesion (``false_positive_voxels``; the mining itself is
``training.mining``), so the patches follow the network's own mistakes rather than a guess at them.
Patches near the volume border are padded, so small volumes never crash. Every random choice is
drawn up front into a :class:`PatchSpec`, so a batch is a pure function of its specs (reproducible
and resumable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .data import CaseArrays


@dataclass(frozen=True)
class PatchSpec:
    case_index: int
    centre: tuple[int, int, int]
    flip_p: bool = False
    flip_l: bool = False
    angle: float = 0.0  # in-plane rotation, degrees
    shift: float = 0.0  # added to brain voxels (normalised units): scanners and kernels differ by several HU
    gain: float = 1.0  # contrast, about the brain's values
    noise: float = 0.0  # sd of Gaussian noise (normalised units)
    blur: float = 0.0  # in-plane Gaussian sigma in voxels; negative: unsharp masking of that sigma (sharp kernel)
    noise_seed: int = 0


def false_positive_voxels(prob: np.ndarray, arrays: CaseArrays, threshold: float, margin_mm: float) -> np.ndarray:
    """Flat indices of brain voxels the model calls blood (``prob >= threshold``) that lie more than
    ``margin_mm`` from every lesion voxel.

    Why the margin: most of a model's false-positive voxels are the rims of true lesions, which the
    lesion-centred half of the patches already covers; the ones that matter for a scan without
    haemorrhage (sinuses walled by bone, dense skull-base tissue) are islands away from any lesion.
    The threshold sits below the product's 0.5 so near-misses are mined before they become errors.
    """
    candidate = arrays.brain & ~arrays.label & (prob >= threshold)
    if arrays.label.any() and candidate.any():
        distance = ndi.distance_transform_edt(~arrays.label, sampling=arrays.spacing)
        candidate &= distance > margin_mm
    return np.flatnonzero(candidate)


def sample_centres(arrays: CaseArrays, n: int, lesion_fraction: float, rng: np.random.Generator,
                   mined: np.ndarray | None = None, mined_fraction: float = 0.0) -> np.ndarray:
    """``n`` voxel coordinates: ``round(n * lesion_fraction)`` on lesion voxels, ``round(n * mined_fraction)``
    on the ``mined`` flat indices (when there are any), the rest anywhere in the brain."""
    lesion = np.flatnonzero(arrays.label)
    brain = np.flatnonzero(arrays.brain)
    if len(brain) == 0:
        brain = np.arange(arrays.brain.size)
    n_lesion = int(round(n * lesion_fraction)) if len(lesion) else 0
    has_mined = mined is not None and len(mined) > 0
    n_mined = min(int(round(n * mined_fraction)), n - n_lesion) if has_mined else 0
    parts = [rng.choice(lesion, n_lesion), rng.choice(brain, n - n_lesion - n_mined)]
    if n_mined:  # no draw at all when nothing is mined, so such a case samples as if mining were off
        parts.append(rng.choice(mined, n_mined))
    return np.stack(np.unravel_index(np.concatenate(parts), arrays.brain.shape), axis=1)


@dataclass(frozen=True)
class IntensityAugment:
    """What real scans vary in besides geometry, in normalised units (HU / ``hu_scale``)."""

    shift: float = 0.0  # uniform in +-shift
    gain: float = 0.0  # contrast factor uniform in 1 +- gain
    noise: float = 0.0  # noise sd uniform in 0..noise
    blur_probability: float = 0.0  # half of these blur (soft kernel, thick slices), half sharpen

    @property
    def active(self) -> bool:
        return any((self.shift, self.gain, self.noise, self.blur_probability))


@dataclass(frozen=True)
class SamplingConfig:
    """How one epoch's patches are drawn (``TrainConfig.sampling()`` builds the training one)."""

    per_image: int
    lesion_fraction: float = 0.5
    mined_fraction: float = 0.0
    augment: bool = True
    flip_probability: float = 0.5
    rotation_degrees: float = 10.0
    intensity: IntensityAugment = IntensityAugment()


def _intensity(aug: IntensityAugment, rng: np.random.Generator) -> dict:
    if not aug.active:
        return {}
    blur = 0.0
    if rng.random() < aug.blur_probability:
        blur = float(rng.uniform(0.4, 1.0)) * (1.0 if rng.random() < 0.5 else -1.0)
    return {"shift": float(rng.uniform(-aug.shift, aug.shift)), "gain": float(1 + rng.uniform(-aug.gain, aug.gain)),
            "noise": float(rng.uniform(0, aug.noise)), "blur": blur, "noise_seed": int(rng.integers(2**31))}


def epoch_specs(cases: list[CaseArrays], sampling: SamplingConfig, rng: np.random.Generator,
                hard: set[int] = frozenset(), mined: dict[int, np.ndarray] | None = None) -> list[PatchSpec]:
    """All patch specs of one epoch, shuffled; ``hard`` cases get a second, always-augmented set.
    ``mined`` maps a case index to its mined negatives (``false_positive_voxels``)."""
    specs: list[PatchSpec] = []
    for index, arrays in enumerate(cases):
        rounds = [sampling.augment] + ([True] if index in hard else [])
        for augmented in rounds:
            for centre in sample_centres(arrays, sampling.per_image, sampling.lesion_fraction, rng,
                                         (mined or {}).get(index), sampling.mined_fraction):
                centre = tuple(int(c) for c in centre)
                if augmented:
                    flips = rng.random(2) < sampling.flip_probability
                    angle = float(rng.uniform(-sampling.rotation_degrees, sampling.rotation_degrees))
                    specs.append(PatchSpec(index, centre, bool(flips[0]), bool(flips[1]), angle,
                                           **_intensity(sampling.intensity, rng)))
                else:
                    specs.append(PatchSpec(index, centre))
    order = rng.permutation(len(specs))
    return [specs[i] for i in order]


def hard_cases(cases: list[CaseArrays], fraction: float) -> set[int]:
    """The "difficult" cases: those with the smallest lesions (the bottom ``fraction`` of lesion cases).

    Small haematomas are where the paper's network did worst (section 3), and unlike a first-pass
    Dice ranking this needs no extra training run, so it is deterministic and cheap.
    """
    with_lesion = [(c.lesion_voxels, i) for i, c in enumerate(cases) if c.lesion_voxels > 0]
    count = int(np.ceil(len(with_lesion) * fraction)) if fraction > 0 else 0
    return {i for _, i in sorted(with_lesion)[:count]}


def extract(arrays: CaseArrays, spec: PatchSpec, patch: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image ``(C, *patch)`` and label ``patch`` around ``spec.centre``, padded and augmented."""
    margin = 0
    if spec.angle:
        # Rotate a larger in-plane window, then crop, so the corners hold real data.
        margin = int(np.ceil(max(patch[1], patch[2]) * 0.22))
    size = (patch[0], patch[1] + 2 * margin, patch[2] + 2 * margin)
    lo = [c - s // 2 for c, s in zip(spec.centre, size)]
    image = _crop(arrays.image, lo, size, fill=arrays.image.reshape(arrays.image.shape[0], -1).min(axis=1))
    label = _crop(arrays.label[None].astype(np.float32), lo, size, fill=np.zeros(1))[0]
    if spec.angle:
        image = ndi.rotate(image, spec.angle, axes=(2, 3), reshape=False, order=1, mode="nearest")
        label = ndi.rotate(label, spec.angle, axes=(1, 2), reshape=False, order=1, mode="constant")
        image = image[:, :, margin:margin + patch[1], margin:margin + patch[2]]
        label = label[:, margin:margin + patch[1], margin:margin + patch[2]]
    image = _vary_intensity(image, spec)
    if spec.flip_p:
        image, label = image[:, :, ::-1], label[:, ::-1]
    if spec.flip_l:
        image, label = image[..., ::-1], label[..., ::-1]
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(label >= 0.5)


def _vary_intensity(image: np.ndarray, spec: PatchSpec) -> np.ndarray:
    """Offset, contrast, kernel and noise of another scanner, on brain voxels only (the constant
    outside the brain, the channel's minimum, stays as preprocessing writes it)."""
    if spec.shift == 0 and spec.gain == 1 and spec.noise == 0 and spec.blur == 0:
        return image
    out = image.astype(np.float32, copy=True)
    for c in range(out.shape[0]):
        floor = float(out[c].min())
        brain = out[c] > floor
        x = out[c]
        if spec.blur > 0:
            x = ndi.gaussian_filter(x, (0, spec.blur, spec.blur))
        elif spec.blur < 0:
            x = x + 0.7 * (x - ndi.gaussian_filter(x, (0, -spec.blur, -spec.blur)))
        mean = float(x[brain].mean()) if brain.any() else 0.0
        x = (x - mean) * spec.gain + mean + spec.shift
        if spec.noise:
            x = x + np.random.default_rng(spec.noise_seed).normal(0, spec.noise, x.shape).astype(np.float32)
        out[c] = np.where(brain, np.maximum(x, floor), floor)
    return out


def _crop(volume: np.ndarray, lo: list[int], size: tuple[int, ...], fill: np.ndarray) -> np.ndarray:
    """``volume[:, lo:lo+size]`` with out-of-range parts filled per channel."""
    out = np.empty((volume.shape[0], *size), dtype=np.float32)
    out[:] = fill.reshape(-1, 1, 1, 1)
    src, dst = [], []
    for axis, (start, length) in enumerate(zip(lo, size)):
        n = volume.shape[axis + 1]
        a, b = max(start, 0), min(start + length, n)
        if a >= b:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - start, b - start))
    out[(slice(None), *dst)] = volume[(slice(None), *src)]
    return out
