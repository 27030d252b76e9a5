"""Shared fixtures: small phantoms (made once per session), tiny weights, the real data in ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from ich_infer.config import IchConfig, InferenceConfig, ModelConfig, PreprocessConfig
from ich_infer.io import write_image
from ich_infer.model import SEUNet3D
from ich_infer.threads import apply_threads
from ich_infer.weights import save_weights

apply_threads()  # the suite runs with the product's thread count: it shares this machine with other jobs

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_HEAD = SHARED_DATA / "invesalius_head" / "head.nii.gz"
HEADSQ = SHARED_DATA / "vtk_headsq" / "headsq_quarter_HU.nii.gz"
TEST_DATA = Path(__file__).resolve().parents[1] / "test_data"
BLAST_SEG = SHARED_DATA / "blast_ct" / "scan_0_segmentation.nii.gz"


def require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"real data {path} is absent (it lives in ../shared/data beside the checkout)")
    return path


def oblique_direction(flip: bool = True) -> tuple[float, ...]:
    """A gantry-tilted, rotated and (optionally) flipped direction matrix."""
    a, b = 0.3, 0.2
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    d = rx @ rz @ (np.diag([-1, 1, -1]) if flip else np.eye(3))
    return tuple(d.ravel())


def make_image(array: np.ndarray, spacing=(0.42, 0.42, 5.0), origin=(10.5, -20.25, 33.0),
               direction: tuple[float, ...] | None = None) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction or oblique_direction())
    return image


@pytest.fixture(scope="session")
def phantoms():
    """Three small phantoms with tissue truth: seeds chosen to hold lesions of several types."""
    from training.phantom import PhantomSettings, generate

    settings = PhantomSettings(matrix=192, oriented_fraction=0.5)
    return [generate(seed, settings, with_truth=True) for seed in (0, 1, 3)]


@pytest.fixture(scope="session")
def tiny_config() -> IchConfig:
    return IchConfig(preprocess=PreprocessConfig(target_spacing=(1.8, 1.8, 5.0)),
                     model=ModelConfig(base_width=4, depth=2),
                     inference=InferenceConfig(patch_size=(8, 32, 32)))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, tiny_config) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    save_weights(folder, tiny_config, [SEUNet3D(tiny_config.model) for _ in range(2)], {"data": "random init"},
                 dtype=torch.float32)
    return folder


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory, phantoms):
    """Six small phantoms in images/ + labels/: the smoke training data."""
    root = tmp_path_factory.mktemp("smoke")
    from training.phantom import PhantomSettings, generate

    extra = [generate(s, PhantomSettings(matrix=128)) for s in (11, 12, 13)]
    for i, ph in enumerate([*phantoms, *extra]):
        write_image(root / "images" / f"p{i}.nii.gz", ph.image, ph.geometry)
        write_image(root / "labels" / f"p{i}.nii.gz", ph.label, ph.geometry)
    return root


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("preprocessed")


def work_with_cache(out, cache):
    """A work folder whose preprocessing cache is shared: the smoke runs here preprocess the same
    cases with the same config, and the cache is keyed by both (training/data.py)."""
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "cache").exists():
        (work / "cache").symlink_to(cache, target_is_directory=True)
    return work


@pytest.fixture(scope="session")
def smoke_weights(tmp_path_factory, smoke_data, shared_cache):
    """One smoke cross-validation, trained once and shared by the tests that read what it wrote."""
    out = tmp_path_factory.mktemp("smoke_weights") / "weights"
    work_with_cache(out, shared_cache)
    from training.cv import main as cv_main

    assert cv_main(["--data", str(smoke_data), "--out", str(out), "--config", "smoke", "--device", "cpu"]) == 0
    return out
