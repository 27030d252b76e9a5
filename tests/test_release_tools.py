"""The release tools: the paired comparison pairs the right cases, and post-processing selection
picks what the product's own post-processing scores best, only when it is clearly better."""

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from ich_infer.config import InferenceConfig
from training.postprocess_selection import CachedCase, Grid, mean_dice, select
from training.release.paired import bootstrap_interval, read_cases


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
    selection = select(cases, current, Grid(thresholds=(0.4, 0.5, 0.6), fractions=(0.0,)))
    chosen, rows = selection.chosen, selection.rows
    # 0.6 drops the 0.55 false positive and keeps the lesion: clearly better than 0.5
    assert chosen.threshold == 0.6 and rows[0][:2] == (0.6, 0.0)
    assert mean_dice(cases, chosen) > mean_dice(cases, current) + 0.005
    assert selection.chosen_dice == mean_dice(cases, chosen) and selection.current_dice == mean_dice(cases, current)
    # the component rule achieves the same at the current threshold (the false positive is 27 % of
    # the lesion's size, so a 30 % rule drops it and a 10 % one does not)
    chosen = select(cases, current, Grid(thresholds=(0.5,), fractions=(0.0, 0.1, 0.3))).chosen
    assert chosen.min_component_fraction == 0.3
    # nothing to gain: the current setting stays, whatever the order of the grid
    same = select(cases, replace(current, threshold=0.6), Grid(thresholds=(0.6, 0.61), fractions=(0.0,))).chosen
    assert same.threshold == 0.6


def test_real_scan_check_knows_which_heads_the_weights_saw_and_sums_per_head():
    from ich_infer.config import IchConfig
    from ich_infer.weights import Ensemble
    from training.release.real_scans import seen_heads, summarise

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
    assert summarise(rows) == [("h", "1.50", "0.25", "refused", "0.450", "1/2", "0.800")]
