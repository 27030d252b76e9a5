"""How much Dice the working grid itself costs: the score of a perfect network, per haemorrhage subtype.

A network trained by ``training.cv`` learns ``training.data.training_target`` (label on the working
grid >= 0.5, inside the brain), and its output goes back to the scan's grid through
``Preprocessed.to_native`` and the product's post-processing. Feed that chain the target itself
instead of a network's output and what comes out is the best any network on that grid can score:
what it loses is lost to resampling thin structures (SAH in sulci, thin SDH) onto a coarser grid
and back, to the brain mask, and to the 10 % component rule. Comparing grids says whether a Dice
target can be met on a CPU-sized grid at all, before spending hours of training on it.

    python benchmarks/grid_ceiling.py --data runs/phantoms_v8 --spacings 0.9 0.45 native
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import lesion_types, table

from ich_infer.config import InferenceConfig, PreprocessConfig
from ich_infer.io import read_image, read_mask
from ich_infer.metrics import dice
from ich_infer.postprocess import postprocess
from ich_infer.predict import DEFAULT_WEIGHTS
from ich_infer.preprocess import Preprocessed, preprocess
from ich_infer.weights import load_weights
from training.data import discover, training_target
from training.phantom import SUBTYPES


def perfect_network_masks(label: np.ndarray, pre: Preprocessed, inference: InferenceConfig) -> dict[str, np.ndarray]:
    """Masks on the scan's grid from a network that outputs its training target exactly.

    ``resampled``: the target mapped back and thresholded, nothing else; ``product``: also the
    product's post-processing (10 % component rule, never-empty rule)."""
    prob = pre.to_native(training_target(label, pre).astype(np.float32))
    resampled = (prob >= inference.threshold) & pre.brain_native
    return {"resampled": resampled, "product": postprocess(prob, pre.brain_native, inference)[0]}


def _grid(name: str, base: PreprocessConfig) -> PreprocessConfig:
    if name == "native":
        return replace(base, target_spacing=None)
    mm, slice_mm = float(name), (base.target_spacing or (0.0, 0.0, 5.0))[2]
    return replace(base, target_spacing=(mm, mm, slice_mm))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="phantom folder (images/, labels/, cases.json)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="take the preprocessing and post-processing from this manifest (default: shipped)")
    parser.add_argument("--spacings", nargs="+", default=["0.9", "0.45", "native"],
                        help="in-plane working spacings in mm, or 'native' for the scan's own grid")
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases")
    args = parser.parse_args()
    config = load_weights(args.weights or DEFAULT_WEIGHTS).config
    cases = discover(args.data)[: args.limit]
    types = lesion_types([args.data / "cases.json"]) if (args.data / "cases.json").is_file() else {}
    scores: dict[tuple[str, str], list[float]] = {}
    kinds: list[set[str]] = []
    for case in cases:
        volume, geometry = read_image(case.image)
        label, _ = read_mask(case.label)
        label = label.astype(bool)
        if not label.any():
            continue
        kinds.append(types.get(case.case, set()))
        for grid in args.spacings:
            pre = preprocess(volume, geometry.spacing, geometry.direction, _grid(grid, config.preprocess))
            for variant, mask in perfect_network_masks(label, pre, config.inference).items():
                scores.setdefault((grid, variant), []).append(dice(label, mask))
        print(f"{case.case}: " + "  ".join(f"{g} {scores[(g, 'product')][-1]:.3f}" for g in args.spacings), flush=True)

    header = ("grid", "chain", "lesion cases", *[f"with {k}" for k in SUBTYPES])
    rows = []
    for (grid, variant), values in scores.items():
        values = np.asarray(values)
        per_kind = [f"{values[[k in t for t in kinds]].mean():.3f} ({sum(k in t for t in kinds)})"
                    if any(k in t for t in kinds) else "-" for k in SUBTYPES]
        name = "native" if grid == "native" else \
            " x ".join(f"{mm:g}" for mm in _grid(grid, config.preprocess).target_spacing) + " mm"
        rows.append((name, variant, f"{values.mean():.3f} ± {values.std():.3f} ({len(values)})", *per_kind))
    print()
    print("Dice of a perfect network (its training target sent through the product's chain):")
    print(table(rows, header))


if __name__ == "__main__":
    main()
