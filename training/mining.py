"""Online hard-negative mining: where the model being trained currently sees blood that is not there.

At the start of every training epoch (when a configuration's ``mined_negative_fraction`` is above 0)
the model segments each of its training images on the working grid, by the same sliding window as
inference. The lesion-free islands it marks become negative patch centres for that epoch
(``training.sampling.false_positive_voxels``). As the model stops making a mistake, the mistake
stops being sampled, and new ones take its place.

The mining reads the model state that the epoch's checkpoint restores, so ``--resume`` mines the
same voxels as an uninterrupted run. Cost: one sliding-window pass per training image per epoch, at
``mining_overlap`` (0.25 needs about a third of the tiles of inference's 0.5).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch

from ich_infer.sliding_window import predict_probabilities

from .configs import TrainConfig
from .data import CaseArrays
from .sampling import false_positive_voxels


def mine_false_positives(model: torch.nn.Module, cases: list[CaseArrays], cfg: TrainConfig,
                         device: torch.device) -> dict[int, np.ndarray]:
    """Each case's false-positive islands under the current model (flat indices, by case index)."""
    inference = replace(cfg.ich.inference, overlap=cfg.mining_overlap, tta=False)  # the model as trained
    # A copy: inference converts a model's memory format under inference mode, which would leave the
    # trained parameters as inference tensors that autograd refuses, and would switch off dropout.
    frozen = copy.deepcopy(model).eval()
    negatives = {}
    for index, arrays in enumerate(cases):
        prob = predict_probabilities(arrays.image, arrays.brain, [frozen], inference, device)
        negatives[index] = false_positive_voxels(prob, arrays, cfg.mining_threshold, cfg.mining_margin_mm)
    return negatives
