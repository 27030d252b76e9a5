"""The real-scan judge on ct-ich: every patient scored by a model that never saw that patient.

Inputs are held-out probabilities in the cache format of ``training.postprocess_selection`` (one
``<case>.npz`` per patient: probability on the scan's grid, brain mask, label, fold):

- the candidate's ``WORK/heldout_probabilities`` from ``training.cv`` on the ``training.ct_ich`` folder:
  each patient by the one fold model that held it out;
- a baseline that never trained on ct-ich (release 12): its whole ensemble on every patient, cached by
  ``--baseline DIR --baseline-cache DIR`` on first use.

Rules: by default the manifest rules of each side. With ``--nested`` the candidate's rules for fold k
are chosen (``select``) on the held-out probabilities of the other folds' patients only, so no rule
was tuned on the patient it is applied to.

Figures: mean and median Dice over haemorrhage patients, Dice per type, patients found and missed,
slice-level sensitivity and specificity against the radiologists' slice labels (under the rules,
and at specificity 0.95 on the slices' peak probability), normal heads with >= 1 mL (worst listed),
and the paired per-patient difference against the baseline.

    python -m training.release.ct_ich_cv --data runs/ct_ich --cv runs/work_real/heldout_probabilities \\
        --weights runs/weights_real --baseline BASELINE --baseline-cache runs/baseline_ct_ich --nested
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ich_infer.config import InferenceConfig
from ich_infer.postprocess import postprocess
from ich_infer.weights import Ensemble, load_weights

from ..ct_ich import TYPES, case_name
from ..data import discover
from ..postprocess_selection import CachedCase, Grid, cache_probabilities, read_cached, rule_tables, select
from .paired import bootstrap_interval
from .tables import table

FOUND_MIN_ML = 1.0  # "every patient with >= 1 mL labelled is found"
NORMAL_FP_ML = 1.0
SLICE_SPECIFICITY = 0.95  # the operating point the slice-level target is stated at


@dataclass(frozen=True)
class SliceTruth:
    """The radiologists' slice labels of one patient: haemorrhage per slice, and the types present."""

    positive: np.ndarray  # (slices,) bool, slice 1 first
    types: frozenset


def slice_truth(folder: Path) -> dict[str, SliceTruth]:
    """case -> slice labels, from ``slices.csv`` written by ``training.ct_ich``."""
    rows: dict[str, list[dict]] = {}
    for row in csv.DictReader((folder / "slices.csv").open()):
        rows.setdefault(case_name(int(row["PatientNumber"])), []).append(row)
    out = {}
    for case, mine in rows.items():
        mine.sort(key=lambda r: int(r["SliceNumber"]))
        positive = np.array([r["No_Hemorrhage"] == "0" for r in mine])
        types = frozenset(t for t in TYPES if any(r[t] == "1" for r in mine))
        out[case] = SliceTruth(positive, types)
    return out


def voxel_ml(image: Path) -> float:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(image))
    reader.ReadImageInformation()
    return float(np.prod(reader.GetSpacing())) / 1000.0


def score(case: CachedCase, rules: InferenceConfig, truth: SliceTruth, ml_per_voxel: float) -> dict:
    """One patient under ``rules``: Dice, volumes, found, and per-slice calls (axis 0 is the slice)."""
    mask, _ = postprocess(case.prob, case.brain, rules)
    label = case.label.astype(bool)
    inter, total = int((mask & label).sum()), int(mask.sum() + label.sum())
    predicted_slices = mask.any(axis=(1, 2))
    return {"case": case.case, "fold": case.fold, "dice": 1.0 if total == 0 else 2.0 * inter / total,
            "true_ml": float(label.sum()) * ml_per_voxel, "pred_ml": float(mask.sum()) * ml_per_voxel,
            "found": inter > 0, "types": sorted(truth.types),
            "slice_tp": int((predicted_slices & truth.positive).sum()),
            "slice_fn": int((~predicted_slices & truth.positive).sum()),
            "slice_fp": int((predicted_slices & ~truth.positive).sum()),
            "slice_tn": int((~predicted_slices & ~truth.positive).sum()),
            "slice_peak": [round(float(v), 4) for v in np.where(case.brain, case.prob, 0).max(axis=(1, 2))],
            "slice_positive": truth.positive.tolist()}


def sensitivity_at_specificity(peaks: np.ndarray, positive: np.ndarray, specificity: float) -> float:
    """Slice-level sensitivity at the lowest cut on the slices' peak probability that keeps at least
    ``specificity`` of the negative slices below it: an operating point of the ROC, not a rule."""
    negative = np.sort(peaks[~positive])
    if not len(negative) or not positive.any():
        return float("nan")
    cut = negative[int(np.ceil(specificity * len(negative))) - 1]
    return float((peaks[positive] > cut).mean())


def summarise(rows: list[dict]) -> dict:
    """The headline figures of a set of scored patients."""
    lesion = [r for r in rows if r["true_ml"] > 0]
    normal = [r for r in rows if r["true_ml"] == 0]
    dice = np.array([r["dice"] for r in lesion])
    tp, fn, fp, tn = (sum(r[k] for r in rows) for k in ("slice_tp", "slice_fn", "slice_fp", "slice_tn"))
    big = [r for r in lesion if r["true_ml"] >= FOUND_MIN_ML]
    noisy = sorted((r for r in normal if r["pred_ml"] >= NORMAL_FP_ML), key=lambda r: -r["pred_ml"])
    peaks = np.concatenate([r["slice_peak"] for r in rows]) if rows else np.zeros(0)
    positive = np.concatenate([r["slice_positive"] for r in rows]).astype(bool) if rows else np.zeros(0, bool)
    return {"patients": len(rows), "haemorrhage_patients": len(lesion),
            "dice_mean": float(dice.mean()) if len(dice) else float("nan"),
            "dice_median": float(np.median(dice)) if len(dice) else float("nan"),
            "found": sum(r["found"] for r in lesion), "found_of_1ml": sum(r["found"] for r in big),
            "patients_1ml": len(big), "missed": [r["case"] for r in lesion if not r["found"]],
            "dice_by_type": {t: float(np.mean([r["dice"] for r in lesion if t in r["types"]]))
                             for t in TYPES if any(t in r["types"] for r in lesion)},
            "slice_sensitivity": tp / max(tp + fn, 1), "slice_specificity": tn / max(tn + fp, 1),
            "slice_sensitivity_at_specificity_95": sensitivity_at_specificity(peaks, positive, SLICE_SPECIFICITY),
            "normal_heads": len(normal), "normal_over_1ml": [(r["case"], round(r["pred_ml"], 2)) for r in noisy]}


def ensemble_probabilities(ensemble: Ensemble, folder: Path, cache: Path, echo=print) -> dict[str, CachedCase]:
    """The whole ensemble on every case of ``folder`` (for weights that never saw any of them), cached."""
    cases = {case.case: case for case in discover(folder)}
    return {c.case: c for c in cache_probabilities(ensemble, cases, dict.fromkeys(cases, -1), cache, echo)}


def load_cv(cache: Path, patients: set[str]) -> dict[str, CachedCase]:
    """The held-out probabilities of the ct-ich ``patients``; other cases trained beside them (phantoms)
    are not judged here."""
    paths = (p for p in sorted(cache.glob("*.npz")) if p.name.removesuffix(".npz") in patients)
    return {p.name.removesuffix(".npz"): read_cached(p, False) for p in paths}


def held_out(cache: Path, patients: set[str]) -> tuple[dict[str, CachedCase], int]:
    """A cross-validation's held-out probabilities of the ct-ich ``patients``, each checked against
    its fold's training and validation lists (the work folder holding ``cache``)."""
    cases = load_cv(cache, patients)
    return cases, check_held_out(cases, cache.parent)


def check_held_out(cases: dict[str, CachedCase], work: Path) -> int:
    """Raise if any patient was in the training or validation set of the fold model that scored it
    (from ``WORK/fold_k_done.json``); returns how many patients were checked."""
    checked = 0
    for name, case in cases.items():
        done = work / f"fold_{case.fold}_done.json"
        if not done.is_file():
            continue
        record = json.loads(done.read_text())
        if name in record.get("train_cases", []) or name in record.get("val_cases", []):
            raise SystemExit(f"{name}: scored by fold {case.fold}, whose model trained on it")
        checked += 1
    return checked


def nested_rules(cases: dict[str, CachedCase], current: InferenceConfig,
                 grid: Grid = Grid()) -> dict[int, InferenceConfig]:
    """Fold -> rules chosen on the held-out probabilities of the other folds' patients only."""
    tables = rule_tables(cases.values(), current, grid)  # once per patient, then any subset
    folds = sorted({c.fold for c in cases.values()})
    return {k: select({name: t for name, t in tables.items() if cases[name].fold != k}, current, grid).chosen
            for k in folds}


def score_all(cases: dict[str, CachedCase], rules, truth: dict[str, SliceTruth], folder: Path) -> list[dict]:
    """Every case under its rules (one InferenceConfig, or a fold -> InferenceConfig dict)."""
    rows = []
    for name, case in sorted(cases.items()):
        chosen = rules[case.fold] if isinstance(rules, dict) else rules
        rows.append(score(case, chosen, truth[name], voxel_ml(folder / "images" / f"{name}.nii.gz")))
    return rows


def paired(a: list[dict], b: list[dict]) -> list[tuple]:
    """Per-patient Dice difference B - A on haemorrhage patients and the normal heads' volumes."""
    da = {r["case"]: r for r in a}
    shared = [r for r in b if r["case"] in da]
    lesion = [r for r in shared if r["true_ml"] > 0]
    out = []
    if lesion:
        x = np.array([da[r["case"]]["dice"] for r in lesion])
        y = np.array([r["dice"] for r in lesion])
        low, high = bootstrap_interval(y - x)
        out.append(("Dice, haemorrhage patients", len(lesion), f"{x.mean():.3f}", f"{y.mean():.3f}",
                    f"{(y - x).mean():+.3f} ({low:+.3f}..{high:+.3f})"))
    normal = [r for r in shared if r["true_ml"] == 0]
    if normal:
        x = np.array([da[r["case"]]["pred_ml"] for r in normal])
        y = np.array([r["pred_ml"] for r in normal])
        out.append(("normal heads >= 1 mL", len(normal), int((x >= 1).sum()), int((y >= 1).sum()),
                    f"median {np.median(x):.2f} -> {np.median(y):.2f} mL"))
    return out


def headline(name: str, s: dict) -> tuple:
    return (name, f"{s['dice_mean']:.3f}", f"{s['dice_median']:.3f}",
            f"{s['found']}/{s['haemorrhage_patients']}", f"{s['found_of_1ml']}/{s['patients_1ml']}",
            f"{s['slice_sensitivity']:.3f}", f"{s['slice_specificity']:.3f}",
            f"{s['slice_sensitivity_at_specificity_95']:.3f}", f"{len(s['normal_over_1ml'])}/{s['normal_heads']}")


HEADER = ("model", "mean Dice", "median Dice", "found", "found (>= 1 mL)", "slice sens", "slice spec",
          "slice sens @ spec 0.95", "normal >= 1 mL")


@dataclass(frozen=True)
class JudgeInputs:
    """What the ct-ich judge reads: the ct-ich folder, the candidate's held-out probabilities and
    weights, and optionally a baseline: weights that never trained on ct-ich (scored whole, cached in
    ``baseline_cache``), or with ``baseline_cv`` an earlier ct-ich cross-validation scored by its own
    held-out fold models (a release trained on ct-ich)."""

    data: Path
    cv: Path
    weights: Path
    nested: bool = False
    baseline: Path | None = None
    baseline_cache: Path | None = None
    baseline_cv: Path | None = None


def judge(inputs: JudgeInputs) -> dict:
    """Every figure of the ct-ich cross-validation, for the candidate and (if given) the baseline."""
    truth = slice_truth(inputs.data)
    ensemble = load_weights(inputs.weights)
    cv, checked = held_out(inputs.cv, set(truth))
    rules = nested_rules(cv, ensemble.config.inference) if inputs.nested else ensemble.config.inference
    rows = score_all(cv, rules, truth, inputs.data)
    result = {"checked": checked,
              "rules": {k: dataclasses.asdict(r) for k, r in rules.items()} if inputs.nested else None,
              "candidate": {"weights": str(inputs.weights), "nested_rules": inputs.nested,
                            "summary": summarise(rows), "rows": rows}}
    if inputs.baseline is not None:
        base = load_weights(inputs.baseline)
        if inputs.baseline_cv is not None:
            base_cases, _ = held_out(inputs.baseline_cv, set(truth))
        else:
            cache = inputs.baseline_cache or inputs.cv.parent / "baseline"
            base_cases = ensemble_probabilities(base, inputs.data, cache)
        base_rows = score_all(base_cases, base.config.inference, truth, inputs.data)
        result["baseline"] = {"weights": str(inputs.baseline), "summary": summarise(base_rows), "rows": base_rows,
                              "held_out": inputs.baseline_cv is not None}
    return result


def render(result: dict) -> str:
    """The judge's figures as text: headline table, per type, missed and noisy patients, paired."""
    candidate = result["candidate"]
    lines = [headline(f"{candidate['weights']} (held-out fold models)", candidate["summary"])]
    if "baseline" in result:
        how = "held-out fold models" if result["baseline"].get("held_out") else "never saw ct-ich"
        lines.append(headline(f"{result['baseline']['weights']} ({how})", result["baseline"]["summary"]))
    out = [f"ct-ich cross-validation by patient: {len(candidate['rows'])} patients, each scored by the fold model "
           f"that did not train on it (checked for {result['checked']} against the folds' training and validation "
           "lists)"]
    if result["rules"]:
        out.append("rules per fold, chosen on the other folds' patients only: "
                   + "; ".join(f"fold {k}: threshold {r['threshold']}, peak {r['min_peak_probability']}, fraction "
                               f"{r['min_component_fraction']}, rescue {r['rescue_min_probability']}"
                               for k, r in result["rules"].items()))
    out.append(table(lines, HEADER))
    for key in ("candidate", "baseline"):
        if key not in result:
            continue
        s = result[key]["summary"]
        out.append(f"\n{key}: Dice by type " + ", ".join(f"{t} {v:.3f}" for t, v in s["dice_by_type"].items()))
        out.append(f"{key}: missed {', '.join(s['missed']) or 'none'}; normal heads >= 1 mL: "
                   + (", ".join(f"{c} {v} mL" for c, v in s["normal_over_1ml"]) or "none"))
    if "baseline" in result:
        out.append("")
        out.append(table(paired(result["baseline"]["rows"], candidate["rows"]),
                         ("paired", "n", "baseline", "candidate", "difference")))
    return "\n".join(out)


def add_judge_options(parser: argparse.ArgumentParser) -> None:
    """The options this module's CLI shares with ``real_scans``'s ct-ich section: rules and baseline."""
    parser.add_argument("--nested", action="store_true", help="ct-ich rules per fold chosen on the other folds")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="weights to pair against: never trained on ct-ich, unless --baseline-cv is given")
    parser.add_argument("--baseline-cache", type=Path, default=None, help="the baseline's ct-ich probabilities")
    parser.add_argument("--baseline-cv", type=Path, default=None,
                        help="a baseline trained on ct-ich: its own WORK/heldout_probabilities")


def judge_inputs(args: argparse.Namespace, data: Path, cv: Path) -> JudgeInputs:
    """``JudgeInputs`` from the parsed options of ``add_judge_options`` and ``--weights``."""
    return JudgeInputs(data, cv, args.weights, args.nested, args.baseline, args.baseline_cache, args.baseline_cv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.release.ct_ich_cv", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the training.ct_ich folder")
    parser.add_argument("--cv", type=Path, required=True, help="the candidate's held-out probabilities")
    parser.add_argument("--weights", type=Path, required=True, help="the candidate's weights (its rules)")
    add_judge_options(parser)
    parser.add_argument("--json", type=Path, default=None, help="write every figure and row here")
    args = parser.parse_args(argv)
    result = judge(judge_inputs(args, args.data, args.cv))
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
