"""Bad inputs and hostile folders: one line each, nothing lost, no traceback, the inputs untouched."""

import csv
import hashlib
import json
import os
import re

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from ich_infer.batch import check_output_folder, remove_stale_temps, split_clashing
from ich_infer.cli import app
from ich_infer.errors import IchsegError
from ich_infer.inputs import list_inputs
from ich_infer.io import read_image, write_image
from ich_infer.predict import predict_folder
from ich_infer.weights import MANIFEST, sha256_of

runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"})


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_output_in_or_around_the_input_is_refused_and_nothing_is_written(tmp_path, tiny_weights, phantoms, where):
    inp = tmp_path / "scans"
    write_image(inp / "case.nii.gz", phantoms[0].image, phantoms[0].geometry)
    before = _digests(inp)
    out = {"same": inp, "inside": inp / "masks", "around": tmp_path}[where]
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(app, ["predict", str(inp), "-o", str(out), "--weights", str(tiny_weights), *extra])
        assert result.exit_code == 1, result.output
        assert "input folder" in result.output and "Traceback" not in result.output
    assert _digests(inp) == before and sorted(p.name for p in inp.iterdir()) == ["case.nii.gz"]


def test_output_folder_checks_resolve_symlinks(tmp_path):
    (tmp_path / "scans").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "scans")
    with pytest.raises(IchsegError, match="is the input folder"):
        check_output_folder(tmp_path / "scans", tmp_path / "alias")
    check_output_folder(tmp_path / "scans", tmp_path / "results")  # a sibling is fine
    assert (tmp_path / "results").is_dir()


def test_output_that_is_a_file_or_unwritable_fails_before_any_case(tmp_path, phantoms):
    inp = tmp_path / "in"
    write_image(inp / "a.nii.gz", phantoms[0].image, phantoms[0].geometry)
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["predict", str(inp), "-o", str(tmp_path / "file")])
    assert result.exit_code == 1 and "exists and is not a folder" in result.output
    assert result.output.count("\n") == 1
    if os.geteuid() != 0:  # root writes anywhere; the check itself is the same code
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = runner.invoke(app, ["predict", str(inp), "-o", str(locked)])
        assert result.exit_code == 1 and "cannot be written" in result.output


def test_nan_in_nifti_is_refused(tmp_path):
    data = np.full((8, 8, 4), 30.0, dtype=np.float32)
    data[2, 3, 1] = np.nan
    data[4, 4, 2] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nanvox.nii.gz")
    with pytest.raises(IchsegError, match="nanvox.nii.gz: contains 2 NaN or infinite"):
        read_image(tmp_path / "nanvox.nii.gz")


def test_duplicate_case_ids_are_set_apart_naming_both(tmp_path):
    for name in ("x.nii", "x.nii.gz", "y.mha"):
        (tmp_path / name).write_bytes(b"")
    items = list_inputs(tmp_path)
    assert [item.case for item in items] == ["x", "x", "y"]
    keep, clashing = split_clashing(items)
    assert [item.path.name for item in keep] == ["y.mha"]
    assert [item.path.name for item, _ in clashing] == ["x.nii", "x.nii.gz"]
    assert re.search(r"x\.nii: case id 'x' is also the id of .*x\.nii\.gz", clashing[0][1])
    assert re.search(r"x\.nii\.gz: case id 'x' is also the id of .*x\.nii\b", clashing[1][1])


def test_a_clashing_pair_does_not_stop_the_batch(tmp_path, tiny_weights, phantoms):
    """The good scan is segmented, the pair gets an error row each, and the run reports failure."""
    inp, out = tmp_path / "in", tmp_path / "out"
    write_image(inp / "good.nii.gz", phantoms[2].image, phantoms[2].geometry)
    write_image(inp / "x.nii.gz", phantoms[2].image, phantoms[2].geometry)
    write_image(inp / "x.nii", phantoms[2].image, phantoms[2].geometry)
    report = predict_folder(inp, out, weights=tiny_weights, device="cpu")
    assert (out / "good.nii.gz").is_file() and not (out / "x.nii.gz").exists() and not (out / "x.nii").exists()
    rows = list(csv.DictReader((out / "volumes.csv").open()))
    assert [(r["case"], r["status"]) for r in rows] == [("x", "error"), ("x", "error"), ("good", "ok")]
    assert len(report.failed) == 2


def test_sheared_direction_gets_its_real_cause(tmp_path, capfd):
    affine = np.array([[1.0, 0.6, 0, 0], [0, 1.0, 0, 0], [0, 0, 5.0, 0], [0, 0, 0, 1]])  # sheared
    image = nib.Nifti1Image(np.zeros((8, 8, 4), np.int16), affine)
    image.set_qform(None, code=0)
    image.set_sform(affine, code=1)
    nib.save(image, tmp_path / "sheared.nii.gz")
    with pytest.raises(IchsegError, match=r"sheared.nii.gz: .*direction matrix is not orthonormal") as err:
        read_image(tmp_path / "sheared.nii.gz")
    assert "\n" not in str(err.value)
    assert "itkNiftiImageIO" not in capfd.readouterr().err  # ITK's chatter went to the log


def test_unreadable_and_dangling_files_are_named(tmp_path, tiny_weights, phantoms):
    inp = tmp_path / "in"
    write_image(inp / "good.nii.gz", phantoms[2].image, phantoms[2].geometry)
    (inp / "gone.nii.gz").symlink_to(tmp_path / "nowhere.nii.gz")
    result = runner.invoke(app, ["predict", str(inp), "-o", str(tmp_path / "o"), "--weights", str(tiny_weights)])
    assert result.exit_code == 1
    assert "gone.nii.gz: dangling symbolic link" in result.output
    rows = json.loads((tmp_path / "o" / "report.json").read_text())["cases"]
    assert {r["case"]: r["status"] for r in rows} == {"gone": "error", "good": "ok"}
    if os.geteuid() != 0:
        (inp / "good.nii.gz").chmod(0)
        with pytest.raises(IchsegError, match="permission denied"):
            read_image(inp / "good.nii.gz")


def test_a_non_safetensors_fold_is_one_line(tmp_path, tiny_weights, phantoms):
    import shutil

    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    fold = weights / "fold_0.safetensors"
    fold.write_bytes(b"\xff" * 64)
    manifest = json.loads((weights / MANIFEST).read_text())
    manifest["folds"][0]["sha256"] = sha256_of(fold)
    (weights / MANIFEST).write_text(json.dumps(manifest))
    inp = tmp_path / "in"
    write_image(inp / "a.nii.gz", phantoms[0].image, phantoms[0].geometry)
    result = runner.invoke(app, ["predict", str(inp), "-o", str(tmp_path / "o"), "--weights", str(weights)])
    assert result.exit_code == 1 and "not a readable safetensors file" in result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1


def test_stale_temps_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "qc").mkdir()
    stale = [tmp_path / ".case.nii.gz.ab12_xyz.tmp.nii.gz", tmp_path / ".volumes.csv.k9x8y7z6.tmp",
             tmp_path / "qc" / ".case.png.q1w2e3r4.tmp"]
    keep = [tmp_path / "case.nii.gz", tmp_path / ".hidden", tmp_path / "notes.tmp"]
    for path in stale + keep:
        path.write_text("x")
    assert sorted(remove_stale_temps(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
