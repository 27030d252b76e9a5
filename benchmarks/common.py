"""Shared helpers for the benchmark scripts: one 512 x 512 x 40 phantom, timing, peak memory."""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager

from training.phantom import PhantomSettings, generate


def instance_like_case(seed: int = 21, slices: int = 40):
    """A 512 x 512 x ``slices`` phantom (5 mm slices, INSTANCE-like), stored as acquired."""
    return generate(seed, PhantomSettings(oriented_fraction=0.0, min_slices=slices, max_slices=slices))


@contextmanager
def timer(store: dict, key: str):
    tic = time.perf_counter()
    yield
    store[key] = time.perf_counter() - tic


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def test_data_cases():
    """The bundled test_data scans as (name, volume, geometry)."""
    from pathlib import Path

    from ich_infer.inputs import list_inputs, load_input

    folder = Path(__file__).resolve().parents[1] / "test_data" / "images"
    scans = [(item.case, load_input(item)) for item in list_inputs(folder)]
    return [(case, scan.volume, scan.geometry) for case, scan in scans]


def case_seconds(ensemble, cases) -> list[float]:
    """Wall seconds of ``segment`` (preprocessing, ensemble, post-processing) per case."""
    from ich_infer.predict import segment

    out = []
    for _, volume, geometry in cases:
        tic = time.perf_counter()
        segment(volume, geometry, ensemble)
        out.append(time.perf_counter() - tic)
    return out
