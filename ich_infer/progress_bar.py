"""The terminal progress bar of ``ichseg predict``: cases done, and tiles done in the current case.

Only the CLI uses it; the library reports through :class:`ich_infer.predict.Progress` hooks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .predict import Progress as Hooks


@contextmanager
def progress_hooks(echo, enabled: bool) -> Iterator[Hooks]:
    """Hooks that drive a rich bar when ``enabled`` and stderr is a terminal; plain lines otherwise."""
    if not (enabled and sys.stderr.isatty()):
        yield Hooks(echo)
        return
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        cases = bar.add_task("cases", total=None)
        tiles = bar.add_task("tiles", total=None)

        def on_case(done: int, total: int, name: str) -> None:
            bar.update(cases, completed=done, total=total, description=f"cases ({name})")
            bar.reset(tiles, total=None)

        def on_tiles(done: int, total: int) -> None:
            bar.update(tiles, completed=done, total=total)

        yield Hooks(console.print, on_case, on_tiles)
