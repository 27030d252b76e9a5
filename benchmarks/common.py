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
