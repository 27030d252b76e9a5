"""Named training configurations: the paper's final recipe, its ablations, and small ones for CI/CPU.

A configuration is a :class:`TrainConfig`; its ``ich`` part (preprocessing, model, tiling,
postprocessing) is what ends up in the weights manifest.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ich_infer.config import IchConfig, InferenceConfig, ModelConfig, PreprocessConfig

from .sampling import IntensityAugment, SamplingConfig


@dataclass(frozen=True)
class TrainConfig:
    ich: IchConfig = field(default_factory=IchConfig)
    patches_per_image: int = 3000  # paper 2.5
    lesion_fraction: float = 0.5  # half the patch centres on lesion voxels (paper 2.3)
    # Online hard-negative mining (not in the paper; training/mining.py): this share of the centres goes
    # to lesion-free islands the current model marks at >= mining_threshold, farther than
    # mining_margin_mm from any lesion, re-mined every epoch with a sliding window at mining_overlap.
    mined_negative_fraction: float = 0.0
    mining_threshold: float = 0.2
    mining_margin_mm: float = 10.0
    mining_overlap: float = 0.25
    batch_size: int = 16
    max_epochs: int = 100
    patience: int = 10  # early stopping on validation loss (paper 2.5)
    # Which epoch's model a fold keeps: "best" validation loss (paper 2.5), or the "last" one (nnU-Net's
    # choice), for when a few validation patients make the loss a poor guide.
    keep: str = "best"
    optimizer: str = "adadelta"  # paper 2.5; "adam" for short fine-tuning (training.loop.make_optimizer)
    learning_rate: float = 1.0  # Adadelta's default
    lesion_weight: float = 2.0  # cross-entropy weight of the lesion class (paper 2.5)
    val_fraction: float = 0.2
    folds: int = 5
    seed: int = 0
    hard_case_fraction: float = 0.25  # smallest-lesion quartile is sampled twice, always augmented
    flip_probability: float = 0.5
    rotation_degrees: float = 10.0
    val_patches_per_image: int = 100
    workers: int = 0
    # Intensity augmentation (not in the paper), in HU: real scanners differ in offset, contrast, noise
    # and kernel; off in the phantom recipes.
    augment_shift_hu: float = 0.0
    augment_gain: float = 0.0
    augment_noise_hu: float = 0.0
    augment_blur_probability: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in ("adadelta", "adam"):
            raise ValueError(f"optimizer {self.optimizer!r} is not one of adadelta, adam")
        if self.keep not in ("best", "last"):
            raise ValueError(f"keep {self.keep!r} is not one of best, last")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sampling(self) -> SamplingConfig:
        """How each training epoch draws its patches."""
        scale = self.ich.preprocess.hu_scale
        intensity = IntensityAugment(self.augment_shift_hu / scale, self.augment_gain, self.augment_noise_hu / scale,
                                     self.augment_blur_probability)
        return SamplingConfig(self.patches_per_image, self.lesion_fraction, self.mined_negative_fraction,
                              True, self.flip_probability, self.rotation_degrees, intensity)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        values = {k: v for k, v in data.items() if k != "ich"}
        names = {f.name for f in dataclasses.fields(cls)} - {"ich"}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {sorted(unknown)}")
        return cls(ich=IchConfig.from_dict(data.get("ich", {})), **values)


def _with(base: TrainConfig, *, preprocess: dict | None = None, model: dict | None = None,
          inference: dict | None = None, **train: Any) -> TrainConfig:
    ich = base.ich
    pre = replace(ich.preprocess, **(preprocess or {}))
    mod = replace(ich.model, **(model or {}))
    if pre.in_channels != mod.in_channels:
        mod = replace(mod, in_channels=pre.in_channels)
    return replace(base, ich=IchConfig(pre, mod, replace(ich.inference, **(inference or {}))), **train)


PAPER = TrainConfig()
# What fits on a 2-core CPU: narrower net on a 0.9 mm working grid (see README, weights manifest).
CPU = _with(PAPER, preprocess={"target_spacing": (0.9, 0.9, 5.0)}, model={"base_width": 8},
            patches_per_image=64, max_epochs=3, patience=3, batch_size=16, val_patches_per_image=24)

CONFIGS: dict[str, TrainConfig] = {
    "paper": PAPER,
    # Section 3 ablations.
    "se_ends": _with(PAPER, model={"se_placement": "ends"}),
    "se_all": _with(PAPER, model={"se_placement": "all"}),
    "se_none": _with(PAPER, model={"se_placement": "none"}),
    "patch16": _with(PAPER, inference={"patch_size": (8, 16, 16)}, model={"depth": 3}),  # z = 8 allows 3 poolings
    "patch32": _with(PAPER, inference={"patch_size": (8, 32, 32)}, model={"depth": 3}),
    "symmetric": _with(PAPER, preprocess={"symmetric_channel": True}),
    "minmax": _with(PAPER, preprocess={"normalization": "minmax"}),
    "depth3": _with(PAPER, model={"depth": 3}),
    # The authors' published code variants.
    "authors": _with(PAPER, preprocess={"normalization": "volume"}, model={"downsample": "conv", "skip": "add"}),
    "cpu": CPU,
    # The shipped recipe: normalisation anchored in Hounsfield units (bone that the brain mask takes in
    # at the skull base or vertex cannot move it), fine-tuned from a cpu ensemble on phantoms, with an
    # eighth of the centres on the model's own false alarms (training.mining).
    "cpu_hu": replace(_with(CPU, preprocess={"normalization": "hu"}), max_epochs=2, patches_per_image=48,
                      mined_negative_fraction=0.125),
    # Real haemorrhage (training.ct_ich), meant with --init weights on the ct-ich folder beside 25
    # varied-acquisition phantoms (tilt, slice thickness, kernels ct-ich lacks): release 12's
    # architecture and grid, the intensity variation of real scanners, no mining (the normal heads
    # are real negatives). Adam: a fresh Adadelta state barely moves released weights in a short
    # fine-tune. A gentle rate, 60 % lesion-centred patches and lesion weight 3, because at 5e-4 with
    # half the centres on lesions the real normal heads taught the folds to drop real clots with the
    # inner-table band. The last epoch is kept: with 9 validation patients the loss is a poor guide.
    "real": replace(_with(CPU, preprocess={"normalization": "hu"},
                          inference={"threshold": 0.25, "min_component_fraction": 0.0, "min_peak_probability": 0.95}),
                    max_epochs=6, patience=6, patches_per_image=80, val_patches_per_image=48, lesion_fraction=0.6,
                    lesion_weight=3.0, optimizer="adam", learning_rate=2e-4, keep="last",
                    augment_shift_hu=10.0, augment_gain=0.1, augment_noise_hu=4.0, augment_blur_probability=0.3),
    # CI: tiny and fast, still the whole pipeline.
    "smoke": _with(PAPER, preprocess={"target_spacing": (1.8, 1.8, 5.0)},
                   model={"base_width": 4, "depth": 2}, inference={"patch_size": (8, 32, 32)},
                   patches_per_image=16, max_epochs=2, patience=2, batch_size=8, val_patches_per_image=8, folds=2),
}


def concrete(cfg: TrainConfig) -> TrainConfig:
    """``registration="auto"`` decided now, on the training machine: the manifest then says what the
    symmetric channel was trained with, whether or not the inference machine has ``$FSLDIR``."""
    if cfg.ich.preprocess.registration != "auto":
        return cfg
    return _with(cfg, preprocess={"registration": "flirt" if os.environ.get("FSLDIR") else "sitk"})


def load_config(name_or_path: str) -> TrainConfig:
    """A named configuration, or a JSON file holding ``TrainConfig.to_dict()`` output."""
    if name_or_path in CONFIGS:
        return CONFIGS[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return TrainConfig.from_dict(json.loads(path.read_text()))
    raise ValueError(f"unknown config {name_or_path!r}: use one of {sorted(CONFIGS)} or a JSON file")


__all__ = ["TrainConfig", "CONFIGS", "load_config", "InferenceConfig", "ModelConfig", "PreprocessConfig"]
