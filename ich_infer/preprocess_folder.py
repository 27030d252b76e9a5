"""``ichseg preprocess`` as a library function: each scan's brain mask and normalised image on its own grid.

The same input listing as :func:`ich_infer.predict.predict_folder` (image files and DICOM series),
the same output-folder checks, the same one-line errors, and a bad scan never stops the batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .batch import plan_batch
from .config import IchConfig, PreprocessConfig
from .errors import IchsegError, about
from .inputs import load_input
from .io import write_image, write_mask
from .preprocess import preprocess
from .weights import MANIFEST, read_manifest


@dataclass(frozen=True)
class PreprocessedCase:
    case: str
    status: str  # "ok" or "error"
    brain_ml: float | None = None
    input_kind: str = ""
    error: str = ""


def preprocessing_of(weights: Path | None) -> PreprocessConfig:
    """The preprocessing a weights folder was trained with (the bundled weights by default); the
    defaults where the folder has no manifest."""
    from .predict import DEFAULT_WEIGHTS

    folder = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not (folder / MANIFEST).is_file():
        return PreprocessConfig()
    return IchConfig.from_dict(read_manifest(folder)["config"]).preprocess


def preprocess_folder(input_dir: str | Path, output_dir: str | Path, cfg: PreprocessConfig | None = None,
                      echo: Callable[[str], None] = logging.getLogger(__name__).info) -> list[PreprocessedCase]:
    """Write ``<case>_brain.nii.gz`` and ``<case>_norm.nii.gz`` for every case of ``input_dir``."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    cfg = cfg or preprocessing_of(None)
    items, clashing = plan_batch(input_dir, output_dir)
    results = [PreprocessedCase(item.case, "error", error=message) for item, message in clashing]
    for item in items:
        try:
            scan = load_input(item)
            volume, geometry = scan.volume, scan.geometry
            with about(item.path):
                pre = preprocess(volume, geometry.spacing, geometry.direction, cfg)
            write_mask(output_dir / f"{item.case}_brain.nii.gz", pre.brain_native, geometry)
            write_image(output_dir / f"{item.case}_norm.nii.gz", pre.to_native(pre.image[0]).astype("float32"),
                        geometry)
            results.append(PreprocessedCase(item.case, "ok", float(pre.brain_native.sum()) * geometry.voxel_volume_ml,
                                            pre.input_kind.kind))
        except IchsegError as exc:
            results.append(PreprocessedCase(item.case, "error", error=str(exc)))
        last = results[-1]
        echo(f"ok    {last.case}: brain {last.brain_ml:.0f} mL" if last.status == "ok" else f"ERROR {last.error}")
    return results
