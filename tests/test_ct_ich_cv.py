"""The ct-ich judge: scores per patient, slice-level calls, and rules never tuned on the patient scored."""

import numpy as np
import pytest

from ich_infer.config import InferenceConfig
from training.postprocess_selection import CachedCase, Grid
from training.release.ct_ich_cv import SliceTruth, nested_rules, paired, score, sensitivity_at_specificity, summarise

PEAKS = {"slice_peak": [0.9, 0.1], "slice_positive": [True, False]}
RULES = InferenceConfig(threshold=0.5, min_component_fraction=0.0, min_peak_probability=0.0,
                        rescue_min_probability=1.0)


def _case(name, fold, blood_slices=(), called=(), shape=(6, 20, 20)):
    prob = np.zeros(shape, np.float32)
    label = np.zeros(shape, bool)
    brain = np.ones(shape, bool)
    for k in blood_slices:
        label[k, 5:10, 5:10] = True
    for k, box in called:
        prob[(k, *box)] = 0.9
    return CachedCase(name, fold, prob, brain, label)


def test_score_counts_dice_volumes_and_slices():
    calls = ((2, (slice(5, 10), slice(5, 10))), (5, (slice(0, 2), slice(0, 2))))
    case = _case("a", 0, blood_slices=(2, 3), called=calls)
    truth = SliceTruth(np.array([False, False, True, True, False, False]), frozenset({"Epidural"}))
    row = score(case, RULES, truth, 0.001)
    assert row["dice"] == pytest.approx(2 * 25 / (29 + 50))
    assert row["true_ml"] == pytest.approx(0.05) and row["pred_ml"] == pytest.approx(0.029) and row["found"]
    assert (row["slice_tp"], row["slice_fn"], row["slice_fp"], row["slice_tn"]) == (1, 1, 1, 3)
    assert row["slice_peak"] == pytest.approx([0, 0, 0.9, 0, 0, 0.9]) and row["slice_positive"][2:4] == [True, True]


def test_slice_sensitivity_at_specificity_is_an_operating_point_of_the_slice_roc():
    """20 negative slices peaking at 0.00..0.95, positives at 0.5, 0.93, 0.99: at specificity 0.95 the
    cut is the 19th negative (0.90), so two of the three positives are above it."""
    negatives = np.arange(20) * 0.05
    peaks = np.concatenate([negatives, [0.5, 0.93, 0.99]])
    positive = np.arange(23) >= 20
    assert sensitivity_at_specificity(peaks, positive, 0.95) == pytest.approx(2 / 3)
    assert sensitivity_at_specificity(peaks, positive, 1.0) == pytest.approx(1 / 3)  # cut 0.95
    assert sensitivity_at_specificity(peaks, positive, 0.5) == pytest.approx(1.0)  # cut 0.45


def test_summary_names_missed_patients_and_noisy_normal_heads():
    rows = [
        {"case": "a", "dice": 0.8, "true_ml": 5.0, "pred_ml": 4.0, "found": True, "types": ["Epidural"],
         "slice_tp": 2, "slice_fn": 0, "slice_fp": 0, "slice_tn": 8, **PEAKS},
        {"case": "b", "dice": 0.0, "true_ml": 2.0, "pred_ml": 0.0, "found": False, "types": ["Subdural"],
         "slice_tp": 0, "slice_fn": 2, "slice_fp": 0, "slice_tn": 8, **PEAKS},
        {"case": "n", "dice": 0.0, "true_ml": 0.0, "pred_ml": 3.5, "found": False, "types": [],
         "slice_tp": 0, "slice_fn": 0, "slice_fp": 1, "slice_tn": 9, **PEAKS},
    ]
    s = summarise(rows)
    assert s["dice_mean"] == pytest.approx(0.4) and s["missed"] == ["b"] and s["found_of_1ml"] == 1
    assert s["dice_by_type"] == {"Epidural": 0.8, "Subdural": 0.0}
    assert s["slice_sensitivity"] == pytest.approx(0.5) and s["slice_specificity"] == pytest.approx(25 / 26)
    assert s["normal_over_1ml"] == [("n", 3.5)]
    assert paired(rows, rows)[0][-1].startswith("+0.000")


def test_nested_rules_never_look_at_the_fold_they_are_applied_to():
    """Fold 0's patients call blood at 0.35, fold 1's at 0.75: each fold gets the threshold that suits
    the *other* fold, which a leak would not give."""
    low = [_case(f"l{i}", 0, (2,), ((2, (slice(5, 10), slice(5, 10))),)) for i in range(3)]
    high = [_case(f"h{i}", 1, (2,), ((2, (slice(5, 10), slice(5, 10))),)) for i in range(3)]
    for c in low:
        c.prob[c.prob > 0] = 0.35
    for c in high:
        c.prob[c.prob > 0] = 0.75
        c.prob[3, 0:4, 0:4] = 0.45  # a false alarm between the two levels
    cases = {c.case: c for c in low + high}
    grid = Grid(thresholds=(0.3, 0.5), fractions=(0.0,), peaks=(0.0,), rescues=(1.0,), min_gain=0.0)
    rules = nested_rules(cases, RULES, grid)
    assert rules[0].threshold == 0.5  # chosen on fold 1, where 0.5 drops the false alarm
    assert rules[1].threshold == 0.3  # chosen on fold 0, where 0.5 misses everything


def test_a_patient_scored_by_a_model_that_trained_on_it_stops_the_report(tmp_path):
    import json

    from training.release.ct_ich_cv import check_held_out

    (tmp_path / "fold_0_done.json").write_text(json.dumps({"train_cases": ["b"], "val_cases": ["c"]}))
    assert check_held_out({"a": _case("a", 0)}, tmp_path) == 1
    for leaked in ("b", "c"):
        with pytest.raises(SystemExit, match=f"{leaked}: scored by fold 0, whose model trained on it"):
            check_held_out({leaked: _case(leaked, 0)}, tmp_path)


def test_only_ct_ich_patients_are_judged_and_the_report_names_both_sides(tmp_path):
    """Phantoms trained beside ct-ich leave held-out probabilities in the same folder; the judge reads
    the patients only, and its text shows the candidate, the baseline and the paired line."""
    from training.postprocess_selection import save_cached
    from training.release.ct_ich_cv import load_cv, render

    for case in (_case("ct_ich_049", 0, (2,)), _case("phantom_2050_0001", 0, (2,))):
        save_cached(tmp_path / f"{case.case}.npz", case)
    assert list(load_cv(tmp_path, {"ct_ich_049", "ct_ich_050"})) == ["ct_ich_049"]
    rows = [{"case": "a", "dice": 0.5, "true_ml": 5.0, "pred_ml": 4.0, "found": True, "types": ["Epidural"],
             "slice_tp": 2, "slice_fn": 0, "slice_fp": 0, "slice_tn": 8, **PEAKS}]
    result = {"checked": 1, "rules": None, "candidate": {"weights": "new", "summary": summarise(rows), "rows": rows},
              "baseline": {"weights": "old", "summary": summarise(rows), "rows": rows}}
    text = render(result)
    assert "new (held-out fold models)" in text and "old (never saw ct-ich)" in text
    assert "Dice, haemorrhage patients  1" in text


def test_a_baseline_trained_on_ct_ich_is_scored_by_its_own_held_out_folds(tmp_path, tiny_weights):
    """With ``baseline_cv`` the baseline's patients come from its own cross-validation, checked against
    its folds' lists like the candidate's, and the report says so."""
    import json

    from ich_infer.io import Geometry, write_image
    from training.ct_ich import TYPES
    from training.postprocess_selection import save_cached
    from training.release.ct_ich_cv import JudgeInputs, judge, render

    data = tmp_path / "ct_ich"
    geometry = Geometry((20, 20, 6), (0.5, 0.5, 5.0), (0.0, 0.0, 0.0), (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    write_image(data / "images" / "ct_ich_049.nii.gz", np.zeros((6, 20, 20), np.int16), geometry)
    header = ["PatientNumber", "SliceNumber", "No_Hemorrhage", *TYPES]
    rows = [[49, k + 1, 0 if k == 2 else 1, *[1 if (k == 2 and t == "Subdural") else 0 for t in TYPES]]
            for k in range(6)]
    (data / "slices.csv").write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    runs = {}
    for name, called in (("new", [(2, np.s_[5:10, 5:10])]), ("old", [])):
        cache = tmp_path / name / "heldout_probabilities"
        save_cached(cache / "ct_ich_049.npz", _case("ct_ich_049", 0, (2,), called))
        (cache.parent / "fold_0_done.json").write_text(json.dumps({"train_cases": [], "val_cases": []}))
        runs[name] = cache
    result = judge(JudgeInputs(data, runs["new"], tiny_weights, baseline=tiny_weights, baseline_cv=runs["old"]))
    assert result["candidate"]["rows"][0]["dice"] == 1.0 and result["baseline"]["rows"][0]["dice"] == 0.0
    assert f"{tiny_weights} (held-out fold models)" in render(result).splitlines()[3]
    (runs["old"].parent / "fold_0_done.json").write_text(json.dumps({"train_cases": ["ct_ich_049"]}))
    with pytest.raises(SystemExit, match="ct_ich_049: scored by fold 0, whose model trained on it"):
        judge(JudgeInputs(data, runs["new"], tiny_weights, baseline=tiny_weights, baseline_cv=runs["old"]))
