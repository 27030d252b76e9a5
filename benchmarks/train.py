"""Training throughput of the paper-size model (patches/s) and the projected wall time of the full
paper recipe: 5 folds x 80 training cases x 3000 patches per epoch.

    python benchmarks/train.py [--device cpu|cuda] [--steps 5] [--width 32]
"""

from __future__ import annotations

import argparse
import time

import torch

from ich_infer.config import ModelConfig
from ich_infer.model import SEUNet3D
from training.loss import dice_ce_loss
from training.release.tables import table


def throughput(width: int, device: torch.device, batch: int, steps: int) -> float:
    model = SEUNet3D(ModelConfig(base_width=width)).to(device)
    optimizer = torch.optim.Adadelta(model.parameters())
    x = torch.randn(batch, 1, 16, 48, 48, device=device)
    y = torch.rand(batch, 16, 48, 48, device=device) > 0.9
    amp = device.type == "cuda"
    for i in range(steps + 1):
        if i == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            tic = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        loss = dice_ce_loss(logits.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - tic)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    device = torch.device(args.device)
    per_epoch = 5 * 80 * 3000  # patches per epoch summed over the 5 folds
    rows = []
    for width in (8, 16, 32):
        rate = throughput(width, device, args.batch, args.steps)
        rows.append((width, f"{rate:.1f}", f"{per_epoch / rate / 3600:.1f}"))
    print(f"device {device}, batch {args.batch}, patch 48 x 48 x 16, Adadelta, Dice + weighted CE")
    print(table(rows, ("width", "patches/s", "hours per epoch of the full recipe (5 folds)")))
    print("paper recipe: early stopping (patience 10) typically needs tens of epochs; multiply accordingly")


if __name__ == "__main__":
    main()
