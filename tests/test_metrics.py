import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from ich_infer.metrics import (
    case_metrics,
    dice,
    relative_volume_difference,
    robust_hausdorff,
    surface_dice,
    surface_distances,
    surfel_area_table,
)

SPACING = (5.0, 0.42, 0.42)  # (z, y, x): INSTANCE's 0.42 x 0.42 x 5 mm


@pytest.fixture(scope="module")
def reference():
    """DeepMind's surface-distance package (the challenge's), patched for NumPy 2 (np.Inf is gone)."""
    if not hasattr(np, "Inf"):
        np.Inf = np.inf
    return pytest.importorskip("surface_distance.metrics", reason="test extra 'surface-distance' not installed")


def _blob(rng, shape=(16, 64, 64), sigma=3.0, level=0.52):
    return ndi.gaussian_filter(rng.random(shape), sigma) > level


def test_surfel_area_table_equals_reference(reference):
    from surface_distance import lookup_tables

    for spacing in [(1.0, 1.0, 1.0), SPACING, (0.3, 1.7, 2.9)]:
        np.testing.assert_allclose(surfel_area_table(spacing),
                                   lookup_tables.create_table_neighbour_code_to_surface_area(spacing),
                                   rtol=0, atol=1e-12)


def test_nsd_and_hd_match_reference_on_random_blobs(reference):
    rng = np.random.default_rng(42)
    checked = 0
    for _ in range(60):
        gt, pred = _blob(rng), _blob(rng, level=rng.uniform(0.5, 0.54))
        if not gt.any() or not pred.any():
            continue
        ref = reference.compute_surface_distances(gt, pred, SPACING)
        ours = surface_distances(gt, pred, SPACING)
        assert abs(robust_hausdorff(ours, 100) - reference.compute_robust_hausdorff(ref, 100)) <= 1e-6
        assert abs(robust_hausdorff(ours, 95) - reference.compute_robust_hausdorff(ref, 95)) <= 1e-6
        assert abs(surface_dice(ours, 0.42) - reference.compute_surface_dice_at_tolerance(ref, 0.42)) <= 1e-6
        assert abs(dice(gt, pred) - reference.compute_dice_coefficient(gt, pred)) <= 1e-6
        checked += 1
    assert checked >= 50


@pytest.mark.parametrize("k", [1, 2, 3])
def test_cubes_offset_along_z(k):
    gt = np.zeros((20, 30, 30), bool)
    gt[5:10, 10:20, 10:20] = True
    pred = np.roll(gt, k, axis=0)
    m = case_metrics(gt, pred, SPACING)
    assert m["hd"] == pytest.approx(5.0 * k)
    assert m["volume_gt_ml"] == pytest.approx(500 * 5.0 * 0.42 * 0.42 / 1000)


def test_identical_masks():
    gt = np.zeros((10, 20, 20), bool)
    gt[2:6, 5:12, 4:9] = True
    m = case_metrics(gt, gt.copy(), SPACING)
    assert m["dice"] == pytest.approx(1.0)
    assert m["hd"] == 0.0 and m["hd95"] == 0.0
    assert m["nsd"] == pytest.approx(1.0)
    assert m["rvd"] == 0.0


def test_empty_masks():
    empty = np.zeros((8, 10, 10), bool)
    lesion = empty.copy()
    lesion[2:4, 3:6, 3:6] = True
    both_empty = case_metrics(empty, empty, SPACING)
    assert both_empty["dice"] == 1.0  # the challenge's smoothing makes two empty masks a perfect match
    missed = case_metrics(lesion, empty, SPACING)
    assert missed["dice"] == pytest.approx(0.0, abs=1e-6)
    assert math.isinf(missed["hd"]) and missed["nsd"] == 0.0
    false_alarm = case_metrics(empty, lesion, SPACING)
    assert math.isinf(false_alarm["hd"]) and false_alarm["nsd"] == 0.0
    assert math.isnan(false_alarm["rvd"])
    with pytest.raises(ValueError, match="empty ground truth"):
        relative_volume_difference(empty, lesion)


def test_rvd_is_absolute_relative_difference():
    gt = np.zeros((4, 10, 10), bool)
    gt[1:3, 2:7, 2:7] = True  # 50 voxels
    pred = gt.copy()
    pred[3, 0:5, 0:5] = True  # +25 voxels
    assert relative_volume_difference(gt, pred) == pytest.approx(0.5)
    assert relative_volume_difference(pred, gt) == pytest.approx(25 / 75)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        case_metrics(np.zeros((2, 3, 4), bool), np.zeros((2, 3, 5), bool), SPACING)
