"""Entrypoint of the Docker image: ``/input`` -> ``/output`` (or ``/predict``, as INSTANCE used).

``docker run --gpus all -v in:/input -v out:/output ichseg``. Kept as a function so that it can be
tested without a Docker engine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import IchsegError
from .predict import predict_folder


def choose_output(root: Path = Path("/")) -> Path:
    """``/output`` when mounted (or no alternative exists), else ``/predict`` if that is mounted."""
    output, legacy = root / "output", root / "predict"
    if output.is_dir() or not legacy.is_dir():
        return output
    return legacy


def main(argv: list[str] | None = None, root: Path = Path("/")) -> int:
    input_dir = Path(os.environ.get("ICHSEG_INPUT", root / "input"))
    output_dir = Path(os.environ.get("ICHSEG_OUTPUT", choose_output(root)))
    weights = os.environ.get("ICHSEG_WEIGHTS")
    try:
        report = predict_folder(input_dir, output_dir, weights, os.environ.get("ICHSEG_DEVICE", "auto"),
                                overwrite=os.environ.get("ICHSEG_OVERWRITE", "0") == "1", echo=print)
    except IchsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 1 if report.failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
