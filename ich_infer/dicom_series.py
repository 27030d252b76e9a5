"""DICOM series as head CT leaves the scanner: gantry tilt, uneven slice spacing, several series per folder.

A tilted acquisition stores slices whose planes are tilted while their positions step along the
table: each slice is shifted in-plane against the one before, so the stack is sheared, not a box.
ITK's series reader would take it for a box and put every voxel of a 20-degree tilt in the wrong
place. Here each series is resampled onto a regular oblique grid, as ``dcm2niix`` does: the
in-plane axes of the slices, the third axis along their normal, the stack's median spacing along
it, and an in-plane extent that holds every shifted slice. Each output slice is the linear blend of
the two acquired slices around it, each shifted into place by its own in-plane offset.

Refused in one line: localisers, series whose slices differ in orientation or size, and gaps
wider than 1.5 slice thicknesses (a missing slice). Pixel values get rescale slope and intercept
(SimpleITK applies them) and the scanner's padding below -1024 HU becomes -1024.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from .errors import IchsegError

AIR_FLOOR_HU = -1024.0
MISSING_GAP_FACTOR = 1.5  # a gap wider than this many slice thicknesses means a slice is missing


@dataclass(frozen=True)
class DicomSlice:
    path: Path
    position: np.ndarray  # ImagePositionPatient, mm (LPS)
    row: np.ndarray  # direction of increasing column index
    col: np.ndarray  # direction of increasing row index
    spacing: tuple[float, float]  # (along row, along col) mm
    size: tuple[int, int]  # (columns, rows)
    thickness: float
    series: str
    localizer: bool


@dataclass(frozen=True)
class SeriesGrid:
    """What the resampling did, for report.json."""

    slices: int
    tilt_degrees: float
    spacing_mm: tuple[float, float, float]
    uneven_spacing: bool
    gaps_mm: tuple[float, ...]


def is_dicom_folder(path: Path) -> bool:
    """A folder (or zip) that holds DICOM files: ``*.dcm`` or files starting with the DICM preamble."""
    if path.is_file() and path.suffix.lower() == ".zip":
        return True
    if not path.is_dir():
        return False
    return any(_looks_dicom(p) for p in sorted(path.iterdir())[:20] if p.is_file())


def _looks_dicom(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _tag(reader: sitk.ImageFileReader, key: str, default: str = "") -> str:
    return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else default


def read_slice_header(path: Path) -> DicomSlice:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        position = np.array([float(v) for v in _tag(reader, "0020|0032").split("\\")])
        orientation = np.array([float(v) for v in _tag(reader, "0020|0037").split("\\")])
    except (RuntimeError, ValueError):
        raise IchsegError(path, "not a DICOM image slice with a position and orientation") from None
    spacing = [float(v) for v in _tag(reader, "0028|0030", "1\\1").split("\\")]  # (row spacing, col spacing)
    size = reader.GetSize()
    image_type = _tag(reader, "0008|0008").upper()
    return DicomSlice(path, position, orientation[:3], orientation[3:6], (spacing[1], spacing[0]),
                      (int(size[0]), int(size[1])), float(_tag(reader, "0018|0050", "0") or 0),
                      _tag(reader, "0020|000e", "unknown"), "LOCALIZER" in image_type)


def series_in(folder: Path) -> dict[str, list[DicomSlice]]:
    """The folder's slices grouped by SeriesInstanceUID (localisers dropped when a real series exists)."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and _looks_dicom(p)]
    if not files:
        raise IchsegError(folder, "holds no DICOM files")
    groups: dict[str, list[DicomSlice]] = {}
    for path in files:
        header = read_slice_header(path)
        groups.setdefault(header.series, []).append(header)
    kept = {uid: s for uid, s in groups.items() if not all(x.localizer for x in s)}
    if not kept:
        raise IchsegError(folder, "holds only localiser (scout) images, no axial series")
    return kept


def _check(slices: list[DicomSlice], where: Path) -> None:
    if any(s.localizer for s in slices):
        raise IchsegError(where, "series mixes localiser images with slices")
    first = slices[0]
    if any(not (np.allclose(s.row, first.row, atol=1e-4) and np.allclose(s.col, first.col, atol=1e-4))
           for s in slices):
        raise IchsegError(where, "slices of one series have different orientations (mixed orientations)")
    if any(s.size != first.size or not np.allclose(s.spacing, first.spacing, rtol=1e-4) for s in slices):
        raise IchsegError(where, "slices of one series differ in size or pixel spacing")
    if len(slices) < 3:
        raise IchsegError(where, f"series has {len(slices)} slice(s); a volume needs at least 3")


def stack_geometry(slices: list[DicomSlice]) -> tuple[list[DicomSlice], np.ndarray, float]:
    """Slices sorted along their normal (not by instance number), their positions along it, and the tilt."""
    normal = np.cross(slices[0].row, slices[0].col)
    order = sorted(slices, key=lambda s: float(s.position @ normal))
    along = np.array([float(s.position @ normal) for s in order])
    steps = np.diff(np.array([s.position for s in order]), axis=0)
    step = steps.sum(axis=0)
    tilt = float(np.degrees(np.arccos(np.clip(abs(step @ normal) / max(np.linalg.norm(step), 1e-9), 0, 1))))
    return order, along, tilt


def read_series(slices: list[DicomSlice], where: Path) -> tuple[sitk.Image, SeriesGrid]:
    """One series on a regular grid: in-plane axes of its slices, third axis along their normal."""
    _check(slices, where)
    order, along, tilt = stack_geometry(slices)
    gaps = np.diff(along)
    if np.any(gaps < 1e-3):
        raise IchsegError(where, "two slices share one position (duplicate slices)")
    for k, gap in enumerate(gaps):
        thickness = max(order[k].thickness, order[k + 1].thickness) or float(np.median(gaps))
        if gap > MISSING_GAP_FACTOR * thickness:
            raise IchsegError(where, f"a gap of {gap:.1f} mm after slice {k + 1} of {len(order)} (slices "
                                     f"{thickness:g} mm thick): a slice is missing")
    first = order[0]
    row, col, normal = first.row, first.col, np.cross(first.row, first.col)
    dx, dy = first.spacing
    dz = float(np.median(gaps))
    pixels = [_pixels(s.path) for s in order]
    # In-plane offset of each slice's first pixel against the first slice's, in pixels.
    offsets = np.array([[(s.position - first.position) @ row / dx, (s.position - first.position) @ col / dy]
                        for s in order])
    lo = np.floor(offsets.min(axis=0)).astype(int)
    hi = np.ceil(offsets.max(axis=0)).astype(int)
    nx, ny = first.size[0] + hi[0] - lo[0], first.size[1] + hi[1] - lo[1]
    nz = int(round((along[-1] - along[0]) / dz)) + 1
    out = np.empty((nz, ny, nx), dtype=np.float32)
    placed = {}  # acquired slice -> its pixels on the output's in-plane grid (each used by a few outputs)
    for k in range(nz):
        s = along[0] + k * dz
        b = int(np.clip(np.searchsorted(along, s), 1, len(along) - 1))
        a = b - 1
        w = float(np.clip((s - along[a]) / (along[b] - along[a]), 0.0, 1.0))
        for index in (a, b):
            if index not in placed:
                placed[index] = _place(pixels[index], offsets[index] - lo, (ny, nx))
        out[k] = (1 - w) * placed[a] + w * placed[b]
    origin = first.position + lo[0] * dx * row + lo[1] * dy * col
    image = sitk.GetImageFromArray(out)
    image.SetSpacing((dx, dy, dz))
    image.SetOrigin(tuple(float(v) for v in origin))
    image.SetDirection(tuple(float(v) for v in np.stack([row, col, normal], axis=1).ravel()))
    uneven = bool(np.ptp(gaps) > 0.01 * dz)
    return image, SeriesGrid(len(order), round(tilt, 2), (dx, dy, dz), uneven, tuple(round(float(g), 3) for g in gaps))


def _pixels(path: Path) -> np.ndarray:
    image = sitk.ReadImage(str(path), sitk.sitkFloat32)  # applies rescale slope and intercept
    array = sitk.GetArrayFromImage(image)[0]
    return np.maximum(array, AIR_FLOOR_HU)


def _place(pixels: np.ndarray, offset: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An acquired slice on the output's in-plane grid. Output pixel (j, i) lies, projected along the
    normal, on the slice's own pixel (j - offset_y, i - offset_x): the offset is where the slice's
    first pixel sits on the output grid (the tilt's in-plane shift)."""
    jj, ii = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return ndi.map_coordinates(pixels, [jj - offset[1], ii - offset[0]], order=1, mode="constant",
                               cval=AIR_FLOOR_HU)


@contextmanager
def unpacked(path: Path) -> Iterator[Path]:
    """The folder of a DICOM folder input, or of a zip unpacked for as long as the block runs."""
    if not path.is_file():
        yield path
        return
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(tmp)
        except zipfile.BadZipFile:
            raise IchsegError(path, "not a readable zip file") from None
        yield Path(tmp)


def chosen_series(folder: Path, where: Path, only: str | None = None) -> dict[str, list[DicomSlice]]:
    """The series of ``folder`` by SeriesInstanceUID, or only ``only``; ``where`` names the input in errors."""
    groups = series_in(folder)
    if only is None:
        return groups
    if only not in groups:
        raise IchsegError(where, f"holds no series {only}")
    return {only: groups[only]}


def read_dicom(path: Path, series: str | None = None) -> list[tuple[str, sitk.Image, SeriesGrid]]:
    """Every series (or only ``series``) in a folder or zip as (case id, image on a regular grid, what
    was done)."""
    name = path.stem if path.is_file() else path.name
    with unpacked(path) as folder:
        groups = chosen_series(folder, path, series)
        out = []
        for uid, slices in sorted(groups.items()):
            case = name if len(groups) == 1 else f"{name}_{uid}"
            image, grid = read_series(slices, path)
            out.append((case, image, grid))
    return out
