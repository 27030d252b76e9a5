from pathlib import Path

from ich_infer.docker_entry import choose_output, main
from ich_infer.io import write_image


def test_output_folder_choice(tmp_path):
    assert choose_output(tmp_path) == tmp_path / "output"
    (tmp_path / "predict").mkdir()
    assert choose_output(tmp_path) == tmp_path / "predict"
    (tmp_path / "output").mkdir()
    assert choose_output(tmp_path) == tmp_path / "output"


def test_entrypoint_runs_the_batch(tmp_path, tiny_weights, phantoms, monkeypatch):
    root = tmp_path
    write_image(root / "input" / "case7.nii.gz", phantoms[0].image, phantoms[0].geometry)
    (root / "predict").mkdir()
    monkeypatch.setenv("ICHSEG_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("ICHSEG_DEVICE", "cpu")
    assert main(root=root) == 0
    assert (root / "predict" / "case7.nii.gz").is_file()  # /output absent: the INSTANCE /predict is used
    assert (root / "predict" / "volumes.csv").is_file()


def test_entrypoint_fails_cleanly_without_input(tmp_path, tiny_weights, monkeypatch, capsys):
    monkeypatch.setenv("ICHSEG_WEIGHTS", str(tiny_weights))
    assert main(root=Path(tmp_path)) == 1
    assert "error:" in capsys.readouterr().err


def test_grand_challenge_layout(tmp_path, tiny_weights, phantoms, monkeypatch):
    """/input/images/<slug>/<uuid>.mha -> /output/images/<output slug>/<uuid>.mha, input left read-only."""
    import os

    import SimpleITK as sitk

    root = tmp_path
    scans = root / "input" / "images" / "ct-image"
    write_image(scans / "0c7f0b6e-uuid.mha", phantoms[1].image, phantoms[1].geometry)
    os.chmod(scans, 0o555)
    os.chmod(root / "input", 0o555)
    (root / "output").mkdir()
    monkeypatch.setenv("ICHSEG_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("ICHSEG_DEVICE", "cpu")
    assert main(root=root) == 0
    masks = root / "output" / "images" / "intracranial-hemorrhage-segmentation"
    assert sorted(p.name for p in masks.iterdir()) == ["0c7f0b6e-uuid.mha"]  # the mask alone
    mask, image = sitk.ReadImage(str(masks / "0c7f0b6e-uuid.mha")), sitk.ReadImage(str(scans / "0c7f0b6e-uuid.mha"))
    assert (mask.GetSize(), mask.GetSpacing(), mask.GetOrigin(), mask.GetDirection()) == \
        (image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    assert (root / "output" / "ichseg" / "ct-image" / "volumes.csv").is_file()
    assert sorted(p.name for p in scans.iterdir()) == ["0c7f0b6e-uuid.mha"]  # nothing written into the input
    os.chmod(root / "input", 0o755)
    os.chmod(scans, 0o755)
