"""Two models on the same held-out cases: the paired difference in Dice, with a bootstrap interval.

Each input is a per-case CSV with ``case`` and ``dice`` and the truth volume as ``volume_gt_ml``
(``cv_report.csv``, ``ichseg evaluate``) or ``lesion_ml`` (``postprocess_sweep.py --breakdown --csv``,
whose ``dice_product`` column is what a ``cv_report.csv`` would hold: pick it with ``--a-column``).
Only cases in both are compared, so one release's report can be held against another's on the
cases neither fold model saw. With ``--cases`` (phantom ``cases.json`` files) it also splits by
haemorrhage subtype.

    python -m training.release.paired runs/r4_v3.csv runs/r5_v3.csv --cases runs/phantoms_v3/cases.json
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from training.phantom import SUBTYPES

from .tables import lesion_types, table


def read_cases(path: Path, column: str = "dice") -> dict[str, tuple[float, float]]:
    """case -> (Dice from ``column``, truth volume in mL)."""
    out = {}
    for row in csv.DictReader(path.open()):
        volume = row.get("volume_gt_ml", row.get("lesion_ml"))
        if volume is None:
            raise SystemExit(f"{path}: needs a volume_gt_ml or lesion_ml column")
        out[row["case"]] = (float(row[column]), float(volume))
    return out


def bootstrap_interval(diff: np.ndarray, rounds: int = 5000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean of ``diff`` over case resamples."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (rounds, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path, help="per-case CSV of the baseline")
    parser.add_argument("b", type=Path, help="per-case CSV of the candidate")
    parser.add_argument("--cases", type=Path, nargs="*", default=[], help="phantom cases.json files (subtypes)")
    parser.add_argument("--a-column", default="dice", help="Dice column of A (dice_product: with the never-empty rule)")
    parser.add_argument("--b-column", default="dice", help="Dice column of B")
    args = parser.parse_args()
    a, b = read_cases(args.a, args.a_column), read_cases(args.b, args.b_column)
    names = sorted(set(a) & set(b))
    if not names:
        raise SystemExit(f"{args.a} and {args.b} share no case")
    types = lesion_types(args.cases)
    groups = {"all": names, "lesion cases": [c for c in names if a[c][1] > 0],
              "lesion-free": [c for c in names if a[c][1] == 0]}
    for kind in SUBTYPES:
        groups[f"cases with {kind}"] = [c for c in names if kind in types.get(c, ())]
    rows = []
    for group, cases in groups.items():
        if not cases:
            continue
        da, db = np.array([a[c][0] for c in cases]), np.array([b[c][0] for c in cases])
        low, high = bootstrap_interval(db - da)
        rows.append((group, len(cases), f"{da.mean():.3f}", f"{db.mean():.3f}", f"{(db - da).mean():+.3f}",
                     f"{low:+.3f} .. {high:+.3f}", int((db > da + 0.005).sum()), int((db < da - 0.005).sum())))
    print(f"A = {args.a}, B = {args.b}: {len(names)} shared cases")
    print(table(rows, ("cases", "n", "Dice A", "Dice B", "B - A", "95 % bootstrap", "B better", "B worse")))


if __name__ == "__main__":
    main()
