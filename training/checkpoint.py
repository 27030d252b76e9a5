"""Per-epoch training checkpoints: model, optimiser and loop state in one file, written atomically.

``torch.save`` of state dicts and plain Python values, read back with ``torch.load(weights_only=True)``,
which refuses anything but tensors and primitive containers, so a checkpoint cannot run code.
Released weights are safetensors (``ich_infer.weights``); checkpoints never leave the work folder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ich_infer.io import atomic_output


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, meta: dict) -> None:
    payload = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "optimizer": optimizer.state_dict() if optimizer is not None else None, "meta": meta}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore ``model`` (and ``optimizer`` when given) from ``path``; returns the loop state."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(payload["model"])
    if optimizer is not None and payload["optimizer"] is not None:
        optimizer.load_state_dict(payload["optimizer"])
    return payload["meta"]
