"""Dice + weighted cross-entropy (paper 2.5): the lesion class weighs 2 in the cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, lesion_weight: float = 2.0,
                 smooth: float = 1.0) -> torch.Tensor:
    """``logits`` (N, 2, ...) and boolean ``target`` (N, ...): weighted CE + (1 - soft Dice of the lesion).

    The Dice term is computed over the whole batch (one ratio), which keeps it defined for batches
    whose patches hold no lesion.
    """
    target = target.long()
    weight = torch.tensor([1.0, lesion_weight], device=logits.device, dtype=logits.dtype)
    ce = F.cross_entropy(logits, target, weight=weight)
    prob = torch.softmax(logits, dim=1)[:, 1]
    truth = target.to(prob.dtype)
    dice = (2 * (prob * truth).sum() + smooth) / (prob.sum() + truth.sum() + smooth)
    return ce + (1 - dice)

