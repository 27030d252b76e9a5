"""The ct-ich reader: HU from two 8-bit windows, the bone window fitted per patient, labels stacked."""

import hashlib

import numpy as np
import pytest
from conftest import SHARED_DATA

from training.ct_ich import (
    AIR_HU,
    INPLANE_MM,
    NOMINAL_BONE,
    SLICE_MM,
    brain_hu,
    convert,
    fit_bone_window,
    read_patient,
    rebuild_hu,
    verify_checksums,
)

CT_ICH = SHARED_DATA / "ct_ich"


def _needs(patient: int):
    folder = CT_ICH / "Patients_CT" / f"{patient:03d}"
    if not folder.is_dir():
        pytest.skip(f"real data {folder} is absent (ct-ich lives in ../shared/data beside the checkout)")
    return folder


def _windows(hu: np.ndarray, bone_window=NOMINAL_BONE):
    """What the export did: the brain window (40/120) and a bone window, each to 8 bits."""
    brain = np.clip(np.round((hu + 20) * 255 / 120), 0, 255).astype(np.uint8)
    level, width = bone_window
    bone = np.clip(np.round((hu - level + width / 2) * 255 / width), 0, 255).astype(np.uint8)
    return brain, bone


def test_rebuild_inverts_both_windows():
    hu = np.array([-1000, -300, -10, 0, 20, 37, 60, 95, 150, 700, 1500], dtype=float)
    brain, bone = _windows(hu)
    out = rebuild_hu(brain, bone, NOMINAL_BONE)
    soft = (hu > -15) & (hu < 98)
    assert np.abs(out[soft] - hu[soft]).max() <= 0.5  # 0.47 HU a brain-window grey level
    assert np.abs(out[hu >= 150] - hu[hu >= 150]).max() <= 13  # 12.5 HU a bone-window level
    assert out[0] == AIR_HU and -320 < out[1] < -280


def test_bone_window_is_fitted_not_assumed():
    rng = np.random.default_rng(0)
    hu = rng.uniform(-15, 95, 20000)
    brain, bone = _windows(hu, (600.0, 2750.0))
    level, width = fit_bone_window(brain, bone)
    assert abs(width - 2750) < 60 and abs(level - 600) < 30


def test_two_patients_rebuild_with_their_labels():
    for patient, has_blood in ((49, True), (56, False)):
        folder = _needs(patient)
        hu, label, window = read_patient(folder)
        n = len(list((folder / "bone").glob("*.jpg")))
        assert hu.shape == (n, 650, 650) and label.shape == hu.shape and hu.dtype == np.int16
        masks = sorted(int(p.name.split("_")[0]) for p in (folder / "brain").glob("*_HGE_Seg.jpg"))
        assert sorted(np.flatnonzero(label.any(axis=(1, 2))) + 1) == masks  # slice S -> index S-1
        assert bool(label.any()) == has_blood
        tissue = hu[(hu > 15) & (hu < 60)]
        assert 30 < np.median(tissue) < 45
        assert (hu == AIR_HU).mean() > 0.2 and (hu > 300).any()
        if has_blood:
            assert 45 < np.median(hu[label]) < 85
        assert 0.8 * NOMINAL_BONE[1] < window[1] < 1.2 * NOMINAL_BONE[1]


def test_convert_writes_the_training_folder(tmp_path):
    _needs(49)
    checks = convert(CT_ICH, tmp_path, patients=[49], echo=lambda line: None)
    from ich_infer.io import read_image, read_mask

    hu, geometry = read_image(tmp_path / "images" / "ct_ich_049.nii.gz")
    label, label_geometry = read_mask(tmp_path / "labels" / "ct_ich_049.nii.gz")
    assert geometry == label_geometry and geometry.spacing == pytest.approx((INPLANE_MM, INPLANE_MM, SLICE_MM))
    assert checks[0].case == "ct_ich_049" and checks[0].label_ml == pytest.approx(
        label.sum() * INPLANE_MM ** 2 * SLICE_MM / 1000, abs=0.01)
    rows = (tmp_path / "slices.csv").read_text().splitlines()
    assert rows[0].startswith("PatientNumber,SliceNumber") and len(rows) == 1 + hu.shape[0]
    assert "CC BY 4.0" in (tmp_path / "CREDIT.txt").read_text()
    from training.data import describe_data, discover  # what the weights manifest will say it learnt from

    assert describe_data(tmp_path, discover(tmp_path)) == f"1 real head CT from {tmp_path.name}/ (ct-ich 1.0.0)"


def test_checksums_name_a_changed_file(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    digest = {n: hashlib.sha256(n.encode()).hexdigest() for n in "ab"}
    (tmp_path / "SHA256SUMS.txt").write_text(f"{digest['a']}  a.txt\n{digest['b']}  b.txt\n")
    assert verify_checksums(tmp_path) == []
    (tmp_path / "b.txt").write_text("changed")
    assert verify_checksums(tmp_path) == ["b.txt"]


def test_brain_window_formula():
    assert brain_hu(np.array([0, 255])) == pytest.approx([-20, 100])
