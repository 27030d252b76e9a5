"""Online hard-example mining: where the model being trained currently sees blood that is not there,
and where it misses blood that is.

At the start of every training epoch (when a configuration's ``mined_negative_fraction`` or
``missed_lesion_fraction`` is above 0) the model segments each of its training images on the working
grid, by the same sliding window as inference. The lesion-free islands it marks become negative patch
centres for that epoch (``training.sampling.false_positive_voxels``), the lesion voxels it leaves out
become lesion centres (``training.sampling.missed_lesion_voxels``). As the model stops making a
mistake, the mistake stops being sampled, and new ones take its place; the brightest-voxel heuristic
(``hard_negative_fraction``) and uniform lesion sampling can only guess where the mistakes are.

The mining reads the model state that the epoch's checkpoint restores, so ``--resume`` mines the
same voxels as an uninterrupted run. Cost: one sliding-window pass per training image per epoch, at
``mining_overlap`` (0.25 needs about a third of the tiles of inference's 0.5).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import torch

from ich_infer.sliding_window import predict_probabilities

from .configs import TrainConfig
from .data import CaseArrays
from .sampling import false_positive_voxels, missed_lesion_voxels


@dataclass(frozen=True)
class MinedErrors:
    """Flat voxel indices per case, keyed by the case's index in the training list."""

    false_positives: dict[int, np.ndarray]
    missed: dict[int, np.ndarray]


def mine_errors(model: torch.nn.Module, cases: list[CaseArrays], cfg: TrainConfig,
                device: torch.device) -> MinedErrors:
    """Each case's false-positive islands and missed lesion voxels under the current model."""
    inference = replace(cfg.ich.inference, overlap=cfg.mining_overlap)
    # A copy: inference converts a model's memory format under inference mode, which would leave the
    # trained parameters as inference tensors that autograd refuses, and would switch off dropout.
    frozen = copy.deepcopy(model).eval()
    negatives, missed = {}, {}
    for index, arrays in enumerate(cases):
        prob = predict_probabilities(arrays.image, arrays.brain, [frozen], inference, device)
        negatives[index] = false_positive_voxels(prob, arrays, cfg.mining_threshold, cfg.mining_margin_mm)
        missed[index] = missed_lesion_voxels(prob, arrays, cfg.missed_threshold)
    return MinedErrors(negatives, missed)
