"""The configuration refuses what would silently mean something else."""

import json
import shutil

import pytest

from ich_infer.config import IchConfig, InferenceConfig, ModelConfig, PreprocessConfig
from ich_infer.errors import IchsegError
from ich_infer.weights import MANIFEST, load_weights
from training.configs import CONFIGS, concrete


@pytest.mark.parametrize("section,field,value,message", [
    ("model", "se_placement", "encoders", "one of"),
    ("preprocess", "normalization", "brian", "one of"),
    ("inference", "overlap", 1.5, "in \\[0, 0.9\\]"),
    ("inference", "threshold", -3, "in \\(0, 1\\)"),
    ("inference", "patch_size", [16, 48], "three positive ints"),
    ("preprocess", "percentiles", [99.5, 0.5], "increasing"),
    ("preprocess", "symmetric_channel", "yes", "true or false"),
    ("model", "depth", 2.5, "int"),
])
def test_invalid_values_name_their_field(section, field, value, message):
    with pytest.raises(ValueError, match=f"{field} = .*{message}"):
        IchConfig.from_dict({section: {field: value}})


def test_every_named_config_is_valid_and_round_trips():
    for name, cfg in CONFIGS.items():
        assert IchConfig.from_dict(json.loads(cfg.ich.to_json())) == cfg.ich, name


def test_manifest_with_an_invalid_value_is_refused_at_load(tmp_path, tiny_weights):
    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    manifest = json.loads((weights / MANIFEST).read_text())
    manifest["config"]["inference"]["threshold"] = 3
    (weights / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IchsegError, match="invalid configuration .*threshold = 3"):
        load_weights(weights)


def test_auto_registration_is_decided_when_training(monkeypatch):
    monkeypatch.delenv("FSLDIR", raising=False)
    assert concrete(CONFIGS["symmetric"]).ich.preprocess.registration == "sitk"
    monkeypatch.setenv("FSLDIR", "/opt/fsl")
    assert concrete(CONFIGS["symmetric"]).ich.preprocess.registration == "flirt"
    fixed = CONFIGS["paper"]
    assert concrete(concrete(fixed)) == concrete(fixed)


def test_defaults_are_valid():
    PreprocessConfig(), ModelConfig(), InferenceConfig()
