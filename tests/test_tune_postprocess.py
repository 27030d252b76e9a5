"""ichseg tune-postprocess on real cross-validation output: each case by its own held-out fold model."""

import csv
import shutil

import numpy as np

from ich_infer.io import read_image
from ich_infer.metrics import dice
from ich_infer.postprocess import postprocess
from ich_infer.predict import native_probabilities
from ich_infer.weights import Ensemble, load_weights
from training.postprocess_selection import Grid, tune


def test_tune_postprocess_uses_each_cases_held_out_fold_and_writes_the_manifest(tmp_path, smoke_data, smoke_weights):
    weights = tmp_path / "weights"
    shutil.copytree(smoke_weights, weights, ignore=shutil.ignore_patterns("work"))
    report = list(csv.DictReader((weights / "cv_report.csv").open()))
    folds = {row["case"]: int(row["fold"]) for row in report}
    inference = load_weights(weights).config.inference
    # training kept every held-out probability, and it is what the report scored
    cache = tmp_path / "cache"
    shutil.copytree(smoke_weights / "work" / "heldout_probabilities", cache)
    for row in report:
        with np.load(cache / f"{row['case']}.npz") as z:
            assert int(z["fold"]) == folds[row["case"]]
            assert abs(dice(z["label"], postprocess(z["prob"] / 255.0, z["brain"], inference)[0])
                       - float(row["dice"])) < 0.02
    first, *_ = sorted(folds)
    kept = np.load(cache / f"{first}.npz")["prob"]
    (cache / f"{first}.npz").unlink()  # a case the cache lacks is segmented again by its own fold model
    said = []
    record = tune(weights, [smoke_data], cache, Grid(thresholds=(0.3, 0.5), fractions=(0.1,)), echo=said.append)
    assert record["cases"] == len(folds) == 6 and said == [f"fold {folds[first]} {first}: cached"]
    ensemble = load_weights(weights)  # still loads: sha256 of the folds unchanged, config valid
    with np.load(cache / f"{first}.npz") as cached:
        volume, geometry = read_image(smoke_data / "images" / f"{first}.nii.gz")
        own = Ensemble(ensemble.config, [ensemble.models[folds[first]]])
        other = Ensemble(ensemble.config, [ensemble.models[1 - folds[first]]])
        assert np.array_equal(cached["prob"], np.round(native_probabilities(volume, geometry, own)[0] * 255))
        assert not np.array_equal(cached["prob"], np.round(native_probabilities(volume, geometry, other)[0] * 255))
        # training's copy came from the same model before it was stored as float16
        assert np.abs(kept.astype(int) - cached["prob"].astype(int)).max() <= 3
    chosen = record["chosen"]
    assert ensemble.config.inference.threshold == chosen["threshold"]
    assert ensemble.manifest["postprocessing_selection"]["chosen"] == chosen
    assert chosen["mean_dice"] >= record["before"]["mean_dice"]
    # the per-case report under the chosen rules: the product's post-processing of each cached case
    inference = ensemble.config.inference
    rows = list(csv.DictReader((weights / "cv_postprocessed.csv").open()))
    assert [r["case"] for r in rows] == [r["case"] for r in report]
    for row in rows:
        with np.load(cache / f"{row['case']}.npz") as z:
            mask, _ = postprocess(z["prob"] / 255.0, z["brain"], inference)
            assert abs(float(row["dice"]) - dice(z["label"], mask)) < 1e-5
    assert abs(np.mean([float(r["dice"]) for r in rows]) - chosen["mean_dice"]) < 1e-4


def test_tune_postprocess_with_flips_remakes_what_was_made_without_and_writes_the_setting(
        tmp_path, smoke_data, smoke_weights):
    weights = tmp_path / "weights"
    shutil.copytree(smoke_weights, weights, ignore=shutil.ignore_patterns("work"))
    cache = tmp_path / "cache"
    shutil.copytree(smoke_weights / "work" / "heldout_probabilities", cache)  # made without flips
    first, *rest = sorted(f.stem for f in cache.glob("*.npz"))
    for name in rest:  # marked as made with flips, so only the first has to be made again
        with np.load(cache / f"{name}.npz") as z:
            arrays = {key: z[key] for key in z.files}
        np.savez_compressed(cache / name, **{**arrays, "tta": True})
    said = []
    grid = Grid(thresholds=(0.5,), fractions=(0.1,), peaks=(0.0,))
    record = tune(weights, [smoke_data], cache, grid, echo=said.append, tta=True)
    fold = next(int(r["fold"]) for r in csv.DictReader((weights / "cv_report.csv").open()) if r["case"] == first)
    assert record["tta"] is True and said == [f"fold {fold} {first}: cached"]
    ensemble = load_weights(weights)
    assert ensemble.config.inference.tta is True
    volume, geometry = read_image(smoke_data / "images" / f"{first}.nii.gz")
    own = Ensemble(ensemble.config, [ensemble.models[fold]])
    with np.load(cache / f"{first}.npz") as cached:
        assert bool(cached["tta"])
        assert np.array_equal(cached["prob"], np.round(native_probabilities(volume, geometry, own)[0] * 255))
