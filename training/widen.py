"""Widen a trained ensemble without changing what it computes (Net2WiderNet, Chen et al. 2016).

Every channel of every level is copied ``factor`` times; the layer that reads a copied channel
gets its weight divided among the copies, so the wider network's output equals the narrower one's.
Squeeze-and-excitation blocks are widened the same way (their hidden units too). A little noise,
relative to each weight tensor's spread, breaks the symmetry between copies so that fine-tuning
can make them differ.

Why: on a CPU, a wider network trained from scratch costs many sessions; widened, it starts from
the narrower release and only has to learn what the extra channels can add.

    python -m training.widen weights runs/weights_w16_init --factor 2 --noise 0.01
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from ich_infer.config import ModelConfig
from ich_infer.model import SEUNet3D
from ich_infer.weights import MANIFEST, load_weights, save_weights, sha256_of


def _copies(old: list[int], new: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """For concatenated channel groups: each new channel's source channel, and how many copies it has."""
    index, count, offset = [], [], 0
    for o, n in zip(old, new):
        index += [offset + c % o for c in range(n)]
        count += [n // o] * n
        offset += o
    return torch.tensor(index), torch.tensor(count, dtype=torch.float32)


def _layers(cfg: ModelConfig, wide: ModelConfig) -> dict[str, tuple]:
    """Parameter prefix -> (input groups, wide input groups, outputs, wide outputs, kind)."""
    w, v = cfg.widths, wide.widths
    layers: dict[str, tuple] = {}
    cin, vin = [cfg.in_channels], [wide.in_channels]
    for level in range(cfg.depth + 1):
        layers[f"encoders.{level}.0"] = (cin, vin, w[level], v[level], "conv")
        layers[f"encoder_se.{level}"] = ([w[level]], [v[level]], w[level], v[level], "se")
        if cfg.downsample == "conv" and level < cfg.depth:
            layers[f"downs.{level}.0"] = ([w[level]], [v[level]], w[level], v[level], "conv")
        cin, vin = [w[level]], [v[level]]
    for k, level in enumerate(range(cfg.depth - 1, -1, -1)):
        layers[f"ups.{k}.0"] = ([w[level + 1]], [v[level + 1]], w[level], v[level], "transposed")
        groups = 2 if cfg.skip == "concat" else 1
        layers[f"decoders.{k}.0"] = ([w[level]] * groups, [v[level]] * groups, w[level], v[level], "conv")
        layers[f"decoder_se.{k}"] = ([w[level]], [v[level]], w[level], v[level], "se")
    layers["head"] = ([w[0]], [v[0]], cfg.num_classes, cfg.num_classes, "conv")
    return layers


def widen_state(state: dict[str, torch.Tensor], cfg: ModelConfig, factor: int) -> dict[str, torch.Tensor]:
    """The state dict of ``cfg`` with ``base_width * factor`` that computes the same function."""
    wide = replace(cfg, base_width=cfg.base_width * factor)
    target = SEUNet3D(wide).state_dict()
    out: dict[str, torch.Tensor] = {}
    for prefix, (gin, vin, cout, vout, kind) in _layers(cfg, wide).items():
        if kind == "se":
            if f"{prefix}.fc1.weight" not in state:
                continue
            hidden, wide_hidden = state[f"{prefix}.fc1.weight"].shape[0], target[f"{prefix}.fc1.weight"].shape[0]
            src, n = _copies(gin, vin)
            hid, hn = _copies([hidden], [wide_hidden])
            out[f"{prefix}.fc1.weight"] = state[f"{prefix}.fc1.weight"].float()[hid][:, src] / n
            out[f"{prefix}.fc1.bias"] = state[f"{prefix}.fc1.bias"].float()[hid]
            out[f"{prefix}.fc2.weight"] = state[f"{prefix}.fc2.weight"].float()[src][:, hid] / hn
            out[f"{prefix}.fc2.bias"] = state[f"{prefix}.fc2.bias"].float()[src]
            continue
        src, n = _copies(gin, vin)
        dst = torch.arange(vout) % cout
        weight = state[f"{prefix}.weight"].float()
        if kind == "conv":  # (out, in, kernel...)
            out[f"{prefix}.weight"] = weight[dst][:, src] / n[None, :, None, None, None]
        else:  # transposed convolution: (in, out, kernel...)
            out[f"{prefix}.weight"] = weight[src][:, dst] / n[:, None, None, None, None]
        out[f"{prefix}.bias"] = state[f"{prefix}.bias"].float()[dst]
    if set(out) != set(target):
        raise ValueError(f"widening does not cover {sorted(set(target) ^ set(out))}")
    return out


def jitter(state: dict[str, torch.Tensor], noise: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Gaussian noise of ``noise`` times each weight tensor's standard deviation (biases untouched)."""
    return {k: (v + noise * v.std() * torch.randn(v.shape, generator=generator)
                if k.endswith("weight") and v.ndim > 1 else v) for k, v in state.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ensemble = load_weights(args.weights)
    cfg = ensemble.config
    wide = replace(cfg.model, base_width=cfg.model.base_width * args.factor)
    models, generator = [], torch.Generator().manual_seed(args.seed)
    for model in ensemble.models:
        net = SEUNet3D(wide)
        state = widen_state(model.float().state_dict(), cfg.model, args.factor)
        net.load_state_dict(jitter(state, args.noise, generator))
        models.append(net)
    parent = {"weights": str(args.weights), "manifest_sha256": sha256_of(args.weights / MANIFEST)}
    save_weights(args.out, replace(cfg, model=wide), models,
                 {"widened_from": parent, "factor": args.factor, "noise": args.noise, "seed": args.seed})
    print(f"{args.out}: {len(models)} models, width {cfg.model.base_width} -> {wide.base_width}")


if __name__ == "__main__":
    main()
