"""The one configuration object shared by training and inference.

Training writes :class:`IchConfig` into the weights manifest; inference reads it back from there and
never from its own defaults, so preprocessing, tiling and postprocessing cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
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
    # Never-empty rule: when nothing passes the threshold but the ensemble is this sure somewhere in
    # the brain, keep the connected region above half that maximum around the peak.
    rescue_min_probability: float = 0.3
    batch_size: int = 8


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


def _build(kind: type, values: dict[str, Any]):
    """Build a frozen dataclass from JSON values; unknown keys are an error, lists become tuples."""
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
