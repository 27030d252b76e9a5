"""Haematoma volume: the voxel count, and the bedside ABC/2 estimate for comparison.

ABC/2 (Kothari et al.) on the largest component: A = longest diameter on the axial slice with the
largest lesion area, B = the largest extent perpendicular to A on that slice, C = slice thickness
times the slice count, where slices with >= 75 % of the largest area count 1, 25-75 % count 0.5
and < 25 % count 0. Inputs are canonical ``(S, P, L)`` arrays (see ``orientation``).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from .morphology import largest_component


def _diameters(slice_mask: np.ndarray, spacing_pl: tuple[float, float]) -> tuple[float, float]:
    points = np.argwhere(slice_mask) * np.asarray(spacing_pl)
    # Corners of each pixel, so a single pixel has the pixel's size, not zero.
    offsets = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]) * np.asarray(spacing_pl)
    corners = (points[:, None, :] + offsets[None]).reshape(-1, 2)
    try:
        corners = corners[ConvexHull(corners).vertices]
    except QhullError:
        pass
    diff = corners[:, None, :] - corners[None]
    dist = np.sqrt((diff**2).sum(-1))
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    a = float(dist[i, j])
    axis = (corners[j] - corners[i]) / max(a, 1e-9)
    perp = np.array([-axis[1], axis[0]])
    proj = corners @ perp
    return a, float(proj.max() - proj.min())


def abc2_ml(mask: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """ABC/2 volume (mL) of the largest component of a canonical mask with spacing (S, P, L) in mm."""
    lesion = largest_component(mask)
    if not lesion.any():
        return 0.0
    areas = lesion.sum(axis=(1, 2))
    top = int(np.argmax(areas))
    a, b = _diameters(lesion[top], (spacing[1], spacing[2]))
    ratio = areas / areas[top]
    weight = np.where(ratio >= 0.75, 1.0, np.where(ratio >= 0.25, 0.5, 0.0))
    c = float(weight.sum()) * spacing[0]
    return a * b * c / 2.0 / 1000.0
