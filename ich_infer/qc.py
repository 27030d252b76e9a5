"""Quality-control picture: the axial slice with the largest lesion area, lesion contour in red."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi


def qc_image(volume: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float],
             window: tuple[float, float] = (0.0, 80.0)) -> Image.Image:
    """RGB picture of a canonical ``(S, P, L)`` volume; anterior up, patient's right on the left."""
    areas = mask.sum(axis=(1, 2))
    z = int(np.argmax(areas)) if areas.any() else volume.shape[0] // 2
    gray = np.clip((volume[z] - window[0]) / (window[1] - window[0]), 0, 1)
    rgb = np.repeat((gray * 255).astype(np.uint8)[..., None], 3, axis=-1)
    edge = mask[z] & ~ndi.binary_erosion(mask[z])
    edge = ndi.binary_dilation(edge) if max(mask.shape[1:]) > 300 else edge
    rgb[edge] = (255, 40, 40)
    # Radiological convention: canonical L axis runs right -> left, so patient right is on the left already.
    image = Image.fromarray(rgb)
    height = int(round(rgb.shape[0] * spacing[1] / spacing[2]))
    return image.resize((rgb.shape[1], max(1, height)), Image.NEAREST)


def write_qc(path: Path, volume: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    qc_image(volume, mask, spacing).save(tmp)
    tmp.replace(path)
    return path
