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


def remove_small_components(mask: np.ndarray, min_fraction: float,
                            connectivity: int = 1) -> tuple[np.ndarray, int, int]:
    """Drop components with fewer than ``min_fraction`` of the largest component's voxels.

    ``connectivity`` is scipy's: 1 = faces (6-neighbourhood, the authors), 3 = 26-neighbourhood.
    Returns the mask, the number of components found and the number removed.
    """
    labels, n = ndi.label(mask, structure=ndi.generate_binary_structure(3, connectivity))
    if n <= 1:
        return mask.astype(bool), n, 0
    sizes = np.bincount(labels.ravel())[1:]
    keep = sizes >= min_fraction * sizes.max()
    return np.concatenate([[False], keep])[labels], n, int((~keep).sum())


def remove_unconfident_components(mask: np.ndarray, prob: np.ndarray, min_peak: float,
                                  connectivity: int = 1) -> tuple[np.ndarray, int]:
    """Drop components whose highest probability stays below ``min_peak``; returns the mask and the
    number dropped."""
    if min_peak <= 0 or not mask.any():
        return mask, 0
    labels, n = ndi.label(mask, structure=ndi.generate_binary_structure(3, connectivity))
    peaks = ndi.maximum(prob, labels, np.arange(1, n + 1))
    keep = np.asarray(peaks) >= min_peak
    return np.concatenate([[False], keep])[labels], int((~keep).sum())


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
    mask, unconfident = remove_unconfident_components(mask, prob, cfg.min_peak_probability, cfg.connectivity)
    mask, n, removed = remove_small_components(mask, cfg.min_component_fraction, cfg.connectivity)
    n += unconfident
    rescued = False
    if not passed:
        region = rescue_empty(prob, brain, cfg)
        if region is not None:
            mask, rescued = region, True
    return mask, PostprocessInfo(n, removed + unconfident, rescued)
