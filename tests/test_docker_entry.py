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
