"""Training cases cut from real heads: lesions land in the brain, negatives stay lesion-free."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from training.real_head_cases import SUBTYPE_WEIGHTS, negatives, random_lesion

SPACING = (5.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def head():
    """A ball of brain (30 HU) with CSF spaces (8 HU) inside a 1000 HU shell, on thick slices."""
    k, j, i = np.meshgrid(np.arange(24) * 5.0, np.arange(140.0), np.arange(120.0), indexing="ij")
    r = np.sqrt(((k - 60) / 1.0) ** 2 + ((j - 70) / 1.15) ** 2 + (i - 60) ** 2)
    brain = r < 52
    hu = np.where(brain, 30.0, np.where(r < 58, 1000.0, -1000.0)).astype(np.float32)
    ventricles = (np.abs(i - 60) < 12) & (np.abs(j - 70) < 25) & (np.abs(k - 60) < 15) & (np.abs(i - 60) > 3)
    sulci = brain & (r > 45) & ((j.astype(int) // 6) % 2 == 0)
    hu[ventricles | sulci] = 8.0
    return hu, brain


@pytest.mark.parametrize("subtype", sorted(SUBTYPE_WEIGHTS))
def test_every_subtype_lands_inside_the_brain(head, subtype):
    hu, brain = head
    lesion = random_lesion(hu, brain, SPACING, subtype, np.random.default_rng(4))
    label = lesion.blood >= 0.5
    assert label.sum() > 20, subtype
    assert not (label & ~brain).any()
    if subtype in ("SDH", "EDH"):  # against the inner table, not deep
        depth = ndi.distance_transform_edt(brain, sampling=SPACING)
        assert np.median(depth[label]) < 12


def test_draws_differ_by_seed(head):
    hu, brain = head
    a = random_lesion(hu, brain, SPACING, "SDH", np.random.default_rng(1)).blood
    b = random_lesion(hu, brain, SPACING, "SDH", np.random.default_rng(2)).blood
    assert ((a >= 0.5) != (b >= 0.5)).sum() > 100


def test_negatives_keep_the_head_and_strip_to_a_constant_background(head):
    hu, brain = head
    out = negatives(hu, brain, SPACING, np.random.default_rng(0))
    assert set(out) == {"unaltered", "stripped", "smooth", "noisy"}
    assert out["unaltered"] is hu
    stripped = out["stripped"]
    assert (stripped[~ndi.binary_dilation(brain)] == 0).all() and (stripped[brain] == hu[brain]).all()
    added = out["noisy"] - hu
    assert abs(float(added.std()) - 6.0) < 1.0 and abs(float(added.mean())) < 0.5
    deep = ndi.distance_transform_edt(brain, sampling=SPACING) > 5
    assert out["smooth"][deep].std() < hu[deep].std()  # a softer kernel: edges of the CSF spaces blur
