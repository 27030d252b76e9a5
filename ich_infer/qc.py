"""Quality-control montage of one case: the slices with haemorrhage, at native resolution, in a brain window.

Every axial slice that holds lesion (evenly thinned to ``MAX_LESION_SLICES``) plus one context slice
above and below, each at the scan's own in-plane resolution (one screen pixel per voxel, corrected
only for non-square pixels), window W80/L40, the mask drawn as a one-pixel contour so the blood
under it stays visible. The title says what a reader needs to trust or doubt the number: case,
volume, ABC/2, components, input kind and whether the never-empty rule put the mask there. A case
without haemorrhage shows a spread of slices through the brain, so an empty result can be checked too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

from .io import atomic_output

WINDOW = (0.0, 80.0)  # W80/L40
MAX_LESION_SLICES = 12
COLUMNS = 4
CONTOUR = (255, 40, 40)
TITLE_PX = 44


def tissue_extent(volume: np.ndarray) -> tuple[int, int] | None:
    """First and last axial slice in which soft tissue (0-80 HU) covers 2 % of the slice."""
    share = ((volume > WINDOW[0]) & (volume < WINDOW[1])).mean(axis=(1, 2))
    found = np.flatnonzero(share > 0.02)
    return (int(found[0]), int(found[-1])) if len(found) else None


def montage_slices(mask: np.ndarray, brain_extent: tuple[int, int] | None = None) -> list[int]:
    """Axial indices to show: lesion slices (at most ``MAX_LESION_SLICES``, evenly spread, always with the
    largest) and one context slice on each side; without lesion, six slices spread over ``brain_extent``."""
    n = mask.shape[0]
    lesion = np.flatnonzero(mask.any(axis=(1, 2)))
    if len(lesion) == 0:
        lo, hi = brain_extent if brain_extent is not None else (0, n - 1)
        return sorted(set(np.linspace(lo, hi, 6).round().astype(int).tolist()))
    if len(lesion) > MAX_LESION_SLICES:
        keep = set(lesion[np.linspace(0, len(lesion) - 1, MAX_LESION_SLICES - 1).round().astype(int)].tolist())
        keep.add(int(np.argmax(mask.sum(axis=(1, 2)))))
        lesion = np.array(sorted(keep))
    context = [z for z in (int(lesion[0]) - 1, int(lesion[-1]) + 1) if 0 <= z < n]
    return sorted(set(lesion.tolist()) | set(context))


def _tile(volume_slice: np.ndarray, mask_slice: np.ndarray, spacing_pl: tuple[float, float], label: str) -> Image.Image:
    gray = np.clip((volume_slice - WINDOW[0]) / (WINDOW[1] - WINDOW[0]), 0, 1)
    rgb = np.repeat((gray * 255).astype(np.uint8)[..., None], 3, axis=-1)
    rgb[mask_slice & ~ndi.binary_erosion(mask_slice)] = CONTOUR
    tile = Image.fromarray(rgb)
    height = max(1, int(round(rgb.shape[0] * spacing_pl[0] / spacing_pl[1])))
    if height != rgb.shape[0]:
        tile = tile.resize((rgb.shape[1], height), Image.NEAREST)
    ImageDraw.Draw(tile).text((4, 2), label, fill=(255, 255, 0), font=_font(14))
    return tile


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def qc_montage(volume: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float],
               caption: tuple[str, str]) -> Image.Image:
    """RGB montage of a canonical ``(S, P, L)`` volume (anterior up, patient's right on the left);
    ``caption`` is the two title lines (``CaseResult.caption``)."""
    slices = montage_slices(mask, tissue_extent(volume))
    tiles = [_tile(volume[z], mask[z], (spacing[1], spacing[2]), f"slice {z + 1}/{volume.shape[0]}"
                   + ("" if mask[z].any() else "  (context)")) for z in slices]
    width, height = tiles[0].size
    columns = min(COLUMNS, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * width, TITLE_PX + rows * height), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for y, line in zip((2, 22), caption):
        draw.text((6, y), line, fill=(255, 255, 255), font=_font(16))
    for n, tile in enumerate(tiles):
        sheet.paste(tile, ((n % columns) * width, TITLE_PX + (n // columns) * height))
    return sheet


def write_qc(path: Path, volume: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float],
             caption: tuple[str, str]) -> Path:
    """The montage as PNG, written atomically."""
    with atomic_output(path) as tmp:
        qc_montage(volume, mask, spacing, caption).save(tmp, format="PNG", optimize=True)
    return path
