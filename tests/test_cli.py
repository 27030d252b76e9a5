import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from ich_infer import __version__
from ich_infer.cli import app
from ich_infer.io import read_image, read_mask, write_image, write_mask
from ich_infer.orientation import reorientation

runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"})


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    for command in ([], ["predict"], ["evaluate"], ["phantom"], ["preprocess"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage" in result.output


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "ich_infer", "--help"], capture_output=True, encoding="utf-8")
    assert result.returncode == 0 and "predict" in result.stdout


def test_predict_validates_paths(tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path / "nope"), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_predict_empty_folder_is_one_line_error(tmp_path, tiny_weights):
    (tmp_path / "in").mkdir()
    result = runner.invoke(app, ["predict", str(tmp_path / "in"), "-o", str(tmp_path / "o"),
                                 "--weights", str(tiny_weights)])
    assert result.exit_code == 1
    assert "contains no" in result.output and "Traceback" not in result.output


def test_predict_with_a_bad_case_exits_nonzero(tmp_path, tiny_weights, phantoms):
    inp = tmp_path / "in"
    write_image(inp / "good.nii.gz", phantoms[2].image, phantoms[2].geometry)
    (inp / "bad.nii.gz").write_bytes(b"")
    result = runner.invoke(app, ["predict", str(inp), "-o", str(tmp_path / "o"), "--weights", str(tiny_weights),
                                 "--device", "cpu"])
    assert result.exit_code == 1
    assert "bad.nii.gz: file is empty" in result.output
    assert (tmp_path / "o" / "good.nii.gz").is_file()
    assert "Traceback" not in result.output


def test_evaluate_command(tmp_path, phantoms):
    ph = phantoms[1]
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    write_mask(gt / "a.nii.gz", ph.label, ph.geometry)
    write_mask(pred / "a.nii.gz", ph.label, ph.geometry)
    write_mask(gt / "b.nii.gz", ph.label, ph.geometry)
    write_mask(pred / "b.nii.gz", np.zeros_like(ph.label), ph.geometry)
    result = runner.invoke(app, ["evaluate", str(pred), str(gt), "-o", str(tmp_path / "m.csv")])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[0] == "case,dice,rvd,nsd,hd,hd95,volume_pred_ml,volume_gt_ml"
    a = dict(zip(lines[0].split(","), lines[1].split(",")))
    b = dict(zip(lines[0].split(","), lines[2].split(",")))
    assert float(a["dice"]) == pytest.approx(1.0) and float(a["hd"]) == 0.0
    assert b["hd"] == "inf" and float(b["nsd"]) == 0.0
    assert "hd (finite)" in result.output and "over 1 cases" in result.output
    # a missing counterpart is an error naming the file, the other cases still scored
    write_mask(gt / "c.nii.gz", ph.label, ph.geometry)
    result = runner.invoke(app, ["evaluate", str(pred), str(gt)])
    assert result.exit_code == 1 and "c.nii.gz: prediction missing" in result.output
    assert "a,1" in result.output


def test_evaluate_rejects_mismatched_grids(tmp_path, phantoms):
    ph = phantoms[1]
    write_mask(tmp_path / "gt" / "a.nii.gz", ph.label, ph.geometry)
    write_mask(tmp_path / "pred" / "a.nii.gz", ph.label[:, :, :-1],
               type(ph.geometry)(tuple(ph.label[:, :, :-1].shape[::-1]), ph.geometry.spacing, ph.geometry.origin,
                                 ph.geometry.direction))
    result = runner.invoke(app, ["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt")])
    assert result.exit_code == 1 and "differs from the reference" in result.output


def test_preprocess_command_writes_brain_and_normalised_image(tmp_path, phantoms):
    ph = phantoms[0]
    write_image(tmp_path / "in" / "p.nii.gz", ph.image, ph.geometry)
    result = runner.invoke(app, ["preprocess", str(tmp_path / "in"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    from ich_infer.io import read_image

    _, geo_in = read_image(tmp_path / "in" / "p.nii.gz")
    brain, geo = read_image(tmp_path / "o" / "p_brain.nii.gz")
    norm, geo2 = read_image(tmp_path / "o" / "p_norm.nii.gz")
    assert geo == geo_in and geo2 == geo_in
    assert set(np.unique(brain)) == {0.0, 1.0}
    assert abs(norm[brain > 0].mean()) < 0.2


@pytest.mark.slow  # a whole phantom through the CLI: CI's second step runs it
def test_phantom_command_writes_a_dataset_and_its_options_reach_the_plan(tmp_path):
    """One lesion-free case (a tuning set for false-positive rules needs many: the option must reach
    the plan) and the files, catalogue and geometry a training folder needs."""
    pytest.importorskip("nilearn")
    from training.phantom import CASE_SEED_STRIDE, lesion_plan

    assert lesion_plan(3 * CASE_SEED_STRIDE)  # this case has haemorrhage at the default fraction
    args = ["phantom", "--out", str(tmp_path), "--n", "1", "--seed", "3", "--matrix", "96",
            "--lesion-free-fraction", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    catalogue = json.loads((tmp_path / "cases.json").read_text())
    entry = catalogue["phantom_003_0000"]
    assert [item for item in entry["lesions"] if "type" in item] == []
    assert entry["seed"] == 3 * CASE_SEED_STRIDE and entry["acquisition"] == "instance"
    label, label_geometry = read_mask(tmp_path / "labels" / "phantom_003_0000.nii.gz")
    image, geometry = read_image(tmp_path / "images" / "phantom_003_0000.nii.gz")
    assert not label.any() and image.shape == label.shape and geometry == label_geometry
    assert sorted(geometry.spacing)[2] == 5.0
    # whatever the stored orientation, the canonical slice axis is the 5 mm one
    assert reorientation(geometry.direction).spacing(geometry.spacing)[0] == pytest.approx(5.0)


def test_train_command_is_the_training_module():
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "usage: ichseg train" in result.output and "--data" in result.output
    result = runner.invoke(app, ["train", "--data", "/nonexistent", "--out", "/tmp/x", "--config", "nope"])
    assert result.exit_code == 1
