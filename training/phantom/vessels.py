"""Dural venous sinuses and the tentorium: venous blood at exactly a haematoma's density, not blood to label.

A network that has never seen them calls them haemorrhage: the bands along the inner table, the
torcula and the sigmoid sinuses at the skull base are where models trained on brains alone put
their false positives on real scans.
"""

from __future__ import annotations

import numpy as np

from .settings import GRID_MM
from .template import FieldBank, Template, coords, ellipsoid


def venous_sinuses(rng, t: Template, fields: FieldBank, hu: np.ndarray, brain_p: np.ndarray,
                   bone: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paint the sinuses, tentorium and jugular canals into ``hu``; returns it and the venous voxels."""
    x, y, z = coords(t)
    ics, d_in = t.ics, t.d_in
    torcula_z = rng.uniform(-14, 0)
    sinus_hu = rng.uniform(40, 76)  # venous blood, up to 76 HU with a high haematocrit (real heads reach 66)
    # Superior sagittal sinus: a triangle under the midline inner table that widens towards the
    # torcula, where real sinuses are about 1 cm deep.
    depth = rng.uniform(5, 8) + rng.uniform(0, 5) * np.clip((-40 - y) / 50, 0, 1)
    sss = ics & (d_in < depth) & (np.abs(x) < 0.8 * (depth - d_in) + 0.6) & (z > torcula_z - 3) & (y < 55)
    torcula = ics & (d_in < rng.uniform(6, 11)) \
        & (ellipsoid(x, y, z, (0, -100, torcula_z), (rng.uniform(8, 14), 30, rng.uniform(6, 10))) < 1)
    # Transverse and sigmoid sinuses, usually one side dominant. The sigmoid sinus runs from the
    # lateral end of the transverse sinus down and forward along the posterior fossa wall to the
    # jugular foramen.
    ts_half = rng.uniform(2.5, 4.5)
    side_scale = {side: 1.0 for side in (-1, 1)}
    side_scale[int(rng.choice([-1, 1]))] = rng.uniform(0.5, 1.0)
    scale = np.where(x < 0, side_scale[-1], side_scale[1]).astype(np.float32)
    ts_depth = rng.uniform(4, 8) * scale
    transverse = ics & (d_in < ts_depth) & (np.abs(z - torcula_z + 0.25 * np.abs(x)) < ts_half * scale) & (y < -35)
    sg_top = torcula_z - 0.25 * 50  # the transverse sinus's height where it turns down, 50 mm from the midline
    sg_drop = np.float32(sg_top) - z
    sg_base_y, sg_slope = rng.uniform(-70, -58), rng.uniform(0.5, 1.0)
    sg_y = sg_base_y + sg_slope * sg_drop
    sg_length = rng.uniform(22, 32)
    # Up to 12 mm front to back, as real ones are, ending in a jugular bulb at the skull base.
    sigmoid = ics & (d_in < rng.uniform(5, 10) * scale) & (np.abs(y - sg_y) < rng.uniform(4, 12) * scale) \
        & (np.abs(x) > 28) & (sg_drop > -ts_half) & (sg_drop < sg_length)
    bulb_y = sg_base_y + sg_slope * sg_length  # the sinus's own lower end
    for side in (-1, 1):
        bulb_radii = rng.uniform(4, 10, size=3) * side_scale[side]
        sigmoid |= ics & (d_in < 10) & (ellipsoid(x, y, z, (side * 40, bulb_y, sg_top - sg_length), bulb_radii
                                                  * np.array([2.0, 1.0, 1.0])) < 1)
    jugular = jugular_veins(rng, t, (bulb_y, sg_top - sg_length), side_scale)
    sigmoid |= ics & (d_in < 10) & jugular  # the sinus's last stretch down to its foramen
    tent_z = torcula_z + 0.4 * (y + 100) - 0.3 * np.abs(x)
    tentorium = ics & (np.abs(z - tent_z) < rng.uniform(0.6, 1.0)) & (y > -110) & (y < -45) \
        & ~((np.abs(x) < 14) & (y > -70)) & (brain_p < 0.9)  # open incisura around the midbrain
    straight = ics & (np.abs(x) < 2.5) & (np.abs(z - tent_z) < 2.5) & (y < -50) & (y > -100)
    veins = sss | torcula | transverse | sigmoid | straight
    hu = np.where(veins, sinus_hu + 3 * fields(2.0), hu)
    # The sigmoid sinus runs in a deep groove of the petrous and mastoid bone, whose partial volume in
    # a 5 mm slice brightens the sinus towards the groove (real heads read 60-100 HU there).
    groove_hu = rng.uniform(0, 35)
    hu = groove_brightening(hu, sigmoid, d_in, groove_hu, rng.uniform(2, 5))
    hu = np.where(tentorium & ~veins, np.maximum(hu, rng.uniform(40, 65)), hu)
    # Below the bulb the vein leaves the skull through the jugular foramen, a canal in the skull base:
    # on the lowest slices of a brain mask it is an island of venous blood walled by bone.
    canal = jugular & ~ics & bone
    hu = np.where(canal, sinus_hu + groove_hu * rng.uniform(0.3, 1.0) + 3 * fields(2.0), hu)
    return hu, veins


def groove_brightening(hu: np.ndarray, sinus: np.ndarray, d_in: np.ndarray, gain_hu: float,
                       scale_mm: float) -> np.ndarray:
    """The partial volume of a sinus's bony groove in a 5 mm slice: up to ``gain_hu`` brighter at
    the inner table, fading over ``scale_mm`` away from it."""
    return np.where(sinus, hu + gain_hu * np.exp(-d_in / scale_mm), hu)


def jugular_veins(rng, t: Template, bulb_yz: tuple[float, float], side_scale: dict[int, float]) -> np.ndarray:
    """Each side's jugular bulb continued down through the floor of the posterior fossa: a tube from
    the bulb to 8-25 mm below the intracranial space, drifting medially and forwards as the jugular
    foramen does; 3.5-11 mm in radius (smaller on the non-dominant side) and oval, up to 1.7x longer
    along one in-plane axis, since real heads show islands as wide as 21 x 13 mm on one slice."""
    x, y, z = coords(t)
    bulb_y, bulb_z = bulb_yz
    tube = np.zeros(t.ics.shape, bool)
    for side in (-1, 1):
        top = np.array([side * 40.0, bulb_y, bulb_z])
        column = t.ics[int(round((top[0] - t.origin[0]) / GRID_MM)), int(round((top[1] - t.origin[1]) / GRID_MM))]
        floor_z = t.origin[2] + GRID_MM * np.argmax(column) if column.any() else bulb_z
        bottom = np.array([side * (40.0 - rng.uniform(0, 8)), bulb_y + rng.uniform(0, 10),
                           min(floor_z, bulb_z) - rng.uniform(8, 25)])
        radius = rng.uniform(3.5, 11.0) * side_scale[side]
        stretch = np.ones(3)
        stretch[int(rng.integers(2))] = rng.uniform(1.0, 1.7)  # oval across x or y
        axis = bottom - top
        along = np.clip(((x - top[0]) * axis[0] + (y - top[1]) * axis[1] + (z - top[2]) * axis[2])
                        / float(axis @ axis), 0, 1)
        dist2 = ((x - top[0] - along * axis[0]) / stretch[0]) ** 2 \
            + ((y - top[1] - along * axis[1]) / stretch[1]) ** 2 + (z - top[2] - along * axis[2]) ** 2
        tube |= dist2 < radius ** 2
    return tube
