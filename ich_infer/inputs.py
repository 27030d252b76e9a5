"""What an input folder holds, as cases: image files, and DICOM series in sub-folders or zips.

A scan file is one case named after the file; a sub-folder (or ``.zip``) of DICOM files is one case
per series, named after the folder, plus the SeriesInstanceUID when it holds several. A DICOM case's
mask is written as NIfTI on the regular grid its series was resampled to (``ich_infer.dicom_series``),
and that grid goes into report.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .dicom_series import is_dicom_folder, read_dicom, series_in
from .errors import IchsegError
from .io import Geometry, case_id, list_images, read_image


@dataclass(frozen=True)
class ScanInput:
    case: str
    path: Path  # the scan file, or the DICOM folder or zip
    output_name: str  # the mask's file name in the output folder
    series: str | None = None  # SeriesInstanceUID, when a DICOM folder holds several

    @property
    def is_dicom(self) -> bool:
        return self.path.is_dir() or self.path.suffix.lower() == ".zip"


def list_inputs(folder: Path) -> list[ScanInput]:
    """Every case in ``folder``, sorted by name so runs are reproducible."""
    items = [ScanInput(case_id(p), p, p.name) for p in list_images(folder)]
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith(".") or not is_dicom_folder(entry):
            continue
        name = entry.stem if entry.is_file() else entry.name
        series = []
        if entry.is_dir():
            try:
                series = sorted(series_in(entry))
            except IchsegError:
                series = []  # read again when the case runs, which then reports the cause in one line
        if len(series) > 1:
            items += [ScanInput(f"{name}_{uid}", entry, f"{name}_{uid}.nii.gz", uid) for uid in series]
        else:
            items.append(ScanInput(name, entry, f"{name}.nii.gz"))
    return sorted(items, key=lambda item: item.case)


def load_input(item: ScanInput) -> tuple[np.ndarray, Geometry, dict]:
    """The scan as float32 ``(k, j, i)`` HU, its geometry, and what was done to read it (DICOM only)."""
    if not item.is_dicom:
        volume, geometry = read_image(item.path)
        return volume, geometry, {}
    series = read_dicom(item.path, item.series)
    if len(series) != 1:
        raise IchsegError(item.path, f"holds {len(series)} series; unpack the zip into one folder per series")
    _, image, grid = series[0]
    return sitk.GetArrayFromImage(image).astype(np.float32), Geometry.of(image), {"dicom_grid": asdict(grid)}
