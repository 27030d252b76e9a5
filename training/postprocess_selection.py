"""Choose the post-processing on cross-validation predictions and write it into the manifest.

nnU-Net's ``determine_postprocessing``, for this product's rules (``RULE_FIELDS``: the threshold,
the confidence a component must reach somewhere, the fraction of the largest component a component
must have, and whether the never-empty rule runs). Every case of the weights'
``cv_report.csv`` is segmented by the one fold model that held it out (the report's ``fold`` column
says which, so weights trained on several data folders never score a model on its own training
cases). Its probability on the scan's grid is cached once; then every candidate setting is scored on
all cases, exactly as the product's ``postprocess`` would score it (``rule_scores``). The best mean
Dice wins, but only if it beats the manifest's current setting by more than ``min_gain``: a setting
does not move for noise.

    ichseg tune-postprocess WEIGHTS --data DIR [DIR ...] [--cache DIR] [--tta/--no-tta] [--dry-run]

``--tta`` switches the weights to averaging over in-plane flips and chooses the rules on
probabilities made that way: rules chosen on one kind of probability are not carried to the other.

With the choice applied, ``cv_postprocessed.csv`` beside ``cv_report.csv`` holds each case's Dice
under the chosen rules (for ``python -m training.release.paired``).

``training.cv`` keeps each held-out probability in ``WORK/heldout_probabilities`` in the cache's
format, so ``--cache WORK/heldout_probabilities`` selects without segmenting anything again.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ich_infer.config import InferenceConfig
from ich_infer.errors import IchsegError
from ich_infer.io import atomic_output, atomic_write_text, csv_text, read_image, read_mask
from ich_infer.predict import native_probabilities
from ich_infer.weights import MANIFEST, Ensemble, load_weights, read_manifest

from .data import Case, discover
from .rule_scores import case_table, rule_dice

POSTPROCESSED_REPORT = "cv_postprocessed.csv"  # per-case Dice under the chosen rules, beside cv_report.csv
TIE_DIGITS = 4  # mean Dice equal to this many digits is a tie
RULE_FIELDS = ("threshold", "min_component_fraction", "min_peak_probability", "rescue_min_probability")


@dataclass(frozen=True)
class Grid:
    thresholds: tuple[float, ...] = (0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7)
    fractions: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)
    peaks: tuple[float, ...] = (0.0, 0.8, 0.9, 0.95, 0.98)  # min_peak_probability; 0 = every component
    rescues: tuple[float, ...] = (0.3, 1.0)  # rescue_min_probability; 1.0 = the never-empty rule off
    min_gain: float = 0.005  # mean Dice a candidate must add over the current setting

    def candidates(self) -> list[tuple[float, float, float, float]]:
        """Every combination, in ``RULE_FIELDS`` order."""
        return [(t, f, p, r) for t in self.thresholds for f in self.fractions for p in self.peaks
                for r in self.rescues]

    def floor(self, current: InferenceConfig) -> float:
        """No candidate (nor ``current``) can put a voxel below this probability into a mask."""
        rescue = min((*self.rescues, current.rescue_min_probability)) / 2  # the rescued region: >= peak / 2
        return min((*self.thresholds, current.threshold, rescue))


def rules_of(config: InferenceConfig) -> dict[str, float]:
    return {name: getattr(config, name) for name in RULE_FIELDS}


@dataclass
class CachedCase:
    case: str
    fold: int
    prob: np.ndarray  # native grid, float32
    brain: np.ndarray
    label: np.ndarray
    tta: bool = False  # made with in-plane flip averaging


def save_cached(path: Path, case: CachedCase) -> None:
    """One case's held-out probability (uint8, /255), brain and label: what ``tune`` reads back."""
    with atomic_output(path, ".tmp.npz") as tmp:
        np.savez_compressed(tmp, prob=np.round(case.prob * 255).astype(np.uint8), brain=case.brain,
                            label=case.label.astype(bool), fold=case.fold, tta=case.tta)


def read_cached(path: Path, tta: bool) -> CachedCase | None:
    """The cached case at ``path``; None when there is none or it was made the other way (``tta``)."""
    if not path.is_file():
        return None
    with np.load(path) as z:
        made_with = bool(z["tta"]) if "tta" in z.files else False
        if made_with != tta:
            return None
        return CachedCase(path.name.removesuffix(".npz"), int(z["fold"]),
                          z["prob"].astype(np.float32) / 255, z["brain"], z["label"], tta)


def report_rows(report: Path) -> list[dict]:
    """The rows of ``cv_report.csv``: each case with the fold that held it out."""
    if not report.is_file():
        raise IchsegError(report, "no cross-validation report: these weights were not made by training.cv")
    with report.open() as handle:
        return list(csv.DictReader(handle))


def locate(folders: list[Path], names: set[str]) -> dict[str, Case]:
    """The named cases in the data folders; every case of the report must be found."""
    found = {case.case: case for folder in folders for case in discover(folder) if case.case in names}
    missing = sorted(names - set(found))
    if missing:
        raise IchsegError(folders[0], f"{len(missing)} case(s) of the report are in no --data folder "
                                      f"(first: {missing[0]})")
    return found


def cache_probabilities(ensemble: Ensemble, cases: dict[str, Case], folds: dict[str, int], cache: Path,
                        echo=print) -> Iterator[CachedCase]:
    """Each case's probability from its own held-out fold model (a negative fold: the whole ensemble,
    for weights that never saw the case), cached as ``<case>.npz`` (uint8 /255); yielded one at a time,
    since hundreds of whole-scan probabilities do not fit in memory together."""
    cache.mkdir(parents=True, exist_ok=True)
    tta = ensemble.config.inference.tta
    for name in sorted(cases):
        fold, path = folds[name], cache / f"{name}.npz"
        cached = read_cached(path, tta)
        if cached is None:
            volume, geometry = read_image(cases[name].image)
            model = ensemble if fold < 0 else Ensemble(ensemble.config, [ensemble.models[fold]])
            prob, pre = native_probabilities(volume, geometry, model)
            label, _ = read_mask(cases[name].label)
            save_cached(path, CachedCase(name, fold, prob, pre.brain_native, label, tta))
            echo(f"fold {fold} {name}: cached")
            cached = read_cached(path, tta)  # read back: scored exactly as a cached case (uint8 /255)
        yield cached


def cropped(case: CachedCase, floor: float) -> CachedCase:
    """The case cut to where anything can happen (probability >= ``floor``, or the label): every
    rule gives the same Dice on it, and labelling components costs a fraction of the whole grid."""
    active = (case.prob >= floor) & case.brain | case.label
    if not active.any():
        nothing = (np.zeros_like(a[:1, :1, :1]) for a in (case.prob, case.brain, case.label))
        return CachedCase(case.case, case.fold, *nothing)
    box = tuple(slice(max(0, idx.min() - 1), idx.max() + 2) for idx in np.nonzero(active))
    return CachedCase(case.case, case.fold, case.prob[box], case.brain[box], case.label[box])


@dataclass(frozen=True)
class Selection:
    chosen: InferenceConfig
    chosen_dice: float
    current_dice: float
    rows: list  # every candidate as (rule values in RULE_FIELDS order, mean Dice), best first
    per_case: dict[str, float]  # each case's Dice under the chosen rules


def rule_tables(cases: Iterable[CachedCase], current: InferenceConfig, grid: Grid = Grid()) -> dict[str, object]:
    """Each case's component table (``rule_scores.case_table``), by case name: what ``select`` scores
    every candidate on. Built once, a table serves any subset of the cases (nested selection)."""
    thresholds = tuple(sorted({*grid.thresholds, current.threshold}))
    tables = {}
    for case in cases:
        small = cropped(case, grid.floor(current))
        tables[case.case] = case_table(small.prob, small.brain, small.label, thresholds, current.connectivity)
    return tables


def select(cases: Iterable[CachedCase] | dict[str, object], current: InferenceConfig, grid: Grid = Grid()) -> Selection:
    """The best candidate when it beats ``current`` by more than ``grid.min_gain``, else ``current``.

    ``cases`` are cached cases, or their ``rule_tables``. Scored from each case's component tables
    (``rule_scores``), which give the product's own ``postprocess`` Dice exactly."""
    by_name = cases if isinstance(cases, dict) else rule_tables(cases, current, grid)
    names, tables = list(by_name), list(by_name.values())

    def score(values: tuple[float, ...]) -> float:
        return float(np.mean([rule_dice(t, *values) for t in tables]))

    now = tuple(rules_of(current).values())

    def changes(values: tuple[float, ...]) -> int:
        return sum(a != b for a, b in zip(values, now))

    # Best first; among equal scores, the candidate that changes the fewest of the current rules.
    rows = sorted(((values, score(values)) for values in grid.candidates()),
                  key=lambda r: (-round(r[1], TIE_DIGITS), changes(r[0])))
    baseline = score(now)
    best = rows[0]
    values, chosen_dice = best if best[1] > baseline + grid.min_gain else (now, baseline)
    per_case = {name: rule_dice(table, *values) for name, table in zip(names, tables)}
    return Selection(replace(current, **dict(zip(RULE_FIELDS, values))), chosen_dice, baseline, rows, per_case)


def tune(weights: Path, data: list[Path], cache: Path | None = None, grid: Grid = Grid(), apply: bool = True,
         echo=print, tta: bool | None = None) -> dict:
    """Select on the weights' own cross-validation and, with ``apply``, write the choice into the manifest.

    ``tta`` (None: as the manifest says) is how the probabilities are made, and is written with the rules."""
    ensemble = load_weights(weights)
    if tta is not None:
        ensemble = ensemble.with_inference(tta=tta)
    report = report_rows(weights / "cv_report.csv")
    folds = {row["case"]: int(row["fold"]) for row in report}
    cases = cache_probabilities(ensemble, locate(data, set(folds)), folds, cache or weights / "postprocess_cache", echo)
    current = ensemble.config.inference
    selection = select(cases, current, grid)
    chosen = selection.chosen
    record = {"cases": len(selection.per_case), "tta": current.tta,
              "objective": "mean Dice over all cross-validation cases, held-out fold models",
              "before": {**rules_of(current), "mean_dice": round(selection.current_dice, 4)},
              "chosen": {**rules_of(chosen), "mean_dice": round(selection.chosen_dice, 4)},
              "min_gain": grid.min_gain, "grid": asdict(grid),
              "top": [{**dict(zip(RULE_FIELDS, values)), "mean_dice": round(d, 4)}
                      for values, d in selection.rows[:5]]}
    if apply:
        manifest = read_manifest(weights)
        manifest["config"]["inference"].update({**rules_of(chosen), "tta": chosen.tta})
        manifest["postprocessing_selection"] = record
        atomic_write_text(weights / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        rows = ([row["fold"], row["case"], f"{selection.per_case[row['case']]:.6f}", row["volume_gt_ml"]]
                for row in report)
        atomic_write_text(weights / POSTPROCESSED_REPORT, csv_text(["fold", "case", "dice", "volume_gt_ml"], rows))
    return record
