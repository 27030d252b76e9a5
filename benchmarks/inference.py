"""Sliding-window inference on a 512 x 512 x 40 phantom with the paper-size model (random weights).

Compares, in one run: (a) ichseg's sliding window, (b) MONAI's ``sliding_window_inference`` with the
same model, tile, overlap and weighting (``pip install 'ichseg[bench]'``), (c) the authors' dense
scheme (step 8 x 8 x 2) timed on a crop and extrapolated; then a full 5-model case. Prints a table,
the agreement of (a) and (b) inside the brain, peak RSS, and as its last line
``speedup_vs_monai=<(b) time / (a) time>``.

    python benchmarks/inference.py [--models 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import instance_like_case, peak_rss_mb

from ich_infer.config import IchConfig, InferenceConfig, ModelConfig, PreprocessConfig
from ich_infer.model import SEUNet3D
from ich_infer.preprocess import preprocess
from ich_infer.sliding_window import brain_tiles, predict_probabilities, tile_starts
from training.release.tables import table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = IchConfig(PreprocessConfig(), ModelConfig(), InferenceConfig(overlap=0.5, weighting="uniform"))
    ph = instance_like_case()
    tic = time.perf_counter()
    pre = preprocess(ph.image.astype(np.float32), ph.geometry.spacing, ph.geometry.direction, cfg.preprocess)
    t_pre = time.perf_counter() - tic
    torch.manual_seed(0)
    models = [SEUNet3D(cfg.model).to(device).eval() for _ in range(args.models)]
    patch = cfg.inference.patch_size
    n_tiles = len(brain_tiles(pre.brain, patch, 0.5))
    steps = [max(1, p // 2) for p in patch]
    n_all = int(np.prod([len(tile_starts(n, p, s)) for n, p, s in zip(pre.brain.shape, patch, steps)]))
    rows = []

    tic = time.perf_counter()
    ours = predict_probabilities(pre.image, pre.brain, models[:1], cfg.inference, device)
    t_ours = time.perf_counter() - tic
    rows.append(("(a) ichseg, 1 model", f"{t_ours:.1f}", n_tiles))

    t_monai = t_monai_crop = None
    try:
        from monai.inferers import sliding_window_inference

        def lesion_prob(x):
            return torch.softmax(models[0](x), dim=1)[:, 1:2]

        def run_monai(volume: np.ndarray) -> tuple[np.ndarray, float]:
            tic = time.perf_counter()
            with torch.inference_mode():
                out = sliding_window_inference(torch.from_numpy(volume[None]).to(device), patch, 8, lesion_prob,
                                               overlap=0.5, mode="constant")[0, 0].cpu().numpy()
            return out, time.perf_counter() - tic

        # (b) as MONAI is used: the whole normalised scan, every window.
        full = np.full((pre.image.shape[0], *pre.canonical_shape), pre.image.min(), np.float32)
        full[(slice(None), *pre.crop)] = pre.image
        _, t_monai = run_monai(full)
        n_full = int(np.prod([len(tile_starts(n, p, s)) for n, p, s in zip(pre.canonical_shape, patch, steps)]))
        rows.append(("(b) MONAI sliding_window_inference on the scan, 1 model", f"{t_monai:.1f}", n_full))
        # (b') MONAI on ichseg's brain crop: isolates brain-only tiling from cropping.
        monai, t_monai_crop = run_monai(pre.image)
        rows.append(("(b') MONAI on ichseg's brain crop, 1 model", f"{t_monai_crop:.1f}", n_all))
        agreement = float(np.abs(monai[pre.brain] - ours[pre.brain]).max())
    except ImportError:
        rows.append(("(b) MONAI (not installed: pip install 'ichseg[bench]')", "-", n_all))
        agreement = float("nan")

    # (c) the authors' dense scheme: every (2, 8, 8) step, timed on a crop and scaled by patch count
    crop = pre.image[:, :32, :144, :144]
    dense_steps = (2, 8, 8)
    crop_n = int(np.prod([len(tile_starts(n, p, s)) for n, p, s in zip(crop.shape[1:], patch, dense_steps)]))
    full_n = int(np.prod([len(tile_starts(n, p, s)) for n, p, s in zip(pre.brain.shape, patch, dense_steps)]))
    tic = time.perf_counter()
    with torch.inference_mode():
        batch = []
        for z in tile_starts(crop.shape[1], patch[0], 2):
            for y in tile_starts(crop.shape[2], patch[1], 8):
                for x in tile_starts(crop.shape[3], patch[2], 8):
                    batch.append(torch.from_numpy(np.ascontiguousarray(crop[:, z:z + 16, y:y + 48, x:x + 48])))
                    if len(batch) == 8:
                        models[0](torch.stack(batch).to(device))
                        batch = []
        if batch:
            models[0](torch.stack(batch).to(device))
    t_dense_crop = time.perf_counter() - tic
    t_dense = t_dense_crop * full_n / crop_n
    rows.append(("(c) authors' dense 8x8x2, 1 model (extrapolated)", f"{t_dense:.0f}", full_n))

    tic = time.perf_counter()
    predict_probabilities(pre.image, pre.brain, models, cfg.inference, device)
    t_full = time.perf_counter() - tic
    rows.append((f"(a) ichseg, {args.models}-model ensemble", f"{t_full:.1f}", n_tiles * args.models))

    print(f"case {ph.image.shape[::-1]} (x, y, z), working volume {pre.brain.shape[::-1]}, "
          f"preprocessing {t_pre:.1f} s, device {device}, {args.threads} threads")
    print(table(rows, ("method", "seconds", "tiles")))
    if t_monai:
        print(f"ratio (b)/(a) = {t_monai / t_ours:.2f}; (b')/(a) = {t_monai_crop / t_ours:.2f}; "
              f"(c)/(a) = {t_dense / t_ours:.1f}")
    print(f"max |p_ours - p_monai| inside the brain = {agreement:.2e} (target <= 1e-4)")
    print(f"full {args.models}-model case (preprocessing + ensemble) = {t_pre + t_full:.1f} s (target <= 180 s)")
    print(f"peak RSS = {peak_rss_mb():.0f} MB (target <= 4096)")
    print(f"speedup_vs_monai={(t_monai / t_ours) if t_monai else float('nan'):.2f}")


if __name__ == "__main__":
    main()
