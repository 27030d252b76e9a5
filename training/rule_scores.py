"""Exact Dice of every post-processing rule on a case, from one table of its components per threshold.

``ich_infer.postprocess`` decides which components stay from their sizes and peaks alone
(``kept_components``, used here as well), and the never-empty rule runs only when nothing passed the
threshold. A rule's Dice therefore depends on the thresholded components' sizes, peaks and label
overlap alone, so labelling each case once per threshold scores every combination of the other
rules without touching the voxels again (a grid of hundreds of rules over hundreds of
cases would otherwise take hours). ``tests/test_release_tools.py`` holds it equal to the product's
``postprocess`` on every rule of a grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ich_infer.config import InferenceConfig
from ich_infer.postprocess import kept_components, rescue_empty

SMOOTH = 1e-5  # ich_infer.metrics.dice: two empty masks give 1.0


@dataclass(frozen=True)
class Components:
    sizes: np.ndarray  # voxels per component
    peaks: np.ndarray  # highest probability in each
    hits: np.ndarray  # labelled voxels in each


@dataclass(frozen=True)
class CaseTable:
    label_voxels: int
    by_threshold: dict[float, Components]
    peak: float  # highest probability inside the brain (what the never-empty rule starts from)
    rescue_size: int  # the region the never-empty rule would keep
    rescue_hits: int


def _components(mask: np.ndarray, prob: np.ndarray, label: np.ndarray, connectivity: int) -> Components:
    labels, n = ndi.label(mask, structure=ndi.generate_binary_structure(3, connectivity))
    if n == 0:
        return Components(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    index = np.arange(1, n + 1)
    return Components(np.bincount(labels.ravel(), minlength=n + 1)[1:],
                      np.asarray(ndi.maximum(prob, labels, index)),
                      np.bincount(labels.ravel(), weights=label.ravel(), minlength=n + 1)[1:].astype(np.int64))


def case_table(prob: np.ndarray, brain: np.ndarray, label: np.ndarray, thresholds: tuple[float, ...],
               connectivity: int = 1) -> CaseTable:
    label = label.astype(bool)
    by_threshold = {t: _components((prob >= t) & brain, prob, label, connectivity) for t in thresholds}
    inside = np.where(brain, prob, 0.0)
    peak = float(inside.max()) if inside.size else 0.0
    # The rescued region for any rescue_min_probability the peak reaches (the region does not depend on it).
    region = rescue_empty(prob, brain, InferenceConfig(rescue_min_probability=0.0, connectivity=connectivity))
    size = int(region.sum()) if region is not None else 0
    hits = int((region & label).sum()) if region is not None else 0
    return CaseTable(int(label.sum()), by_threshold, peak, size, hits)


def rule_dice(table: CaseTable, threshold: float, fraction: float, min_peak: float, rescue: float) -> float:
    """Dice of the product's post-processing with these rules (``RULE_FIELDS`` order) on one case."""
    comps = table.by_threshold[threshold]
    if comps.sizes.size == 0:
        fires = table.peak >= rescue and table.rescue_size > 0
        pred, inter = (table.rescue_size, table.rescue_hits) if fires else (0, 0)
    else:
        keep = kept_components(comps.sizes, comps.peaks, fraction, min_peak)
        pred, inter = int(comps.sizes[keep].sum()), int(comps.hits[keep].sum())
    return float((2.0 * inter + SMOOTH) / (table.label_voxels + pred + SMOOTH))
