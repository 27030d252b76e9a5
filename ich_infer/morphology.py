"""Connected-component helpers shared by input classification, preprocessing and volumetry."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def largest_component(mask: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
    """The largest connected component of ``mask`` (all of it when it has one or none)."""
    labels, n = ndi.label(mask, structure=structure)
    if n <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))
