"""One fold's training loop: patches per epoch, Dice + weighted cross-entropy, Adadelta, early stopping.

Every random draw of an epoch is seeded from (seed, fold, epoch) and the loop state is checkpointed
after every epoch, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ich_infer.io import atomic_write_text
from ich_infer.model import SEUNet3D

from .checkpoint import load_checkpoint, save_checkpoint
from .configs import TrainConfig
from .data import CaseArrays
from .loss import dice_ce_loss
from .mining import mine_false_positives
from .sampling import PatchSpec, SamplingConfig, epoch_specs, extract, hard_cases

LOG_COLUMNS = ["epoch", "train_loss", "val_loss", "val_dice", "seconds", "patches_per_s", "best"]


@dataclass(frozen=True)
class FoldPlace:
    """Where and how a fold trains: device, work folder (checkpoints, log), resume, progress lines."""

    device: torch.device
    work: Path
    resume: bool = False
    echo: Callable[[str], None] = print


class PatchDataset(Dataset):
    def __init__(self, cases: list[CaseArrays], specs: list[PatchSpec], patch: tuple[int, int, int]):
        self.cases, self.specs, self.patch = cases, specs, patch

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, i: int):
        spec = self.specs[i]
        image, label = extract(self.cases[spec.case_index], spec, self.patch)
        return torch.from_numpy(image), torch.from_numpy(label)


def loader(cases, specs, cfg: TrainConfig, device: torch.device) -> DataLoader:
    return DataLoader(PatchDataset(cases, specs, tuple(cfg.ich.inference.patch_size)), batch_size=cfg.batch_size,
                      shuffle=False, num_workers=cfg.workers, pin_memory=device.type == "cuda")


@dataclass
class FoldResult:
    fold: int
    model: SEUNet3D
    epochs: int
    best_epoch: int
    best_val_loss: float
    history: list[dict] = field(default_factory=list)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adadelta (the paper's), or Adam for fine-tuning: Adadelta's step starts near zero with a fresh
    state (its running averages begin empty), so a few hundred steps from released weights barely
    move them."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    return torch.optim.Adadelta(model.parameters(), lr=cfg.learning_rate)


def seed_epoch(cfg: TrainConfig, fold: int, epoch: int) -> np.random.Generator:
    torch.manual_seed(cfg.seed * 1_000_003 + fold * 1009 + epoch)
    return np.random.default_rng([cfg.seed, fold, epoch])


def run_epoch(model, batches, optimizer, cfg: TrainConfig, device: torch.device) -> tuple[float, float]:
    """One pass; trains when ``optimizer`` is given. Returns (mean loss, Dice over all patches)."""
    training = optimizer is not None
    model.train(training)
    total, count, inter, denom = 0.0, 0, 0, 0
    use_amp = device.type == "cuda"
    with torch.set_grad_enabled(training):
        for image, label in batches:
            image, label = image.to(device, non_blocking=True), label.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(image)
            loss = dice_ce_loss(logits.float(), label, cfg.lesion_weight)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            total += float(loss.detach()) * len(image)
            count += len(image)
            if not training:
                pred = logits.argmax(dim=1).bool()
                inter += int((pred & label).sum())
                denom += int(pred.sum()) + int(label.sum())
    return total / max(count, 1), (1.0 if denom == 0 else 2.0 * inter / denom)


def train_fold(fold: int, train: list[CaseArrays], val: list[CaseArrays], cfg: TrainConfig, where: FoldPlace,
               init: dict[str, torch.Tensor] | None = None) -> FoldResult:
    """Train one fold to early stopping (or ``max_epochs``) and return its best epoch's model."""
    device, work, echo = where.device, where.work, where.echo
    work.mkdir(parents=True, exist_ok=True)
    last_path, best_path = work / f"fold_{fold}_last.pt", work / f"fold_{fold}_best.pt"
    log_path = work / f"fold_{fold}_log.csv"
    torch.manual_seed(cfg.seed * 7919 + fold)
    model = SEUNet3D(cfg.ich.model).to(device)
    if init is not None:
        model.load_state_dict(init)
    optimizer = make_optimizer(model, cfg)
    meta = {"epoch": -1, "best_val_loss": math.inf, "best_epoch": -1, "bad_epochs": 0, "stopped": False,
            "history": []}
    if where.resume and last_path.is_file():
        meta = load_checkpoint(last_path, model, optimizer)
        echo(f"fold {fold}: resuming after epoch {meta['epoch']}")
    hard = hard_cases(train, cfg.hard_case_fraction)
    val_specs = epoch_specs(val, SamplingConfig(cfg.val_patches_per_image, cfg.lesion_fraction, augment=False),
                            np.random.default_rng([cfg.seed, fold, 10**6]))
    val_loader = loader(val, val_specs, cfg, device)
    epoch = meta["epoch"] + 1
    while epoch < cfg.max_epochs and not meta["stopped"]:
        tic = time.perf_counter()
        mined = None
        if cfg.mined_negative_fraction > 0:
            mined = mine_false_positives(model, train, cfg, device)
            echo(f"fold {fold} epoch {epoch}: mined {sum(map(len, mined.values()))} false-positive voxels in "
                 f"{sum(len(m) > 0 for m in mined.values())}/{len(train)} training images "
                 f"({time.perf_counter() - tic:.0f} s)")
        specs = epoch_specs(train, cfg.sampling(), seed_epoch(cfg, fold, epoch), hard, mined)
        tic = time.perf_counter()
        train_loss, _ = run_epoch(model, loader(train, specs, cfg, device), optimizer, cfg, device)
        train_s = time.perf_counter() - tic
        val_loss, val_dice = run_epoch(model, val_loader, None, cfg, device)
        improved = val_loss < meta["best_val_loss"]
        if improved:
            meta.update(best_val_loss=val_loss, best_epoch=epoch, bad_epochs=0)
            save_checkpoint(best_path, model, None, {"epoch": epoch})
        else:
            meta["bad_epochs"] += 1
            meta["stopped"] = meta["bad_epochs"] >= cfg.patience
        row = {"epoch": epoch, "train_loss": round(train_loss, 5), "val_loss": round(val_loss, 5),
               "val_dice": round(val_dice, 4), "seconds": round(time.perf_counter() - tic, 1),
               "patches_per_s": round(len(specs) / max(train_s, 1e-9), 1), "best": improved}
        meta["history"].append(row)
        meta["epoch"] = epoch
        save_checkpoint(last_path, model, optimizer, meta)
        _write_log(log_path, meta["history"])
        echo(f"fold {fold} epoch {epoch}: loss {train_loss:.4f}, val loss {val_loss:.4f}, val Dice {val_dice:.3f}, "
             f"{row['patches_per_s']} patches/s{' *' if improved else ''}")
        epoch += 1
    best = SEUNet3D(cfg.ich.model).to(device)
    load_checkpoint(kept_checkpoint(work, fold, cfg), best)
    return FoldResult(fold, best.eval(), meta["epoch"] + 1, meta["best_epoch"], meta["best_val_loss"], meta["history"])


def kept_checkpoint(work: Path, fold: int, cfg: TrainConfig) -> Path:
    """The checkpoint a finished fold ships: its best-validation epoch, or its last (``cfg.keep``)."""
    best, last = work / f"fold_{fold}_best.pt", work / f"fold_{fold}_last.pt"
    return best if cfg.keep == "best" and best.is_file() else last


def _write_log(path: Path, history: list[dict]) -> None:
    lines = [",".join(LOG_COLUMNS)] + [",".join(str(row[c]) for c in LOG_COLUMNS) for row in history]
    atomic_write_text(path, "\n".join(lines) + "\n")
