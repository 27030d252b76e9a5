"""Reorienting arrays to one canonical axis order and back, exactly (permutations and flips only).

Canonical arrays are ``(S, P, L)``: axis 0 runs inferior -> superior, axis 1 anterior -> posterior,
axis 2 right -> left (ITK's LPS with an identity direction). Every stored orientation, flipped,
permuted or oblique, maps to it by the permutation/flip nearest to the direction cosines, so the
Slice_max rule, the mirror for the symmetric channel and the model's anisotropic patch all see the
same anatomy-aligned axes. No resampling happens here: the inverse is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np


@dataclass(frozen=True)
class Reorientation:
    axes: tuple[int, int, int]  # canonical axis c takes stored array axis axes[c]
    flips: tuple[bool, bool, bool]  # flip canonical axis c after the transpose

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        out = np.transpose(array, self.axes)
        flip_axes = tuple(c for c in range(3) if self.flips[c])
        return np.flip(out, flip_axes) if flip_axes else out

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        flip_axes = tuple(c for c in range(3) if self.flips[c])
        out = np.flip(array, flip_axes) if flip_axes else array
        return np.transpose(out, np.argsort(self.axes))

    def spacing(self, spacing_ijk: tuple[float, float, float]) -> tuple[float, float, float]:
        """Voxel spacing along the canonical axes, from ITK's (i, j, k) spacing."""
        return tuple(float(spacing_ijk[2 - a]) for a in self.axes)


def reorientation(direction: tuple[float, ...] | np.ndarray) -> Reorientation:
    """The permutation/flip that best aligns the index axes with L, P, S for these direction cosines."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)  # column a = physical direction of index axis a
    best = max(permutations(range(3)), key=lambda p: sum(abs(d[q, p[q]]) for q in range(3)))
    # physical axis q (0 = L, 1 = P, 2 = S) lives on index axis best[q], i.e. array axis 2 - best[q];
    # canonical axis c holds physical axis 2 - c.
    axes = tuple(2 - best[2 - c] for c in range(3))
    flips = tuple(bool(d[2 - c, best[2 - c]] < 0) for c in range(3))
    return Reorientation(axes, flips)


def reindex(array: np.ndarray, spacing: tuple[float, ...], origin: tuple[float, ...],
            direction: tuple[float, ...], perm: tuple[int, int, int] = (0, 1, 2),
            flips: tuple[bool, bool, bool] = (False, False, False)):
    """Store the same voxels with another index order: permute index axes (new axis b = old axis
    ``perm[b]``), then flip the index axes in ``flips``. Physical positions do not change.

    Returns ``(array, spacing, origin, direction)`` with the array in ``(k, j, i)`` order. Used to
    write phantoms in many stored orientations and to test orientation invariance.
    """
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    sp = np.asarray(spacing, dtype=float)
    org = np.asarray(origin, dtype=float)
    out = np.transpose(array, tuple(2 - perm[2 - c] for c in range(3)))
    d, sp = d[:, list(perm)], sp[list(perm)]
    shape_ijk = out.shape[::-1]
    for b in range(3):
        if flips[b]:
            org = org + d[:, b] * sp[b] * (shape_ijk[b] - 1)
            d[:, b] = -d[:, b]
            out = np.flip(out, 2 - b)
    return np.ascontiguousarray(out), tuple(sp.tolist()), tuple(org.tolist()), tuple(d.ravel().tolist())
