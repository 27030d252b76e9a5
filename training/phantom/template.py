"""The anatomy every phantom starts from: the MNI brain templates on the composition grid.

Also the random fields and coordinates that the other parts paint with. Only ``load_template`` reads
the 20 M-voxel template; every other function takes a ``Template``, so a small synthetic one serves
in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .settings import GRID_MM, PAD_MM


@dataclass(frozen=True)
class Template:
    gm: np.ndarray  # (x, y, z) probabilities on a padded GRID_MM RAS grid
    wm: np.ndarray
    ics: np.ndarray  # intracranial space (bool)
    d_out: np.ndarray  # mm from the intracranial space, outside it
    d_in: np.ndarray  # mm to the intracranial boundary, inside it
    origin: np.ndarray  # RAS mm of voxel (0, 0, 0)
    top_z: float  # vertex of the intracranial space (RAS z, mm)
    bottom_z: float


@lru_cache(maxsize=1)
def load_template() -> Template:
    """MNI templates from the installed nilearn wheel, with the derived intracranial space."""
    try:
        import nibabel as nib
        import nilearn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("the phantom generator needs nilearn: pip install 'ichseg[phantom]'") from exc
    data = Path(nilearn.__file__).parent / "datasets" / "data"
    maps = {}
    for name in ("gm", "wm"):
        img = nib.load(str(data / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"))
        maps[name] = np.pad(np.asarray(img.dataobj, dtype=np.float32) / 255.0, PAD_MM)
        affine = img.affine
    # Intracranial space: the brain smoothed over its sulci (on the 1 mm source) plus 2 mm of CSF.
    brain = np.clip(maps["gm"] + maps["wm"], 0, 1)
    ics = ndi.binary_fill_holes(ndi.gaussian_filter(brain, 2.0) > 0.2).astype(np.float32)
    factor = 1.0 / GRID_MM
    gm, wm, ics = (ndi.zoom(v, factor, order=1, grid_mode=True, mode="nearest") for v in (maps["gm"], maps["wm"], ics))
    origin = affine[:3, 3] - PAD_MM + (GRID_MM - 1) / 2  # centre of the first coarse voxel
    d_out = ndi.distance_transform_edt(ics < 0.5, sampling=GRID_MM).astype(np.float32)
    ics = d_out <= 2.0
    d_out = np.maximum(d_out - 2.0, 0)
    d_in = ndi.distance_transform_edt(ics, sampling=GRID_MM).astype(np.float32)
    zs = np.nonzero(ics.any(axis=(0, 1)))[0]
    return Template(gm, wm, ics, d_out, d_in, origin,
                    float(origin[2] + zs[-1] * GRID_MM), float(origin[2] + zs[0] * GRID_MM))


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], scale_mm: float) -> np.ndarray:
    """Zero-mean, unit-std random field correlated over ``scale_mm`` on the head grid."""
    coarse = tuple(max(2, int(np.ceil(s * GRID_MM / scale_mm)) + 2) for s in shape)
    noise = rng.standard_normal(coarse).astype(np.float32)
    field_ = ndi.zoom(noise, [s / c for s, c in zip(shape, coarse)], order=1, grid_mode=True, mode="nearest")
    field_ = field_[tuple(slice(0, s) for s in shape)]
    return (field_ - field_.mean()) / (field_.std() + 1e-6)


class FieldBank:
    """Per-case smooth random fields, one per scale, reused with random shifts and signs.

    Upsampling a fresh field over the 20 M-voxel head grid costs ~0.7 s; shifted copies of one field
    per scale are independent enough for texture and thickness variation and cost a memory copy.
    """

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...]):
        self.rng, self.shape, self._fields = rng, shape, {}

    def __call__(self, scale_mm: float) -> np.ndarray:
        if scale_mm not in self._fields:
            self._fields[scale_mm] = smooth_field(self.rng, self.shape, scale_mm)
        shifts = tuple(int(v) for v in self.rng.integers(0, 200, size=3))
        return np.roll(self._fields[scale_mm], shifts, axis=(0, 1, 2)) * self.rng.choice([-1.0, 1.0])


def coords(t: Template) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS mm coordinates of the grid as broadcastable open grids."""
    nx, ny, nz = t.gm.shape
    return (np.float32(t.origin[0]) + GRID_MM * np.arange(nx, dtype=np.float32)[:, None, None],
            np.float32(t.origin[1]) + GRID_MM * np.arange(ny, dtype=np.float32)[None, :, None],
            np.float32(t.origin[2]) + GRID_MM * np.arange(nz, dtype=np.float32)[None, None, :])


def ellipsoid(x, y, z, centre, radii) -> np.ndarray:
    return ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2
