"""One head without haemorrhage on the template grid: brain, skull, skull base, face, scalp, holder.

Besides brain and CSF, a real head CT shows much inside the skull that is not blood and that a
network trained on brains alone calls blood: venous sinuses (``vessels``), bony spurs of the skull
base whose 5 mm partial volume gives 60-200 HU, beam hardening that brightens the cortex next to the
inner table, and calcified pineal gland and choroid plexus. All of it is painted here, unlabelled.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .settings import GRID_MM
from .template import FieldBank, Template, coords, ellipsoid
from .vessels import venous_sinuses


def compose_head(rng: np.random.Generator, t: Template,
                 fields: FieldBank) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """HU volume of one head (without lesions) on the template grid, its tissue masks, and the grey
    matter density (the reference for what a reader sees as hyperdense blood)."""
    x, y, z = coords(t)
    hu, brain_p, texture, gm_hu = _brain(rng, t, fields)
    hu, skull, cortical, thick, diploe_hu = _skull(rng, t, fields, hu)
    hu, neck, base_bone, base_z = _face_and_neck(rng, t, fields, hu, (skull, diploe_hu, texture))
    bone = skull | base_bone
    hu, dense, blood_space = _intracranial_detail(rng, t, fields, hu, base_z, brain_p, bone)

    # Scalp: skin and muscle 20-60 HU around a subcutaneous fat layer (-100..-50), 3-8 mm.
    scalp_w = np.clip(rng.uniform(4, 7) + 1.5 * fields(25.0), 3.0, 9.0)
    scalp = (t.d_out > thick) & (t.d_out <= thick + scalp_w)
    head = t.ics | bone | scalp | neck
    head = ndi.binary_fill_holes(head)
    fat = scalp & (t.d_out > thick + 0.3 * scalp_w) & (t.d_out < thick + 0.7 * scalp_w)  # galea / skin around it
    hu = np.where(scalp & ~neck, np.where(fat, rng.uniform(-100, -60), rng.uniform(30, 55)) + 3 * texture, hu)
    hu = np.where(head & (hu <= -999), 40.0, hu)  # any gap closed by the hole filling is soft tissue

    holder = _head_holder(rng, t, head, x, y, z)
    hu = np.where(holder & ~head, rng.uniform(-200, 200), hu)
    # Truth for tests: bone where it is bone-dense (air cells and orbits carved out of it are not).
    masks = {"intracranial": t.ics, "bone": (bone | dense) & (hu >= 250), "head": head, "holder": holder & ~head,
             "cortical": cortical, "diploe": skull & ~cortical, "fat": fat & ~neck, "skin": scalp & ~fat & ~neck,
             "dense": dense, "blood_space": blood_space}
    return hu, masks, float(gm_hu)


def _brain(rng, t: Template, fields: FieldBank):
    """Grey and white matter, CSF, tissue texture and the falx; returns HU, brain fraction, texture, GM HU."""
    x, _, z = coords(t)
    gm_hu, wm_hu, csf_hu = rng.uniform(35, 45), rng.uniform(22, 32), rng.uniform(2, 12)
    gm_hu = max(gm_hu, wm_hu + 6)  # grey matter is denser than white matter in every real scan
    gm = _convexity_cortex(rng, t)
    brain_p = np.clip(gm + t.wm, 0, 1)
    csf_p = np.where(t.ics, 1.0 - brain_p, 0.0)
    texture = 1.5 * fields(6.0) + 1.0 * fields(2.0)
    hu = np.full(t.gm.shape, -1000.0, dtype=np.float32)
    hu = np.where(t.ics, gm * gm_hu + t.wm * wm_hu + csf_p * csf_hu + texture * brain_p, hu)
    # Falx cerebri: a dense dural sheet in the interhemispheric fissure above the corpus callosum.
    falx = t.ics & (np.abs(x) < rng.uniform(0.6, 1.2)) & (z > rng.uniform(15, 25)) & (t.d_in < 45)
    hu = np.where(falx & (csf_p > 0.3), rng.uniform(45, 75), hu)
    return hu, brain_p, texture, gm_hu


def _skull(rng, t: Template, fields: FieldBank, hu: np.ndarray):
    """Inner and outer cortical tables around diploe, 3-10 mm thick, thin over the temporal squama."""
    x, y, z = coords(t)
    thick = np.clip(rng.uniform(4.5, 7.5) + 1.5 * fields(25.0), 3.0, 10.0)
    lateral = np.clip((np.abs(x) - 45) / 20, 0, 1) * np.clip((z + 10) / 30, 0, 1) * (np.abs(y + 10) < 40)
    thick = np.maximum(thick - 2.0 * lateral, 3.0)
    skull = (t.d_out > 0) & (t.d_out <= thick)
    table = rng.uniform(1.2, 2.0)
    cortical = skull & ((t.d_out <= table) | (t.d_out > thick - table))
    bone_hu = rng.uniform(1000, 1600) + 150 * fields(10.0)
    diploe_hu = rng.uniform(350, 650) + 80 * fields(2.0)
    hu = np.where(skull, np.where(cortical, np.clip(bone_hu, 800, 1800), np.clip(diploe_hu, 300, 700)), hu)
    return hu, skull, cortical, thick, diploe_hu


def _face_and_neck(rng, t: Template, fields: FieldBank, hu: np.ndarray, around: tuple):
    """Below the brain: soft tissue, skull-base bone, orbits, sinuses and mastoid air.
    ``around`` is (skull, diploe HU, texture); returns HU, neck, base bone and the fossa floor's height."""
    skull, diploe_hu, texture = around
    x, y, z = coords(t)
    base_z = t.bottom_z + rng.uniform(35, 50)  # roughly the floor of the middle cranial fossa
    neck = (ellipsoid(x, y, z, (0, 5, t.bottom_z), (rng.uniform(55, 65), rng.uniform(70, 80), 90)) < 1) \
        & (z < base_z) & ~t.ics
    base_bone = neck & (t.d_out < rng.uniform(8, 14)) & ~skull
    hu = np.where(neck & ~skull, 40 + 4 * texture, hu)
    hu = np.where(base_bone, np.clip(diploe_hu + 300, 300, 1500), hu)
    for side in (-1, 1):
        eye = (side * rng.uniform(30, 34), rng.uniform(50, 56), t.bottom_z + rng.uniform(32, 40))
        orbit = ellipsoid(x, y, z, eye, (17, 16, 15)) < 1
        hu = np.where(orbit & ~t.ics, rng.uniform(-100, -60), hu)
        hu = np.where((ellipsoid(x, y, z, eye, (12, 12, 12)) < 1) & ~t.ics, rng.uniform(5, 15), hu)
        mastoid = (ellipsoid(x, y, z, (side * rng.uniform(52, 58), -28, t.bottom_z + rng.uniform(28, 36)),
                             (9, 9, 9)) < 1) & ~t.ics
        hu = np.where(mastoid & (fields(2.0) > -0.3), -900.0, hu)
        maxillary = (ellipsoid(x, y, z, (side * 28, 40, eye[2] - 30), (13, 16, 15)) < 1) & ~t.ics
        hu = np.where(maxillary, -950.0, hu)
    frontal_sinus = (ellipsoid(x, y, z, (0, 68, t.bottom_z + rng.uniform(55, 70)),
                               (rng.uniform(8, 16), 6, rng.uniform(6, 12))) < 1) & (skull | (t.d_out < 12)) & ~t.ics
    hu = np.where(frontal_sinus, -950.0, hu)
    return hu, neck, base_bone, base_z


def _convexity_cortex(rng, t: Template) -> np.ndarray:
    """Grey matter, with the CSF over the convexity partly or wholly replaced by cortex.

    The template is an adult average whose cortex keeps 1-3 mm of CSF under the inner table. In a
    young head the gyri touch the table, so a 5 mm slice through the curving vertex mixes bone with
    brain, not with CSF: real heads read 20-60 HU in their inner 1-2 mm, and a network that saw only
    CSF there calls those rims thin subdural blood.
    """
    fill = rng.uniform(0.3, 1.0) if rng.random() < 0.6 else 0.0
    if fill == 0.0:
        return t.gm
    reach = rng.uniform(3, 6)
    csf = np.where(t.ics, np.clip(1.0 - t.gm - t.wm, 0, 1), 0.0)
    return (t.gm + fill * csf * np.clip(1 - t.d_in / reach, 0, 1)).astype(np.float32)


def _intracranial_detail(rng, t: Template, fields: FieldBank, hu: np.ndarray, base_z: float,
                         brain_p: np.ndarray, bone: np.ndarray):
    """Everything inside the skull that is neither brain, CSF nor blood (see the module docstring).

    Returns the new HU, the dense (bone-like) voxels inside the skull, and the intracranial voxels a
    haemorrhage may occupy. ``brain_p`` is this head's brain fraction (its own cortex, not the
    template's), ``bone`` its skull and skull-base bone.
    """
    _, _, z = coords(t)
    # Beam hardening: up to ~14 HU brighter within a few mm of the inner table, strongest at the base.
    strength = rng.uniform(0, 10) + rng.uniform(0, 4) * np.clip((base_z + 20 - z) / 40, 0, 1)
    hu = np.where(t.ics, hu + strength * np.exp(-t.d_in / rng.uniform(2, 4)), hu)
    hu, veins = venous_sinuses(rng, t, fields, hu, brain_p, bone)
    hu, dense = _skull_base_spurs(rng, t, fields, hu, base_z)
    hu, dense = _sella_and_calcifications(rng, t, hu, dense)
    return hu.astype(np.float32), dense, t.ics & ~dense & ~veins


def _skull_base_spurs(rng, t: Template, fields: FieldBank, hu: np.ndarray, base_z: float):
    """Bony spurs growing from the floor of the cranial fossae into the intracranial space (clinoids,
    sphenoid wings, petrous ridges), and the uneven inner table of the orbital roofs and fossae."""
    x, y, z = coords(t)
    ics, d_in = t.ics, t.d_in
    floor = np.argwhere(ics & (d_in < 2) & (z < base_z + 8) & (np.abs(y) < 70))
    dense = np.zeros(ics.shape, bool)
    for _ in range(int(rng.integers(6, 16))):
        c_idx = floor[rng.integers(len(floor))]
        centre = t.origin + GRID_MM * c_idx
        radii = rng.uniform(2, 5, size=3) * np.array([1.0, 1.0, rng.uniform(0.6, 1.4)])
        radii[rng.integers(3)] *= rng.uniform(1.5, 3.5)  # elongated: ridges and processes
        r = int(np.ceil(radii.max() / GRID_MM)) + 1
        box = tuple(slice(max(0, c - r), c + r + 1) for c in c_idx)
        dense[box] |= ellipsoid(x[box[0]], y[:, box[1]], z[:, :, box[2]], centre, radii) < 1
    bumps = np.clip(1.2 * fields(6.0) + 0.2, 0, 3) * np.clip((base_z + 25 - z) / 20, 0, 1)
    dense |= ics & (d_in < bumps)
    dense &= ics
    spur_hu = np.clip(rng.uniform(500, 1100) + 200 * fields(4.0), 300, 1500)
    return np.where(dense, spur_hu, hu), dense


def _sella_and_calcifications(rng, t: Template, hu: np.ndarray, dense: np.ndarray):
    """Anterior clinoid processes and dorsum sellae (their 5 mm partial volume gives 70-140 HU
    blotches beside the sella), and calcified carotid siphons, pineal gland and choroid plexus."""
    x, y, z = coords(t)
    ics = t.ics
    processes = [((side * rng.uniform(9, 14), rng.uniform(0, 8), rng.uniform(-22, -14)),
                  (rng.uniform(1.5, 3), rng.uniform(5, 9), rng.uniform(1.5, 3))) for side in (-1, 1)]
    processes.append(((0, rng.uniform(-16, -10), rng.uniform(-26, -18)), (rng.uniform(4, 7), 1.8, rng.uniform(4, 7))))
    for centre, radii in processes:
        process = ellipsoid(x, y, z, centre, radii) < 1
        hu = np.where(process, np.maximum(hu, rng.uniform(400, 1000)), hu)
        dense |= process & ics
    # Each in about half the heads: (centre, jitter, chance, HU range).
    calcifications = [((-14.5, 0, -25), (2.5, 6, 5), 0.5, (150, 450)), ((14.5, 0, -25), (2.5, 6, 5), 0.5, (150, 450)),
                      ((0, -30, 3), (3, 3, 3), 0.5, (120, 450)), ((-27, -40, 16), (3, 3, 3), 0.45, (120, 450)),
                      ((27, -40, 16), (3, 3, 3), 0.45, (120, 450))]
    for centre, jitter, chance, hu_range in calcifications:
        if rng.random() < chance:
            spot = np.asarray(centre, float) + rng.uniform(-1, 1, size=3) * np.asarray(jitter)
            calc = ics & (ellipsoid(x, y, z, spot, rng.uniform(1.5, 3.5, size=3)) < 1)
            hu = np.where(calc, rng.uniform(*hu_range), hu)
            dense |= calc
    return hu, dense


def _head_holder(rng, t: Template, head: np.ndarray, x, y, z) -> np.ndarray:
    """A curved plastic cradle behind and beside the head, sometimes joined to it by a thin pad."""
    ys = np.nonzero(head.any(axis=(0, 2)))[0]
    centre_y = t.origin[1] + GRID_MM * (ys[0] + ys[-1]) / 2
    half_width = GRID_MM * float(np.ptp(np.nonzero(head.any(axis=(1, 2)))[0])) / 2
    radius = max(half_width, GRID_MM * (ys[-1] - ys[0]) / 2) + rng.uniform(6, 20)
    r = np.sqrt(x**2 + (y - centre_y) ** 2)
    angle = np.degrees(np.arctan2(x, -(y - centre_y)))  # 0 deg = straight posterior
    thickness = rng.uniform(3, 7)
    shell = (r > radius) & (r < radius + thickness) & (np.abs(angle) < rng.uniform(70, 115))
    shell = shell & (z < t.top_z - rng.uniform(10, 60))
    if rng.random() < 0.5:  # a pad bridging holder and scalp behind the head
        pad_z = t.bottom_z + rng.uniform(40, 90)
        pad = (np.abs(x - rng.uniform(-15, 15)) < rng.uniform(2, 4)) & (y < centre_y) \
            & (np.abs(z - pad_z) < rng.uniform(5, 15)) & (r < radius + thickness) & ~head
        shell |= pad & (r > radius - 40)
    return shell
