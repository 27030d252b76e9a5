"""One exception type for everything a user can get wrong, so the CLI can print one line and go on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class IchsegError(Exception):
    """A user-facing error; the message names the file and the cause in one line."""

    def __init__(self, path: str | Path | None, cause: str):
        self.path = str(path) if path is not None else None
        self.cause = cause
        super().__init__(f"{self.path}: {cause}" if self.path else cause)


@contextmanager
def about(path: str | Path) -> Iterator[None]:
    """Name ``path`` in errors raised inside that name no file: the pure array code cannot know it."""
    try:
        yield
    except IchsegError as exc:
        if exc.path is not None:
            raise
        raise IchsegError(path, exc.cause) from None
