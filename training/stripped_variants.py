"""A skull-stripped twin of a training data folder: each case's brain on a constant background.

    python -m training.stripped_variants --data runs/phantoms_v9_varied --out runs/phantoms_v9_stripped --seed 5

Why: research data sets hand over haematomas skull-stripped, and there the network no longer sees
the skull that tells a bright inner-table band (the reconstruction kernel's bloom) from a thin
subdural. Without stripped cases in training it calls that band blood. The twin holds the same cases
in the same order under ``<case>_stripped``, so ``training.folds`` puts every twin in its original's
fold and cross-validation never trains on a held-out case's twin.

Each case is stripped by the product's own skull stripping (default preprocessing), widened by 0 to 2
voxels drawn per case (other stripping tools cut a little wider or tighter), without bone or air, on
a background of 0 or -1024 HU. The label keeps only what the stripped image still shows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ich_infer.config import PreprocessConfig
from ich_infer.input_kind import AIR_BELOW_HU, BONE_ABOVE_HU
from ich_infer.io import atomic_write_text, read_image, read_mask, write_image
from ich_infer.preprocess import preprocess

from .data import catalogue_entries, discover

SUFFIX = "_stripped"
BACKGROUNDS_HU = (0.0, -1024.0)


def strip(hu: np.ndarray, label: np.ndarray, brain: np.ndarray, widen: int,
          background: float) -> tuple[np.ndarray, np.ndarray]:
    """The image with everything outside the (widened) brain set to ``background``, and its label."""
    keep = ndi.binary_dilation(brain, iterations=widen) if widen > 0 else brain
    # Stripping tools leave no bone and no sinus air; the product's mask can take some in at the skull base.
    keep = keep & (hu > AIR_BELOW_HU) & (hu < BONE_ABOVE_HU)
    return np.where(keep, hu, np.float32(background)).astype(np.int16), (label.astype(bool) & keep)


def write_twin(data: Path, out: Path, seed: int, echo=print) -> int:
    cases = discover(data)
    entries = catalogue_entries(data, [c.case for c in cases])
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    catalogue = {}
    for index, (case, entry) in enumerate(zip(cases, entries)):
        rng = np.random.default_rng([seed, index])
        widen, background = int(rng.integers(0, 3)), float(rng.choice(BACKGROUNDS_HU))
        name = case.case + SUFFIX
        hu, geometry = read_image(case.image)
        label, _ = read_mask(case.label)
        brain = preprocess(hu.astype(np.float32), geometry.spacing, geometry.direction,
                           PreprocessConfig()).brain_native
        image, kept = strip(hu, label, brain, widen, background)
        write_image(out / "images" / f"{name}.nii.gz", image, geometry)
        write_image(out / "labels" / f"{name}.nii.gz", kept.astype(np.uint8), geometry)
        catalogue[name] = {**(entry or {}), "variant": "skull_stripped", "source": f"{data.name}/{case.case}",
                           "strip_widen_voxels": widen, "background_hu": background,
                           "label_kept_fraction": round(float(kept.sum()) / max(1, int(label.sum())), 4)}
        echo(f"{name}: widened {widen}, background {background:g}, label kept "
             f"{catalogue[name]['label_kept_fraction']:.3f}")
    atomic_write_text(out / "cases.json", json.dumps(catalogue, indent=1, sort_keys=True) + "\n")
    return len(cases)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a training data folder (images/ + labels/)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = write_twin(args.data, args.out, args.seed)
    print(f"{n} skull-stripped cases -> {args.out}")


if __name__ == "__main__":
    main()
