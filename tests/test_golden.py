"""What the shipped model produces on test_data, pinned: masks, volumes and agreement with the labels.

The references in test_data/golden/ were made by ``python tests/golden.py`` from the weights whose
sha256 they record; shipping new weights without regenerating them fails here on purpose.
"""

import json

import pytest
from golden import GOLDEN, run_predict

from ich_infer.io import read_mask
from ich_infer.metrics import dice
from ich_infer.predict import DEFAULT_WEIGHTS


@pytest.fixture(scope="module")
def expected():
    return json.loads((GOLDEN / "expected.json").read_text())


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    return out, run_predict(out)


def test_references_belong_to_the_bundled_weights(expected):
    manifest = json.loads((DEFAULT_WEIGHTS / "manifest.json").read_text())
    assert expected["weights_sha256"] == {f["file"]: f["sha256"] for f in manifest["folds"]}, \
        "new weights: regenerate the references with `python tests/golden.py`"


def test_masks_and_volumes_match_the_references(expected, produced):
    out, rows = produced
    assert set(rows) == set(expected["cases"])
    for case, want in expected["cases"].items():
        got = rows[case]
        assert got["status"] == "ok" and got["input_kind"] == want["input_kind"]
        assert got["volume_ml"] == pytest.approx(want["volume_ml"], rel=0.01, abs=0.01)
        mask, _ = read_mask(out / f"{case}.nii.gz")
        reference, _ = read_mask(GOLDEN / f"{case}.nii.gz")
        assert (not mask.any() and not reference.any()) or dice(reference, mask) >= 0.99


def test_agreement_with_the_labels_is_what_was_committed(expected, produced):
    _, rows = produced
    for case, want in expected["cases"].items():
        assert rows[case]["dice_to_label"] >= want["dice_to_label"] - 0.01, case
