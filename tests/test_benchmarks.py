"""The post-processing sweep scores settings from per-component counts instead of building masks;
it is only worth its numbers if that equals what ``ich_infer.postprocess`` would produce. The paired
comparison of two releases is only worth its interval if it pairs the right cases."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from ich_infer.metrics import dice
from ich_infer.postprocess import postprocess, remove_small_components

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from paired import bootstrap_interval, read_cases  # noqa: E402
from postprocess_sweep import component_table, rescued_score, score  # noqa: E402


@pytest.mark.parametrize("threshold,fraction,min_peak",
                         [(0.5, 0.1, 0.0), (0.3, 0.3, 0.0), (0.5, 0.1, 0.85), (0.5, 0.5, 0.0)])
def test_sweep_scores_equal_masks_built_the_product_way(threshold, fraction, min_peak):
    rng = np.random.default_rng(3)
    spikes = np.zeros((12, 40, 40))  # blobs of different sizes and peak probabilities
    for _ in range(12):
        spikes[tuple(rng.integers(0, s) for s in spikes.shape)] = rng.uniform(0.3, 1.0)
    prob = ndi.gaussian_filter(spikes, 1.2)
    prob = (prob / prob.max()) ** 0.5
    brain = np.zeros(prob.shape, bool)
    brain[1:11, 4:36, 4:36] = True
    label = ndi.binary_dilation(prob > 0.6, iterations=1)
    sizes, peaks, overlap = component_table(prob, brain, label, threshold)
    got, found, total = score(sizes, peaks, overlap, int(label.sum()), fraction, max(min_peak, threshold))

    mask, n, _ = remove_small_components((prob >= threshold) & brain, fraction)
    labels, _ = ndi.label(mask)
    for k in range(1, labels.max() + 1):  # the optional peak rule, applied component by component
        if prob[labels == k].max() < min_peak:
            mask[labels == k] = False
    assert n == len(sizes) > 3
    assert got == pytest.approx(dice(label, mask))
    assert (found, total) == (int((mask & label).sum()), int(mask.sum()))


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


def test_sweep_on_unseen_phantoms_caches_the_ensembles_probability(tmp_path):
    """``--unseen`` tunes on phantoms no fold model saw, so every case must be segmented by the whole
    ensemble (as the product does), not by one fold model picked by a re-derived split."""
    import shutil

    from postprocess_sweep import cached_probabilities

    from ich_infer.io import read_image
    from ich_infer.predict import DEFAULT_WEIGHTS, native_probabilities
    from ich_infer.weights import Ensemble, load_weights

    sample = Path(__file__).resolve().parents[1] / "test_data"
    name = sorted((sample / "images").iterdir())[0].name
    data = tmp_path / "data"  # one case of the sample data: the ensemble runs once here
    for sub in ("images", "labels"):
        (data / sub).mkdir(parents=True)
        shutil.copy(sample / sub / name, data / sub / name)
    ensemble = load_weights(DEFAULT_WEIGHTS)
    files = cached_probabilities(data, ensemble, tmp_path / "cache", tta=False, unseen=True)
    assert [f.name for f in files] == [name.replace(".nii.gz", ".npz")]
    volume, geometry = read_image(data / "images" / name)
    expected = np.round(native_probabilities(volume, geometry, ensemble)[0] * 255)
    one_fold = np.round(native_probabilities(volume, geometry, Ensemble(ensemble.config, ensemble.models[:1]))[0] * 255)
    with np.load(files[0]) as cached:
        assert np.array_equal(cached["prob"], expected) and int(cached["fold"]) == -1
    assert not np.array_equal(one_fold, expected)


@pytest.mark.parametrize("threshold", [0.5, 0.97])
def test_sweep_with_rescue_equals_the_products_postprocess(threshold):
    """``--rescue``: where the setting keeps nothing (threshold 0.97 here) the sweep must score the
    region the product's never-empty rule puts back; elsewhere the plain score stands."""
    from dataclasses import replace

    from ich_infer.config import InferenceConfig

    rng = np.random.default_rng(5)
    spikes = np.zeros((10, 32, 32))
    for _ in range(6):
        spikes[tuple(rng.integers(2, s - 2) for s in spikes.shape)] = rng.uniform(0.5, 1.0)
    prob = ndi.gaussian_filter(spikes, 1.5)
    prob = 0.9 * prob / prob.max()  # peak 0.9: nothing reaches 0.97, the rescue bar (0.3) is met
    brain = np.ones(prob.shape, bool)
    label = prob > 0.5
    cfg = replace(InferenceConfig(), threshold=threshold, min_component_fraction=0.1)
    plain = score(*component_table(prob, brain, label, threshold), int(label.sum()), 0.1, threshold)
    got, found, total = rescued_score(plain, prob, brain, label, cfg)
    mask = postprocess(prob, brain, cfg)[0]
    assert total == int(mask.sum()) > 0 and found == int((mask & label).sum())
    assert got == pytest.approx(dice(label, mask))
    assert (plain[2] == 0) == (threshold == 0.97)


def test_sweep_row_tells_empty_lesion_cases_from_missed_ones():
    """A lesion case whose mask misses the lesion still has a finite HD; one left with no mask does
    not. The row must count them apart, and lesion-free cases only in the false-positive columns."""
    from postprocess_sweep import summary_row

    per_case = [(True, 0.8, 50, 1.0), (True, 0.0, 0, 0.3), (True, 0.0, 0, 0.0),
                (False, 0.0, 0, 0.2), (False, 1.0, 0, 0.0)]
    assert summary_row(per_case) == ("0.360", "0.267", "1/3", "1/3", "0.10", "1/2")


def test_perfect_network_scores_what_the_grid_allows(phantoms):
    """The grid-ceiling benchmark feeds the training target back through the product's chain: on the
    scan's own grid that must give back the label (bar what lies outside the brain), on a coarser
    grid less but still the same lesion, whatever the stored orientation."""
    from dataclasses import replace

    from grid_ceiling import perfect_network_masks

    from ich_infer.config import InferenceConfig, PreprocessConfig
    from ich_infer.preprocess import preprocess

    cases = [p for p in phantoms if p.label.any()]
    assert cases
    for phantom in cases:
        label = phantom.label.astype(bool)
        scores = {}
        for spacing in (None, (1.8, 1.8, 5.0)):
            pre = preprocess(phantom.image.astype(np.float32), phantom.geometry.spacing, phantom.geometry.direction,
                             replace(PreprocessConfig(), target_spacing=spacing))
            masks = perfect_network_masks(label, pre, InferenceConfig())
            assert masks["resampled"].shape == label.shape
            assert not (masks["resampled"] & ~pre.brain_native).any()
            assert not (masks["product"] & ~masks["resampled"]).any()  # post-processing only removes here
            inside = label & pre.brain_native
            scores[spacing] = dice(label, masks["resampled"])
            if spacing is None:
                assert np.array_equal(masks["resampled"], inside)
        assert 0.6 < scores[(1.8, 1.8, 5.0)] < scores[None]
