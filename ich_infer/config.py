"""The one configuration object shared by training and inference.

Training writes :class:`IchConfig` into the weights manifest; inference reads it back from there and
never from its own defaults, so preprocessing, tiling and postprocessing cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional


@dataclass(frozen=True)
class PreprocessConfig:
    """Section 2.2 of the paper; the authors' published variants are selectable (docs/preprocessing.md)."""

    # Head-holder removal: everything denser than air is "body"; an opening of this radius cuts the
    # thin pads that join a holder to the scalp before the largest component is kept.
    body_threshold_hu: float = -400.0
    holder_opening_mm: float = 6.0
    # Skull stripping: brain-tissue window (the authors' 0 < HU < 100) and the opening that cuts the
    # brain from the scalp through the skull-base foramina.
    brain_low_hu: float = 0.0
    brain_high_hu: float = 100.0
    brain_opening_mm: float = 3.0
    # Blood against the inner table shares its voxels with bone at 5 mm slices: the mask grows by one
    # in-plane voxel into neighbours below this value, so extra-axial haematomas keep their rim.
    rim_high_hu: float = 200.0
    slice_rule: bool = True  # Slice_max rule and mask propagation below it
    propagation_allowance_mm: float = 2.0
    # Normalisation: "brain" = paper (statistics over brain voxels), "volume" = authors' code
    # (rescale to [0, 100], statistics over the whole volume), "minmax" = the paper's ablation,
    # "hu" = anchored in Hounsfield units: clip to ``hu_window``, subtract ``hu_centre`` and divide by
    # ``hu_scale``. CT numbers are calibrated, so a fixed mapping cannot be thrown off by whatever bone
    # or air the brain mask took in (skull base, vertex); per-image statistics can.
    normalization: Literal["brain", "volume", "minmax", "hu"] = "brain"
    percentiles: tuple[float, float] = (0.5, 99.5)
    hu_window: tuple[float, float] = (0.0, 160.0)
    # None: the mean of the brain voxels inside ``soft_tissue_hu`` (follows a scanner's calibration
    # offset; bone and air are outside the range, so they cannot move it).
    hu_centre: Optional[float] = 35.0
    hu_scale: float = 17.5
    soft_tissue_hu: tuple[float, float] = (0.0, 80.0)
    outside_value: Optional[float] = None  # None: the lowest normalised brain value
    symmetric_channel: bool = False
    registration: Literal["auto", "sitk", "flirt"] = "auto"
    # Working grid (x, y, z) in mm; None keeps the scan's own spacing (the paper: INSTANCE is 0.42 x 0.42 x 5).
    target_spacing: Optional[tuple[float, float, float]] = None
    crop_margin_mm: float = 8.0

    def __post_init__(self) -> None:
        _check_fields(self)
        _require(self, "holder_opening_mm", 0 < self.holder_opening_mm <= 30, "in (0, 30] mm")
        _require(self, "brain_high_hu", self.brain_low_hu < self.brain_high_hu, "above brain_low_hu")
        _require(self, "rim_high_hu", self.rim_high_hu > self.brain_high_hu, "above brain_high_hu")
        for name in ("brain_opening_mm", "propagation_allowance_mm", "crop_margin_mm"):
            _require(self, name, 0 <= getattr(self, name) <= 30, "in [0, 30] mm")
        _require(self, "percentiles", len(self.percentiles) == 2 and 0 <= self.percentiles[0] < self.percentiles[1]
                 <= 100, "two increasing values in [0, 100]")
        for name in ("hu_window", "soft_tissue_hu"):
            pair = getattr(self, name)
            _require(self, name, len(pair) == 2 and pair[0] < pair[1], "two increasing HU values")
        _require(self, "hu_scale", self.hu_scale > 0, "positive")
        _require(self, "target_spacing", self.target_spacing is None or (
            len(self.target_spacing) == 3 and all(0 < v <= 10 for v in self.target_spacing)),
            "null or three spacings in (0, 10] mm")

    @property
    def in_channels(self) -> int:
        return 2 if self.symmetric_channel else 1


SEPlacement = Literal["encoder", "ends", "all", "none"]


@dataclass(frozen=True)
class ModelConfig:
    """Section 2.4: 3D U-Net, one 3x3x3 conv + ReLU per level, SE blocks where ``se_placement`` says.

    ``se_placement``: "encoder" = after each encoder level (paper's best); "ends" = after the encoder
    and decoder paths (the earlier paper [8]); "all" = after every encoder and decoder block.
    """

    in_channels: int = 1
    num_classes: int = 2
    base_width: int = 32
    depth: int = 4  # poolings below the top level: 32-64-128-256-512
    se_placement: SEPlacement = "encoder"
    se_reduction: int = 16
    downsample: Literal["maxpool", "conv"] = "maxpool"
    skip: Literal["concat", "add"] = "concat"
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _check_fields(self)
        _require(self, "in_channels", self.in_channels in (1, 2), "1 or 2")
        _require(self, "num_classes", self.num_classes == 2, "2 (background, haemorrhage)")
        _require(self, "base_width", 1 <= self.base_width <= 256, "in [1, 256]")
        _require(self, "depth", 1 <= self.depth <= 6, "in [1, 6]")
        _require(self, "se_reduction", self.se_reduction >= 1, "at least 1")
        _require(self, "dropout", 0 <= self.dropout < 1, "in [0, 1)")

    @property
    def widths(self) -> list[int]:
        return [self.base_width * 2**level for level in range(self.depth + 1)]


@dataclass(frozen=True)
class InferenceConfig:
    """Sections 2.5-2.6: tiles of the training patch size, ensemble average, threshold, cleanup."""

    patch_size: tuple[int, int, int] = (16, 48, 48)  # (z, y, x) voxels: the paper's 48 x 48 x 16
    overlap: float = 0.5
    weighting: Literal["uniform", "gaussian"] = "uniform"
    threshold: float = 0.5
    min_component_fraction: float = 0.1  # drop components < 10 % of the largest (paper 2.6)
    connectivity: int = 1  # 1 = 6-neighbourhood (authors), 3 = 26-neighbourhood
    # A component is kept only if the ensemble reaches this probability somewhere in it (hysteresis):
    # a broad region that is never more than borderline is not called. 0 keeps every component.
    min_peak_probability: float = 0.0
    # Never-empty rule: when nothing passes the threshold but the ensemble is this sure somewhere in
    # the brain, keep the connected region above half that maximum around the peak.
    rescue_min_probability: float = 0.3
    # Average each model over the in-plane flips (left-right, front-back): 4x the compute. The
    # post-processing above is chosen on probabilities made the same way (``ichseg tune-postprocess``).
    tta: bool = False
    batch_size: int = 8

    def __post_init__(self) -> None:
        _check_fields(self)
        _require(self, "patch_size", len(self.patch_size) == 3 and all(isinstance(v, int) and v > 0
                                                                      for v in self.patch_size), "three positive ints")
        _require(self, "overlap", 0 <= self.overlap <= 0.9, "in [0, 0.9]")
        _require(self, "threshold", 0 < self.threshold < 1, "in (0, 1)")
        _require(self, "min_component_fraction", 0 <= self.min_component_fraction <= 1, "in [0, 1]")
        _require(self, "connectivity", self.connectivity in (1, 2, 3), "1, 2 or 3")
        _require(self, "min_peak_probability", 0 <= self.min_peak_probability < 1, "in [0, 1)")
        _require(self, "rescue_min_probability", 0 <= self.rescue_min_probability <= 1, "in [0, 1]")
        _require(self, "tta", isinstance(self.tta, bool), "true or false")
        _require(self, "batch_size", self.batch_size >= 1, "at least 1")


@dataclass(frozen=True)
class IchConfig:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def __post_init__(self) -> None:
        if self.model.in_channels != self.preprocess.in_channels:
            raise ValueError(f"model takes {self.model.in_channels} channels but preprocessing makes "
                             f"{self.preprocess.in_channels}")
        pz, py, px = self.inference.patch_size
        step = 2**self.model.depth
        if pz % step or py % step or px % step:
            raise ValueError(f"patch size {self.inference.patch_size} must be divisible by 2**depth = {step}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IchConfig":
        return cls(preprocess=_build(PreprocessConfig, data.get("preprocess", {})),
                   model=_build(ModelConfig, data.get("model", {})),
                   inference=_build(InferenceConfig, data.get("inference", {})))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _require(obj: Any, name: str, ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"{type(obj).__name__}.{name} = {getattr(obj, name)!r}: must be {what}")


def _check_fields(obj: Any) -> None:
    """Enumerations, booleans and numbers are what their annotation says (JSON would accept anything)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        hint, value = hints[f.name], getattr(obj, f.name)
        if typing.get_origin(hint) is Literal:
            _require(obj, f.name, value in typing.get_args(hint), f"one of {list(typing.get_args(hint))}")
        elif hint is bool:
            _require(obj, f.name, isinstance(value, bool), "true or false")
        elif hint in (int, float):
            _require(obj, f.name, isinstance(value, (int, float)) and not isinstance(value, bool)
                     and (hint is float or float(value).is_integer()), f"a number ({hint.__name__})")


def _build(kind: type, values: dict[str, Any]):
    """Build a frozen dataclass from JSON values; unknown keys are an error, lists become tuples."""
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
