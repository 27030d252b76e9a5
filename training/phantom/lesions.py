"""Haemorrhages of the five INSTANCE subtypes, planned per seed and painted into a head, and the label rule."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .settings import GRID_MM, LOOKS_LIKE_BONE_HU, SUBTYPES, VISIBLE_ABOVE_GM_HU, PhantomSettings
from .template import FieldBank, Template, coords, ellipsoid, smooth_field


def _blob(rng, x, y, z, centre, radius) -> np.ndarray:
    """Irregular lesion fraction 0..1 around ``centre`` with a ~1 mm soft edge."""
    radii = radius * rng.uniform(0.7, 1.3, size=3)
    radii *= radius / np.cbrt(np.prod(radii))  # keep the nominal volume
    dist = np.sqrt(ellipsoid(x, y, z, centre, radii))
    wobble = smooth_field(rng, dist.shape, max(2.0, radius / 2.5))
    edge = (1.0 - dist + 0.25 * wobble) * radius
    return np.clip(edge + 0.5, 0, 1)


def lesion_plan(seed: int, settings: PhantomSettings = PhantomSettings()) -> list[dict]:
    """What haemorrhages a seed's case gets: types and nominal sizes, drawn from the lesion stream alone.

    Each lesion is then painted with its own generator (``seed``, 1, index), so the plan can be
    inspected, and lesion statistics over many seeds checked, without building any anatomy.
    """
    rng = np.random.default_rng([seed, 1])
    if rng.random() < settings.lesion_free_fraction:
        return []
    n = int(rng.choice([1, 1, 1, 2, 2, 3]))
    kinds = rng.choice(SUBTYPES, size=n, p=[0.4, 0.2, 0.12, 0.13, 0.15])
    plan = []
    for index, kind in enumerate(kinds):
        item: dict = {"type": str(kind), "stream": [int(seed), 1, index]}
        if kind == "IPH":  # log-uniform 0.3-90 mL: most spontaneous haematomas are small
            item["volume_ml"] = round(float(np.exp(rng.uniform(np.log(0.3), np.log(90)))), 3)
        plan.append(item)
    return plan


def add_lesions(plan: list[dict], t: Template, hu: np.ndarray, fields: FieldBank,
                space: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Paint the planned haemorrhages into ``hu``, only inside ``space`` (``compose_head``'s
    ``blood_space``); returns the new HU, the blood fraction and descriptions."""
    blood = np.zeros(hu.shape, dtype=np.float32)
    lesions: list[dict] = []
    for item in plan:
        rng = np.random.default_rng(item["stream"])
        painter = {"IPH": _iph, "SDH": _extra_axial, "EDH": _extra_axial, "IVH": _ivh, "SAH": _sah}[item["type"]]
        fraction, blood_hu, extra = painter(rng, t, item)
        fraction = np.where(space, fraction, 0).astype(np.float32)
        if fraction.sum() * GRID_MM**3 < 150:  # < 0.15 mL: too small to label at 5 mm slices
            continue
        hu = hu * (1 - fraction) + fraction * (blood_hu + 3 * fields(2.0))
        if "oedema" in extra:
            rim = extra.pop("oedema")
            hu = hu * (1 - rim) + rim * rng.uniform(15, 25)
        blood = np.maximum(blood, fraction)
        lesions.append({"type": item["type"], "hu": round(float(blood_hu), 1), **extra})
    return hu.astype(np.float32), blood, lesions


def _iph(rng, t: Template, item: dict):
    x, y, z = coords(t)
    volume_ml = item["volume_ml"]
    radius = np.cbrt(3 * volume_ml * 1000 / (4 * np.pi))
    parenchyma = np.argwhere((t.gm + t.wm > 0.8) & (t.d_in > min(radius * 0.6, 25) + 3))
    if len(parenchyma) == 0:
        parenchyma = np.argwhere(t.gm + t.wm > 0.8)
    centre_idx = parenchyma[rng.integers(len(parenchyma))]
    centre = t.origin + GRID_MM * centre_idx
    reach = int(np.ceil((radius * 1.8 + 8) / GRID_MM))
    box = tuple(slice(max(0, c - reach), min(n, c + reach + 1)) for c, n in zip(centre_idx, t.gm.shape))
    fraction = np.zeros(t.gm.shape, np.float32)
    fraction[box] = _blob(rng, x[box[0]], y[:, box[1]], z[:, :, box[2]], centre, radius)
    extra = {"centre_ras_mm": [round(float(c), 1) for c in centre], "volume_ml": volume_ml}
    if rng.random() < 0.7:  # perilesional oedema, hypodense and unlabelled
        width = rng.uniform(2, 6)
        inner = fraction[box]
        near = ndi.distance_transform_edt(inner < 0.5)
        oedema = np.zeros_like(fraction)
        oedema[box] = np.clip((width - near) / width, 0, 1) * (inner < 0.5) * 0.8
        extra["oedema"] = oedema
    return fraction, rng.uniform(55, 90), extra


def _direction(rng, lateral_bias: float) -> np.ndarray:
    v = rng.standard_normal(3)
    v[0] = np.sign(v[0] or 1) * (abs(v[0]) + lateral_bias)
    v[2] = abs(v[2]) * 0.6
    return v / np.linalg.norm(v)


def _extra_axial(rng, t: Template, item: dict):
    """Subdural crescent or epidural lens along the inner table over a convexity."""
    x, y, z = coords(t)
    centre = np.array([0.0, -15.0, 10.0])
    rel = np.stack(np.broadcast_arrays(x - centre[0], y - centre[1], z - centre[2]))
    norm = np.sqrt((rel**2).sum(0)) + 1e-6
    axis = _direction(rng, 1.5)
    angle = np.degrees(np.arccos(np.clip(np.tensordot(axis, rel, axes=1) / norm, -1, 1)))
    if item["type"] == "SDH":
        span, peak = rng.uniform(30, 60), rng.uniform(3, 20)
        profile = peak * np.clip(1 - (angle / span) ** 4, 0, 1)  # crescent: flat, tapering at the ends
    else:
        span, peak = rng.uniform(18, 32), rng.uniform(8, 25)
        profile = peak * np.clip(1 - (angle / span) ** 2, 0, 1)  # lens: thickest in the middle
    fraction = np.clip(profile - t.d_in + 0.5, 0, 1) * (profile > 0)
    fraction *= (z > t.bottom_z + 40)  # over the convexity, not in the posterior fossa
    return fraction.astype(np.float32), rng.uniform(55, 85), {"span_deg": round(float(span), 1),
                                                               "thickness_mm": round(float(peak), 1)}


def _ivh(rng, t: Template, item: dict):
    """Blood layering in the dependent (posterior, patient supine) part of the lateral ventricles."""
    x, y, z = coords(t)
    brain_p = t.gm + t.wm
    ventricle = t.ics & (brain_p < 0.5) & (t.d_in > 14) & (np.abs(x) < 30) & (z > t.bottom_z + 50)
    ventricle = ndi.binary_opening(ventricle)
    side = rng.choice([-1, 1, 0])
    if side:
        ventricle &= (x * side > 0)
    ys = np.nonzero(ventricle.any(axis=(0, 2)))[0]
    if len(ys) == 0:
        return np.zeros(t.gm.shape, np.float32), 60.0, {}
    level = t.origin[1] + GRID_MM * (ys[0] + rng.uniform(0.15, 0.5) * (ys[-1] - ys[0]))
    fraction = ventricle * np.clip(level - y + 0.5, 0, 1) * np.clip(1 - brain_p, 0, 1)
    return ndi.gaussian_filter(fraction.astype(np.float32), 0.5), rng.uniform(55, 85), {}


def _sah(rng, t: Template, item: dict):
    """Thin blood in the sulci and basal cisterns of a region."""
    x, y, z = coords(t)
    csf = t.ics & (t.gm + t.wm < 0.6)
    if rng.random() < 0.5:  # basal cisterns
        centre = np.array([rng.uniform(-10, 10), rng.uniform(-10, 10), t.bottom_z + rng.uniform(55, 65)])
    else:  # a convexity
        cand = np.argwhere(csf & (t.d_in < 8) & (t.d_in > 1))
        centre = t.origin + GRID_MM * cand[rng.integers(len(cand))]
    region = np.sqrt(ellipsoid(x, y, z, centre, [rng.uniform(20, 40)] * 3)) < 1
    fraction = csf * region * np.clip(1 - (t.gm + t.wm), 0, 1) * rng.uniform(0.85, 1.0)
    return fraction.astype(np.float32), rng.uniform(55, 80), {"centre_ras_mm": [round(float(c), 1) for c in centre]}


def visible_blood(blood: np.ndarray, bone: np.ndarray, clean_hu: np.ndarray, gm_hu: float) -> np.ndarray:
    """The annotation: blood a reader can see, from the fractions and noise-free HU of each voxel.

    At least half blood; at 5 mm slices a voxel with more than a tenth of bone in it already looks
    like bone (> 200 HU), and so does one the reconstruction kernel's bloom lifts above 160 HU (skull
    stripping rightly drops such voxels next to the skull, so a label holding them teaches the network
    to want what preprocessing removes); and one no denser than grey matter (thin blood mixed with CSF
    in a sulcus) looks like brain: labelling isodense voxels teaches nothing but noise, and SAH cases
    then score Dice near 0 although the visible blood is found.
    """
    return (blood >= 0.5) & (bone < 0.1) & (clean_hu > gm_hu + VISIBLE_ABOVE_GM_HU) & (clean_hu < LOOKS_LIKE_BONE_HU)
