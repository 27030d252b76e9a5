import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from conftest import oblique_direction

from ich_infer.config import InferenceConfig
from ich_infer.io import write_image
from ich_infer.postprocess import filter_components, postprocess, rescue_empty
from ich_infer.predict import Progress, predict_folder, segment
from ich_infer.sliding_window import brain_tiles, gaussian_importance, predict_probabilities, tile_starts
from ich_infer.volumetry import abc2_ml
from ich_infer.weights import Ensemble, load_weights


def test_tile_starts_cover_and_end_at_the_border():
    assert tile_starts(100, 48, 24) == [0, 24, 48, 52]
    assert tile_starts(30, 48, 24) == [0]
    for size in range(48, 130):
        starts = tile_starts(size, 48, 24)
        assert starts[-1] + 48 == size and all(b - a <= 24 for a, b in zip(starts, starts[1:]))


def test_only_brain_tiles_are_run():
    brain = np.zeros((16, 96, 96), bool)
    brain[4:10, 10:20, 10:20] = True
    tiles = brain_tiles(brain, (16, 48, 48), 0.5)
    assert tiles == [(0, 0, 0)]
    assert len(brain_tiles(np.ones((16, 96, 96), bool), (16, 48, 48), 0.5)) == 9


def test_gaussian_weights():
    w = gaussian_importance((16, 48, 48))
    assert w.max() == pytest.approx(1.0) and w.min() > 0
    assert w[8, 24, 24] > w[0, 0, 0]


class Constant(torch.nn.Module):
    """A 'model' whose lesion probability is a fixed function of the input: lets tiling be checked."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1]], dim=1)


@pytest.mark.parametrize("weighting", ["uniform", "gaussian"])
def test_stitching_reproduces_a_pointwise_model_exactly(weighting):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 20, 70, 61)).astype(np.float32)
    brain = np.ones(image.shape[1:], bool)
    cfg = InferenceConfig(patch_size=(16, 48, 48), weighting=weighting)
    prob = predict_probabilities(image, brain, [Constant()], cfg)
    expected = 1 / (1 + np.exp(-image[0]))  # softmax of (0, x)
    np.testing.assert_allclose(prob, expected, atol=1e-5)


class LeftSided(torch.nn.Module):
    """Calls the left half of every tile lesion, whatever the input: a model that is not flip-symmetric."""

    def forward(self, x):
        logit = torch.zeros_like(x[:, :1])
        logit[..., : x.shape[-1] // 2] = 4.0
        return torch.cat([torch.zeros_like(logit), logit], dim=1)


def test_flip_averaging_maps_each_flip_back_before_averaging():
    rng = np.random.default_rng(1)
    image = rng.normal(size=(1, 16, 48, 48)).astype(np.float32)
    brain = np.ones(image.shape[1:], bool)
    with_flips = InferenceConfig(tta=True)
    # a pointwise model gives the same map flipped and flipped back: averaging changes nothing
    np.testing.assert_allclose(predict_probabilities(image, brain, [Constant()], with_flips),
                               predict_probabilities(image, brain, [Constant()], InferenceConfig()), atol=1e-6)
    # a lopsided one is averaged with its mirror image: left and right halves then agree
    plain = predict_probabilities(image, brain, [LeftSided()], InferenceConfig())
    assert plain[..., :24].min() > 0.95 and plain[..., 24:].max() == pytest.approx(0.5)
    flipped = predict_probabilities(image, brain, [LeftSided()], with_flips)
    np.testing.assert_allclose(flipped, flipped[..., ::-1], atol=1e-6)
    np.testing.assert_allclose(flipped, (plain + plain[..., ::-1]) / 2, atol=1e-6)


def test_flip_averaging_is_a_validated_inference_setting():
    with pytest.raises(ValueError, match="tta"):
        InferenceConfig(tta="yes")


def test_small_volumes_are_padded_not_cropped():
    image = np.zeros((1, 6, 20, 30), np.float32)
    prob = predict_probabilities(image, np.ones((6, 20, 30), bool), [Constant()], InferenceConfig())
    assert prob.shape == (6, 20, 30)
    np.testing.assert_allclose(prob, 0.5, atol=1e-6)


def test_ensemble_of_identical_models_equals_one_model(tiny_weights, phantoms):
    ensemble = load_weights(tiny_weights)
    ph = phantoms[0]
    one = Ensemble(ensemble.config, ensemble.models[:1])
    twice = Ensemble(ensemble.config, [ensemble.models[0], ensemble.models[0]])
    a = segment(ph.image.astype(np.float32), ph.geometry, one)
    b = segment(ph.image.astype(np.float32), ph.geometry, twice)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.probability_max == pytest.approx(b.probability_max, abs=1e-6)


def test_postprocessing_removes_exactly_the_small_components():
    mask = np.zeros((10, 40, 40), bool)
    mask[1:6, 1:11, 1:11] = True  # 500 voxels: the largest
    mask[1:2, 20:25, 20:30] = True  # 50 voxels: exactly 10 %, kept
    mask[8:9, 30:35, 30:39] = True  # 45 voxels: 9 %, removed
    mask[8, 1, 30] = True  # touches the 45-voxel block only diagonally? no: separate single voxel
    prob = mask.astype(np.float32)
    out, found, removed = filter_components(mask, prob, InferenceConfig(min_component_fraction=0.1, connectivity=1))
    assert found == 4 and removed == 2
    assert out[1:6, 1:11, 1:11].all() and out[1, 20:25, 20:30].all()
    assert not out[8].any()
    diagonal = np.zeros((3, 5, 5), bool)
    diagonal[1, 1, 1] = diagonal[1, 2, 2] = True
    faces, corners = (InferenceConfig(min_component_fraction=0.1, connectivity=c) for c in (1, 3))
    assert filter_components(diagonal, diagonal * 1.0, faces)[1] == 2  # 6-connectivity: two components
    assert filter_components(diagonal, diagonal * 1.0, corners)[1] == 1  # 26-connectivity: one


def test_never_empty_rule():
    cfg = InferenceConfig(threshold=0.5, rescue_min_probability=0.3)
    brain = np.ones((8, 30, 30), bool)
    prob = np.zeros(brain.shape, np.float32)
    prob[3:5, 10:14, 10:14] = 0.4
    prob[4, 12, 12] = 0.45
    prob[6, 25, 25] = 0.35  # a separate weak spot: not part of the rescued region
    mask, info = postprocess(prob, brain, cfg)
    assert info.rescued and mask[3:5, 10:14, 10:14].all() and not mask[6, 25, 25]
    weak = np.full(brain.shape, 0.2, np.float32)
    assert rescue_empty(weak, brain, cfg) is None
    mask, info = postprocess(weak, brain, cfg)
    assert not mask.any() and not info.rescued


def test_abc2_of_an_ellipsoid_follows_the_kothari_rule():
    """Semi-axes 20 mm (S), 30 mm (P), 20 mm (L): A = 60 mm, B = 40 mm; Kothari's slice weights
    (1 above 75 % of the largest area, 0.5 from 25 %) give C = (1 + 0.5 * 0.732) * 20 mm, so
    ABC/2 = 32.8 mL, two thirds of the true 50.3 mL (the rule's known underestimate for ellipsoids)."""
    spacing = (1.0, 0.5, 0.5)
    z, y, x = np.mgrid[0:60, 0:160, 0:160]
    ellipsoid = ((z - 30) / 20.0) ** 2 + ((y - 80) / 30.0 / 2) ** 2 + ((x - 80) / 20.0 / 2) ** 2 <= 1
    assert abc2_ml(ellipsoid, spacing) == pytest.approx(60 * 40 * 1.366 * 20 / 2 / 1000, rel=0.08)
    assert abc2_ml(np.zeros_like(ellipsoid), spacing) == 0.0


def _write_case(folder, name, ph, direction=None):
    geo = ph.geometry
    if direction is not None:
        image = sitk.GetImageFromArray(ph.image)
        image.SetSpacing(geo.spacing)
        image.SetOrigin(geo.origin)
        image.SetDirection(direction)
        folder.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(image, str(folder / name))
    else:
        write_image(folder / name, ph.image, geo)


def test_predict_folder_geometry_reports_and_errors(tmp_path, tiny_weights, phantoms):
    inp, out = tmp_path / "in", tmp_path / "out"
    _write_case(inp, "oblique.nii.gz", phantoms[0], oblique_direction(True))
    _write_case(inp, "flipped.nii", phantoms[1], tuple(np.diag([-1.0, -1.0, 1.0]).ravel()))
    _write_case(inp, "stored.nii.gz", phantoms[2])
    (inp / "broken.nii.gz").write_bytes(b"\x1f\x8b\x08 definitely not gzip")
    before = {p.name: p.read_bytes() for p in inp.iterdir()}
    report = predict_folder(inp, out, weights=tiny_weights, device="cpu", qc=True, echo=lambda s: None)
    assert {p.name: p.read_bytes() for p in inp.iterdir()} == before  # inputs untouched
    assert [c.case for c in report.failed] == ["broken"]
    assert "broken.nii.gz" in report.failed[0].error
    for name in ("oblique.nii.gz", "flipped.nii", "stored.nii.gz"):
        ref, got = sitk.ReadImage(str(inp / name)), sitk.ReadImage(str(out / name))
        assert (got.GetSize(), got.GetSpacing(), got.GetOrigin(), got.GetDirection()) == \
            (ref.GetSize(), ref.GetSpacing(), ref.GetOrigin(), ref.GetDirection())
        assert got.GetPixelID() == sitk.sitkUInt8
        assert set(np.unique(sitk.GetArrayFromImage(got))) <= {0, 1}
        assert (out / "qc" / name.replace(".nii.gz", ".png").replace(".nii", ".png")).is_file()
    rows = (out / "volumes.csv").read_text().splitlines()
    assert rows[0].startswith("case,status,input_kind,volume_ml,abc2_ml")
    assert {r.split(",")[0]: r.split(",")[2] for r in rows[1:]}["stored"] == "full_head"
    assert len(rows) == 5 and any(r.startswith("broken,error") for r in rows)
    payload = json.loads((out / "report.json").read_text())
    assert payload["weights_sha256"] and payload["device"] == "cpu"
    assert payload["config"]["inference"]["tta"] is False  # as the weights' manifest says
    assert {c["case"]: c["status"] for c in payload["cases"]}["broken"] == "error"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left

    # a re-run skips finished cases; --overwrite redoes them, telling progress hooks of each case and tile
    again = predict_folder(inp, out, weights=tiny_weights, device="cpu", echo=lambda s: None)
    assert sorted(c.status for c in again.cases) == ["error", "skipped", "skipped", "skipped"]
    cases, tiles = [], []
    said = []
    hooks = Progress(said.append, lambda done, total, name: cases.append((done, total, name)),
                     lambda done, total: tiles.append((done, total)))
    redo = predict_folder(inp, out, weights=tiny_weights, device="cpu", overwrite=True, tta=True, echo=hooks)
    assert said[0].startswith("note: flip averaging on, but these weights' post-processing was chosen with it off")
    assert sorted(c.status for c in redo.cases) == ["error", "ok", "ok", "ok"]
    assert json.loads((out / "report.json").read_text())["config"]["inference"]["tta"] is True  # --tta overrides
    assert [(d, t) for d, t, _ in cases] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert tiles and all(0 < d <= t for d, t in tiles) and any(d == t for d, t in tiles)


def test_mask_orientation_matches_the_input(tmp_path, tiny_weights, phantoms):
    """The same voxels stored flipped give the flipped mask (no orientation slip on the way back)."""
    from ich_infer.orientation import reindex

    ph = phantoms[0]
    ens = load_weights(tiny_weights)
    g = ph.geometry
    base = segment(ph.image.astype(np.float32), g, ens)
    flipped, sp, org, direc = reindex(ph.image, g.spacing, g.origin, g.direction, (1, 0, 2), (True, False, True))
    from ich_infer.io import Geometry

    other = segment(flipped.astype(np.float32), Geometry(tuple(flipped.shape[::-1]), sp, org, direc), ens)
    expected = reindex(base.mask, g.spacing, g.origin, g.direction, (1, 0, 2), (True, False, True))[0]
    np.testing.assert_array_equal(other.mask, expected)
