"""How a composed head becomes a CT: pose, elastic warp, slices, gantry tilt, kernel, noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ich_infer.io import Geometry

from .settings import GRID_MM, KERNEL_SIGMA_MM, LPS_FROM_RAS, VARIED_KERNEL_SIGMA_MM, PhantomSettings
from .template import Template, smooth_field


def _rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


@dataclass(frozen=True)
class Acquisition:
    """How one case is scanned and reconstructed (see ``PhantomSettings.acquisition``)."""

    slice_mm: float
    tilt_degrees: float | None  # None: the INSTANCE-like draw inside ``acquire``
    kernel_mm: tuple[float, float]  # range of the reconstruction kernel's in-plane point spread
    sharpen: float  # edge-enhancement gain of the kernel (0 = soft kernel only)
    sharpen_mm: float
    noise_hu: tuple[float, float]


def draw_acquisition(seed: int, settings: PhantomSettings) -> Acquisition:
    """The case's acquisition; "varied" draws from a stream of its own so "instance" output is unchanged."""
    if settings.acquisition == "instance":
        return Acquisition(settings.slice_mm, None, KERNEL_SIGMA_MM, 0.0, 1.0, settings.noise_hu)
    if settings.acquisition != "varied":
        raise ValueError(f"unknown acquisition {settings.acquisition!r}: use 'instance' or 'varied'")
    rng = np.random.default_rng([seed, 3])
    tilt = float(rng.uniform(-25, 25)) if rng.random() < 0.5 else 0.0
    sharpen = float(rng.uniform(0.2, 0.8)) if rng.random() < 0.5 else 0.0
    return Acquisition(float(rng.uniform(2.5, 7.0)), tilt, VARIED_KERNEL_SIGMA_MM, sharpen,
                       float(rng.uniform(0.8, 1.6)), (2.0, float(rng.uniform(5.0, 10.0))))


def edge_enhance(volume: np.ndarray, spacing: tuple[float, ...], gain: float, sigma_mm: float) -> np.ndarray:
    """A sharp kernel's overshoot: bone edges ring bright outside and dark inside, slice by slice."""
    if gain <= 0:
        return volume
    blurred = ndi.gaussian_filter(volume, (0, sigma_mm / spacing[1], sigma_mm / spacing[0]), truncate=3.0)
    return volume + gain * (volume - blurred)


def acquire(rng: np.random.Generator, t: Template, volumes: dict[str, np.ndarray], settings: PhantomSettings,
            orders: dict[str, int], acq: Acquisition) -> tuple[dict[str, np.ndarray], Geometry]:
    """Sample template-space volumes onto a CT grid: pose, elastic warp, thick slices, stored orientation."""
    spacing_xy = rng.uniform(*settings.inplane_mm) if settings.matrix >= 400 else \
        rng.uniform(*settings.inplane_mm) * 512 / settings.matrix
    n_xy = settings.matrix
    gantry = np.radians(rng.uniform(-15, 15)) if rng.random() < 0.3 else 0.0
    if acq.tilt_degrees is not None:
        gantry = np.radians(acq.tilt_degrees)
    d_acq = LPS_FROM_RAS @ _rotation(gantry, 0, 0) @ LPS_FROM_RAS  # gantry tilt about left-right
    # Slab from the skull base (or from the neck below it, as many real scans start; or higher:
    # partial coverage) to above the vertex.
    z_low = t.bottom_z + rng.uniform(-15, 40)
    z_high = t.top_z + rng.uniform(12, 25)
    per_5mm = 5.0 / acq.slice_mm  # slice-count limits are stated for 5 mm slices
    n_z = int(np.clip(np.ceil((z_high - z_low) / acq.slice_mm), round(settings.min_slices * per_5mm),
                      round(settings.max_slices * per_5mm)))
    spacing = np.array([spacing_xy, spacing_xy, acq.slice_mm])
    centre_lps = np.array([rng.uniform(-8, 8), rng.uniform(-8, 8) + 10, (z_low + z_high) / 2])
    index_centre = (np.array([n_xy, n_xy, n_z]) - 1) / 2
    origin = centre_lps - d_acq @ (spacing * index_centre)
    pose = _rotation(*np.radians(rng.uniform(-8, 8, size=3)))
    scale = rng.uniform(0.84, 0.94) * rng.uniform(0.96, 1.04, size=3)  # MNI brains are large
    shift = rng.uniform(-5, 5, size=3)

    # Map a coarse copy of the scan grid to template indices, then interpolate the map (it is smooth).
    sub = 8
    ci = np.arange(0, n_xy + sub, sub, dtype=np.float64)
    ck = np.arange(n_z + 1, dtype=np.float64)
    kk, jj, ii = np.meshgrid(ck, ci, ci, indexing="ij")
    idx = np.stack([ii, jj, kk], axis=-1) * spacing
    lps = origin + idx @ d_acq.T
    ras = lps @ LPS_FROM_RAS.T
    head = ((ras - shift) @ pose) / scale  # inverse pose: scan space -> head space
    warp = np.stack([smooth_field(rng, (6, 6, 6), 1.0) for _ in range(3)], axis=-1) * rng.uniform(1.5, 4.0)
    rel = (head - head.min(axis=(0, 1, 2))) / (np.ptp(head, axis=(0, 1, 2)) + 1e-6) * 5
    disp = np.stack([ndi.map_coordinates(warp[..., a], rel.reshape(-1, 3).T, order=1).reshape(head.shape[:3])
                     for a in range(3)], axis=-1)
    tmpl_idx = ((head + disp - t.origin) / GRID_MM).astype(np.float32)  # (k, j, i, 3) head-grid indices

    # Sampling at half the in-plane resolution (the source is 1 mm), then linear upsampling. The slice
    # thickness is a 5 mm box average along head z applied before sampling (tilts are small).
    half = max(1, n_xy // 2) if n_xy >= 400 else n_xy
    step = n_xy / half
    fine_xy = (np.arange(half) * step + (step - 1) / 2) / sub  # centres of the half-resolution pixels
    fk, fj, fi = np.meshgrid(np.arange(n_z, dtype=np.float64), fine_xy, fine_xy, indexing="ij")
    coords = np.stack([ndi.map_coordinates(tmpl_idx[..., a], [fk.ravel(), fj.ravel(), fi.ravel()], order=1)
                       for a in range(3)])
    out = {}
    for name, vol in volumes.items():
        vol = ndi.uniform_filter1d(vol, max(1, int(round(acq.slice_mm * scale[2] / GRID_MM))), axis=2)
        sampled = ndi.map_coordinates(vol, coords, order=orders.get(name, 1), mode="constant",
                                      cval=-1000.0 if name == "hu" else 0.0, prefilter=False)
        sampled = sampled.reshape(n_z, half, half)
        if half != n_xy:
            sampled = ndi.zoom(sampled, (1, n_xy / half, n_xy / half), order=1, grid_mode=True, mode="nearest")
        out[name] = sampled.astype(np.float32)
    geometry = Geometry((n_xy, n_xy, n_z), tuple(spacing.tolist()), tuple(origin.tolist()),
                        tuple(d_acq.ravel().tolist()))
    return out, geometry


def reconstruction_blur(volume: np.ndarray, spacing: tuple[float, ...], sigma_mm: float) -> np.ndarray:
    """The in-plane point spread of a soft-tissue reconstruction kernel, slice by slice.

    It blooms the skull into the first millimetre or two of the intracranial space: the real head's
    brain reads 84 HU at 0.5-1 mm from its mask edge and 43 HU at 1-1.5 mm; without the blur a
    phantom reads 57 and 22.
    Applied to the bone fraction as well, so that the label's bone rule sees the bone a reader sees.
    """
    return ndi.gaussian_filter(volume, (0, sigma_mm / spacing[1], sigma_mm / spacing[0]), truncate=3.0)


def add_noise(rng: np.random.Generator, hu: np.ndarray, sigma_range: tuple[float, float]) -> np.ndarray:
    """CT noise of std 3-8 HU, correlated over 1-2 voxels in-plane."""
    sigma = rng.uniform(*sigma_range)
    corr = rng.uniform(0.5, 1.0)
    noise = ndi.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32), (0, corr, corr))
    noise *= sigma / (noise.std() + 1e-6)
    return hu + noise
