"""Section 2.2: head-holder removal, skull stripping, normalisation, optional symmetric channel.

Pure functions over canonical ``(S, P, L)`` arrays and their spacing (see ``orientation``), and one
:func:`preprocess` that chains them. Training and inference both call :func:`preprocess`, with the
:class:`PreprocessConfig` stored in the weights manifest, so the two cannot drift.

Morphology runs on a grid of about 1 mm in-plane (block-reduced), where the structuring elements are
small and the cost is a tenth of the full 0.42 mm grid; masks are then refined at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import resize

from .config import PreprocessConfig
from .errors import IchsegError
from .input_kind import InputKind, classify, require_supported
from .morphology import largest_component
from .orientation import Reorientation, reorientation

AIR_HU = -1000.0
# A brain mask outside this range is not a brain: a partial scan, another body part, or a failed strip.
BRAIN_ML_RANGE = (150.0, 2600.0)
# A brain is walled in by skull: of the voxels within 6 mm outside its mask (in-plane), the share within
# 3 mm of bone (``bone_enclosure``). Measured on every real head at hand and on non-heads in
# tests/test_input_kind.py, which holds both distributions.
MIN_BONE_ENCLOSURE = 0.45
BONE_HU = 150.0  # a newborn's skull, or bone under a narrow window, still reads above this
SLICE_2D = np.array([[[0, 0, 0], [0, 0, 0], [0, 0, 0]],
                     [[0, 1, 0], [1, 1, 1], [0, 1, 0]],
                     [[0, 0, 0], [0, 0, 0], [0, 0, 0]]], dtype=bool)  # 4-connectivity within a slice


@dataclass
class Preprocessed:
    """What the network sees, plus what is needed to map its output back onto the scan's grid."""

    image: np.ndarray  # (C, S, P, L) float32 on the working grid
    brain: np.ndarray  # (S, P, L) bool on the working grid
    spacing: tuple[float, float, float]  # working grid spacing along (S, P, L), mm
    brain_native: np.ndarray  # brain mask on the scan's own grid and axis order
    head_native: np.ndarray  # head (holder removed) on the scan's own grid and axis order
    crop: tuple[slice, slice, slice]  # crop of the canonical native grid that the working grid covers
    canonical_shape: tuple[int, int, int]
    orientation: Reorientation
    input_kind: InputKind

    def to_native(self, volume: np.ndarray, order: int = 1) -> np.ndarray:
        """Map a working-grid volume (probabilities or a mask) back to the scan's grid; zero outside."""
        crop_shape = tuple(s.stop - s.start for s in self.crop)
        if volume.shape != crop_shape:
            volume = resize(volume.astype(np.float32), crop_shape, order=order, mode="edge",
                            anti_aliasing=False, preserve_range=True)
        full = np.zeros(self.canonical_shape, dtype=np.float32)
        full[self.crop] = volume
        return np.ascontiguousarray(self.orientation.from_canonical(full))

    def to_working(self, native: np.ndarray, order: int = 1) -> np.ndarray:
        """Map a native-grid volume (e.g. a label) onto the working grid (used for training targets)."""
        canonical = self.orientation.to_canonical(native)[self.crop].astype(np.float32)
        if canonical.shape != self.brain.shape:
            canonical = resize(canonical, self.brain.shape, order=order, mode="edge",
                               anti_aliasing=False, preserve_range=True)
        return canonical


# ---------------------------------------------------------------------------------------------- helpers
def _inplane_factor(spacing: tuple[float, float, float], target_mm: float = 1.0) -> int:
    return max(1, int(np.floor(target_mm / max(min(spacing[1], spacing[2]), 1e-6))))


def working_shape(shape: tuple[int, ...], spacing: tuple[float, ...], target: tuple[float, ...]) -> tuple[int, ...]:
    """Size of the working grid that resamples ``shape`` at ``spacing`` to ``target`` spacing (mm).

    The spacing is taken at float32 precision, the precision NIfTI stores it in: a crop of 327
    voxels at 0.45 mm makes 163.5 working voxels at 0.9 mm, and the same scan read back from disk
    (0.44999999 mm) would otherwise round to one voxel fewer, moving every sample by half a voxel
    (measured on a real head: 0.36 against 0.15 mL of false positive).
    """
    return tuple(max(1, int(round(n * float(np.float32(sp)) / t))) for n, sp, t in zip(shape, spacing, target))


def _block_reduce(mask: np.ndarray, f: int) -> np.ndarray:
    """Majority vote over f x f in-plane blocks (edge blocks padded with False)."""
    if f == 1:
        return mask.copy()
    s, p, l_ = mask.shape
    pad = ((0, 0), (0, -p % f), (0, -l_ % f))
    m = np.pad(mask, pad).reshape(s, (p + pad[1][1]) // f, f, (l_ + pad[2][1]) // f, f)
    return m.mean(axis=(2, 4), dtype=np.float32) >= 0.5


def _block_expand(mask: np.ndarray, f: int, shape: tuple[int, int, int]) -> np.ndarray:
    if f == 1:
        return mask
    return np.repeat(np.repeat(mask, f, axis=1), f, axis=2)[:, : shape[1], : shape[2]]


def ellipsoid(radius_mm: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """Structuring element of ``radius_mm`` in physical space (a disc where slices are thick)."""
    radii = [int(np.floor(radius_mm / sp)) for sp in spacing]
    if max(radii) == 0:
        return np.ones((1, 1, 1), dtype=bool)
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radii)]
    dist = sum((g * sp / radius_mm) ** 2 for g, sp in zip(grids, spacing))
    return dist <= 1.0


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    """Fill holes slice by slice (ventricles and lesions enclosed in-plane belong to the brain)."""
    return ndi.binary_fill_holes(mask, structure=SLICE_2D)


# ------------------------------------------------------------------------------------ head-holder removal
def remove_head_holder(volume: np.ndarray, spacing: tuple[float, float, float],
                       cfg: PreprocessConfig) -> np.ndarray:
    """Mask of the head alone: the largest body component once thin contacts have been opened.

    The authors keep the largest component of HU > 0; a holder resting on the scalp through a foam
    pad then stays attached. Opening with ``holder_opening_mm`` first cuts such contacts (pads and
    cradle rims are a few mm thick; the head is 150 mm across), and a dilation by the same radius,
    limited to the body, gives the head its outline back without re-joining the holder.
    """
    body = volume > cfg.body_threshold_hu
    f = _inplane_factor(spacing, 2.0)
    small = _block_reduce(body, f)
    small_spacing = (spacing[0], spacing[1] * f, spacing[2] * f)
    footprint = ellipsoid(cfg.holder_opening_mm, small_spacing)
    opened = ndi.binary_opening(small, structure=footprint)
    head = largest_component(opened)
    if not head.any():
        raise IchsegError(None, "no head found: nothing above the body threshold survives opening")
    head = ndi.binary_dilation(head, structure=footprint)
    head = _block_expand(head, f, body.shape) & body
    return _fill_slices(largest_component(head))


# ------------------------------------------------------------------------------------------ skull strip
def skull_strip(volume: np.ndarray, spacing: tuple[float, float, float],
                cfg: PreprocessConfig) -> np.ndarray:
    """Brain mask by the paper's morphological recipe (after [9]); ``volume`` has the holder removed.

    1. brain-tissue window ``brain_low_hu < HU < brain_high_hu`` on a lightly smoothed image,
    2. opening (cuts the brain from the scalp through the skull base) and the largest 3D component,
    3. Slice_max = the slice with the largest brain area; above it each slice keeps its largest
       component, below it each slice keeps what lies under the (slightly dilated) mask of the
       slice above, which stops the mask from leaking into the face and neck,
    4. holes filled slice by slice and the boundary refined at full resolution.
    """
    smooth = ndi.gaussian_filter(volume, sigma=(0, 0.7, 0.7), mode="nearest")
    tissue = (smooth > cfg.brain_low_hu) & (smooth < cfg.brain_high_hu)
    f = _inplane_factor(spacing)
    small_spacing = (spacing[0], spacing[1] * f, spacing[2] * f)
    small = _block_reduce(tissue, f)
    opened = ndi.binary_opening(small, structure=ellipsoid(cfg.brain_opening_mm, small_spacing))
    brain = largest_component(opened)
    if not brain.any():
        raise IchsegError(None, "no brain found: no tissue in the brain window survives opening")
    brain = _fill_slices(brain)
    if cfg.slice_rule:
        brain = _slice_max_rule(brain, small_spacing, cfg.propagation_allowance_mm)
    # Refine at full resolution on the raw values (smoothing would pull bone-edge voxels into the
    # window): tissue voxels under the coarse mask, plus a rim of one coarse voxel that the block
    # vote may have shaved off.
    tissue = (volume > cfg.brain_low_hu) & (volume < cfg.brain_high_hu)
    full = _block_expand(brain, f, tissue.shape) & tissue
    if f > 1:
        rim = ndi.binary_dilation(full, structure=ellipsoid(f * max(spacing[1], spacing[2]), spacing))
        full |= rim & tissue & _block_expand(ndi.binary_dilation(brain, structure=SLICE_2D), f, tissue.shape)
    full = _fill_slices(largest_component(full))
    # Rim: ~1.5 mm in-plane (8-connected) into voxels that are not bone (raw HU: bone must not leak in).
    steps = max(1, int(round(1.5 / min(spacing[1], spacing[2]))))
    square = np.zeros((3, 3, 3), dtype=bool)
    square[1] = True
    near = ndi.binary_dilation(full, structure=square, iterations=steps)
    full |= near & (volume > cfg.brain_low_hu)
    # Hole filling also swallows bone that a slice cuts tangentially (vertex, skull base): drop it.
    return full & (volume < cfg.rim_high_hu)


def _slice_max_rule(brain: np.ndarray, spacing: tuple[float, float, float], allowance_mm: float) -> np.ndarray:
    areas = brain.sum(axis=(1, 2))
    slice_max = int(np.argmax(areas))
    out = np.zeros_like(brain)
    out[slice_max] = largest_component(brain[slice_max])
    for z in range(slice_max + 1, brain.shape[0]):  # superior: largest component per slice
        out[z] = largest_component(brain[z])
    grow = ellipsoid(allowance_mm, (1.0, spacing[1], spacing[2]))[0] if allowance_mm > 0 else None
    for z in range(slice_max - 1, -1, -1):  # inferior: constrained by the slice above
        above = out[z + 1]
        if not above.any():
            break
        if grow is not None:
            above = ndi.binary_dilation(above, structure=grow)
        out[z] = brain[z] & above
    return out


# ------------------------------------------------------------------------------------------ normalise
def hu_centre(volume: np.ndarray, brain: np.ndarray, cfg: PreprocessConfig) -> float:
    """The HU that maps to 0: fixed, or the mean of the brain's soft-tissue-range voxels."""
    if cfg.hu_centre is not None:
        return float(cfg.hu_centre)
    values = volume[brain]
    low, high = cfg.soft_tissue_hu
    values = values[(values > low) & (values < high)]
    return float(values.mean()) if values.size else float(np.mean(cfg.soft_tissue_hu))


def normalise(volume: np.ndarray, brain: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Percentile clipping and mean/std scaling (paper: statistics over brain voxels only), or the
    Hounsfield-anchored mapping of ``normalization="hu"``; outside the brain a constant."""
    if cfg.normalization == "hu":
        low, high = cfg.hu_window
        centre = hu_centre(volume, brain, cfg)
        out = (np.clip(volume, low, high).astype(np.float32) - centre) / cfg.hu_scale
        outside = cfg.outside_value if cfg.outside_value is not None else (low - centre) / cfg.hu_scale
        out[~brain] = outside
        return out.astype(np.float32)
    values = volume[brain] if brain.any() else volume.ravel()
    if cfg.normalization == "minmax":
        lo, hi = float(values.min()), float(values.max())
    else:
        lo, hi = (float(v) for v in np.percentile(values, cfg.percentiles))
    out = np.clip(volume, lo, hi).astype(np.float32)
    if cfg.normalization == "volume":  # the authors' code: rescale to [0, 100], whole-volume stats
        out = (out - lo) / max(hi - lo, 1e-6) * 100.0
        stats = out
    else:
        stats = out[brain] if brain.any() else out
    mean, std = float(stats.mean()), float(stats.std())
    out = (out - mean) / max(std, 1e-6)
    outside = cfg.outside_value if cfg.outside_value is not None else float(out[brain].min()) if brain.any() else 0.0
    out[~brain] = outside
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------- pipeline
def preprocess(volume: np.ndarray, spacing_ijk: tuple[float, float, float], direction: tuple[float, ...],
               cfg: PreprocessConfig) -> Preprocessed:
    """Scan in HU on its stored grid (``(k, j, i)``) -> network input on the working grid."""
    found = find_brain(volume, spacing_ijk, direction, cfg)
    clean, brain, head, spacing, kind, orient = found
    check_brain(clean, brain, spacing, kind)
    crop = _crop_box(brain, spacing, cfg.crop_margin_mm)
    image, brain_w, spacing_w = clean[crop], brain[crop], spacing
    if cfg.target_spacing is not None:
        target = (cfg.target_spacing[2], cfg.target_spacing[1], cfg.target_spacing[0])  # (x,y,z) -> (S,P,L)
        shape = working_shape(image.shape, spacing, target)
        if shape != image.shape:
            image = resize(image, shape, order=1, mode="edge", anti_aliasing=False, preserve_range=True)
            brain_w = resize(brain_w.astype(np.float32), shape, order=1, mode="edge",
                             anti_aliasing=False, preserve_range=True) >= 0.5
            spacing_w = tuple(n * sp / m for n, sp, m in zip(clean[crop].shape, spacing, shape))
    channels = [normalise(image.astype(np.float32), brain_w, cfg)]
    if cfg.symmetric_channel:
        from .symmetry import symmetric_channel
        channels.append(symmetric_channel(image, channels[0], brain_w, spacing_w, cfg.registration))
    return Preprocessed(
        image=np.stack(channels).astype(np.float32), brain=brain_w, spacing=tuple(spacing_w),
        brain_native=np.ascontiguousarray(orient.from_canonical(brain)),
        head_native=np.ascontiguousarray(orient.from_canonical(head)),
        crop=crop, canonical_shape=clean.shape, orientation=orient, input_kind=kind)


class FoundBrain(NamedTuple):
    """The scan in canonical orientation with the head holder removed, and what was found in it."""

    clean: np.ndarray  # HU, outside the head set to air
    brain: np.ndarray
    head: np.ndarray
    spacing: tuple[float, float, float]
    kind: InputKind
    orientation: Reorientation


def find_brain(volume: np.ndarray, spacing_ijk: tuple[float, float, float], direction: tuple[float, ...],
               cfg: PreprocessConfig) -> FoundBrain:
    """Input kind (refused kinds raise), head and brain masks, before the brain is checked."""
    orient = reorientation(direction)
    canon = orient.to_canonical(volume)
    spacing = orient.spacing(spacing_ijk)
    kind = classify(canon)
    require_supported(kind)
    if kind.kind == "skull_stripped":
        head = brain = stripped_brain(canon, kind.background, cfg)
        clean = np.where(head, canon, np.float32(AIR_HU)).astype(np.float32)
    else:
        head = remove_head_holder(canon, spacing, cfg)
        clean = np.where(head, canon, np.float32(AIR_HU)).astype(np.float32)
        brain = skull_strip(clean, spacing, cfg)
    return FoundBrain(clean, brain, head, tuple(spacing), kind, orient)


def stripped_brain(volume: np.ndarray, background: float, cfg: PreprocessConfig) -> np.ndarray:
    """The brain of an already skull-stripped image: its largest non-background region, holes filled
    slice by slice, without voxels dense enough to be bone the other pipeline left behind."""
    brain = _fill_slices(largest_component(volume != background))
    return brain & (volume < cfg.rim_high_hu)


def bone_enclosure(volume: np.ndarray, brain: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """Share of the voxels within 6 mm outside the brain mask that lie within 3 mm of bone, slice by
    slice (on a ~1.5 mm in-plane subsample: a share needs no more).

    Why "near bone", not "bone": a newborn's skull is 2 mm thin and under-mineralised, and a narrow
    bone window flattens bone to a few hundred HU; both still cover the brain, where a torso's ribs
    leave most of the mediastinum's surroundings open."""
    f = _inplane_factor(spacing, 1.5)
    small, hu = brain[:, ::f, ::f], volume[:, ::f, ::f]
    inplane = (1e6, spacing[1] * f, spacing[2] * f)  # no reach across slices
    ring = ndi.binary_dilation(small, structure=ellipsoid(6.0, inplane)) & ~small
    near_bone = ndi.binary_dilation(hu > BONE_HU, structure=ellipsoid(3.0, inplane))
    return float(np.mean(near_bone[ring])) if ring.any() else 0.0


def check_brain(volume: np.ndarray, brain: np.ndarray, spacing: tuple[float, float, float], kind: InputKind) -> None:
    """Refuse what is not a brain in one line: a wrong size, or (in a full head) no skull around it."""
    ml = float(brain.sum()) * float(np.prod(spacing)) / 1000.0
    low, high = BRAIN_ML_RANGE
    read_as = kind.kind.replace("_", "-")
    if not low <= ml <= high:
        raise IchsegError(None, f"failed the brain-size test: brain mask of {ml:.0f} mL "
                                f"(heads {low:.0f}-{high:.0f} mL; input read as {read_as}): not a head CT, or the "
                                "head is only partly in the scan")
    if kind.kind == "full_head":
        enclosure = bone_enclosure(volume, brain, spacing)
        if enclosure < MIN_BONE_ENCLOSURE:
            raise IchsegError(None, f"failed the skull-enclosure test: {enclosure:.0%} of the tissue around the brain "
                                    f"lies within 3 mm of bone (heads over {MIN_BONE_ENCLOSURE:.0%}): not a head CT")


def _crop_box(mask: np.ndarray, spacing: tuple[float, float, float], margin_mm: float) -> tuple[slice, ...]:
    idx = np.nonzero(mask.any(axis=(1, 2))), np.nonzero(mask.any(axis=(0, 2))), np.nonzero(mask.any(axis=(0, 1)))
    box = []
    for axis, (found,) in enumerate(idx):
        margin = int(np.ceil(margin_mm / spacing[axis]))
        box.append(slice(max(0, int(found[0]) - margin), min(mask.shape[axis], int(found[-1]) + 1 + margin)))
    return tuple(box)
