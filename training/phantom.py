"""Synthetic head-CT phantoms with labelled intracranial haemorrhage, built on real brain anatomy.

The brain is the MNI ICBM152 2009a grey/white-matter template that ``nilearn`` ships (real gyri,
sulci, ventricles, basal ganglia, cerebellum). Around it each case gets its own skull (cortical
tables and diploe of varying thickness, skull base, orbits, sinus and mastoid air), scalp with
subcutaneous fat, a plastic head holder that may touch the scalp through a pad, a falx, tissue
texture, haemorrhages of the five subtypes, a random head pose and smooth elastic deformation, and
an INSTANCE-like acquisition: 512 x 512 at 0.40-0.50 mm, 5 mm slices averaged from a finer grid,
correlated noise, and a stored orientation that may be flipped, permuted or oblique.

Everything is in Hounsfield units; the head is composed on a 1 mm grid in template (RAS, mm)
space and sampled onto the scan grid. Deterministic for a seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ich_infer.io import Geometry, write_image
from ich_infer.orientation import reindex

SUBTYPES = ("IPH", "SDH", "EDH", "IVH", "SAH")
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])
PAD_MM = 40  # room around the template for skull, scalp and holder
VISIBLE_ABOVE_GM_HU = 3.0  # labelled blood is at least this much denser than grey matter (noise-free)
LOOKS_LIKE_BONE_HU = 160.0  # (v6) labelled blood reads below this, noise-free: denser looks like bone
GENERATOR_VERSION = 9  # 2: venous sinuses, tentorium, skull-base spurs, calcifications, visibility rule;
# 3: sigmoid sinuses, asymmetric transverse sinuses, torcula-sized sagittal sinus, clinoids and carotid siphons;
# 4: wider sigmoid sinuses brightened by their bony groove, jugular bulbs, scans starting in the neck;
# 5: the reconstruction kernel's blur (bone bloom at the inner table), cortex reaching the inner table
#    in young heads, stronger beam hardening, jugular bulbs at the sigmoid sinus's own lower end;
# 6: v5's images; labels leave out blood that the kernel's bloom makes read like bone (> 160 HU
#    noise-free, or a tenth of kernel-blurred bone): v5 labelled such voxels, skull stripping drops them;
# 7: jugular canals through the skull base below the bulbs (venous islands in bone on the lowest
#    brain-mask slices), venous blood up to 76 HU, tentorium gated by the head's own cortex;
# 8: jugular canals up to 11 mm in radius and oval on the dominant side, larger bulbs: the real head's
#    widest island (about 21 x 13 mm on one slice) was wider than any v7 canal
# 9: acquisition="varied" (slice thickness 2.5-7 mm, tilt up to 25 degrees, edge-enhancing kernels);
#    the default "instance" acquisition is byte-identical to v8
CASE_SEED_STRIDE = 100003  # case i of dataset seed s has seed s * CASE_SEED_STRIDE + i; distinct for i < stride
KERNEL_SIGMA_MM = (0.3, 0.9)  # in-plane point spread of the reconstruction kernel (v5)
# Older scanners, thick tilted slices and a converter's tilt correction smear the skull 2-3 mm into
# the brain: the GE trauma head reads 71 HU at 1-2 mm inside its brain mask and 52 HU at 2-3 mm,
# where kernels of 0.3-0.9 mm give 23-46 and 27-35 (benchmarks/edge_profile.py).
VARIED_KERNEL_SIGMA_MM = (0.6, 3.0)
GRID_MM = 1.25  # the head is composed on this grid: fine enough for 1.2 mm bone tables, 2x cheaper than 1 mm


@dataclass(frozen=True)
class PhantomSettings:
    matrix: int = 512
    inplane_mm: tuple[float, float] = (0.40, 0.50)
    slice_mm: float = 5.0
    min_slices: int = 20
    max_slices: int = 70
    lesion_free_fraction: float = 0.12
    noise_hu: tuple[float, float] = (3.0, 8.0)
    oriented_fraction: float = 0.5  # share of cases stored flipped/permuted/oblique
    # "instance": INSTANCE-like 5 mm slices and a soft kernel. "varied": what other scanners hand over
    # (slice thickness, gantry tilt, sharp edge-enhancing kernels, noise), drawn per case from its own
    # random stream, so the thin inner-table bands that thick tilted slices make are seen unlabelled.
    acquisition: str = "instance"


@dataclass
class Phantom:
    image: np.ndarray  # (k, j, i) int16 HU
    label: np.ndarray  # (k, j, i) uint8 0/1
    geometry: Geometry
    lesions: list[dict] = field(default_factory=list)
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # tissue masks on the scan grid


# ----------------------------------------------------------------------------------------- template
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


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], scale_mm: float) -> np.ndarray:
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
            self._fields[scale_mm] = _smooth_field(self.rng, self.shape, scale_mm)
        shifts = tuple(int(v) for v in self.rng.integers(0, 200, size=3))
        return np.roll(self._fields[scale_mm], shifts, axis=(0, 1, 2)) * self.rng.choice([-1.0, 1.0])


def _coords(t: Template) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS mm coordinates of the grid as broadcastable open grids."""
    nx, ny, nz = t.gm.shape
    return (np.float32(t.origin[0]) + GRID_MM * np.arange(nx, dtype=np.float32)[:, None, None],
            np.float32(t.origin[1]) + GRID_MM * np.arange(ny, dtype=np.float32)[None, :, None],
            np.float32(t.origin[2]) + GRID_MM * np.arange(nz, dtype=np.float32)[None, None, :])


def _ellipsoid(x, y, z, centre, radii) -> np.ndarray:
    return ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2


# --------------------------------------------------------------------------------------------- anatomy
def compose_head(rng: np.random.Generator, t: Template,
                 fields: FieldBank) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """HU volume of one head (without lesions) on the template grid, its tissue masks, and the grey
    matter density (the reference for what a reader sees as hyperdense blood)."""
    x, y, z = _coords(t)
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

    # Skull: inner and outer cortical tables around diploe, thickness varying 3-10 mm.
    thick = np.clip(rng.uniform(4.5, 7.5) + 1.5 * fields(25.0), 3.0, 10.0)
    lateral = np.clip((np.abs(x) - 45) / 20, 0, 1) * np.clip((z + 10) / 30, 0, 1) * (np.abs(y + 10) < 40)
    thick = np.maximum(thick - 2.0 * lateral, 3.0)  # thin squamous temporal bone
    skull = (t.d_out > 0) & (t.d_out <= thick)
    table = rng.uniform(1.2, 2.0)
    cortical = skull & ((t.d_out <= table) | (t.d_out > thick - table))
    bone_hu = rng.uniform(1000, 1600) + 150 * fields(10.0)
    diploe_hu = rng.uniform(350, 650) + 80 * fields(2.0)
    hu = np.where(skull, np.where(cortical, np.clip(bone_hu, 800, 1800), np.clip(diploe_hu, 300, 700)), hu)

    # Face and neck below the brain: soft tissue, skull base bone, orbits, sinuses, mastoid air.
    base_z = t.bottom_z + rng.uniform(35, 50)  # roughly the floor of the middle cranial fossa
    neck = (_ellipsoid(x, y, z, (0, 5, t.bottom_z), (rng.uniform(55, 65), rng.uniform(70, 80), 90)) < 1) \
        & (z < base_z) & ~t.ics
    base_bone = neck & (t.d_out < rng.uniform(8, 14)) & ~skull
    hu = np.where(neck & ~skull, 40 + 4 * texture, hu)
    hu = np.where(base_bone, np.clip(diploe_hu + 300, 300, 1500), hu)
    for side in (-1, 1):
        eye = (side * rng.uniform(30, 34), rng.uniform(50, 56), t.bottom_z + rng.uniform(32, 40))
        orbit = _ellipsoid(x, y, z, eye, (17, 16, 15)) < 1
        hu = np.where(orbit & ~t.ics, rng.uniform(-100, -60), hu)
        hu = np.where((_ellipsoid(x, y, z, eye, (12, 12, 12)) < 1) & ~t.ics, rng.uniform(5, 15), hu)
        mastoid = (_ellipsoid(x, y, z, (side * rng.uniform(52, 58), -28, t.bottom_z + rng.uniform(28, 36)),
                              (9, 9, 9)) < 1) & ~t.ics
        hu = np.where(mastoid & (fields(2.0) > -0.3), -900.0, hu)
        maxillary = (_ellipsoid(x, y, z, (side * 28, 40, eye[2] - 30), (13, 16, 15)) < 1) & ~t.ics
        hu = np.where(maxillary, -950.0, hu)
    frontal_sinus = (_ellipsoid(x, y, z, (0, 68, t.bottom_z + rng.uniform(55, 70)),
                                (rng.uniform(8, 16), 6, rng.uniform(6, 12))) < 1) & (skull | (t.d_out < 12)) & ~t.ics
    hu = np.where(frontal_sinus, -950.0, hu)
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


def _convexity_cortex(rng, t: Template) -> np.ndarray:
    """Grey matter, with the CSF over the convexity partly or wholly replaced by cortex.

    The template is an adult average whose cortex keeps 1-3 mm of CSF under the inner table. In a
    young head the gyri touch the table, so a 5 mm slice through the curving vertex mixes bone with
    brain, not with CSF: the real head's inner 1-2 mm read 20-60 HU above its brain where v4 phantoms
    dipped below theirs, and the network called those rims thin subdural blood (release 5).
    """
    fill = rng.uniform(0.3, 1.0) if rng.random() < 0.6 else 0.0
    if fill == 0.0:
        return t.gm
    reach = rng.uniform(3, 6)
    csf = np.where(t.ics, np.clip(1.0 - t.gm - t.wm, 0, 1), 0.0)
    return (t.gm + fill * csf * np.clip(1 - t.d_in / reach, 0, 1)).astype(np.float32)


def _intracranial_detail(rng, t: Template, fields: FieldBank, hu: np.ndarray, base_z: float,
                         brain_p: np.ndarray, bone: np.ndarray):
    """What a real head CT shows inside the skull besides brain and CSF, and that is not blood.

    The first shipped weights (v1 phantoms) called 13.8 mL of an unaltered real head haemorrhage,
    in bands along the inner table, around the torcula and on the skull base. Real scans have there:
    dural venous sinuses (venous blood, 40-65 HU, exactly the density of a haematoma), the
    tentorium, bony spurs of an irregular skull base (clinoids, sphenoid wings, petrous ridges,
    orbital roofs) whose 5 mm partial volume gives 60-200 HU, beam hardening that brightens the
    cortex next to the inner table, and calcified pineal gland and choroid plexus. A network that
    has never seen them calls them blood. Returns the new HU, the dense (bone-like) voxels inside
    the skull, and the intracranial voxels a haemorrhage may occupy. ``brain_p`` is this head's
    brain fraction (its own cortex, not the template's), ``bone`` its skull and skull-base bone.
    """
    x, y, z = _coords(t)
    ics, d_in = t.ics, t.d_in
    # Beam hardening: up to ~14 HU brighter within a few mm of the inner table, strongest at the base.
    strength = rng.uniform(0, 10) + rng.uniform(0, 4) * np.clip((base_z + 20 - z) / 40, 0, 1)
    hu = np.where(ics, hu + strength * np.exp(-d_in / rng.uniform(2, 4)), hu)

    # Dural venous sinuses and the tentorium (torcula at the internal occipital protuberance).
    torcula_z = rng.uniform(-14, 0)
    sinus_hu = rng.uniform(40, 76)  # venous blood, brighter with a high haematocrit (v7: the real head's 66 HU)
    # Superior sagittal sinus: a triangle under the midline inner table that widens towards the
    # torcula (v3: the real head's sinus there is ~1 cm deep, twice v2's fixed 5-8 mm).
    depth = rng.uniform(5, 8) + rng.uniform(0, 5) * np.clip((-40 - y) / 50, 0, 1)
    sss = ics & (d_in < depth) & (np.abs(x) < 0.8 * (depth - d_in) + 0.6) & (z > torcula_z - 3) & (y < 55)
    torcula = ics & (d_in < rng.uniform(6, 11)) \
        & (_ellipsoid(x, y, z, (0, -100, torcula_z), (rng.uniform(8, 14), 30, rng.uniform(6, 10))) < 1)
    # Transverse and sigmoid sinuses, usually one side dominant. The sigmoid sinus runs from the
    # lateral end of the transverse sinus down and forward along the posterior fossa wall to the
    # jugular foramen; v2 had none, and the first real-head check put half its false positive there.
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
    # v4: as wide as 12 mm front to back (the real head's is), ending in a jugular bulb at the skull base.
    sigmoid = ics & (d_in < rng.uniform(5, 10) * scale) & (np.abs(y - sg_y) < rng.uniform(4, 12) * scale) \
        & (np.abs(x) > 28) & (sg_drop > -ts_half) & (sg_drop < sg_length)
    bulb_y = sg_base_y + sg_slope * sg_length  # the sinus's own lower end
    for side in (-1, 1):
        bulb_radii = rng.uniform(4, 10, size=3) * side_scale[side]  # v8: up to 10 mm (v7: 8)
        sigmoid |= ics & (d_in < 10) & (_ellipsoid(x, y, z, (side * 40, bulb_y, sg_top - sg_length), bulb_radii
                                                   * np.array([2.0, 1.0, 1.0])) < 1)
    jugular = _jugular_veins(rng, t, (bulb_y, sg_top - sg_length), side_scale)
    sigmoid |= ics & (d_in < 10) & jugular  # the sinus's last stretch down to its foramen
    tent_z = torcula_z + 0.4 * (y + 100) - 0.3 * np.abs(x)
    tentorium = ics & (np.abs(z - tent_z) < rng.uniform(0.6, 1.0)) & (y > -110) & (y < -45) \
        & ~((np.abs(x) < 14) & (y > -70)) & (brain_p < 0.9)  # open incisura around the midbrain
    straight = ics & (np.abs(x) < 2.5) & (np.abs(z - tent_z) < 2.5) & (y < -50) & (y > -100)
    veins = sss | torcula | transverse | sigmoid | straight
    hu = np.where(veins, sinus_hu + 3 * fields(2.0), hu)
    # v4: the sigmoid sinus runs in a deep groove of the petrous and mastoid bone, whose partial volume
    # in a 5 mm slice brightens the sinus towards the groove (the real head's reads 60-100 HU there).
    groove_hu = rng.uniform(0, 35)
    hu = groove_brightening(hu, sigmoid, d_in, groove_hu, rng.uniform(2, 5))
    hu = np.where(tentorium & ~veins, np.maximum(hu, rng.uniform(40, 65)), hu)
    # v7: below the bulb the vein leaves the skull through the jugular foramen, a canal in the skull
    # base. On the lowest slices of the real head's brain mask it is an island of venous blood walled
    # by bone (the transfer check's remaining false positive, 1.6 mL at 66 HU); v6 phantoms ended the
    # sinus inside the template's posterior fossa and never showed one.
    canal = jugular & ~ics & bone
    hu = np.where(canal, sinus_hu + groove_hu * rng.uniform(0.3, 1.0) + 3 * fields(2.0), hu)

    # Skull base: bony spurs growing from the floor of the cranial fossae into the intracranial space,
    # and the uneven inner table of the orbital roofs and fossae.
    floor = np.argwhere(ics & (d_in < 2) & (z < base_z + 8) & (np.abs(y) < 70))
    dense = np.zeros(ics.shape, bool)
    for _ in range(int(rng.integers(6, 16))):
        c_idx = floor[rng.integers(len(floor))]
        centre = t.origin + GRID_MM * c_idx
        radii = rng.uniform(2, 5, size=3) * np.array([1.0, 1.0, rng.uniform(0.6, 1.4)])
        radii[rng.integers(3)] *= rng.uniform(1.5, 3.5)  # elongated: ridges and processes
        r = int(np.ceil(radii.max() / GRID_MM)) + 1
        box = tuple(slice(max(0, c - r), c + r + 1) for c in c_idx)
        dense[box] |= _ellipsoid(x[box[0]], y[:, box[1]], z[:, :, box[2]], centre, radii) < 1
    bumps = np.clip(1.2 * fields(6.0) + 0.2, 0, 3) * np.clip((base_z + 25 - z) / 20, 0, 1)
    dense |= ics & (d_in < bumps)
    dense &= ics
    spur_hu = np.clip(rng.uniform(500, 1100) + 200 * fields(4.0), 300, 1500)
    hu = np.where(dense, spur_hu, hu)

    # Around the sella: anterior clinoid processes and dorsum sellae (bone). Their 5 mm partial volume
    # gives 70-140 HU blotches beside the sella on real scans (v3).
    processes = [((side * rng.uniform(9, 14), rng.uniform(0, 8), rng.uniform(-22, -14)),
                  (rng.uniform(1.5, 3), rng.uniform(5, 9), rng.uniform(1.5, 3))) for side in (-1, 1)]
    processes.append(((0, rng.uniform(-16, -10), rng.uniform(-26, -18)), (rng.uniform(4, 7), 1.8, rng.uniform(4, 7))))
    for centre, radii in processes:
        process = _ellipsoid(x, y, z, centre, radii) < 1
        hu = np.where(process, np.maximum(hu, rng.uniform(400, 1000)), hu)
        dense |= process & ics

    # Calcification: carotid siphons beside the sella, pineal gland and choroid plexus glomera
    # (each in about half the heads): (centre, jitter, chance, HU range).
    calcifications = [((-14.5, 0, -25), (2.5, 6, 5), 0.5, (150, 450)), ((14.5, 0, -25), (2.5, 6, 5), 0.5, (150, 450)),
                      ((0, -30, 3), (3, 3, 3), 0.5, (120, 450)), ((-27, -40, 16), (3, 3, 3), 0.45, (120, 450)),
                      ((27, -40, 16), (3, 3, 3), 0.45, (120, 450))]
    for centre, jitter, chance, hu_range in calcifications:
        if rng.random() < chance:
            spot = np.asarray(centre, float) + rng.uniform(-1, 1, size=3) * np.asarray(jitter)
            calc = ics & (_ellipsoid(x, y, z, spot, rng.uniform(1.5, 3.5, size=3)) < 1)
            hu = np.where(calc, rng.uniform(*hu_range), hu)
            dense |= calc
    return hu.astype(np.float32), dense, ics & ~dense & ~veins


def groove_brightening(hu: np.ndarray, sinus: np.ndarray, d_in: np.ndarray, gain_hu: float,
                       scale_mm: float) -> np.ndarray:
    """The partial volume of a sinus's bony groove in a 5 mm slice: up to ``gain_hu`` brighter at
    the inner table, fading over ``scale_mm`` away from it (v4; the real head's reads 60-100 HU there)."""
    return np.where(sinus, hu + gain_hu * np.exp(-d_in / scale_mm), hu)


def _jugular_veins(rng, t: Template, bulb_yz: tuple[float, float], side_scale: dict[int, float]) -> np.ndarray:
    """Each side's jugular bulb continued down through the floor of the posterior fossa: a tube from
    the bulb to 8-25 mm below the intracranial space, drifting medially and forwards as the jugular
    foramen does. v8: 3.5-11 mm in radius (smaller on the non-dominant side) and oval, up to 1.7x
    longer along one in-plane axis: the real head's widest island is about 21 x 13 mm on one slice,
    which no v7 canal (at most 14 mm across) reached."""
    x, y, z = _coords(t)
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


# -------------------------------------------------------------------------------------------- lesions
def _blob(rng, x, y, z, centre, radius) -> np.ndarray:
    """Irregular lesion fraction 0..1 around ``centre`` with a ~1 mm soft edge."""
    radii = radius * rng.uniform(0.7, 1.3, size=3)
    radii *= radius / np.cbrt(np.prod(radii))  # keep the nominal volume
    dist = np.sqrt(_ellipsoid(x, y, z, centre, radii))
    wobble = _smooth_field(rng, dist.shape, max(2.0, radius / 2.5))
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
    x, y, z = _coords(t)
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
    x, y, z = _coords(t)
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
    x, y, z = _coords(t)
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
    x, y, z = _coords(t)
    csf = t.ics & (t.gm + t.wm < 0.6)
    if rng.random() < 0.5:  # basal cisterns
        centre = np.array([rng.uniform(-10, 10), rng.uniform(-10, 10), t.bottom_z + rng.uniform(55, 65)])
    else:  # a convexity
        cand = np.argwhere(csf & (t.d_in < 8) & (t.d_in > 1))
        centre = t.origin + GRID_MM * cand[rng.integers(len(cand))]
    region = np.sqrt(_ellipsoid(x, y, z, centre, [rng.uniform(20, 40)] * 3)) < 1
    fraction = csf * region * np.clip(1 - (t.gm + t.wm), 0, 1) * rng.uniform(0.85, 1.0)
    return fraction.astype(np.float32), rng.uniform(55, 80), {"centre_ras_mm": [round(float(c), 1) for c in centre]}


# ----------------------------------------------------------------------------------------- acquisition
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
    # Slab from the skull base (v4: or from the neck below it, as many real scans start; or higher:
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
    warp = np.stack([_smooth_field(rng, (6, 6, 6), 1.0) for _ in range(3)], axis=-1) * rng.uniform(1.5, 4.0)
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
    brain reads 84 HU at 0.5-1 mm from its mask edge and 43 HU at 1-1.5 mm, v4 phantoms 57 and 22.
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


# ------------------------------------------------------------------------------------------------- API
def generate(seed: int, settings: PhantomSettings = PhantomSettings(), with_truth: bool = False) -> Phantom:
    """One phantom case; identical output for identical ``seed`` and ``settings``."""
    # Independent streams for anatomy, lesions and acquisition: changing one part of the generator
    # (or testing lesions alone) leaves the other parts of a seed's case unchanged.
    rng_anatomy, rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 2])
    t = load_template()
    fields = FieldBank(rng_anatomy, t.gm.shape)
    hu, masks, gm_hu = compose_head(rng_anatomy, t, fields)
    hu, blood, lesions = add_lesions(lesion_plan(seed, settings), t, hu, fields, masks["blood_space"])
    volumes = {"hu": hu, "blood": blood, "bone": (masks["bone"] | masks["dense"]).astype(np.float32)}
    orders = {"hu": 1, "blood": 1}
    if with_truth:
        for name in ("intracranial", "bone", "head", "holder"):
            volumes[name] = masks[name].astype(np.float32)
    acq = draw_acquisition(seed, settings)
    sampled, geometry = acquire(rng, t, volumes, settings, orders, acq)
    kernel_mm = rng.uniform(*acq.kernel_mm)
    clean = reconstruction_blur(sampled.pop("hu"), geometry.spacing, kernel_mm)
    sampled["bone"] = reconstruction_blur(sampled["bone"], geometry.spacing, kernel_mm)
    image = add_noise(rng, edge_enhance(clean, geometry.spacing, acq.sharpen, acq.sharpen_mm), acq.noise_hu)
    image = np.clip(np.round(image), -1024, 3071).astype(np.int16)
    label = visible_blood(sampled.pop("blood"), sampled["bone"], clean, gm_hu).astype(np.uint8)
    if not with_truth:
        sampled.pop("bone")
    truth = {name: vol >= 0.5 for name, vol in sampled.items()}
    image, label, truth, geometry = _store_orientation(rng, image, label, truth, geometry, settings)
    voxel_ml = float(np.prod(geometry.spacing)) / 1000
    return Phantom(image, label, geometry,
                   lesions=[*lesions, {"total_label_ml": round(float(label.sum()) * voxel_ml, 3)}] if lesions
                   else [{"total_label_ml": 0.0}],
                   truth=truth)


def visible_blood(blood: np.ndarray, bone: np.ndarray, clean_hu: np.ndarray, gm_hu: float) -> np.ndarray:
    """The annotation: blood a reader can see, from the fractions and noise-free HU of each voxel.

    At least half blood; at 5 mm slices a voxel with more than a tenth of bone in it already looks
    like bone (> 200 HU), and so does one the reconstruction kernel's bloom lifts above 160 HU (v5
    labelled blood voxels next to the skull reading 180-260 HU, which skull stripping rightly drops:
    2-5 % of some cases' labels); and one no denser than grey matter (thin blood mixed with CSF in a
    sulcus) looks like brain. Labelling such isodense voxels (generator v1) taught the network nothing
    but noise: SAH cases scored Dice ~0 although the visible blood was found.
    """
    return (blood >= 0.5) & (bone < 0.1) & (clean_hu > gm_hu + VISIBLE_ABOVE_GM_HU) & (clean_hu < LOOKS_LIKE_BONE_HU)


def _store_orientation(rng, image, label, truth, geometry: Geometry, settings: PhantomSettings):
    """Re-store the same voxels as RAS-flipped, permuted or as acquired (positions never change)."""
    if rng.random() >= settings.oriented_fraction:
        return image, label, truth, geometry
    perm = (0, 1, 2) if rng.random() < 0.7 else tuple(int(p) for p in rng.permutation(3))
    flips = tuple(bool(f) for f in rng.random(3) < 0.5)
    args = (geometry.spacing, geometry.origin, geometry.direction, perm, flips)
    image, spacing, origin, direction = reindex(image, *args)
    label = reindex(label, *args)[0]
    truth = {k: reindex(v, *args)[0] for k, v in truth.items()}
    return image, label, truth, Geometry(tuple(image.shape[::-1]), spacing, origin, direction)


def _write_case(out: Path, case: str, case_seed: int, settings: PhantomSettings) -> tuple[Path, dict]:
    image_path = out / "images" / f"{case}.nii.gz"
    phantom = generate(case_seed, settings)
    write_image(image_path, phantom.image, phantom.geometry)
    write_image(out / "labels" / f"{case}.nii.gz", phantom.label, phantom.geometry)
    return image_path, {"seed": case_seed, "generator_version": GENERATOR_VERSION,
                        "acquisition": settings.acquisition, "lesions": phantom.lesions,
                        "size": list(phantom.geometry.size), "spacing": list(phantom.geometry.spacing)}


def write_dataset(out: str | Path, n: int, seed: int = 0, settings: PhantomSettings = PhantomSettings(),
                  prefix: str = "phantom", workers: int = 1) -> list[Path]:
    """``out/images/<id>.nii.gz`` (int16 HU), ``out/labels/<id>.nii.gz`` (uint8) and ``out/cases.json``.

    Case ``i`` uses seed ``seed * CASE_SEED_STRIDE + i``, so any case can be regenerated alone, and the bytes
    of a case do not depend on ``workers`` (each case is a pure function of its seed).
    """
    from ich_infer.io import atomic_write_text

    out = Path(out)
    jobs = [(out, f"{prefix}_{seed:03d}_{i:04d}", seed * CASE_SEED_STRIDE + i, settings) for i in range(n)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_write_case, *zip(*jobs)))
    else:
        results = [_write_case(*job) for job in jobs]
    catalogue = {job[1]: entry for job, (_, entry) in zip(jobs, results)}
    atomic_write_text(out / "cases.json", json.dumps(catalogue, indent=1) + "\n")
    return [path for path, _ in results]
