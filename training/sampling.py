"""Balanced patch sampling (paper 2.3) and patch augmentation (paper 2.5).

Per image a target number of patch centres: ``lesion_fraction`` of them on lesion voxels, the rest
uniformly on brain-mask voxels (lesion-free images take all centres from the brain). Optionally a
``hard_negative_fraction`` of the centres is taken instead from the brightest lesion-free brain
voxels: dural sinuses, calcifications and bone partial volume, the blood-dense structures a
hyperdensity detector confuses with haemorrhage and that uniform brain sampling seldom visits. A
``mined_fraction`` goes to *mined* negatives instead: where the model being trained currently
answers "blood" away from any lesion (``false_positive_voxels``; the mining itself is
``training.mining``), so the patches follow the network's own mistakes rather than a guess at them. The
mistake of the other sign is mined too: ``missed_fraction`` of the *lesion* centres go to lesion voxels
the model currently answers "no blood" for (``missed_lesion_voxels``), so the lesion half of the
patches dwells on what is being missed (the cisternal and sulcal blood of SAH, lesion borders)
instead of re-teaching the cores it already finds, and the paper's lesion/brain balance is unchanged. Patches near
the volume border are padded, so small volumes never crash. Every random choice is drawn up front
into a :class:`PatchSpec`, so a batch is a pure function of its specs (reproducible and resumable).
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


def hard_negative_voxels(arrays: CaseArrays, quantile: float) -> np.ndarray:
    """Flat indices of lesion-free brain voxels at or above ``quantile`` of their in-plane 3x3 mean.

    The mean keeps image noise from filling the set with isolated bright voxels of normal tissue:
    what stays bright after it are structures, which is what the network needs to see more of.
    """
    negative = arrays.brain & ~arrays.label
    if not negative.any():
        return np.flatnonzero(negative)
    smooth = ndi.uniform_filter(arrays.image[0], size=(1, 3, 3), mode="nearest")
    cut = np.quantile(smooth[negative], quantile)
    return np.flatnonzero(negative & (smooth >= cut))


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


def missed_lesion_voxels(prob: np.ndarray, arrays: CaseArrays, threshold: float) -> np.ndarray:
    """Flat indices of lesion voxels the model does not call blood (``prob < threshold``).

    Why: on phantoms the misses outweigh the false positives about 2 to 1
    (docs/experiments/releases-4-to-10.md), and they concentrate in few places (SAH in cisterns and
    sulci, thin rims); uniform lesion sampling spends
    most of its patches on cores the model already finds.
    """
    return np.flatnonzero(arrays.label & (prob < threshold))


def sample_centres(arrays: CaseArrays, n: int, lesion_fraction: float, rng: np.random.Generator,
                   hard_negative_fraction: float = 0.0, hard_negative_quantile: float = 0.98,
                   mined: np.ndarray | None = None, mined_fraction: float = 0.0,
                   missed: np.ndarray | None = None, missed_fraction: float = 0.0) -> np.ndarray:
    """``n`` voxel coordinates: ``round(n * lesion_fraction)`` on lesion voxels (``missed_fraction``
    of them on the ``missed`` flat indices, when there are any), ``round(n * hard_negative_fraction)``
    on hard negatives, ``round(n * mined_fraction)`` on the ``mined`` flat indices (when there are
    any), the rest anywhere in the brain."""
    lesion = np.flatnonzero(arrays.label)
    brain = np.flatnonzero(arrays.brain)
    if len(brain) == 0:
        brain = np.arange(arrays.brain.size)
    n_lesion = int(round(n * lesion_fraction)) if len(lesion) else 0
    n_hard = min(int(round(n * hard_negative_fraction)), n - n_lesion)
    has_mined = mined is not None and len(mined) > 0
    n_mined = min(int(round(n * mined_fraction)), n - n_lesion - n_hard) if has_mined else 0
    has_missed = missed is not None and len(missed) > 0
    n_missed = int(round(n_lesion * missed_fraction)) if has_missed else 0
    parts = [rng.choice(lesion, n_lesion - n_missed), rng.choice(brain, n - n_lesion - n_hard - n_mined)]
    if n_hard:  # no draw at all when off, so configurations without it sample exactly as before
        hard = hard_negative_voxels(arrays, hard_negative_quantile)
        parts.append(rng.choice(hard if len(hard) else brain, n_hard))
    if n_mined:  # likewise; a case with nothing mined samples as if mining were off
        parts.append(rng.choice(mined, n_mined))
    if n_missed:  # likewise; a case the model already finds whole samples its lesion uniformly
        parts.append(rng.choice(missed, n_missed))
    return np.stack(np.unravel_index(np.concatenate(parts), arrays.brain.shape), axis=1)


def epoch_specs(cases: list[CaseArrays], per_image: int, lesion_fraction: float, rng: np.random.Generator,
                hard: set[int] = frozenset(), augment: bool = True, flip_probability: float = 0.5,
                rotation_degrees: float = 10.0, hard_negative_fraction: float = 0.0,
                hard_negative_quantile: float = 0.98, mined: dict[int, np.ndarray] | None = None,
                mined_fraction: float = 0.0, missed: dict[int, np.ndarray] | None = None,
                missed_fraction: float = 0.0) -> list[PatchSpec]:
    """All patch specs of one epoch, shuffled; ``hard`` cases get a second, always-augmented set.
    ``mined`` maps a case index to its mined negatives (``false_positive_voxels``), ``missed`` to its
    missed lesion voxels (``missed_lesion_voxels``)."""
    specs: list[PatchSpec] = []
    for index, arrays in enumerate(cases):
        rounds = [augment] + ([True] if index in hard else [])
        for augmented in rounds:
            for centre in sample_centres(arrays, per_image, lesion_fraction, rng, hard_negative_fraction,
                                         hard_negative_quantile, (mined or {}).get(index), mined_fraction,
                                         (missed or {}).get(index), missed_fraction):
                if augmented:
                    flips = rng.random(2) < flip_probability
                    angle = float(rng.uniform(-rotation_degrees, rotation_degrees))
                    specs.append(PatchSpec(index, tuple(int(c) for c in centre), bool(flips[0]), bool(flips[1]), angle))
                else:
                    specs.append(PatchSpec(index, tuple(int(c) for c in centre)))
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
    if spec.flip_p:
        image, label = image[:, :, ::-1], label[:, ::-1]
    if spec.flip_l:
        image, label = image[..., ::-1], label[..., ::-1]
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(label >= 0.5)


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
