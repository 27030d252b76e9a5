"""After training: held-out cases segmented as ``ichseg predict`` does, scored, and the folds assembled.

The weights folder (safetensors + manifest with provenance), ``cv_report.csv`` (one row per held-out
case, with its fold) and ``cv_summary.json`` are written only once every fold has finished.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ich_infer.evaluate import COLUMNS, rows_to_csv, summarise
from ich_infer.io import atomic_write_text, read_image, read_mask
from ich_infer.metrics import case_metrics
from ich_infer.model import SEUNet3D
from ich_infer.postprocess import postprocess
from ich_infer.predict import native_probabilities
from ich_infer.weights import Ensemble, save_weights

from .checkpoint import load_checkpoint
from .configs import TrainConfig
from .data import Case
from .loop import kept_checkpoint
from .postprocess_selection import CachedCase, save_cached


def evaluate_cases(model: torch.nn.Module, cases: list[Case], cfg: TrainConfig, fold: int,
                   probabilities: Path | None = None) -> list[dict]:
    """Segment held-out cases exactly as ``ichseg predict`` does and score them.

    With ``probabilities`` each case's probability is kept there as ``<case>.npz``, the cache that
    ``ichseg tune-postprocess --cache`` reads (as nnU-Net keeps its validation softmax), so choosing
    the post-processing needs no second pass over the data.
    """
    ensemble = Ensemble(cfg.ich, [model])
    rows = []
    for case in cases:
        volume, geometry = read_image(case.image)
        truth, _ = read_mask(case.label)
        prob, pre = native_probabilities(volume, geometry, ensemble)
        mask, _ = postprocess(prob, pre.brain_native, cfg.ich.inference)
        if probabilities is not None:
            save_cached(probabilities / f"{case.case}.npz", CachedCase(case.case, fold, prob, pre.brain_native, truth))
        rows.append({"case": case.case, **case_metrics(truth, mask, tuple(geometry.spacing[::-1]))})
    return rows


def assemble(out: Path, work: Path, cfg: TrainConfig, cases: list[Case], echo=print,
             provenance: dict | None = None) -> dict:
    """When every fold is finished: weights folder, cv_report.csv and cv_summary.json in ``out``."""
    finished = [json.loads((work / f"fold_{k}_done.json").read_text()) if (work / f"fold_{k}_done.json").is_file()
                else None for k in range(cfg.folds)]
    if any(f is None for f in finished):
        missing = [k for k, f in enumerate(finished) if f is None]
        echo(f"folds {missing} not finished yet: weights are written once all {cfg.folds} folds are done")
        return {"missing_folds": missing}
    rows = [{"fold": f["fold"], **r} for f in finished for r in f["rows"]]
    for r in rows:
        for key in ("hd", "hd95", "rvd"):
            r[key] = float(r[key])
    summary = summarise(rows)
    lesion_rows = [r for r in rows if r["volume_gt_ml"] > 0]
    summary["lesion_cases"] = len(lesion_rows)
    summary["lesion_cases_detected"] = int(sum(math.isfinite(r["hd"]) for r in lesion_rows))
    summary["dice_lesion_cases_mean"] = float(np.mean([r["dice"] for r in lesion_rows])) if lesion_rows else math.nan
    header = "fold," + ",".join(COLUMNS)
    body = rows_to_csv(rows).splitlines()[1:]
    atomic_write_text(out / "cv_report.csv", "\n".join([header] + [f"{r['fold']},{line}" for r, line in
                                                                     zip(rows, body)]) + "\n")
    models = []
    for k in range(cfg.folds):
        model = SEUNet3D(cfg.ich.model)
        load_checkpoint(kept_checkpoint(work, k, cfg), model)
        models.append(model)
    training = {"data": f"{len(cases)} cases", "folds": cfg.folds,
                "epochs": [f["epochs"] for f in finished], "best_epochs": [f["best_epoch"] for f in finished],
                "train_config": {k: v for k, v in cfg.to_dict().items() if k != "ich"},
                "initialised_from": finished[0].get("initialised_from"),
                **(provenance or {}), "cv_summary": summary}
    save_weights(out, cfg.ich, models, training)
    atomic_write_text(out / "cv_summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    echo(f"CV: Dice {summary['dice_mean']:.3f} ± {summary['dice_std']:.3f} over {summary['cases']} cases; "
         f"{summary['lesion_cases_detected']}/{summary['lesion_cases']} lesion cases detected -> {out}")
    return summary
