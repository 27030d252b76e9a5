"""Entrypoint of the Docker image: ``/input`` -> ``/output`` (or ``/predict``, as INSTANCE used), or the
grand-challenge layout ``/input/images/<slug>/<uuid>.mha`` -> ``/output/images/<output slug>/<uuid>.mha``.

``docker run --gpus all -v in:/input -v out:/output ichseg``. The layout is detected, not configured.
``/input`` may be read-only: nothing is written there, and nothing goes to ``/tmp``. In the
grand-challenge layout each output folder must hold the masks alone, so the run's tables go to
``/output/ichseg/<slug>/`` and each mask is renamed into ``/output/images/<output slug>/``. Kept as a
function so that it can be tested without a Docker engine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import IchsegError
from .predict import predict_folder

OUTPUT_SLUG = "intracranial-hemorrhage-segmentation"  # grand-challenge output interface (ICHSEG_OUTPUT_SLUG)


def choose_output(root: Path = Path("/")) -> Path:
    """``/output`` when mounted (or no alternative exists), else ``/predict`` if that is mounted."""
    output, legacy = root / "output", root / "predict"
    if output.is_dir() or not legacy.is_dir():
        return output
    return legacy


def grand_challenge_inputs(input_dir: Path) -> list[Path]:
    """The ``images/<slug>/`` folders of a grand-challenge input, or [] for a flat folder of scans."""
    images = input_dir / "images"
    if not images.is_dir():
        return []
    return sorted(d for d in images.iterdir() if d.is_dir() and any(p.suffix == ".mha" for p in d.iterdir()))


def main(argv: list[str] | None = None, root: Path = Path("/")) -> int:
    input_dir = Path(os.environ.get("ICHSEG_INPUT", root / "input"))
    output_dir = Path(os.environ.get("ICHSEG_OUTPUT", choose_output(root)))
    options = {"weights": os.environ.get("ICHSEG_WEIGHTS"), "device": os.environ.get("ICHSEG_DEVICE", "auto"),
               "overwrite": os.environ.get("ICHSEG_OVERWRITE", "0") == "1",
               "qc": os.environ.get("ICHSEG_QC", "0") == "1",
               "dicom_seg": os.environ.get("ICHSEG_DICOM_SEG", "0") == "1", "echo": print}
    try:
        slugs = grand_challenge_inputs(input_dir)
        if not slugs:
            return 1 if predict_folder(input_dir, output_dir, **options).failed else 0
        failed = False
        target = output_dir / "images" / os.environ.get("ICHSEG_OUTPUT_SLUG", OUTPUT_SLUG)
        target.mkdir(parents=True, exist_ok=True)
        for slug in slugs:
            report = predict_folder(slug, output_dir / "ichseg" / slug.name, **options)
            failed |= bool(report.failed)
            for case in report.cases:
                if case.status == "ok":
                    os.replace(case.output, target / Path(case.output).name)
        return 1 if failed else 0
    except IchsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
