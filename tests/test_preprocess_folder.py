"""`ichseg preprocess` as a library function: the same listing (DICOM included), checks and error lines as predict."""

import shutil

import numpy as np
import pytest
from conftest import SHARED_DATA, require

from ich_infer.errors import IchsegError
from ich_infer.io import read_image, write_image
from ich_infer.preprocess_folder import preprocess_folder

GE_DICOM = SHARED_DATA / "ge_trauma_head" / "dicom"


@pytest.mark.slow  # a 512 x 512 real series: CI's second step runs it
def test_a_dicom_series_gets_its_brain_and_normalised_image(tmp_path):
    require(GE_DICOM / "01.dcm")
    shutil.copytree(GE_DICOM, tmp_path / "in" / "ge")
    results = preprocess_folder(tmp_path / "in", tmp_path / "out")
    assert [(r.case, r.status) for r in results] == [("ge", "ok")]
    brain, geometry = read_image(tmp_path / "out" / "ge_brain.nii.gz")
    norm, geometry2 = read_image(tmp_path / "out" / "ge_norm.nii.gz")
    assert geometry == geometry2 and geometry.size[2] > 28  # the regular oblique grid, not the 28 raw slices
    assert 900 < results[0].brain_ml < 1800 and set(np.unique(brain)) == {0.0, 1.0}


def test_bad_and_clashing_inputs_get_one_line_each_and_the_rest_runs(tmp_path, phantoms):
    ph = phantoms[0]
    inp = tmp_path / "in"
    write_image(inp / "good.nii.gz", ph.image, ph.geometry)
    write_image(inp / "x.nii.gz", ph.image, ph.geometry)
    write_image(inp / "x.nii", ph.image, ph.geometry)
    write_image(inp / "windowed.nii.gz", np.clip(ph.image, 0, 100).astype(np.int16), ph.geometry)
    lines = []
    results = preprocess_folder(inp, tmp_path / "out", echo=lines.append)
    status = {(r.case, r.status) for r in results}
    assert status == {("good", "ok"), ("x", "error"), ("windowed", "error")} and len(results) == 4
    assert (tmp_path / "out" / "good_brain.nii.gz").is_file() and not (tmp_path / "out" / "x_brain.nii.gz").exists()
    assert any("windowed.nii.gz: windowed or clipped image, refused" in line for line in lines)
    assert all("\n" not in line for line in lines)


def test_output_inside_the_input_is_refused_before_anything_runs(tmp_path, phantoms):
    write_image(tmp_path / "in" / "a.nii.gz", phantoms[0].image, phantoms[0].geometry)
    with pytest.raises(IchsegError, match="output folder lies inside the input folder"):
        preprocess_folder(tmp_path / "in", tmp_path / "in" / "out")
    assert not (tmp_path / "in" / "out").exists()
