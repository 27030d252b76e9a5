"""Per-case CPU time on test_data of two weights folders, in turns in one run (same cases, same threads).

The candidate must stay within 1.5x of the baseline (the release it replaces). The last line is
``candidate_vs_baseline=<candidate median / baseline median>``.

    python benchmarks/weights_speed.py BASELINE_DIR CANDIDATE_DIR [--rounds 2] [--threads 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import case_seconds, test_data_cases

from ich_infer.weights import load_weights
from training.release.tables import table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = test_data_cases()
    sides = {"baseline": load_weights(args.baseline), "candidate": load_weights(args.candidate)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, ensemble in sides.items():
            times[name] += case_seconds(ensemble, cases)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    print(f"{len(cases)} test_data cases x {args.rounds} rounds, {args.threads} thread(s)")
    print(table([(name, str(getattr(args, name)), f"{medians[name]:.2f}") for name in sides],
                ("side", "weights", "median s per case")))
    print(f"candidate_vs_baseline={medians['candidate'] / medians['baseline']:.2f}")


if __name__ == "__main__":
    main()
