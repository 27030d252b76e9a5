"""What an input folder holds, as cases: image files, and DICOM series in sub-folders or zips.

A scan file is one case named after the file; a sub-folder (or ``.zip``) of DICOM files is one case
per series, named after the folder, plus the SeriesInstanceUID when it holds several. A DICOM case's
mask is written as NIfTI on the regular grid its series was resampled to (``ich_infer.dicom_series``),
and that grid goes into report.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .dicom_series import DicomSlice, chosen_series, is_dicom_folder, read_series, series_in, unpacked
from .errors import IchsegError
from .io import Geometry, case_id, list_images, read_image


@dataclass(frozen=True)
class ScanInput:
    case: str
    path: Path  # the scan file, or the DICOM folder or zip
    output_name: str  # the mask's file name in the output folder
    series: str | None = None  # SeriesInstanceUID, when a DICOM folder holds several
    # The series' slice headers as listing parsed them (a DICOM folder), so loading does not parse again.
    slices: tuple[DicomSlice, ...] | None = field(default=None, compare=False, repr=False)

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
        series: dict[str, list[DicomSlice]] = {}
        if entry.is_dir():
            try:
                series = series_in(entry)
            except IchsegError:
                series = {}  # read again when the case runs, which then reports the cause in one line
        if len(series) > 1:
            items += [ScanInput(f"{name}_{uid}", entry, f"{name}_{uid}.nii.gz", uid, tuple(series[uid]))
                      for uid in sorted(series)]
        else:
            items.append(ScanInput(name, entry, f"{name}.nii.gz",
                                   slices=tuple(next(iter(series.values()))) if series else None))
    return sorted(items, key=lambda item: item.case)


@dataclass
class Scan:
    """One case as read: float32 ``(k, j, i)`` HU, its geometry, what was done to read it (DICOM: the
    regular grid), and for a DICOM series read ``with_source`` what a DICOM SEG needs of its files."""

    volume: np.ndarray
    geometry: Geometry
    read: dict = field(default_factory=dict)
    source: Any = None  # ich_infer.dicom_seg.SeriesSource


def load_input(item: ScanInput, with_source: bool = False) -> Scan:
    """Read the case once: the listing's slice headers are reused, and a zip is unpacked once."""
    if not item.is_dicom:
        volume, geometry = read_image(item.path)
        return Scan(volume, geometry)
    with unpacked(item.path) as folder:
        groups = {item.series: list(item.slices)} if item.slices else chosen_series(folder, item.path, item.series)
        if len(groups) != 1:
            raise IchsegError(item.path, f"holds {len(groups)} series; unpack the zip into one folder per series")
        slices = next(iter(groups.values()))
        image, grid = read_series(slices, item.path)
        source = None
        if with_source:
            from .dicom_seg import series_source

            source = series_source(slices)
    return Scan(sitk.GetArrayFromImage(image).astype(np.float32), Geometry.of(image), {"dicom_grid": asdict(grid)},
                source)
