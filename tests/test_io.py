import csv
import gzip
import io

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import make_image, oblique_direction

from ich_infer.errors import IchsegError
from ich_infer.io import case_id, csv_text, list_images, read_image, write_mask

DIRECTIONS = {
    "identity": tuple(np.eye(3).ravel()),
    "flipped": tuple(np.diag([-1.0, -1.0, 1.0]).ravel()),
    "oblique_flipped": oblique_direction(True),
    "oblique": oblique_direction(False),
    "permuted": (0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
}


@pytest.mark.parametrize("direction", DIRECTIONS.values(), ids=DIRECTIONS.keys())
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_mask_keeps_exact_geometry(tmp_path, direction, dtype, suffix):
    rng = np.random.default_rng(0)
    array = (rng.random((6, 20, 24)) * 200).astype(dtype)
    src = tmp_path / f"scan{suffix}"
    sitk.WriteImage(make_image(array, direction=direction), str(src))
    volume, geometry = read_image(src)
    assert volume.dtype == np.float32 and volume.shape == (6, 20, 24)
    out = tmp_path / "out" / f"scan{suffix}"
    write_mask(out, volume > 100, geometry)

    ref, got = sitk.ReadImage(str(src)), sitk.ReadImage(str(out))
    assert got.GetSize() == ref.GetSize()
    assert got.GetSpacing() == ref.GetSpacing()
    assert got.GetOrigin() == ref.GetOrigin()
    assert got.GetDirection() == ref.GetDirection()
    assert got.GetPixelID() == sitk.sitkUInt8
    values = sitk.GetArrayFromImage(got)
    assert set(np.unique(values)) <= {0, 1}
    np.testing.assert_array_equal(values, (volume > 100).astype(np.uint8))
    # nibabel reads it too, with the same affine as the input
    nib_in, nib_out = nib.load(str(src)), nib.load(str(out))
    np.testing.assert_array_equal(nib_out.affine, nib_in.affine)
    assert nib_out.get_data_dtype() == np.uint8


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_other_formats_keep_geometry(tmp_path, suffix):
    array = np.arange(6 * 8 * 10, dtype=np.int16).reshape(6, 8, 10)
    src = tmp_path / f"scan{suffix}"
    sitk.WriteImage(make_image(array), str(src))
    volume, geometry = read_image(src)
    out = tmp_path / "out" / f"scan{suffix}"
    write_mask(out, volume > 100, geometry)
    ref, got = sitk.ReadImage(str(src)), sitk.ReadImage(str(out))
    assert got.GetSize() == ref.GetSize()
    np.testing.assert_allclose(got.GetSpacing(), ref.GetSpacing(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.GetOrigin(), ref.GetOrigin(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.GetDirection(), ref.GetDirection(), rtol=0, atol=1e-12)


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    src = tmp_path / "a.nii.gz"
    sitk.WriteImage(make_image(np.zeros((4, 5, 6), np.int16)), str(src))
    volume, geometry = read_image(src)
    out_dir = tmp_path / "o"
    write_mask(out_dir / "a.nii.gz", volume >= 0, geometry)
    assert [p.name for p in out_dir.iterdir()] == ["a.nii.gz"]
    with pytest.raises(IchsegError, match="does not match the grid"):
        write_mask(out_dir / "b.nii.gz", np.zeros((1, 2, 3)), geometry)
    assert [p.name for p in out_dir.iterdir()] == ["a.nii.gz"]


def _bad_files(tmp):
    good = tmp / "good.nii.gz"
    sitk.WriteImage(make_image(np.zeros((4, 5, 6), np.int16)), str(good))
    data = good.read_bytes()
    files = {"empty": b"", "truncated gzip": data[: len(data) // 2], "not an image": b"hello world" * 50}
    paths = {}
    for name, content in files.items():
        p = tmp / f"{name.replace(' ', '_')}.nii.gz"
        p.write_bytes(content)
        paths[name] = p
    paths["2D"] = tmp / "flat.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((5, 6), np.int16)), str(paths["2D"]))
    paths["4D"] = tmp / "time.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 3), np.int16), np.eye(4)), str(paths["4D"]))
    paths["RGB"] = tmp / "rgb.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6, 3), np.uint8), isVector=True), str(paths["RGB"]))
    paths["truncated body"] = tmp / "cut.nii"
    raw = gzip.decompress(data)
    paths["truncated body"].write_bytes(raw[: len(raw) - 60])
    return paths


def test_bad_files_raise_one_clear_error(tmp_path):
    for cause, path in _bad_files(tmp_path).items():
        with pytest.raises(IchsegError) as info:
            read_image(path)
        message = str(info.value)
        assert str(path) in message, cause
        assert "\n" not in message, cause
        assert len(message) < 400, cause


def test_case_ids_and_listing(tmp_path):
    assert case_id("dir/case_01.nii.gz") == "case_01"
    assert case_id("x.nii") == "x"
    assert case_id("y.mha") == "y"
    for name in ("b.nii.gz", "a.nii", ".hidden.nii.gz", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.nii", "b.nii.gz"]
    with pytest.raises(IchsegError, match="not a folder"):
        list_images(tmp_path / "missing")


def test_errors_without_a_file_get_the_case_file_named():
    from ich_infer.errors import about

    with pytest.raises(IchsegError, match=r"^scan.nii.gz: no brain found$"):
        with about("scan.nii.gz"):
            raise IchsegError(None, "no brain found")
    with pytest.raises(IchsegError, match=r"^other.nii: truncated$"):  # a named file is kept
        with about("scan.nii.gz"):
            raise IchsegError("other.nii", "truncated")


def test_csv_text_round_trips_values_with_commas_and_quotes():
    rows = [["a,b", 1.5, ""], ['say "hi"', 2, "line\nbreak"]]
    text = csv_text(["case", "value", "note"], rows)
    back = list(csv.reader(io.StringIO(text)))
    assert back[0] == ["case", "value", "note"]
    assert back[1:] == [[str(v) for v in row] for row in rows]
