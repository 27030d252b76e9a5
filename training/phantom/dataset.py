"""One phantom case from its seed, and a dataset folder of them (``ichseg phantom``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ich_infer.io import Geometry, write_image
from ich_infer.orientation import reindex

from .acquisition import acquire, add_noise, draw_acquisition, edge_enhance, reconstruction_blur
from .anatomy import compose_head
from .lesions import add_lesions, lesion_plan, visible_blood
from .settings import CASE_SEED_STRIDE, GENERATOR_VERSION, Phantom, PhantomSettings
from .template import FieldBank, load_template


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
