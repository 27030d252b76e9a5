"""Reading scans and writing masks with exactly the input's grid.

Arrays follow SimpleITK's ``GetArrayFromImage`` order, ``(k, j, i)`` = (slice, row, column): the
reverse of the image index order ``(i, j, k)``. Geometry is kept beside the array and written back
untouched, because a mask that is off by a rounding of the direction cosines is a wrong mask.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from .errors import IchsegError

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Geometry:
    """Size (i, j, k), spacing in mm, origin in mm and row-major direction cosines (LPS, as ITK)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    # The NIfTI header of the source file. ITK re-derives qform/sform from float32 quaternions on
    # every write (a 1e-8 drift per round trip on oblique scans), so masks copy the header instead.
    nifti_header: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, image: sitk.Image, nifti_header: Any = None) -> "Geometry":
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()),
                   tuple(image.GetDirection()), nifti_header)

    def apply(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0


def _file_mode() -> int:
    """Permissions a plain ``open()`` would give (mkstemp's 0600 would hide masks from colleagues)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def case_id(path: str | Path) -> str:
    """``case.nii.gz`` -> ``case``: the name without its (possibly double) image extension."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def is_image_file(path: Path) -> bool:
    """An image by name; a dangling link counts, so that it is reported rather than silently skipped."""
    return (path.is_file() or path.is_symlink()) and not path.name.startswith(".") \
        and path.name.lower().endswith(IMAGE_SUFFIXES)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name so runs are reproducible."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IchsegError(folder, "is not a folder")
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def read_image(path: str | Path) -> tuple[np.ndarray, Geometry]:
    """Read a 3D scalar scan as float32 ``(k, j, i)`` plus its geometry; raise IchsegError otherwise."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise IchsegError(path, "dangling symbolic link (its target does not exist)")
    if not path.is_file():
        raise IchsegError(path, "file not found")
    if not os.access(path, os.R_OK):
        raise IchsegError(path, "permission denied (the file is not readable)")
    if path.stat().st_size == 0:
        raise IchsegError(path, "file is empty")
    try:
        with itk_messages_to_log(path):
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise IchsegError(path, f"not a readable image ({_itk_cause(exc)})") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise IchsegError(path, f"has {image.GetNumberOfComponentsPerPixel()} components per voxel "
                                "(RGB or vector image); a scalar CT is needed")
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise IchsegError(path, f"is {image.GetDimension()}D with size {image.GetSize()}; a 3D volume is needed")
    if min(image.GetSize()) < 2:
        raise IchsegError(path, f"has a degenerate size {image.GetSize()}")
    try:
        array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    except RuntimeError as exc:  # truncated data is sometimes only noticed when pixels are pulled
        raise IchsegError(path, f"voxel data unreadable ({_first_line(exc)})") from None
    if not np.isfinite(array).all():
        raise IchsegError(path, "contains NaN or infinite voxel values")
    header = None
    if _is_nifti(path):
        try:
            header = nib.load(str(path)).header.copy()
        except Exception as exc:  # noqa: BLE001 - any nibabel failure means the header is unusable
            raise IchsegError(path, f"unreadable NIfTI header ({_first_line(exc)})") from None
        _check_nifti_complete(path, header)
        _check_nifti_finite(path, header)
    return array, Geometry.of(image, header)


def read_mask(path: str | Path) -> tuple[np.ndarray, Geometry]:
    """Read a label file as a boolean array (any non-zero voxel is foreground)."""
    array, geometry = read_image(path)
    return array != 0, geometry


def write_image(path: str | Path, array: np.ndarray, geometry: Geometry) -> Path:
    """Write ``array`` (``(k, j, i)``) with ``geometry``, atomically: temp file in the folder + rename."""
    path = Path(path)
    if tuple(array.shape[::-1]) != tuple(geometry.size):
        raise IchsegError(path, f"array shape {array.shape} does not match the grid size {geometry.size}")
    suffix = next((s for s in IMAGE_SUFFIXES if path.name.lower().endswith(s)), path.suffix)
    with atomic_output(path, f".tmp{suffix}") as tmp:
        if _is_nifti(path) and geometry.nifti_header is not None:
            _write_nifti_with_header(tmp, array, geometry.nifti_header)
        else:
            image = geometry.apply(sitk.GetImageFromArray(np.ascontiguousarray(array)))
            sitk.WriteImage(image, tmp, useCompression=suffix.endswith(".gz"))
    return path


def write_mask(path: str | Path, mask: np.ndarray, geometry: Geometry) -> Path:
    """Write a binary mask as uint8 with values exactly 0/1 on ``geometry``."""
    return write_image(path, (np.asarray(mask) > 0).astype(np.uint8), geometry)


def csv_text(header: list[str], rows: Iterable[list]) -> str:
    """A CSV table as text (quoted where a value holds a comma, a quote or a newline)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a small text file atomically, so a crash never leaves half a report."""
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


@contextmanager
def atomic_output(path: Path, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file name beside ``path`` for the block to write; renamed onto ``path`` (with the
    folder's usual permissions) when the block succeeds, deleted when it fails. Its form,
    ``.<name>.<8 random>.tmp...``, is what ``batch.remove_stale_temps`` clears after a killed run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_nifti_complete(path: Path, header: Any) -> None:
    """ITK fills a truncated NIfTI with zeros without a word; count the bytes (and gzip CRC) instead."""
    offset = max(int(header["vox_offset"]), int(getattr(header, "single_vox_offset", 352)))
    expected = offset + int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
    if str(path).lower().endswith(".gz"):
        size = 0
        try:
            with gzip.open(path, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    size += len(chunk)
        except (EOFError, OSError, zlib.error) as exc:
            raise IchsegError(path, f"compressed data is truncated or corrupt ({_first_line(exc)})") from None
    else:
        size = path.stat().st_size
    if size < expected:
        raise IchsegError(path, f"truncated: {size} bytes of voxel data and header, {expected} expected")


def _check_nifti_finite(path: Path, header: Any) -> None:
    """ITK's NIfTI reader turns NaN and infinity into 0 before anyone can see them; nibabel does not."""
    if not np.issubdtype(header.get_data_dtype(), np.floating):
        return  # integer voxels cannot hold them
    data = np.asanyarray(nib.load(str(path)).dataobj)
    if not np.isfinite(data).all():
        raise IchsegError(path, f"contains {int((~np.isfinite(data)).sum())} NaN or infinite voxel values")


@contextmanager
def itk_messages_to_log(path: Path) -> Iterator[None]:
    """ITK prints its warnings straight to the process's stderr; send them to the log instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                log.warning("ITK while reading %s: %s", path, " ".join(text.split()))


def _itk_cause(exc: BaseException) -> str:
    """The cause of an ITK read failure in words; ITK's own line is kept when it says something."""
    message = str(exc)
    if "orthonormal direction cosines" in message:
        return "direction matrix is not orthonormal (sheared or degenerate sform/qform)"
    for line in message.splitlines():
        if "ITK only supports" in line or "Could not create IO object" in line:
            return line.split(": ", 1)[-1].strip()[:200]
    return _first_line(exc)


def _is_nifti(path: Path | str) -> bool:
    return str(path).lower().endswith((".nii", ".nii.gz"))


def _write_nifti_with_header(path: str, array: np.ndarray, header: Any) -> None:
    """Write ``array`` with a copy of the source header: same qform/sform/pixdim bytes, new dtype."""
    header = header.copy()
    header.set_data_dtype(array.dtype)
    header.set_slope_inter(1.0, 0.0)
    header["cal_min"], header["cal_max"] = 0, 0
    data = np.ascontiguousarray(array.transpose(2, 1, 0))  # (k, j, i) -> NIfTI's (i, j, k)
    image = nib.Nifti1Image(data, None, header=header) if isinstance(header, nib.Nifti1Header) \
        else nib.Nifti2Image(data, None, header=header)
    nib.save(image, path)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # ITK messages put the useful part after the source location; keep the last informative line.
    informative = [ln for ln in lines if not ln.startswith(("/", "itk::", "ITK "))]
    return (informative or lines or [type(exc).__name__])[-1][:200]
