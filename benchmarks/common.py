"""Shared helpers for the benchmark scripts: one 512 x 512 x 40 phantom, timing, peak memory."""

from __future__ import annotations

import json
import resource
import time
from contextlib import contextmanager
from pathlib import Path

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


def table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


def lesion_types(catalogues: list[Path]) -> dict[str, set[str]]:
    """case -> the haemorrhage types (of ``SUBTYPES``) painted into it, from phantom ``cases.json`` files."""
    out = {}
    for path in catalogues:
        for case, entry in json.loads(Path(path).read_text()).items():
            out[case] = {lesion["type"] for lesion in entry.get("lesions", []) if "type" in lesion}
    return out
