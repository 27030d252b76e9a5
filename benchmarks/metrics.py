"""Challenge-metric evaluation time on a 512 x 512 x 40 pair (target: <= 2 s), against the
DeepMind reference where installed.

    python benchmarks/metrics.py
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage as ndi

from ich_infer.metrics import case_metrics
from training.release.tables import table


def haematoma_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two irregular haematomas (~70 mL together) and a prediction that is off at the boundary,
    misses a bit and adds a false-positive island: a realistic INSTANCE case."""
    shape = (40, 512, 512)
    zz, yy, xx = np.ogrid[:40, :512, :512]
    wobble = ndi.zoom(rng.random((40, 64, 64)), (1, 8, 8), order=1)
    gt = (((zz - 18) / 5) ** 2 + ((yy - 220) / 70) ** 2 + ((xx - 180) / 55) ** 2 + 0.6 * wobble < 1.2) \
        | (((zz - 25) / 2.5) ** 2 + ((yy - 330) / 35) ** 2 + ((xx - 350) / 30) ** 2 < 1)
    pred = ndi.binary_dilation(gt, iterations=2) & ~(((yy - 260) / 20) ** 2 + ((xx - 200) / 20) ** 2 < 1)
    pred |= ((zz - 10) ** 2 < 2) & (((yy - 100) / 8) ** 2 + ((xx - 400) / 8) ** 2 < 1)
    assert gt.shape == shape
    return gt, pred


def stress_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blobs over the whole volume (3 M voxels, noisy surfaces): the worst case, not a real one."""
    base = ndi.gaussian_filter(rng.random((40, 128, 128)), (1, 4, 4))
    gt = ndi.zoom(base, (1, 4, 4), order=1) > 0.515
    pred = ndi.binary_dilation(gt, iterations=2) ^ (ndi.zoom(rng.random((40, 64, 64)), (1, 8, 8), order=0) > 0.97)
    return gt, pred


def main() -> None:
    rng = np.random.default_rng(0)
    spacing = (5.0, 0.42, 0.42)
    try:
        if not hasattr(np, "Inf"):
            np.Inf = np.inf
        from surface_distance import metrics as ref
    except ImportError:
        ref = None
    rows, headline = [], None
    for name, (gt, pred) in (("haematomas", haematoma_pair(rng)), ("stress", stress_pair(rng))):
        tic = time.perf_counter()
        ours = case_metrics(gt, pred, spacing)
        t_ours = time.perf_counter() - tic
        headline = headline if headline is not None else t_ours
        rows.append((name, f"{int(gt.sum())}/{int(pred.sum())}", "ichseg", f"{t_ours:.2f}", f"{ours['hd']:.4f}",
                     f"{ours['nsd']:.6f}"))
        if ref is not None:
            tic = time.perf_counter()
            sd = ref.compute_surface_distances(gt, pred, spacing)
            hd, nsd = ref.compute_robust_hausdorff(sd, 100), ref.compute_surface_dice_at_tolerance(sd, 0.42)
            rows.append((name, "", "surface-distance", f"{time.perf_counter() - tic:.2f}", f"{hd:.4f}", f"{nsd:.6f}"))
    print(f"pairs of 512 x 512 x 40 at {spacing[::-1]} mm")
    print(table(rows, ("pair", "voxels gt/pred", "implementation", "seconds", "HD mm", "NSD")))
    print(f"metrics_seconds={headline:.2f} (target <= 2, realistic pair)")


if __name__ == "__main__":
    main()
