"""DICOM SEG output for DICOM input: the mask as a binary segmentation that references its source series.

The mask is computed on the regular grid the series was resampled to (``dicom_series``). A PACS viewer
overlays a SEG frame on the source slice it references, so every frame is the mask sampled at that
slice's own pixel centres (nearest neighbour): on a gantry-tilted series each frame lies on its tilted,
shifted slice, not on the regular grid. Written with highdicom; the segment is coded as SNOMED CT
1386000 "Intracranial hemorrhage" in the category 49755003 "Morphologically abnormal structure".
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from . import __version__
from .dicom_series import DicomSlice, stack_geometry
from .errors import IchsegError
from .io import Geometry, atomic_output

SEGMENT_LABEL = "Intracranial haemorrhage"
# Type 2 attributes (present, may be empty) that the SEG copies from its source; anonymised series
# often drop them altogether, which the standard does not allow in the SEG.
TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                "ReferringPhysicianName", "StudyID", "AccessionNumber")


@dataclass(frozen=True)
class SeriesSource:
    """What a DICOM SEG needs of its source series, read while its files are at hand (a zip is
    unpacked only while the scan is read)."""

    slices: list[DicomSlice]  # sorted along their normal
    datasets: list  # pydicom headers without pixels, in the same order


def series_source(slices: list[DicomSlice]) -> SeriesSource:
    import pydicom

    order = stack_geometry(slices)[0]
    return SeriesSource(order, [pydicom.dcmread(s.path, stop_before_pixels=True) for s in order])


def mask_on_slice(mask: np.ndarray, geometry: Geometry, header: DicomSlice) -> np.ndarray:
    """``mask`` (``(k, j, i)`` on ``geometry``) sampled at the pixel centres of one acquired slice,
    as ``(rows, columns)``; outside the mask's grid it is 0."""
    cols, rows = header.size
    jj, ii = np.mgrid[0:rows, 0:cols].astype(np.float64)
    points = (header.position[None, None, :] + (ii * header.spacing[0])[..., None] * header.row
              + (jj * header.spacing[1])[..., None] * header.col)
    direction = np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)
    index = (points - np.asarray(geometry.origin)) @ direction / np.asarray(geometry.spacing)  # (i, j, k)
    coords = [index[..., 2], index[..., 1], index[..., 0]]
    return ndi.map_coordinates(mask.astype(np.uint8), coords, order=0, mode="constant", cval=0).astype(bool)


def segmentation_frames(mask: np.ndarray, geometry: Geometry, slices: list[DicomSlice]) -> np.ndarray:
    """One frame per source slice, in the order of ``slices``."""
    return np.stack([mask_on_slice(mask, geometry, s) for s in slices])


def write_dicom_seg(path: Path, mask: np.ndarray, geometry: Geometry, source: SeriesSource, where: Path) -> Path:
    """A DICOM SEG of ``mask`` referencing the series ``source`` (read from ``where``), written atomically."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    frames = segmentation_frames(mask, geometry, source.slices)
    datasets = [copy.copy(dataset) for dataset in source.datasets]
    for dataset in datasets:
        for keyword in TYPE2_COPIED:
            if keyword not in dataset:
                setattr(dataset, keyword, "")
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.IntracranialHemorrhage,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="ichseg", version=__version__, family=codes.cid7162.ArtificialIntelligence))
    with warnings.catch_warnings():
        # An anonymised PatientName such as "REMOVED" is copied as it is; highdicom's advice on
        # person-name format is for whoever wrote the source, not for this run's user.
        warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
        try:
            seg = hd.seg.Segmentation(
                source_images=datasets, pixel_array=frames.astype(np.uint8),
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=[description],
                series_instance_uid=hd.UID(), series_number=int(getattr(datasets[0], "SeriesNumber", 0) or 0) + 9000,
                sop_instance_uid=hd.UID(), instance_number=1, manufacturer="ichseg",
                manufacturer_model_name="ichseg", software_versions=__version__, device_serial_number="none",
                series_description="ichseg haemorrhage", omit_empty_frames=False)
        except (ValueError, AttributeError, TypeError) as exc:
            raise IchsegError(where, f"cannot build a DICOM SEG from this series: {exc}") from None
    with atomic_output(path) as tmp:
        seg.save_as(tmp)
    return path
