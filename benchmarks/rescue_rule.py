"""Effect of the never-empty rule: false-positive volume on lesion-free phantoms and detections on
lesion cases, with the rule as configured and with it switched off, in one run.

    python benchmarks/rescue_rule.py --data runs/phantoms [--weights weights] [--cases 30]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import table

from ich_infer.io import read_image, read_mask
from ich_infer.predict import DEFAULT_WEIGHTS, segment
from ich_infer.weights import Ensemble, load_weights


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="phantom folder with cases.json")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--cases", type=int, default=30, help="lesion cases to check besides all lesion-free ones")
    args = parser.parse_args()
    ensemble = load_weights(args.weights)
    off = Ensemble(replace(ensemble.config, inference=replace(ensemble.config.inference, rescue_min_probability=2.0)),
                   ensemble.models)
    catalogue = json.loads((args.data / "cases.json").read_text())
    free = [c for c, v in catalogue.items() if not any("type" in lesion for lesion in v["lesions"])]
    lesion = [c for c in catalogue if c not in free][: args.cases]
    rows = []
    totals = {"fp_on": [], "fp_off": [], "missed_on": 0, "missed_off": 0, "rescued": 0}
    for case in free + lesion:
        image, geo = read_image(args.data / "images" / f"{case}.nii.gz")
        truth, _ = read_mask(args.data / "labels" / f"{case}.nii.gz")
        on, no = segment(image, geo, ensemble), segment(image, geo, off)
        if case in free:
            totals["fp_on"].append(on.volume_ml)
            totals["fp_off"].append(no.volume_ml)
            rows.append((case, "lesion-free", f"{no.volume_ml:.2f}", f"{on.volume_ml:.2f}", on.rescued))
        else:
            totals["missed_on"] += int(not (on.mask & truth).any())
            totals["missed_off"] += int(not (no.mask & truth).any())
            totals["rescued"] += int(on.rescued)
            if on.rescued or not no.mask.any():
                rows.append((case, "lesion", f"{no.volume_ml:.2f}", f"{on.volume_ml:.2f}", on.rescued))
    print(table(rows, ("case", "kind", "mL, rule off", "mL, rule on", "rescued")))
    print(f"lesion-free cases: {len(free)}; false-positive mL mean {np.mean(totals['fp_off']):.2f} (rule off) vs "
          f"{np.mean(totals['fp_on']):.2f} (rule on); cases with any FP {sum(v > 0 for v in totals['fp_off'])} vs "
          f"{sum(v > 0 for v in totals['fp_on'])}")
    print(f"lesion cases: {len(lesion)}; missed entirely {totals['missed_off']} (rule off) vs "
          f"{totals['missed_on']} (rule on); rescued {totals['rescued']}")


if __name__ == "__main__":
    main()
