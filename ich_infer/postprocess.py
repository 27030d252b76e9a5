"""Section 2.6, a confidence rule and the never-empty rule: from averaged probabilities to the final mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .config import InferenceConfig


@dataclass
class PostprocessInfo:
    components_before: int
    components_removed: int
    rescued: bool  # the never-empty rule produced the mask


def kept_components(sizes: np.ndarray, peaks: np.ndarray | None, min_fraction: float,
                    min_peak: float) -> np.ndarray:
    """Which components stay, from their voxel counts and peak probabilities: first those whose peak
    reaches ``min_peak`` (every one when it is 0), then, among them, those with at least
    ``min_fraction`` of the largest one's voxels. ``training.rule_scores`` scores rules by it too."""
    keep = peaks >= min_peak if min_peak > 0 else np.ones(sizes.size, bool)
    if keep.any():
        keep &= sizes >= min_fraction * sizes[keep].max()
    return keep


def filter_components(mask: np.ndarray, prob: np.ndarray, cfg: InferenceConfig) -> tuple[np.ndarray, int, int]:
    """The mask without unconfident and small components (``kept_components``), labelled once.

    ``cfg.connectivity`` is scipy's: 1 = faces (6-neighbourhood, the authors), 3 = 26-neighbourhood.
    Returns the mask, the number of components found and the number removed.
    """
    labels, n = ndi.label(mask, structure=ndi.generate_binary_structure(3, cfg.connectivity))
    if n == 0:
        return mask.astype(bool), 0, 0
    sizes = np.bincount(labels.ravel())[1:]
    peaks = np.asarray(ndi.maximum(prob, labels, np.arange(1, n + 1))) if cfg.min_peak_probability > 0 else None
    keep = kept_components(sizes, peaks, cfg.min_component_fraction, cfg.min_peak_probability)
    return np.concatenate([[False], keep])[labels], n, int((~keep).sum())


def rescue_empty(prob: np.ndarray, brain: np.ndarray, cfg: InferenceConfig) -> np.ndarray | None:
    """When nothing passes the threshold but the ensemble is at least ``rescue_min_probability`` sure
    somewhere in the brain, return the connected region above half that peak around it.

    Rationale: an empty mask scores HD = inf and NSD = 0 on a lesion case (8 of 12 INSTANCE teams lost
    their HD that way), whereas a small, confident-ish region costs little on a lesion-free case.
    """
    inside = np.where(brain, prob, 0.0)
    peak = float(inside.max()) if inside.size else 0.0
    if peak < cfg.rescue_min_probability:
        return None
    region = inside >= peak / 2
    labels, _ = ndi.label(region, structure=ndi.generate_binary_structure(3, cfg.connectivity))
    return labels == labels[np.unravel_index(int(np.argmax(inside)), inside.shape)]


def postprocess(prob: np.ndarray, brain: np.ndarray, cfg: InferenceConfig) -> tuple[np.ndarray, PostprocessInfo]:
    """Threshold inside the brain, drop unconfident components, then those below a fraction of the
    largest. The never-empty rule runs only when nothing passed the threshold at all: a mask emptied by
    the confidence rule is a decision, not a miss."""
    mask = (prob >= cfg.threshold) & brain
    passed = bool(mask.any())
    mask, n, removed = filter_components(mask, prob, cfg)
    rescued = False
    if not passed:
        region = rescue_empty(prob, brain, cfg)
        if region is not None:
            mask, rescued = region, True
    return mask, PostprocessInfo(n, removed, rescued)
