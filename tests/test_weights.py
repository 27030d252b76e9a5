import json

import pytest
import torch

from ich_infer.config import IchConfig, ModelConfig
from ich_infer.errors import IchsegError
from ich_infer.model import SEUNet3D
from ich_infer.weights import load_weights, save_weights


@pytest.fixture()
def folder(tmp_path):
    cfg = IchConfig(model=ModelConfig(base_width=4))
    torch.manual_seed(1)
    models = [SEUNet3D(cfg.model) for _ in range(3)]
    save_weights(tmp_path, cfg, models, {"data": "test"}, dtype=torch.float32)
    return tmp_path, models


def test_round_trip_gives_bit_identical_outputs(folder):
    path, models = folder
    loaded = load_weights(path)
    x = torch.randn(1, 1, 16, 48, 48)
    for original, restored in zip(models, loaded.models):
        original.eval()
        with torch.no_grad():
            assert torch.equal(original(x), restored(x))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["config"]["model"]["base_width"] == 4
    assert manifest["training"] == {"data": "test"}
    assert len(manifest["folds"]) == 3 and all(len(f["sha256"]) == 64 for f in manifest["folds"])


def test_fp16_storage_halves_size_and_stays_close(tmp_path):
    cfg = IchConfig(model=ModelConfig(base_width=8))
    model = SEUNet3D(cfg.model).eval()
    save_weights(tmp_path / "a", cfg, [model], dtype=torch.float32)
    save_weights(tmp_path / "b", cfg, [model], dtype=torch.float16)
    size32 = (tmp_path / "a" / "fold_0.safetensors").stat().st_size
    size16 = (tmp_path / "b" / "fold_0.safetensors").stat().st_size
    assert size16 < 0.55 * size32
    x = torch.randn(1, 1, 16, 48, 48)
    with torch.no_grad():
        diff = (torch.softmax(model(x), 1) - torch.softmax(load_weights(tmp_path / "b").models[0](x), 1)).abs().max()
    assert diff < 1e-2


def test_tampered_file_is_refused(folder):
    path, _ = folder
    target = path / "fold_1.safetensors"
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IchsegError, match="fold_1.safetensors: sha256 does not match"):
        load_weights(path)


def test_manifest_architecture_mismatch_is_refused(folder):
    path, _ = folder
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["config"]["model"]["base_width"] = 8
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IchsegError, match="fold_0.safetensors: tensor .* has shape"):
        load_weights(path)
    manifest["config"]["model"]["depth"] = 3
    manifest["config"]["model"]["base_width"] = 4
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IchsegError, match="do not match the manifest's architecture"):
        load_weights(path)


def test_missing_fold_is_refused(folder):
    path, _ = folder
    (path / "fold_2.safetensors").unlink()
    with pytest.raises(IchsegError, match="fold_2.safetensors: fold weights listed in the manifest are missing"):
        load_weights(path)


def test_missing_or_broken_manifest(tmp_path):
    with pytest.raises(IchsegError, match="manifest not found"):
        load_weights(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(IchsegError, match="not valid JSON"):
        load_weights(tmp_path)
