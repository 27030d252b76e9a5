"""The judge, one report: the ct-ich cross-validation, then every real head CT in ../shared/data
segmented as a user would hand it over, then the phantom cross-validation as a secondary line.

The ct-ich section (``--ct-ich``) is ``training.release.ct_ich_cv``: every patient by the fold model
that held it out, paired against ``--baseline``: weights that never saw ct-ich, or, with
``--baseline-cv``, a release trained on ct-ich scored by its own held-out fold models.

Per head, with weights that never saw it (the head must not be listed in the manifest's
``training.real_heads``; a head the weights saw is not reported):
  - the unaltered head: every voxel called blood is a false positive; where the head's DICOM series
    is there too, also that series as the scanner wrote it;
  - the same head skull-stripped (brain on a 0 background) and windowed (values outside 0-100 HU set to 0);
  - haemorrhage of every subtype, a thin subdural and the BLAST-CT real lesion shape pasted into it:
    Dice and whether it was found at all;
  - the pasted IPH and subdurals once more, skull-stripped (as research data sets ship haematomas).

    python -m training.release.real_scans --weights DIR --ct-ich runs/ct_ich --cv WORK/heldout_probabilities \\
        --nested --baseline BASELINE --baseline-cache runs/baseline_ct_ich
    python -m training.release.real_scans [--weights DIR] [--holdout ge_trauma=DIR_A --holdout invesalius=DIR_B]
    python -m training.release.real_scans --override normalization=\\"hu\\" --override hu_centre=null   # a candidate

``--holdout NAME=DIR`` segments head NAME with DIR (leave-one-head-out ensembles); ``--override``
changes a preprocessing field of the weights' config (JSON value), to measure a candidate before it
enters a manifest.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ich_infer.errors import IchsegError
from ich_infer.inputs import ScanInput, load_input
from ich_infer.metrics import case_metrics
from ich_infer.predict import DEFAULT_WEIGHTS, segment
from ich_infer.weights import MANIFEST, Ensemble, load_weights, sha256_of
from training.postprocess_selection import report_rows
from training.real_heads import (
    AS_ACQUIRED,
    SHARED,
    available_heads,
    lesions_for,
    load_head,
    paste,
    skull_stripped,
    windowed,
    with_calcification,
)

from . import ct_ich_cv
from .tables import table

DICOM_CASE = "unaltered, DICOM series as acquired"
STRIPPED_SUBTYPES = ("IPH", "SDH")  # convexity and deep haematomas, the two kinds stripped data sets hold


def load(folder: Path, overrides: dict) -> Ensemble:
    ensemble = load_weights(folder)
    if not overrides:
        return ensemble
    config = replace(ensemble.config, preprocess=replace(ensemble.config.preprocess, **overrides))
    return Ensemble(config, ensemble.models, ensemble.manifest)


def seen_heads(ensemble: Ensemble) -> set[str]:
    return set(ensemble.manifest.get("training", {}).get("real_heads", []))


def run_case(image, geometry, ensemble, label=None) -> dict:
    try:
        seg = segment(image, geometry, ensemble)
    except IchsegError as exc:
        return {"kind": "refused", "pred_ml": None, "dice": None, "note": str(exc).split(": ", 1)[-1]}
    row = {"kind": seg.input_kind, "pred_ml": seg.volume_ml, "dice": None, "note": ""}
    if label is not None:
        m = case_metrics(label, seg.mask, tuple(geometry.spacing[::-1]))
        row.update(dice=m["dice"], true_ml=m["volume_gt_ml"], found=bool((label & seg.mask).any()))
    return row


def as_acquired(name: str, ensemble: Ensemble, root: Path = SHARED) -> list[dict]:
    """The head's DICOM series as its scanner wrote it, read as ``ichseg predict`` reads it."""
    if name not in AS_ACQUIRED or not (root / AS_ACQUIRED[name]).is_dir():
        return []
    folder = root / AS_ACQUIRED[name]
    scan = load_input(ScanInput(name, folder, f"{name}.nii.gz"))
    image, geometry = scan.volume, scan.geometry
    return [{"head": name, "case": DICOM_CASE, **run_case(image, geometry, ensemble)}]


def evaluate_head(name: str, path: Path, ensemble: Ensemble, lesions: bool = True) -> list[dict]:
    hu, geometry, brain = load_head(path)
    rows = [{"head": name, "case": "unaltered", **run_case(hu, geometry, ensemble)},
            *as_acquired(name, ensemble),
            {"head": name, "case": "skull-stripped (0 background)",
             **run_case(skull_stripped(hu, brain), geometry, ensemble)},
            {"head": name, "case": "windowed 0-100 HU", **run_case(windowed(hu), geometry, ensemble)},
            *({"head": name, "case": f"skull-stripped + 400 HU calcification ({background:g} background)",
               **run_case(with_calcification(skull_stripped(hu, brain, background), brain), geometry, ensemble)}
              for background in (0.0, -1024.0))]
    if lesions:
        rng = np.random.default_rng(1)
        stripped = []  # research data sets ship haematomas skull-stripped: the same lesions without the skull
        for lesion in lesions_for(hu, brain, tuple(geometry.spacing[::-1])):
            label = lesion.blood >= 0.5
            image = paste(hu, lesion, rng)
            rows.append({"head": name, "case": f"pasted {lesion.name}",
                         **run_case(image, geometry, ensemble, label)})
            if lesion.subtype in STRIPPED_SUBTYPES:
                stripped.append({"head": name, "case": f"stripped, pasted {lesion.name}",
                                 **run_case(skull_stripped(image, brain), geometry, ensemble, label)})
        rows += stripped
    return rows


def fmt(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summarise(rows: list[dict]) -> list[tuple]:
    out = []
    for head in dict.fromkeys(r["head"] for r in rows):
        mine = [r for r in rows if r["head"] == head]
        pasted = [r for r in mine if r["case"].startswith("pasted")]
        dice = [r["dice"] for r in pasted if r["dice"] is not None]
        stripped = [r["dice"] for r in mine if r["case"].startswith("stripped, pasted") and r["dice"] is not None]
        variants = {r["case"]: r for r in mine if "pasted" not in r["case"]}
        out.append((head, fmt(variants["unaltered"]["pred_ml"]),
                    fmt(variants[DICOM_CASE]["pred_ml"]) if DICOM_CASE in variants else "-",
                    fmt(variants["skull-stripped (0 background)"]["pred_ml"]),
                    "refused" if variants["windowed 0-100 HU"]["kind"] == "refused"
                    else fmt(variants["windowed 0-100 HU"]["pred_ml"]),
                    fmt(float(np.mean(dice)) if dice else None, 3),
                    f"{sum(not r.get('found', False) for r in pasted)}/{len(pasted)}",
                    fmt(float(np.mean(stripped)) if stripped else None, 3)))
    return out


def phantom_line(weights: Path) -> tuple | None:
    """The phantom cross-validation of ``weights`` (its ``cv_report.csv``, phantom cases only): a
    secondary line, since phantoms are training material, not evidence."""
    report = weights / "cv_report.csv"
    rows = [r for r in report_rows(report) if r["case"].startswith("phantom_")] if report.is_file() else []
    if not rows:
        return None
    lesion = [r for r in rows if float(r["volume_gt_ml"]) > 0]
    free = [float(r["volume_pred_ml"]) for r in rows if float(r["volume_gt_ml"]) == 0]
    return (str(weights), len(rows), fmt(float(np.mean([float(r["dice"]) for r in lesion])) if lesion else None, 3),
            f"{sum(float(r['dice']) > 0 for r in lesion)}/{len(lesion)}",
            fmt(float(np.median(free)) if free else None))


def head_report(args: argparse.Namespace) -> str:
    """The GE and InVesalius heads: as acquired and in every form a user hands them over."""
    overrides = {k: (tuple(v) if isinstance(v, list) else v)
                 for k, v in (((kv.split("=", 1)[0], json.loads(kv.split("=", 1)[1])) for kv in args.override))}
    per_head = dict(kv.split("=", 1) for kv in args.holdout)
    heads = {name: path for name, path in available_heads().items() if args.heads is None or name in args.heads}
    if not heads:
        return "real heads: skipped, none under ../shared/data"
    rows, notes = [], []
    for name, path in heads.items():
        folder = Path(per_head.get(name, args.weights))
        ensemble = load(folder, overrides)
        if name in seen_heads(ensemble):
            notes.append(f"{name}: not reported, {folder} was trained on it")
            continue
        digest = sha256_of(folder / MANIFEST)[:12]
        notes.append(f"{name}: {folder} (manifest sha256 {digest}), never trained on this head")
        rows += evaluate_head(name, path, ensemble, not args.no_lesions)
        print(f"{name}: done", flush=True)
    if args.json:
        args.json.with_suffix(".heads.json").write_text(json.dumps(rows, indent=1, default=float) + "\n")
    out = ["real head CTs; every figure from weights that never saw the head (leave-one-head-out)", *notes]
    if overrides:
        out.append(f"preprocessing overrides: {overrides}")
    out.append(table([(r["head"], r["case"], r["kind"], fmt(r.get("true_ml")), fmt(r["pred_ml"]), fmt(r["dice"], 3),
                       r["note"][:70]) for r in rows],
                     ("head", "case", "input kind", "true mL", "predicted mL", "Dice", "note")))
    out.append("")
    out.append(table(summarise(rows), ("head", "false positive mL", "as DICOM mL", "skull-stripped mL", "windowed",
                                       "pasted Dice", "missed", "stripped pasted Dice")))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.release.real_scans", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--holdout", action="append", default=[], help="NAME=DIR: weights for one head")
    parser.add_argument("--override", action="append", default=[], help="preprocessing FIELD=JSON")
    parser.add_argument("--no-lesions", action="store_true", help="only the unaltered head and its variants")
    parser.add_argument("--heads", nargs="+", default=None, help="only these heads (default: every one found)")
    parser.add_argument("--no-heads", action="store_true", help="only the ct-ich and phantom sections")
    parser.add_argument("--ct-ich", type=Path, default=None, help="the training.ct_ich folder: report its CV first")
    parser.add_argument("--cv", type=Path, default=None,
                        help="WORK/heldout_probabilities of the training.cv run that made --weights")
    ct_ich_cv.add_judge_options(parser)
    parser.add_argument("--json", type=Path, default=None, help="also write every row here (.ct_ich/.heads.json)")
    args = parser.parse_args(argv)
    if args.ct_ich is not None:
        if args.cv is None:
            parser.error("--ct-ich needs --cv WORK/heldout_probabilities")
        result = ct_ich_cv.judge(ct_ich_cv.judge_inputs(args, args.ct_ich, args.cv))
        print(ct_ich_cv.render(result), end="\n\n", flush=True)
        if args.json:
            args.json.with_suffix(".ct_ich.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    if not args.no_heads:
        print(head_report(args), end="\n\n", flush=True)
    lines = [line for line in (phantom_line(w) for w in (args.weights, args.baseline) if w is not None) if line]
    if lines:
        print("phantom cross-validation (secondary: phantoms are training material; held-out phantoms of each "
              "weights' own run)")
        print(table(lines, ("weights", "phantoms", "Dice, lesion phantoms", "found", "median mL, lesion-free")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
