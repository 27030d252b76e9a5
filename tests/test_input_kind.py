"""The input contract: full heads, skull-stripped brains, windowed exports and non-HU data are told
apart from their values, and what cannot be segmented reliably is refused in one line."""

import numpy as np
import pytest
from conftest import REAL_HEAD, require

from ich_infer.config import PreprocessConfig
from ich_infer.errors import IchsegError
from ich_infer.input_kind import classify
from ich_infer.io import read_image
from ich_infer.preprocess import preprocess
from training.real_heads import skull_stripped, windowed

CFG = PreprocessConfig(target_spacing=(1.8, 1.8, 5.0))


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def chest(shape=(30, 160, 160), spacing_mm=2.5, seed=0) -> np.ndarray:
    """A torso in HU: fat and muscle wall, two lungs, a spine and a ring of ribs, in air."""
    rng = np.random.default_rng(seed)
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    y, x = (j - shape[1] / 2) * spacing_mm, (i - shape[2] / 2) * spacing_mm
    body = (x / 170) ** 2 + (y / 120) ** 2 <= 1
    out = np.full(shape, -1000.0) + rng.normal(0, 10, shape)
    out[np.broadcast_to(body, shape)] = -100  # subcutaneous fat
    inner = (x / 155) ** 2 + (y / 105) ** 2 <= 1
    out[np.broadcast_to(inner, shape)] = 45  # muscle and mediastinum
    for side in (-1, 1):
        lung = ((x - side * 75) / 60) ** 2 + (y / 80) ** 2 <= 1
        out[np.broadcast_to(lung, shape)] = -850
    out[np.broadcast_to(((x / 20) ** 2 + ((y + 85) / 20) ** 2) <= 1, shape)] = 700  # vertebra
    ribs = np.abs(np.hypot(x / 150, y / 100) - 0.97) < 0.03
    out[np.broadcast_to(ribs & (np.cos(np.arctan2(y, x) * 12) > 0.3), shape)] = 900
    return (out + rng.normal(0, 5, shape)).astype(np.float32)


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
    image = chest()
    with pytest.raises(IchsegError, match="not a head"):
        preprocess(image, (2.5, 2.5, 5.0), tuple(np.eye(3).ravel()), CFG)


def test_real_head_variants():
    hu, geo = read_image(require(REAL_HEAD))
    assert classify(hu).kind == "full_head"
    brain = preprocess(hu, geo.spacing, geo.direction, CFG).brain_native
    assert classify(skull_stripped(hu, brain)).kind == "skull_stripped"
    assert classify(skull_stripped(hu, brain, -1024.0)).kind == "skull_stripped"
    # Zeroing everything outside 0-100 HU leaves scalp apart from the brain and a zeroed skull.
    assert classify(windowed(hu)).kind == "windowed"
