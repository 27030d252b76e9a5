"""What kind of image a user handed over, decided from its values before anything is segmented.

ichseg's preprocessing needs raw Hounsfield units of a whole head: air to find the head, bone to
strip the skull. Research data often comes already skull-stripped (brain on a constant background),
and exports are often windowed (values outside a display window clipped or zeroed). Each of these
gets its own path or a one-line refusal, never a silently wrong mask.

Kinds:
  ``full_head``       raw HU with air and bone: holder removal and skull stripping, as the paper.
  ``skull_stripped``  a constant background, no bone, brain-valued tissue inside: the non-background
                      region is the brain.
  ``windowed``        no air and/or no bone, but not a clean brain: refused (the skull that skull
                      stripping needs is gone, and zeroed bone reads like CSF).
  ``not_hu``          values that are not Hounsfield units (0-255 data, raw stored values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .errors import IchsegError
from .morphology import largest_component

AIR_BELOW_HU = -500.0
BONE_ABOVE_HU = 300.0
MIN_AIR_FRACTION = 0.02  # a head scan holds at least this much air around the head
MIN_BONE_FRACTION = 0.002  # of the non-air voxels; a skull is 10-20 % of a head
BACKGROUND_MIN_FRACTION = 0.2  # a constant value this common is a background, not tissue
BRAIN_MEDIAN_HU = (5.0, 70.0)  # where the median of brain or head tissue lies in HU
# A skull-stripped image (see ``stripped_evidence``): nearly all tissue in one region, almost no
# background inside it, no pile-up at a window's top, and what bone is left lies at its edge.
STRIPPED_OUTSIDE_MAX = 0.05
STRIPPED_ENCLOSED_MAX = 0.03
CLIPPED_MIN = 0.005
EXPOSED_BONE_MIN = 0.5
SLICE_2D = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


@dataclass(frozen=True)
class InputKind:
    kind: str  # full_head, skull_stripped, windowed, not_hu
    detail: str  # what was measured, for report.json and refusals
    background: float | None = None  # the constant background of a skull-stripped image

    @property
    def accepted(self) -> bool:
        return self.kind in ("full_head", "skull_stripped")


def _background(volume: np.ndarray) -> tuple[float, float]:
    """The most common value and the share of voxels holding it exactly."""
    sample = volume.ravel()[:: max(1, volume.size // 2_000_000)]
    values, counts = np.unique(sample, return_counts=True)
    top = int(np.argmax(counts))
    return float(values[top]), float(counts[top]) / sample.size


def stripped_evidence(volume: np.ndarray, foreground: np.ndarray, background: np.ndarray) -> dict[str, float]:
    """What tells a skull-stripped brain from a windowed head, both on a constant background.

    ``outside``: share of the foreground outside its largest region (a windowed head keeps scalp,
    face and neck apart from the brain once the skull is zeroed; a stripped brain has nothing else);
    ``enclosed``: share of the slice-filled largest region that is background (a zeroed skull inside
    a scalp); ``clipped``: share of the foreground at exactly the maximum (bone clipped to a window);
    ``exposed_bone``: share of bone voxels touching the background (bone a stripping left at
    the brain's edge, where a whole head covers its skull with scalp).
    """
    blob = largest_component(foreground)
    fg = max(int(foreground.sum()), 1)
    filled = np.stack([ndi.binary_fill_holes(s, structure=SLICE_2D) for s in blob])
    bone = foreground & (volume > BONE_ABOVE_HU)
    near_background = ndi.binary_dilation(background)
    top = float(volume[foreground].max()) if foreground.any() else 0.0
    return {"outside": 1.0 - float(blob.sum()) / fg,
            "enclosed": float((filled & ~blob).sum()) / max(int(filled.sum()), 1),
            "clipped": float((foreground & (volume == top)).sum()) / fg,
            "exposed_bone": float((bone & near_background).sum()) / max(int(bone.sum()), 1) if bone.any() else 1.0}


def _stripped_failures(ev: dict[str, float], bone: float) -> list[str]:
    """The skull-stripped criteria an image fails, each as "<test> <figure> (limit)"."""
    failed = []
    if ev["outside"] >= STRIPPED_OUTSIDE_MAX:
        failed.append(f"one-region test: {ev['outside']:.1%} of the tissue lies apart from the largest region "
                      f"(stripped < {STRIPPED_OUTSIDE_MAX:.0%})")
    if ev["enclosed"] >= STRIPPED_ENCLOSED_MAX:
        failed.append(f"no-holes test: {ev['enclosed']:.1%} of the largest region is background "
                      f"(stripped < {STRIPPED_ENCLOSED_MAX:.0%})")
    if ev["clipped"] >= CLIPPED_MIN:
        failed.append(f"clipping test: {ev['clipped']:.1%} of the tissue sits at the maximum "
                      f"(stripped < {CLIPPED_MIN:.1%})")
    if ev["exposed_bone"] < EXPOSED_BONE_MIN and bone >= MIN_BONE_FRACTION:
        failed.append(f"exposed-bone test: {ev['exposed_bone']:.0%} of the bone touches the background "
                      f"(stripped >= {EXPOSED_BONE_MIN:.0%} once bone is over {MIN_BONE_FRACTION:.1%} of the tissue)")
    return failed


def _full_head_failures(air: float, bone: float) -> list[str]:
    failed = []
    if air < MIN_AIR_FRACTION:
        failed.append(f"air test: {air:.1%} of the volume below {AIR_BELOW_HU:.0f} HU "
                      f"(full head >= {MIN_AIR_FRACTION:.0%})")
    if bone < MIN_BONE_FRACTION:
        failed.append(f"bone test: {bone:.2%} of the tissue above {BONE_ABOVE_HU:.0f} HU "
                      f"(full head >= {MIN_BONE_FRACTION:.1%})")
    return failed


def classify(volume: np.ndarray) -> InputKind:
    """Decide the kind of ``volume`` from its values alone (pure; any axis order).

    A refused kind's ``detail`` names every test that failed and its figure."""
    lo, hi = float(volume.min()), float(volume.max())
    span = f"values {lo:.0f}..{hi:.0f}"
    background_value, background_share = _background(volume)
    background = volume == background_value if background_share >= BACKGROUND_MIN_FRACTION \
        else np.zeros(volume.shape, dtype=bool)
    foreground = (volume > AIR_BELOW_HU) & ~background  # air is noisy in a raw scan; a stripped background is not
    if not foreground.any():
        return InputKind("not_hu", f"{span}: nothing but background")
    tissue = volume[foreground]
    median = float(np.median(tissue))
    # A constant background at an air value is air (a scanner's padding, or an export that set air to
    # -1024); one at a tissue value (0 after windowing) is not.
    air_background = background_value < AIR_BELOW_HU
    air = float(np.mean((volume < AIR_BELOW_HU) & (air_background | ~background)))
    bone = float(np.mean(tissue > BONE_ABOVE_HU))
    if not BRAIN_MEDIAN_HU[0] <= median <= BRAIN_MEDIAN_HU[1]:
        hint = " (stored values without the rescale intercept?)" if median > 500 else ""
        return InputKind("not_hu", f"{span}; failed the Hounsfield test: tissue median {median:.0f} "
                                   f"(heads {BRAIN_MEDIAN_HU[0]:.0f}..{BRAIN_MEDIAN_HU[1]:.0f}){hint}")
    stripped_failed = []
    if background.any():
        stripped_failed = _stripped_failures(stripped_evidence(volume, foreground, background), bone)
        if not stripped_failed:
            return InputKind("skull_stripped", f"{span}, constant background {background_value:g} "
                             f"({background_share:.0%}), one brain-valued region", background_value)
    full_failed = _full_head_failures(air, bone)
    if not full_failed:
        return InputKind("full_head", f"{span}, air {air:.0%}, bone {bone:.1%} of tissue")
    stripped_note = f"; not skull-stripped, failed the {'; the '.join(stripped_failed)}" if stripped_failed else ""
    return InputKind("windowed", f"{span}; not a full head, failed the {'; the '.join(full_failed)}{stripped_note}")


def require_supported(kind: InputKind) -> None:
    """One line for what ichseg cannot segment reliably."""
    if kind.kind == "windowed":
        raise IchsegError(None, f"windowed or clipped image, refused ({kind.detail}); ichseg needs the "
                                "scan's raw Hounsfield units")
    if kind.kind == "not_hu":
        raise IchsegError(None, f"not a head CT in Hounsfield units, refused ({kind.detail})")
