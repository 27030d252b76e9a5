"""Markdown tables of a cross-validation report: per fold, overall, and by haemorrhage subtype.

    python -m training.release.cv_table weights/cv_report.csv [--cases runs/phantoms/cases.json ...]
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np

from training.phantom import SUBTYPES

from .tables import lesion_types


def _mean_std(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values):
        return f"inf ({len(values) - len(finite)} inf; finite {np.mean(finite):.2f} ± {np.std(finite):.2f})" \
            if finite else "inf"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("report", type=Path)
    parser.add_argument("--cases", type=Path, nargs="*", default=[], help="phantom cases.json files (subtypes)")
    args = parser.parse_args()
    rows = list(csv.DictReader(args.report.open()))
    for r in rows:
        for k in ("dice", "rvd", "nsd", "hd", "hd95", "volume_pred_ml", "volume_gt_ml"):
            r[k] = float(r[k])
    lesion = [r for r in rows if r["volume_gt_ml"] > 0]
    free = [r for r in rows if r["volume_gt_ml"] == 0]
    print("| subset | cases | Dice | NSD (0.42 mm) | HD (mm) | HD95 (mm) | RVD |")
    print("|---|---|---|---|---|---|---|")

    def line(name, subset):
        if not subset:
            return
        rvd = [r["rvd"] for r in subset if math.isfinite(r["rvd"])]
        print(f"| {name} | {len(subset)} | {_mean_std([r['dice'] for r in subset])} | "
              f"{_mean_std([r['nsd'] for r in subset])} | {_mean_std([r['hd'] for r in subset])} | "
              f"{_mean_std([r['hd95'] for r in subset])} | {_mean_std(rvd) if rvd else '-'} |")

    line("all cases", rows)
    line("lesion cases", lesion)
    for fold in sorted({r["fold"] for r in rows}):
        line(f"fold {fold} (all)", [r for r in rows if r["fold"] == fold])
    types = lesion_types(args.cases)
    if types:
        for kind in SUBTYPES:
            line(f"cases with {kind}", [r for r in lesion if kind in types[r["case"]]])
    fp = [r["volume_pred_ml"] for r in free]
    detected = sum(math.isfinite(r["hd"]) for r in lesion)
    print()
    print(f"lesion cases detected (finite HD): {detected}/{len(lesion)}")
    if free:
        print(f"lesion-free cases: {len(free)}, with any false positive: {sum(v > 0 for v in fp)}, "
              f"false-positive volume {np.mean(fp):.2f} ± {np.std(fp):.2f} mL (max {max(fp):.2f})")


if __name__ == "__main__":
    main()
