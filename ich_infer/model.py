"""Section 2.4: 3D U-Net with squeeze-and-excitation blocks.

One 3x3x3 convolution + ReLU per level; 2x2x2 max-pool (or strided conv, as in the authors' code)
followed by dropout on the way down; 2x2x2 transposed convolution followed by dropout on the way
up; skip connections by concatenation (paper figure) or addition (authors' code). Tensors are
``(N, C, S, P, L)``; a 48 x 48 x 16 patch is ``(16, 48, 48)``. Every spatial size must be divisible
by ``2**depth`` (16 for the paper's 4 poolings: z 16 -> 8 -> 4 -> 2 -> 1); odd sizes are rejected
rather than silently cropped, and the sliding window only ever feeds full training-size tiles.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig


class SqueezeExcitation(nn.Module):
    """Channel re-weighting by globally pooled features (Hu et al.): C -> C/r -> C, sigmoid gate."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3, 4))
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(w))))
        return x * w[:, :, None, None, None]


class ConvReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv3d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))


class SEUNet3D(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.widths
        place = cfg.se_placement

        def se(channels: int, here: bool) -> nn.Module:
            return SqueezeExcitation(channels, cfg.se_reduction) if here else nn.Identity()

        self.encoders = nn.ModuleList()
        self.encoder_se = nn.ModuleList()
        self.downs = nn.ModuleList()
        cin = cfg.in_channels
        for level, width in enumerate(widths):
            self.encoders.append(ConvReLU(cin, width))
            last = level == cfg.depth
            self.encoder_se.append(se(width, place in ("encoder", "all") or (place == "ends" and last)))
            if not last:
                down = nn.MaxPool3d(2) if cfg.downsample == "maxpool" else nn.Conv3d(width, width, 2, stride=2)
                self.downs.append(nn.Sequential(down, nn.Dropout3d(cfg.dropout)))
            cin = width
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.decoder_se = nn.ModuleList()
        for level in range(cfg.depth - 1, -1, -1):
            width = widths[level]
            self.ups.append(nn.Sequential(nn.ConvTranspose3d(widths[level + 1], width, 2, stride=2),
                                          nn.Dropout3d(cfg.dropout)))
            self.decoders.append(ConvReLU(2 * width if cfg.skip == "concat" else width, width))
            self.decoder_se.append(se(width, place == "all" or (place == "ends" and level == 0)))
        self.head = nn.Conv3d(widths[0], cfg.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = 2**self.cfg.depth
        if any(s % step for s in x.shape[2:]):
            raise ValueError(f"spatial size {tuple(x.shape[2:])} must be divisible by {step}")
        skips = []
        for level, (enc, gate) in enumerate(zip(self.encoders, self.encoder_se)):
            x = gate(enc(x))
            if level < self.cfg.depth:
                skips.append(x)
                x = self.downs[level](x)
        for up, dec, gate, skip in zip(self.ups, self.decoders, self.decoder_se, reversed(skips)):
            x = up(x)
            x = torch.cat([skip, x], dim=1) if self.cfg.skip == "concat" else x + skip
            x = gate(dec(x))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
