"""Training cases cut from the real heads: each head as a negative, its variants, and pasted lesions.

    python -m training.real_head_cases --heads invesalius --out runs/real_invesalius --lesions 10 --seed 3001

Why: phantoms cannot teach what a real scanner's inner table, skull base and noise look like, and a
head without haemorrhage is the one place where every voxel called blood is known to be wrong. The
negatives are the head as acquired, skull-stripped (the research-data form), smoothed (a softer
kernel) and with extra noise; the positives paste randomly drawn lesions of every subtype into it,
on its own grid. ``cases.json`` names the head of every case, and ``training.cv`` writes those names
into the manifest's ``training.real_heads``, so the real-scan benchmark refuses to judge weights on a
head they saw (evaluation is leave-one-head-out: train on one head, report the other).

The benchmark's own lesion set (``real_heads.lesions_for``) uses fixed directions and seed 0; these
are drawn from ``--seed`` with their own sizes, directions and densities.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ich_infer.io import atomic_write_text, write_image

from .real_heads import (
    Lesion,
    available_heads,
    extra_axial,
    intraparenchymal,
    intraventricular,
    load_head,
    paste,
    skull_stripped,
    subarachnoid,
)

SUBTYPE_WEIGHTS = {"SDH": 0.35, "SAH": 0.2, "IPH": 0.2, "IVH": 0.1, "EDH": 0.15}
STRIPPED_SHARE = 0.25  # of the lesion cases, handed over skull-stripped


def _direction(rng: np.random.Generator) -> tuple[float, float, float]:
    axis = rng.standard_normal(3)
    return tuple(float(a) for a in axis / np.linalg.norm(axis))


def random_lesion(hu: np.ndarray, brain: np.ndarray, spacing_kji, subtype: str, rng: np.random.Generator) -> Lesion:
    """One lesion of ``subtype`` with drawn size, place and shape (the benchmark's makers, other draws)."""
    if subtype == "IPH":
        blood, oedema = intraparenchymal(brain, spacing_kji, rng, ml=float(rng.uniform(3, 40)))
        return Lesion("IPH", subtype, blood, oedema)
    if subtype == "SDH":
        blood = extra_axial(brain, spacing_kji, _direction(rng), float(rng.uniform(30, 65)),
                            float(rng.uniform(3, 14)), 4)
    elif subtype == "EDH":
        blood = extra_axial(brain, spacing_kji, _direction(rng), float(rng.uniform(15, 30)),
                            float(rng.uniform(8, 22)), 2)
    elif subtype == "SAH":
        blood = subarachnoid(hu, brain, spacing_kji, _direction(rng))
    else:
        blood = intraventricular(hu, brain, spacing_kji)
        keep = rng.uniform(0.4, 1.0)  # a variable share of the dependent horns
        j = np.nonzero(blood)[1]
        if len(j):
            blood = blood * (np.arange(hu.shape[1])[None, :, None] >= np.quantile(j, 1 - keep))
    return Lesion(subtype, subtype, blood.astype(np.float32))


def negatives(hu: np.ndarray, brain: np.ndarray, spacing_kji, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The head without haemorrhage as it reaches users: as acquired, stripped, softer kernel, noisier."""
    inplane = (0, 0.8 / spacing_kji[1], 0.8 / spacing_kji[2])
    noise = ndi.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32), (0, 0.6, 0.6))
    return {"unaltered": hu,
            "stripped": skull_stripped(hu, brain),
            "smooth": np.round(ndi.gaussian_filter(hu, inplane)).astype(np.float32),
            "noisy": np.round(hu + 6.0 * noise / (noise.std() + 1e-6)).astype(np.float32)}


def head_cases(name: str, hu: np.ndarray, spacing: tuple[float, float, float], brain: np.ndarray,
               n_lesions: int, seed: int):
    """Yield (case name, image, label, catalogue entry) for one head (``spacing`` in array order)."""
    rng = np.random.default_rng(seed)
    empty = np.zeros(hu.shape, np.uint8)
    for variant, image in negatives(hu, brain, spacing, rng).items():
        yield f"{name}_{variant}", image, empty, {"real_head": name, "variant": variant, "lesions": []}
    subtypes, weights = zip(*SUBTYPE_WEIGHTS.items())
    for i in range(n_lesions):
        chosen = rng.choice(subtypes, size=1 + int(rng.random() < 0.3), p=weights, replace=False)
        image, label, drawn = hu, np.zeros(hu.shape, bool), []
        for subtype in chosen:
            lesion = random_lesion(hu, brain, spacing, str(subtype), rng)
            visible = lesion.blood >= 0.5
            if visible.sum() <= 20:
                continue
            low = float(rng.uniform(50, 70))
            image = paste(image, lesion, rng, hu_range=(low, low + 20))
            label |= visible
            ml = float(visible.sum()) * float(np.prod(spacing)) / 1000
            drawn.append({"subtype": str(subtype), "ml": round(ml, 2)})
        variant = "lesion"
        if rng.random() < STRIPPED_SHARE:
            image, variant = skull_stripped(image, brain), "lesion_stripped"
        yield f"{name}_lesion_{i:02d}", image, label.astype(np.uint8), {"real_head": name, "variant": variant,
                                                                        "lesions": drawn}


def write_cases(heads: dict[str, Path], out: Path, n_lesions: int, seed: int) -> dict:
    """``out/images``, ``out/labels`` (int16 HU, uint8) and ``out/cases.json`` for the given heads."""
    catalogue = {}
    for offset, (name, path) in enumerate(sorted(heads.items())):
        hu, geometry, brain = load_head(path)
        for case, image, label, entry in head_cases(name, hu, tuple(geometry.spacing[::-1]), brain, n_lesions,
                                                    seed + offset):
            write_image(out / "images" / f"{case}.nii.gz", np.clip(image, -1024, 3071).astype(np.int16), geometry)
            write_image(out / "labels" / f"{case}.nii.gz", label, geometry)
            catalogue[case] = {**entry, "draw_seed": seed + offset}
    atomic_write_text(out / "cases.json", json.dumps(catalogue, indent=1) + "\n")
    return catalogue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.real_head_cases", description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", nargs="+", required=True, help="names from training.real_heads.HEADS")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lesions", type=int, default=10, help="lesion cases per head")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    found = available_heads()
    missing = [h for h in args.heads if h not in found]
    if missing:
        parser.error(f"heads {missing} not found (available: {sorted(found)})")
    catalogue = write_cases({h: found[h] for h in args.heads}, args.out, args.lesions, args.seed)
    print(f"{len(catalogue)} cases from {args.heads} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
