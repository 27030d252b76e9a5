"""DICOM SEG output: frames on each source slice's own (tilted) pixel grid, coded, and readable back."""

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.sr.codedict import codes
from test_dicom import write_series

from ich_infer.dicom_seg import write_dicom_seg
from ich_infer.dicom_series import read_dicom
from ich_infer.inputs import ScanInput, load_input
from ich_infer.io import Geometry


def _blob_on(image: sitk.Image) -> np.ndarray:
    """A ball in physical space, 9 mm radius, on ``image``'s grid (``(k, j, i)``)."""
    size = image.GetSize()
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in size], indexing="ij"), axis=-1).reshape(-1, 3)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    points = np.asarray(image.GetOrigin()) + (idx * np.asarray(image.GetSpacing())) @ direction.T
    inside = np.linalg.norm(points - np.array([4.0, 2.0, 12.0]), axis=1) < 9.0
    return inside.reshape(size).transpose(2, 1, 0)


def _on_slice(mask_image: sitk.Image, header) -> np.ndarray:
    """The mask resampled by SimpleITK onto one acquired slice's plane: an independent reference."""
    plane = sitk.Image(header.size[0], header.size[1], 1, sitk.sitkUInt8)
    plane.SetOrigin(tuple(float(v) for v in header.position))
    plane.SetSpacing((header.spacing[0], header.spacing[1], 1.0))
    plane.SetDirection(tuple(np.stack([header.row, header.col, np.cross(header.row, header.col)], 1).ravel()))
    resampled = sitk.Resample(mask_image, plane, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(resampled)[0] > 0


@pytest.mark.parametrize("tilt", [0.0, 20.0])
def test_seg_round_trip_puts_every_frame_on_its_source_slice(tmp_path, tilt):
    series = write_series(tmp_path / "series", tilt_deg=tilt, steps=(4.0, 4.0, 4.0, 7.0, 7.0, 7.0), thickness=7.0)
    [(_, image, _)] = read_dicom(series)
    geometry = Geometry.of(image)
    mask = _blob_on(image)
    assert mask.sum() > 100
    source = load_input(ScanInput("case", series, "case.nii.gz"), with_source=True).source
    out = write_dicom_seg(tmp_path / "out" / "case.seg.dcm", mask, geometry, source, series)

    seg = hd.seg.segread(out)
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    segment = seg.SegmentSequence[0]
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == codes.SCT.IntracranialHemorrhage.value == "1386000"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3.4"
    mask_image = geometry.apply(sitk.GetImageFromArray(mask.astype(np.uint8)))
    uids = [pydicom.dcmread(s.path, stop_before_pixels=True).SOPInstanceUID for s in source.slices]
    agree, lesion = [], 0
    for header, uid in zip(source.slices, uids):
        frame = seg.get_pixels_by_source_instance([uid], segment_numbers=[1])[0, ..., 0] > 0
        reference = _on_slice(mask_image, header)
        agree.append((frame == reference).mean())
        lesion += int(reference.sum())
    assert len(uids) == 7 and lesion > 50
    assert min(agree) > 0.995  # nearest-neighbour ties at the ball's rim may fall either way


def test_tilted_frames_differ_from_the_regular_grid(tmp_path):
    """On a tilted series the frame of a slice is not the mask's grid plane: the slice is sheared."""
    series = write_series(tmp_path / "series", tilt_deg=20.0)
    [(_, image, _)] = read_dicom(series)
    geometry = Geometry.of(image)
    mask = _blob_on(image)
    from ich_infer.dicom_seg import segmentation_frames

    source = load_input(ScanInput("case", series, "case.nii.gz"), with_source=True).source
    frames = segmentation_frames(mask, geometry, source.slices)
    assert frames.shape == (7, 32, 32)
    # the ball's centre moves in-plane from slice to slice, as a tilted acquisition sees it
    centres = [np.argwhere(f).mean(axis=0)[0] for f in frames if f.sum() > 5]
    assert len(centres) >= 3 and np.ptp(centres) > 2.0
