"""The skull-stripped twin of a data folder: what the product accepts as stripped, folds kept aligned."""

import json

import numpy as np

from ich_infer.input_kind import classify
from ich_infer.io import read_image, read_mask, write_image
from training.data import discover
from training.folds import dataset_folds
from training.stripped_variants import SUFFIX, strip, write_twin


def test_strip_widens_the_brain_and_drops_bone_air_and_the_label_outside():
    hu = np.full((3, 9, 9), 40.0, np.float32)
    hu[1, 4, 6] = 900.0  # bone inside the widened mask
    hu[1, 4, 2] = -800.0  # sinus air inside it
    brain = np.zeros(hu.shape, bool)
    brain[1, 3:6, 3:6] = True
    label = np.zeros(hu.shape, bool)
    label[1, 4, 4] = label[1, 0, 0] = True
    image, kept = strip(hu, label, brain, widen=0, background=-1024.0)
    assert (image[brain] == 40).all() and (image[~brain] == -1024).all()
    assert kept[1, 4, 4] and not kept[1, 0, 0]
    image, _ = strip(hu, label, brain, widen=1, background=0.0)
    assert image[1, 3, 2] == 40 and image[0, 4, 4] == 40  # one voxel wider, in every direction
    assert image[1, 4, 6] == 0 and image[1, 4, 2] == 0 and image[1, 0, 0] == 0


def test_twin_is_accepted_as_skull_stripped_and_shares_its_originals_folds(tmp_path, phantoms):
    data = tmp_path / "src"
    catalogue = {}
    for i, ph in enumerate(phantoms):
        write_image(data / "images" / f"p{i}.nii.gz", ph.image, ph.geometry)
        write_image(data / "labels" / f"p{i}.nii.gz", ph.label, ph.geometry)
        catalogue[f"p{i}"] = {"seed": 7000 + i, "generator_version": 9}
    (data / "cases.json").write_text(json.dumps(catalogue))
    out = tmp_path / "twin"
    assert write_twin(data, out, seed=1, echo=lambda s: None) == len(phantoms)

    originals, twins = discover(data), discover(out)
    assert [t.case for t in twins] == [o.case + SUFFIX for o in originals]
    for fold in dataset_folds([len(originals), len(twins)], 3, seed=0):
        held = set(fold.tolist())
        assert all((i in held) == (i + len(originals) in held) for i in range(len(originals)))

    entries = json.loads((out / "cases.json").read_text())
    for original, twin in zip(originals, twins):
        image, geometry = read_image(twin.image)
        source, source_geometry = read_image(original.image)
        assert geometry == source_geometry
        kind = classify(image)
        assert kind.kind == "skull_stripped", kind.detail
        tissue = image != kind.background
        assert image[tissue].max() < 300 and image[tissue].min() > -500
        assert np.array_equal(image[tissue], source[tissue])  # tissue values untouched
        label, truth = read_mask(twin.label)[0], read_mask(original.label)[0]
        assert not (label & ~truth).any() and not (label & ~tissue).any()
        if truth.any():
            assert label.sum() >= 0.8 * truth.sum()  # haemorrhage lies inside the brain
        entry = entries[twin.case]
        assert entry["source"] == f"src/{original.case}" and entry["variant"] == "skull_stripped"
        assert entry["seed"] == catalogue[original.case]["seed"]
