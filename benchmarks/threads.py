"""Per-case time on test_data with 1 thread, 2 threads and ichseg's default, under a competing CPU load.

The load is one busy process per core (what another job on a shared server or CI runner does). The
settings are run in turns, ``--rounds`` times, in one process, and each is summarised by its median
per-case time; the last line is ``default_vs_best=<default / best>`` (target <= 1.5).

    python benchmarks/threads.py [--rounds 2] [--no-load]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os

import numpy as np
import torch
from common import case_seconds, test_data_cases

from ich_infer.predict import DEFAULT_WEIGHTS
from ich_infer.threads import default_threads
from ich_infer.weights import load_weights
from training.release.tables import table


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        x = (x * 31 + 7) % 1000003


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-load", action="store_true", help="no competing load")
    args = parser.parse_args()
    ensemble = load_weights(DEFAULT_WEIGHTS)
    cases = test_data_cases()
    settings = {"1 thread": 1, "2 threads": 2, f"default ({default_threads()})": default_threads()}
    stop = mp.Event()
    cores = os.cpu_count() or 1
    load = [] if args.no_load else [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(cores)]
    for p in load:
        p.start()
    times: dict[str, list[float]] = {name: [] for name in settings}
    try:
        for _ in range(args.rounds):
            for name, threads in settings.items():
                torch.set_num_threads(threads)
                times[name] += case_seconds(ensemble, cases)
    finally:
        stop.set()
        for p in load:
            p.join()
    medians = {name: float(np.median(t)) for name, t in times.items()}
    best = min(medians.values())
    print(f"{len(cases)} test_data cases x {args.rounds} rounds, {cores} cores, "
          f"{'no load' if args.no_load else f'{len(load)} busy processes competing'}")
    print(table([(name, f"{medians[name]:.1f}", f"{medians[name] / best:.2f}") for name in settings],
                ("threads", "median s per case", "vs best")))
    default = medians[next(n for n in settings if n.startswith("default"))]
    print(f"default_vs_best={default / best:.2f}")


if __name__ == "__main__":
    main()
