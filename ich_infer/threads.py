"""How many CPU threads torch may use: what fits the machine, not every core it can see.

On a shared machine (a hospital server, a CI runner, a laptop running anything else) torch's default
of one thread per core oversubscribes the CPU, and its spinning workers make a case several times
slower than with fewer threads (``benchmarks/threads.py`` measures it). Order of precedence: an
explicit ``--threads``/``threads=``, then ``ICHSEG_THREADS``, then ``OMP_NUM_THREADS`` (torch reads it
itself, so it is left alone), then half the cores (at least 1, at most ``MAX_DEFAULT``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from .errors import IchsegError

MAX_DEFAULT = 8
ENV = "ICHSEG_THREADS"


def default_threads(cpus: int | None = None) -> int:
    cpus = cpus if cpus is not None else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                          else os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT, cpus // 2))


def resolve_threads(requested: int | None = None, environ: Mapping[str, str] = os.environ) -> int | None:
    """The thread count to set, or None where ``OMP_NUM_THREADS`` already decides."""
    if requested is not None:
        source, value = "--threads", str(requested)
    elif environ.get(ENV):
        source, value = ENV, environ[ENV]
    elif environ.get("OMP_NUM_THREADS"):
        return None
    else:
        return default_threads()
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise IchsegError(None, f"{source} must be a whole number of threads >= 1, got {value!r}")
    return threads


def apply_threads(requested: int | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Set torch's intra-op threads as ``resolve_threads`` says; returns the count in use."""
    threads = resolve_threads(requested, environ)
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return torch.get_num_threads()
