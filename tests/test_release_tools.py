"""The release tools: the paired comparison pairs the right cases, and post-processing selection
picks what the product's own post-processing scores best, only when it is clearly better."""

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from ich_infer.config import InferenceConfig
from ich_infer.metrics import dice
from ich_infer.postprocess import postprocess
from training.postprocess_selection import RULE_FIELDS, CachedCase, Grid, cropped, select
from training.release.paired import bootstrap_interval, read_cases


def mean_dice(cases: list[CachedCase], inference: InferenceConfig) -> float:
    """The reference the selection is held to: the product's post-processing, voxel by voxel."""
    return float(np.mean([dice(c.label, postprocess(c.prob, c.brain, inference)[0]) for c in cases]))


def test_paired_reads_both_report_formats_and_brackets_the_mean(tmp_path):
    report = tmp_path / "cv_report.csv"
    report.write_text("fold,case,dice,volume_gt_ml\n0,a,0.5,3\n1,b,1.0,0\n")
    breakdown = tmp_path / "breakdown.csv"
    breakdown.write_text("case,lesion_ml,dice\nb,0,0.25\na,3.0,0.75\n")
    assert read_cases(report) == {"a": (0.5, 3.0), "b": (1.0, 0.0)}
    assert read_cases(breakdown) == {"a": (0.75, 3.0), "b": (0.25, 0.0)}
    diff = np.random.default_rng(1).normal(0.05, 0.1, 200)
    low, high = bootstrap_interval(diff)
    assert low < diff.mean() < high and 0.02 < high - low < 0.04  # about 4 standard errors wide
    assert bootstrap_interval(np.full(7, 0.2)) == pytest.approx((0.2, 0.2))


def _cases(peak_lesion: float, n: int = 6) -> list[CachedCase]:
    """Lesions whose probability peaks at ``peak_lesion`` and fades over a thin rim, plus a smaller
    distant false positive at 0.55 in every case."""
    out = []
    for i in range(n):
        label = np.zeros((10, 40, 40), bool)
        label[3:7, 10:20, 10:20] = True
        prob = ndi.gaussian_filter(label.astype(np.float32), 0.5) * peak_lesion
        prob[4:7, 30:36, 30:36] = 0.55
        out.append(CachedCase(f"c{i}", i % 2, prob.astype(np.float32), np.ones(label.shape, bool), label))
    return out


def test_selection_moves_the_threshold_only_when_it_pays():
    current = InferenceConfig(threshold=0.5, min_component_fraction=0.0)
    cases = _cases(0.95)
    only = {"peaks": (0.0,), "rescues": (0.3,)}  # the threshold and fraction rules alone
    selection = select(cases, current, Grid(thresholds=(0.4, 0.5, 0.6), fractions=(0.0,), **only))
    chosen, rows = selection.chosen, selection.rows
    # 0.6 drops the 0.55 false positive and keeps the lesion: clearly better than 0.5
    assert chosen.threshold == 0.6 and rows[0][0] == (0.6, 0.0, 0.0, 0.3)
    assert mean_dice(cases, chosen) > mean_dice(cases, current) + 0.005
    assert selection.chosen_dice == mean_dice(cases, chosen) and selection.current_dice == mean_dice(cases, current)
    # the component rule achieves the same at the current threshold (the false positive is 27 % of
    # the lesion's size, so a 30 % rule drops it and a 10 % one does not)
    chosen = select(cases, current, Grid(thresholds=(0.5,), fractions=(0.0, 0.1, 0.3), **only)).chosen
    assert chosen.min_component_fraction == 0.3
    # nothing to gain: the current setting stays, whatever the order of the grid
    same = select(cases, replace(current, threshold=0.6), Grid(thresholds=(0.6, 0.61), fractions=(0.0,), **only)).chosen
    assert same.threshold == 0.6


def test_selection_takes_the_confidence_rule_when_a_broad_borderline_region_is_the_error():
    """A false region larger than the lesion, never above 0.7: no threshold up to 0.6 and no fraction
    removes it without the lesion, but requiring a 0.9 peak does; lesion-free cases then stay empty
    only if the never-empty rule is off."""
    cases = []
    for i in range(6):
        label = np.zeros((10, 40, 40), bool)
        prob = np.zeros(label.shape, np.float32)
        if i % 3:
            label[3:6, 5:12, 5:12] = True
            prob[label] = 0.97
        prob[2:8, 20:36, 20:36] = 0.62 if i % 3 else 0.45  # below the threshold on lesion-free cases
        cases.append(CachedCase(f"c{i}", i % 2, prob, np.ones(label.shape, bool), label))
    current = InferenceConfig(threshold=0.5, min_component_fraction=0.1)
    selection = select(cases, current, Grid(thresholds=(0.5, 0.6), fractions=(0.3, 0.1), peaks=(0.0, 0.9),
                                            rescues=(0.3, 1.0)))
    assert selection.chosen.min_peak_probability == 0.9 and selection.chosen.rescue_min_probability == 1.0
    # fractions 0.1 and 0.3 tie once the false region is gone: the current 0.1 stays
    assert selection.chosen.min_component_fraction == 0.1
    assert selection.chosen_dice == 1.0 and selection.current_dice < 0.7
    # the never-empty rule does not undo the confidence rule: an emptied mask stays empty
    mask, info = postprocess(cases[1].prob * ~cases[1].label, cases[1].brain,
                             replace(current, min_peak_probability=0.9))
    assert not mask.any() and not info.rescued and info.components_removed == 1


def test_cropping_a_cached_case_changes_no_rule_s_dice():
    rng = np.random.default_rng(4)
    label = np.zeros((12, 50, 50), bool)
    label[4:8, 10:20, 12:22] = True
    blobs = ndi.gaussian_filter(rng.random(label.shape), 2)
    prob = np.clip((blobs - blobs.mean()) * 12, 0, 0.9)  # scattered islands of every probability
    prob[2:10, 5:30, 5:30] += label[2:10, 5:30, 5:30] * 0.5
    prob[:, :, 35:] = 0  # a quiet side: the crop ends there
    case = CachedCase("c", 0, prob.astype(np.float32), np.ones(label.shape, bool), label)
    current, grid = InferenceConfig(), Grid()
    small = cropped(case, grid.floor(current))
    assert small.prob.size < prob.size
    for values in grid.candidates()[::7]:
        inference = replace(current, **dict(zip(RULE_FIELDS, values)))
        assert mean_dice([small], inference) == mean_dice([case], inference)


def test_component_tables_score_every_rule_as_the_product_s_postprocess_does():
    rng = np.random.default_rng(9)
    cases = []
    for i in range(4):
        label = np.zeros((12, 50, 50), bool)
        if i:
            label[4:8, 10:10 + 5 * i, 12:22] = True
        blobs = ndi.gaussian_filter(rng.random(label.shape), 1.5)
        prob = np.clip((blobs - blobs.mean()) * 14, 0, 0.96) * (0.6 if i == 3 else 1.0)
        prob = np.maximum(prob, label * rng.uniform(0.4, 1.0))
        brain = np.ones(label.shape, bool)
        brain[:, :, :3] = False
        cases.append(CachedCase(f"c{i}", 0, prob.astype(np.float32), brain, label))
    current, grid = InferenceConfig(), Grid(rescues=(0.0, 0.3, 0.5, 1.0))
    rows = dict(select(cases, current, grid).rows)
    assert len(rows) == len(grid.candidates())
    for values in grid.candidates()[::3]:
        assert abs(rows[values] - mean_dice(cases, replace(current, **dict(zip(RULE_FIELDS, values))))) < 1e-9


def test_real_scan_check_knows_which_heads_the_weights_saw_and_sums_per_head():
    from ich_infer.config import IchConfig
    from ich_infer.weights import Ensemble
    from training.release.real_scans import DICOM_CASE, seen_heads, summarise

    assert seen_heads(Ensemble(IchConfig(), [], {"training": {"real_heads": ["invesalius"]}})) == {"invesalius"}
    assert seen_heads(Ensemble(IchConfig(), [], {})) == set()
    rows = [{"head": "h", "case": "unaltered", "kind": "full_head", "pred_ml": 1.5, "dice": None},
            {"head": "h", "case": "skull-stripped (0 background)", "kind": "skull_stripped", "pred_ml": 0.25,
             "dice": None},
            {"head": "h", "case": "windowed 0-100 HU", "kind": "refused", "pred_ml": None, "dice": None},
            {"head": "h", "case": "pasted IPH", "kind": "full_head", "pred_ml": 20.0, "dice": 0.9, "found": True},
            {"head": "h", "case": "pasted SAH", "kind": "full_head", "pred_ml": 0.0, "dice": 0.0, "found": False},
            {"head": "h", "case": "stripped, pasted IPH", "kind": "skull_stripped", "pred_ml": 19.0, "dice": 0.8,
             "found": True}]
    assert summarise(rows) == [("h", "1.50", "-", "0.25", "refused", "0.450", "1/2", "0.800")]
    rows.insert(1, {"head": "h", "case": DICOM_CASE, "kind": "full_head", "pred_ml": 2.0, "dice": None})
    assert summarise(rows)[0][:3] == ("h", "1.50", "2.00")


def test_the_phantom_line_reads_only_phantoms_of_the_weights_own_report(tmp_path):
    from training.release.real_scans import phantom_line

    assert phantom_line(tmp_path) is None  # no cv_report.csv: nothing to say
    (tmp_path / "cv_report.csv").write_text(
        "fold,case,dice,rvd,nsd,hd,hd95,volume_pred_ml,volume_gt_ml\n"
        "0,phantom_1_0001,0.8,0,0,1,1,4.0,5.0\n"
        "0,phantom_1_0002,0.0,0,0,inf,inf,0.0,2.0\n"
        "0,phantom_1_0003,1.0,0,0,0,0,0.5,0\n"
        "1,ct_ich_049,0.1,0,0,1,1,9.0,6.0\n")
    assert phantom_line(tmp_path) == (str(tmp_path), 3, "0.400", "1/2", "0.50")
