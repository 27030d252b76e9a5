"""Choose the post-processing on cross-validation predictions, as nnU-Net does, and show the trade-off.

Every case is segmented by the fold model that did not see it (the folds are re-derived from the
training configuration in the manifest), its probabilities on the scan's own grid are cached once,
and then the threshold, the minimum component fraction and an optional minimum component peak
probability are swept over the cache. Mirroring test-time augmentation is measured as well when
``--tta`` is given (four times the inference). Prints one row per setting: mean Dice over all cases
and over lesion cases, lesion cases detected, and the false-positive volume on lesion-free cases.

    python benchmarks/postprocess_sweep.py --data runs/phantoms_v2 --weights weights --cache runs/sweep_v2 [--tta]
    python benchmarks/postprocess_sweep.py ... --breakdown --thresholds 0.5 --fractions 0.1   # where the errors are
    python benchmarks/postprocess_sweep.py ... --breakdown --csv runs/r4_v3.csv   # also per case, for paired.py
    python benchmarks/postprocess_sweep.py --data runs/phantoms_v7_tune --unseen --cache runs/sweep_r7_tune   # ensemble
    python benchmarks/postprocess_sweep.py ... --rescue   # each setting followed by the never-empty rule

Tuning on the same cases one reports is optimistic: settle the rule on one phantom set and report
it on another.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import table
from scipy import ndimage as ndi

from ich_infer.config import InferenceConfig
from ich_infer.io import atomic_write_text, read_image, read_mask
from ich_infer.metrics import dice
from ich_infer.postprocess import postprocess, rescue_empty
from ich_infer.predict import DEFAULT_WEIGHTS, native_probabilities
from ich_infer.weights import Ensemble, load_weights
from training.cv import split_folds
from training.data import discover


def cached_probabilities(data: Path, ensemble: Ensemble, cache: Path, tta: bool,
                         only_folds: list[int] | None = None, unseen: bool = False) -> list[Path]:
    """One ``.npz`` per case: native-grid probability (uint8, /255), brain mask, label, voxel mL.

    ``unseen``: no fold model saw ``data``, so every case is segmented by the whole ensemble, as the
    product would (its probabilities peak lower on false positives than one fold model's do), and
    the rule can be tuned on phantoms other than those it is reported on (``fold`` is then -1).
    """
    train_cfg = ensemble.manifest.get("training", {}).get("train_config", {})
    cases = discover(data)
    folds = [list(range(len(cases)))] if unseen else \
        split_folds(len(cases), len(ensemble.models), int(train_cfg.get("seed", 0)))
    cache.mkdir(parents=True, exist_ok=True)
    files = []
    for fold, held_out in enumerate(folds):
        if only_folds is not None and fold not in only_folds:
            continue
        for index in held_out:
            case = cases[index]
            target = cache / f"{case.case}{'_tta' if tta else ''}.npz"
            files.append(target)
            if target.is_file():
                continue
            volume, geometry = read_image(case.image)
            truth, _ = read_mask(case.label)
            model = ensemble if unseen else Ensemble(ensemble.config, [ensemble.models[fold]])
            prob, pre = native_probabilities(volume, geometry, model, "cpu", tta)
            np.savez_compressed(target, prob=np.round(prob * 255).astype(np.uint8), brain=pre.brain_native,
                                label=truth.astype(bool), voxel_ml=geometry.voxel_volume_ml,
                                fold=-1 if unseen else fold)
            print(f"{'ensemble' if unseen else f'fold {fold}'} {case.case}: cached", flush=True)
    return files


def component_table(prob: np.ndarray, brain: np.ndarray, label: np.ndarray, threshold: float):
    """Per connected component of the thresholded brain: size, peak probability, voxels on the lesion."""
    mask = (prob >= threshold) & brain
    labels, n = ndi.label(mask)
    inside = labels[mask]
    sizes = np.bincount(inside, minlength=n + 1)[1:]
    overlap = np.bincount(labels[mask & label], minlength=n + 1)[1:]
    peaks = np.zeros(n + 1)
    np.maximum.at(peaks, inside, prob[mask])
    return sizes, peaks[1:], overlap


def kept(sizes: np.ndarray, peaks: np.ndarray, min_fraction: float, min_peak: float) -> np.ndarray:
    """Components that survive: at least ``min_fraction`` of the largest (as ``ich_infer.postprocess``)
    and, optionally, a peak probability of at least ``min_peak``."""
    if not len(sizes):
        return np.zeros(0, bool)
    return (sizes >= min_fraction * sizes.max()) & (peaks >= min_peak)


def rescued_score(score_: tuple[float, int, int], prob: np.ndarray, brain: np.ndarray, label: np.ndarray,
                  inference: InferenceConfig) -> tuple[float, int, int]:
    """``score_`` with the product's never-empty rule applied when the setting kept nothing: a peak
    filter empties cases that the rule then refills, so the two must be scored together."""
    if score_[2] > 0:
        return score_
    region = rescue_empty(prob, brain, inference)
    if region is None:
        return score_
    return dice(label, region), int((region & label).sum()), int(region.sum())


def score(sizes: np.ndarray, peaks: np.ndarray, overlap: np.ndarray, truth_voxels: int,
          min_fraction: float, min_peak: float) -> tuple[float, int, int]:
    """Dice, lesion voxels found and mask voxels over the :func:`kept` components."""
    keep = kept(sizes, peaks, min_fraction, min_peak)
    found, total = int(overlap[keep].sum()), int(sizes[keep].sum())
    both = total + truth_voxels
    return (1.0 if both == 0 else 2.0 * found / both), found, total


def error_breakdown(prob: np.ndarray, brain: np.ndarray, label: np.ndarray, voxel_ml: float,
                    threshold: float, min_fraction: float) -> dict[str, float]:
    """Where one case's errors are, in mL: missed lesion (and how much of it lies outside the brain
    mask, where no threshold can find it), false positive in components touching the lesion
    (boundary) and in components apart from it."""
    sizes, peaks, overlap = component_table(prob, brain, label, threshold)
    dice, found, total = score(sizes, peaks, overlap, int(label.sum()), min_fraction, threshold)
    apart = int(sizes[kept(sizes, peaks, min_fraction, threshold) & (overlap == 0)].sum())
    touching = total - found - apart
    return {"lesion_ml": label.sum() * voxel_ml, "dice": dice,
            "missed_ml": (label.sum() - found) * voxel_ml, "missed_outside_brain_ml": (label & ~brain).sum() * voxel_ml,
            "fp_touching_ml": touching * voxel_ml, "fp_apart_ml": apart * voxel_ml}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="phantom folder the weights were cross-validated on")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--cache", type=Path, required=True, help="folder for the cached probabilities")
    parser.add_argument("--tta", action="store_true", help="mirroring test-time augmentation")
    parser.add_argument("--folds", type=int, nargs="+", default=None, help="only these folds' held-out cases")
    parser.add_argument("--unseen", action="store_true",
                        help="--data is a phantom set no fold model saw: segment every case with the ensemble")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6, 0.7])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument("--peaks", type=float, nargs="+", default=[0.0, 0.7, 0.8, 0.9])
    parser.add_argument("--rescue", action="store_true",
                        help="apply the never-empty rule after each setting, as the product does")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead of the sweep: per-case error breakdown at the first threshold and fraction")
    parser.add_argument("--csv", type=Path, default=None, help="with --breakdown: write the per-case rows here too")
    args = parser.parse_args()
    ensemble = load_weights(args.weights)
    loaded = []  # (case, probability, brain, label, voxel mL)
    for path in cached_probabilities(args.data, ensemble, args.cache, args.tta, args.folds, args.unseen):
        with np.load(path) as z:
            loaded.append((path.stem, z["prob"].astype(np.float32) / 255, z["brain"], z["label"], float(z["voxel_ml"])))
    if args.breakdown:
        print_breakdown(loaded, args.thresholds[0], args.fractions[0], ensemble.config.inference, args.csv)
        return
    results: dict[tuple, list] = {}
    inference = ensemble.config.inference
    for _, prob, brain, label, voxel_ml in loaded:
        truth_voxels = int(label.sum())
        for threshold in args.thresholds:
            table_ = component_table(prob, brain, label, threshold)
            for fraction, peak in itertools.product(args.fractions, args.peaks):
                scored = score(*table_, truth_voxels, fraction, max(peak, threshold))
                if args.rescue:
                    scored = rescued_score(scored, prob, brain, label, replace(inference, threshold=threshold))
                dice, found, total = scored
                row = (truth_voxels > 0, dice, found, total * voxel_ml)
                results.setdefault((threshold, fraction, peak), []).append(row)
    rows = [(threshold, fraction, peak, *summary_row(per_case))
            for (threshold, fraction, peak), per_case in results.items()]
    print(json.dumps({"cases": len(loaded), "tta": args.tta, "rescue": args.rescue, "weights": str(args.weights)}))
    print(table(rows, ("threshold", "min fraction", "min peak", "Dice all", "Dice lesion", "detected",
                       "lesion empty (HD inf)", "FP mL (lesion-free)", "lesion-free empty")))


def summary_row(per_case: list[tuple[bool, float, int, float]]) -> tuple[str, ...]:
    """One setting's row from its (lesion case?, Dice, lesion voxels found, mask mL) per case.
    "detected" counts lesion cases with overlap; "lesion empty" those left with no mask at all,
    which the challenge scores HD = inf: a filter without the never-empty rule can cause those."""
    lesion = [r for r in per_case if r[0]]
    fp = [r[3] for r in per_case if not r[0]]
    return (f"{np.mean([r[1] for r in per_case]):.3f}", f"{np.mean([r[1] for r in lesion]):.3f}",
            f"{sum(r[2] > 0 for r in lesion)}/{len(lesion)}", f"{sum(r[3] == 0 for r in lesion)}/{len(lesion)}",
            f"{np.mean(fp) if fp else 0:.2f}", f"{sum(v == 0 for v in fp)}/{len(fp)}")


def print_breakdown(loaded: list, threshold: float, min_fraction: float, inference: InferenceConfig,
                    csv_path: Path | None = None) -> None:
    """Per case: :func:`error_breakdown`, and as ``dice_product`` the Dice of the mask the product's
    ``postprocess`` (with its never-empty rule) makes from the same probabilities, which is what a
    ``cv_report.csv`` holds, so a release can be paired with another's report."""
    product = replace(inference, threshold=threshold, min_component_fraction=min_fraction)
    rows = [(name, {**error_breakdown(prob, brain, label, voxel_ml, threshold, min_fraction),
                    "dice_product": dice(label, postprocess(prob, brain, product)[0])})
            for name, prob, brain, label, voxel_ml in loaded]
    rows.sort(key=lambda r: r[1]["dice"])
    keys = list(rows[0][1])
    if csv_path is not None:
        lines = [",".join(("case", *keys))] + [",".join((name, *(f"{v[k]:.6g}" for k in keys))) for name, v in rows]
        atomic_write_text(csv_path, "\n".join(lines) + "\n")
    print(table([(name, *(f"{v[k]:.3f}" if k.startswith("dice") else f"{v[k]:.2f}" for k in keys)) for name, v in rows],
                ("case", *keys)))
    lesion = [v for _, v in rows if v["lesion_ml"] > 0]
    errors = [k for k in keys if k.endswith("_ml") and k != "lesion_ml"]
    print("lesion cases, totals in mL: " + ", ".join(f"{k} {sum(v[k] for v in lesion):.1f}" for k in errors)
          + f" (of {sum(v['lesion_ml'] for v in lesion):.1f} lesion mL)")


if __name__ == "__main__":
    main()
