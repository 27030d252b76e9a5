"""The input contract: full heads, skull-stripped brains, windowed exports and non-HU data are told
apart from their values, and what cannot be segmented reliably is refused in one line."""

import numpy as np
import pytest
from conftest import REAL_HEAD, SHARED_DATA, require

from ich_infer.config import PreprocessConfig
from ich_infer.errors import IchsegError
from ich_infer.input_kind import classify
from ich_infer.io import read_image
from ich_infer.preprocess import MIN_BONE_ENCLOSURE, bone_enclosure, check_brain, find_brain, preprocess
from training.real_heads import skull_stripped, windowed, with_calcification
from training.release.enclosure import IDENTITY, NON_HEADS, enclosure, torso

CT_ICH = SHARED_DATA / "ct_ich"

CFG = PreprocessConfig(target_spacing=(1.8, 1.8, 5.0))


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_full_head_phantoms_are_full_heads(phantoms):
    for ph in phantoms:
        assert classify(ph.image.astype(np.float32)).kind == "full_head"


def test_skull_stripped_input_uses_its_own_brain(phantoms):
    """Fails where a stripped brain goes through holder removal and skull stripping: there is no
    skull to strip, and the mask either vanishes or eats the brain's edge."""
    ph = phantoms[0]
    truth = ph.truth["intracranial"]
    for background in (0.0, -1024.0):
        image = np.where(truth, ph.image, background).astype(np.float32)
        assert classify(image).kind == "skull_stripped"
        pre = preprocess(image, ph.geometry.spacing, ph.geometry.direction, CFG)
        assert pre.input_kind.kind == "skull_stripped"
        assert _dice(pre.brain_native, truth & (ph.image < CFG.rim_high_hu)) > 0.98


@pytest.mark.parametrize("make", [lambda v: np.clip(v, 0, 100), lambda v: np.clip(v, -100, 200)],
                         ids=["clipped 0-100", "clipped -100-200"])
def test_windowed_input_is_refused_in_one_line(phantoms, make):
    image = make(phantoms[1].image.astype(np.float32))
    assert classify(image).kind == "windowed"
    with pytest.raises(IchsegError, match="windowed or clipped image, refused") as err:
        preprocess(image, phantoms[1].geometry.spacing, phantoms[1].geometry.direction, CFG)
    assert "\n" not in str(err.value)
    # The line names each test that failed and its figure.
    assert "failed the air test: 0.0% of the volume below -500 HU" in str(err.value)


def test_values_that_are_not_hounsfield_units_are_refused(phantoms):
    hu = phantoms[2].image.astype(np.float32)
    display = np.clip(hu / 80 * 255, 0, 255).round()  # a 0-255 export of the brain window
    stored = hu + 1024  # raw stored values without the rescale intercept
    for image in (display, stored):
        kind = classify(image)
        assert not kind.accepted
        with pytest.raises(IchsegError, match="refused"):
            preprocess(image, phantoms[2].geometry.spacing, phantoms[2].geometry.direction, CFG)
    assert classify(display).kind == "not_hu"


def test_a_chest_is_not_a_head():
    with pytest.raises(IchsegError, match="failed the skull-enclosure test: [0-9]+% .*not a head"):
        preprocess(torso(), (2.5, 2.5, 5.0), IDENTITY, CFG)


def test_real_head_variants():
    hu, geo = read_image(require(REAL_HEAD))
    assert classify(hu).kind == "full_head"
    brain = preprocess(hu, geo.spacing, geo.direction, CFG).brain_native
    assert classify(skull_stripped(hu, brain)).kind == "skull_stripped"
    assert classify(skull_stripped(hu, brain, -1024.0)).kind == "skull_stripped"
    for background in (0.0, -1024.0):  # a pineal-like calcification does not make it "windowed"
        assert classify(with_calcification(skull_stripped(hu, brain, background), brain)).kind == "skull_stripped"
    # Zeroing everything outside 0-100 HU leaves scalp apart from the brain and a zeroed skull.
    assert classify(windowed(hu)).kind == "windowed"


@pytest.mark.parametrize("background", [0.0, -1024.0])
def test_skull_stripped_brain_with_a_calcification_is_skull_stripped(phantoms, background):
    """Research data keep the pineal and falx calcifications: a few voxels above 300 HU that touch no
    background must not turn a stripped brain into a refused "windowed" image."""
    ph = phantoms[0]
    truth = ph.truth["intracranial"]
    image = with_calcification(np.where(truth, ph.image, background).astype(np.float32), truth)
    kind = classify(image)
    assert kind.kind == "skull_stripped", kind.detail
    pre = preprocess(image, ph.geometry.spacing, ph.geometry.direction, CFG)
    assert pre.input_kind.kind == "skull_stripped"


def test_head_with_bone_flattened_to_600_800_hu_is_a_full_head(phantoms):
    """An old scanner or a narrow bone window: bone reads 600-800 HU, no more."""
    ph = phantoms[1]
    hu = ph.image.astype(np.float32)
    bone = hu > 300
    flat = np.where(bone, 600 + 200 * (hu - 300) / max(float(hu.max()) - 300, 1), hu).astype(np.float32)
    assert classify(flat).kind == "full_head"
    pre = preprocess(flat, ph.geometry.spacing, ph.geometry.direction, CFG)
    reference = preprocess(hu, ph.geometry.spacing, ph.geometry.direction, CFG)
    assert _dice(pre.brain_native, reference.brain_native) > 0.95


# The skull-enclosure figure measured by ``python -m training.release.enclosure --ct-ich runs/ct_ich``
# on every real head at hand (54 ct-ich patients, GE as NIfTI and DICOM, InVesalius) and on the non-heads.
HEAD_ENCLOSURE = {
    "invesalius": 0.897, "ge_trauma": 0.93, "ge_trauma (DICOM)": 0.971, "ct_ich_049": 0.855, "ct_ich_050": 0.935,
    "ct_ich_051": 0.963, "ct_ich_052": 0.954, "ct_ich_053": 0.973, "ct_ich_054": 0.982, "ct_ich_056": 0.988,
    "ct_ich_057": 0.958, "ct_ich_060": 0.958, "ct_ich_061": 0.98, "ct_ich_063": 0.972, "ct_ich_064": 0.989,
    "ct_ich_067": 0.9, "ct_ich_068": 0.949, "ct_ich_069": 0.98, "ct_ich_072": 0.98, "ct_ich_073": 0.98,
    "ct_ich_074": 0.91, "ct_ich_077": 0.977, "ct_ich_079": 0.942, "ct_ich_083": 0.964, "ct_ich_084": 0.944,
    "ct_ich_085": 0.601, "ct_ich_086": 0.869, "ct_ich_088": 0.953, "ct_ich_090": 0.966, "ct_ich_092": 0.969,
    "ct_ich_093": 0.971, "ct_ich_094": 0.847, "ct_ich_095": 0.978, "ct_ich_097": 0.93, "ct_ich_098": 0.987,
    "ct_ich_100": 0.986, "ct_ich_101": 0.978, "ct_ich_103": 0.959, "ct_ich_104": 0.983, "ct_ich_106": 0.947,
    "ct_ich_107": 0.987, "ct_ich_109": 0.993, "ct_ich_110": 0.991, "ct_ich_112": 0.961, "ct_ich_113": 0.991,
    "ct_ich_115": 0.984, "ct_ich_116": 0.964, "ct_ich_118": 0.938, "ct_ich_119": 0.965, "ct_ich_121": 0.979,
    "ct_ich_122": 0.941, "ct_ich_123": 0.935, "ct_ich_124": 0.986, "ct_ich_126": 0.983, "ct_ich_127": 0.891,
    "ct_ich_128": 0.985, "ct_ich_130": 0.981,
}
NON_HEAD_ENCLOSURE = {
    "torso, 12 ribs": 0.285, "torso, 16 ribs": 0.262, "torso, 8 ribs": 0.218,
}
MARGIN = 0.1


def test_enclosure_limit_sits_with_margin_between_heads_and_non_heads():
    assert min(HEAD_ENCLOSURE.values()) >= MIN_BONE_ENCLOSURE + MARGIN
    assert max(NON_HEAD_ENCLOSURE.values()) <= MIN_BONE_ENCLOSURE - MARGIN


def test_non_head_enclosure_is_what_was_recorded():
    for name, make in NON_HEADS.items():
        assert enclosure(make(), (2.5, 2.5, 2.5), IDENTITY) == pytest.approx(NON_HEAD_ENCLOSURE[name], abs=0.02)


def _ct_ich_patient(patient: int):
    from training.ct_ich import geometry_for, read_patient

    folder = CT_ICH / "Patients_CT" / f"{patient:03d}"
    if not folder.is_dir():
        pytest.skip(f"real data {folder} is absent (ct-ich lives in ../shared/data beside the checkout)")
    hu, _, _ = read_patient(folder)
    return hu.astype(np.float32), geometry_for(hu.shape)


@pytest.mark.parametrize("patient", [85, 49])
def test_real_ct_ich_heads_are_accepted_with_their_recorded_enclosure(patient):
    """Patient 85 is a newborn: a thin, under-mineralised skull that the old bone-only figure put at 20 %."""
    hu, geometry = _ct_ich_patient(patient)
    found = find_brain(hu, geometry.spacing, geometry.direction, PreprocessConfig())
    assert found.kind.kind == "full_head", found.kind.detail
    figure = bone_enclosure(found.clean, found.brain, found.spacing)
    assert figure == pytest.approx(HEAD_ENCLOSURE[f"ct_ich_{patient:03d}"], abs=0.02)
    check_brain(found.clean, found.brain, found.spacing, found.kind)  # no refusal
