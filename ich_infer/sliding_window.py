"""Sliding-window prediction of one volume with an ensemble of fold models.

Tiles are exactly the training patch size: the SE blocks pool over their whole input, so a larger
tile would change every output. Only tiles that touch the brain are run (outside it the answer is
background by construction), tiles are batched, and the per-voxel average of the fold models'
softmax is accumulated with uniform (the authors) or Gaussian (nnU-Net) weights.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch

from .config import InferenceConfig

log = logging.getLogger(__name__)


def tile_starts(size: int, patch: int, step: int) -> list[int]:
    """Start offsets covering ``[0, size)`` with tiles of ``patch``; the last tile ends at ``size``."""
    if size <= patch:
        return [0]
    starts = list(range(0, size - patch + 1, step))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def gaussian_importance(patch: Sequence[int], sigma_scale: float = 0.125) -> np.ndarray:
    """nnU-Net's tile weighting: a Gaussian with sigma = patch/8, scaled to max 1, floored at 1e-3 so
    that voxels seen only by a tile corner (volume corners) still get a well-conditioned average."""
    grids = np.meshgrid(*[np.arange(p) - (p - 1) / 2 for p in patch], indexing="ij")
    weight = np.exp(-sum(g**2 / (2 * (p * sigma_scale) ** 2) for g, p in zip(grids, patch)))
    weight /= weight.max()
    return np.maximum(weight, 1e-3).astype(np.float32)


def brain_tiles(brain: np.ndarray, patch: Sequence[int], overlap: float) -> list[tuple[int, int, int]]:
    """Tile origins whose window contains at least one brain voxel (summed-area table, O(1) per tile)."""
    steps = [max(1, int(round(p * (1 - overlap)))) for p in patch]
    table = np.pad(brain.astype(np.int64), ((1, 0),) * 3).cumsum(0).cumsum(1).cumsum(2)
    out = []
    for z, y, x in itertools.product(*(tile_starts(n, p, s) for n, p, s in zip(brain.shape, patch, steps))):
        z1, y1, x1 = z + patch[0], y + patch[1], x + patch[2]
        total = (table[z1, y1, x1] - table[z, y1, x1] - table[z1, y, x1] - table[z1, y1, x]
                 + table[z, y, x1] + table[z, y1, x] + table[z1, y, x] - table[z, y, x])
        if total > 0:
            out.append((z, y, x))
    return out


def _flip_sets(tta: bool) -> list[tuple[int, ...]]:
    # In-plane flips only: the training augmentation flips in-plane; an upside-down head is never seen.
    return [(), (4,), (3,), (3, 4)] if tta else [()]


@dataclass(frozen=True)
class _Pass:
    """How one sliding-window pass runs: tile shape and weight, batching, where to compute and store."""

    patch: tuple[int, int, int]
    weight: np.ndarray
    batch_size: int
    device: torch.device
    store: torch.device
    tta: bool
    on_tile: Callable[[int, int], None] | None = None


@torch.inference_mode()
def predict_probabilities(image: np.ndarray, brain: np.ndarray, models: Sequence[torch.nn.Module],
                          cfg: InferenceConfig, device: torch.device | str = "cpu",
                          on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Mean lesion probability of ``models`` over ``image`` ``(C, S, P, L)``; zero outside the brain.

    ``cfg.tta`` also averages each model over the in-plane flips. ``on_tile(done, total)`` is told
    after every batch of tiles (a progress bar's hook).
    """
    device = torch.device(device)
    patch = tuple(cfg.patch_size)
    pad = [(0, max(0, p - n)) for p, n in zip(patch, brain.shape)]
    if any(after for _, after in pad):  # volumes thinner than a tile: pad with each channel's floor
        image = np.stack([np.pad(c, pad, constant_values=float(c.min())) for c in image])
        brain = np.pad(brain, pad)
    tiles = brain_tiles(brain, patch, cfg.overlap)
    weight = gaussian_importance(patch) if cfg.weighting == "gaussian" else np.ones(patch, np.float32)
    plan = _Pass(patch, weight, cfg.batch_size, device, device, cfg.tta, on_tile)
    try:
        prob = _accumulate(image, tiles, models, plan)
    except torch.cuda.OutOfMemoryError:
        log.warning("GPU out of memory: stitching on the CPU with batch size 1")
        torch.cuda.empty_cache()
        prob = _accumulate(image, tiles, models, replace(plan, batch_size=1, store=torch.device("cpu")))
    prob[~brain] = 0.0
    return prob[: brain.shape[0] - pad[0][1], : brain.shape[1] - pad[1][1], : brain.shape[2] - pad[2][1]]


def _accumulate(image, tiles, models, plan: _Pass) -> np.ndarray:
    patch, device, store = plan.patch, plan.device, plan.store
    shape = image.shape[1:]
    total = torch.zeros(shape, dtype=torch.float32, device=store)
    norm = torch.zeros(shape, dtype=torch.float32, device=store)
    w = torch.from_numpy(plan.weight).to(store)
    source = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    flips = _flip_sets(plan.tta)
    use_amp = device.type == "cuda"
    # channels-last 3D lets oneDNN/cuDNN pick their fast convolution kernels (about 1.5-2x on CPU).
    fmt = torch.channels_last_3d
    models = [model.to(memory_format=fmt) for model in models]
    for start in range(0, len(tiles), plan.batch_size):
        chunk = tiles[start:start + plan.batch_size]
        batch = torch.stack([source[:, z:z + patch[0], y:y + patch[1], x:x + patch[2]] for z, y, x in chunk])
        batch = batch.to(device, non_blocking=True).contiguous(memory_format=fmt)
        prob = torch.zeros((len(chunk), *patch), dtype=torch.float32, device=device)
        for model in models:
            for dims in flips:
                inp = torch.flip(batch, dims) if dims else batch
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits = model(inp)
                p = torch.softmax(logits.float(), dim=1)[:, 1]
                prob += torch.flip(p, tuple(d - 1 for d in dims)) if dims else p
        prob = (prob / (len(models) * len(flips))).to(store)
        for (z, y, x), p in zip(chunk, prob):
            region = (slice(z, z + patch[0]), slice(y, y + patch[1]), slice(x, x + patch[2]))
            total[region] += p * w
            norm[region] += w
        if plan.on_tile is not None:
            plan.on_tile(start + len(chunk), len(tiles))
    out = torch.where(norm > 0, total / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(total))
    return out.cpu().numpy()
