import json

import numpy as np
import pytest
import torch
from conftest import work_with_cache

from ich_infer.errors import IchsegError
from ich_infer.weights import load_weights
from training.configs import CONFIGS, load_config
from training.cv import CvOptions, dataset_folds, discover_datasets, split_folds, train_val_split
from training.cv import main as cv_main
from training.cv import run as cv_run
from training.data import CaseArrays, describe_data, discover
from training.loss import dice_ce_loss
from training.mining import mine_false_positives
from training.sampling import (
    PatchSpec,
    SamplingConfig,
    epoch_specs,
    extract,
    false_positive_voxels,
    hard_cases,
    sample_centres,
)


def _arrays(seed=0, shape=(20, 60, 60), lesion=True):
    rng = np.random.default_rng(seed)
    brain = np.zeros(shape, bool)
    brain[2:18, 8:52, 8:52] = True
    label = np.zeros(shape, bool)
    if lesion:
        label[8:12, 20:30, 25:33] = True
    image = rng.normal(size=(1, *shape)).astype(np.float32)
    return CaseArrays(f"c{seed}", image, brain, label, (5.0, 0.9, 0.9))


def test_balanced_sampling_half_on_lesions_all_in_brain():
    arrays = _arrays()
    centres = sample_centres(arrays, 3000, 0.5, np.random.default_rng(0))
    on_lesion = arrays.label[tuple(centres.T)].mean()
    assert abs(on_lesion - 0.5) < 0.03  # half the centres (uniform brain picks rarely hit the lesion)
    assert arrays.brain[tuple(centres.T)].all()
    free = _arrays(lesion=False)
    assert free.brain[tuple(sample_centres(free, 200, 0.5, np.random.default_rng(1)).T)].all()


def test_sampling_draws_exactly_the_papers_centres():
    """Lesion draws, then brain draws, and not one more: the released weights' reproduce commands
    sample as they always did."""
    arrays = _arrays()
    rng, reference = np.random.default_rng(3), np.random.default_rng(3)
    picks = [reference.choice(np.flatnonzero(arrays.label), 25), reference.choice(np.flatnonzero(arrays.brain), 25)]
    expected = np.stack(np.unravel_index(np.concatenate(picks), arrays.brain.shape), axis=1)
    np.testing.assert_array_equal(sample_centres(arrays, 50, 0.5, rng), expected)
    assert rng.random() == reference.random()


def _as_mask(flat: np.ndarray, shape) -> np.ndarray:
    mask = np.zeros(int(np.prod(shape)), bool)
    mask[flat] = True
    return mask.reshape(shape)


def test_false_positives_are_mined_away_from_lesions_only():
    arrays = _arrays()  # lesion at [8:12, 20:30, 25:33], spacing (5, 0.9, 0.9) mm
    prob = np.zeros(arrays.brain.shape, np.float32)
    prob[8:12, 18:32, 23:35] = 0.9  # the lesion and a 2-voxel (1.8 mm) rim: the lesion half covers it
    prob[4:6, 40:44, 40:44] = 0.3  # a near-miss island 10+ voxels (> 10 mm) away
    prob[4:6, 44:46, 40:44] = 0.1  # below the mining threshold
    prob[0:2, 40:44, 40:44] = 0.9  # outside the brain (slices 0-1)
    mined = _as_mask(false_positive_voxels(prob, arrays, 0.2, 10.0), prob.shape)
    island = np.zeros_like(mined)
    island[4:6, 40:44, 40:44] = True
    np.testing.assert_array_equal(mined, island)
    # Margin in millimetres, not voxels: the rim's inner ring is 0.9 mm from the lesion, its outer 1.8 mm.
    rim = _as_mask(false_positive_voxels(prob, arrays, 0.2, 1.0), prob.shape)
    assert rim[9, 18, 28] and not rim[9, 19, 28] and not (rim & arrays.label).any()
    free = _arrays(lesion=False)  # no lesion: every confident brain voxel is a false positive
    mined_free = _as_mask(false_positive_voxels(prob, free, 0.2, 10.0), prob.shape)
    np.testing.assert_array_equal(mined_free, (prob >= 0.2) & free.brain)


def test_sampling_takes_its_share_from_mined_negatives_and_nothing_when_none():
    arrays = _arrays()
    mined = np.flatnonzero(_as_mask(np.ravel_multi_index((5, 45, 45), arrays.brain.shape), arrays.brain.shape))
    centres = sample_centres(arrays, 2000, 0.5, np.random.default_rng(0), mined=mined, mined_fraction=0.25)
    at_mined = np.ravel_multi_index(tuple(centres.T), arrays.brain.shape) == mined[0]
    assert 0.25 <= at_mined.mean() < 0.26 and abs(arrays.label[tuple(centres.T)].mean() - 0.5) < 0.03
    # Nothing mined (a model with no false positive) or mining off: exactly the unmined draws.
    for kwargs in ({"mined": np.array([], np.int64), "mined_fraction": 0.25}, {"mined": mined}):
        a = sample_centres(arrays, 50, 0.5, np.random.default_rng(4), **kwargs)
        np.testing.assert_array_equal(a, sample_centres(arrays, 50, 0.5, np.random.default_rng(4)))
    specs = epoch_specs([arrays, _arrays(1)], SamplingConfig(40, 0.5, 0.25, augment=False), np.random.default_rng(0),
                        mined={0: mined})
    assert sum(s.case_index == 0 and s.centre == (5, 45, 45) for s in specs) >= 10
    assert not any(s.case_index == 1 and s.centre == (5, 45, 45) for s in specs)


def test_mining_reads_the_model_without_disturbing_its_training():
    from ich_infer.model import SEUNet3D

    cfg = CONFIGS["cpu_hu"]
    model = SEUNet3D(cfg.ich.model).train()
    with torch.no_grad():  # a last layer that answers "blood" everywhere: every far brain voxel is mined
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([-5.0, 5.0]))
    arrays = _arrays(shape=(20, 60, 60))
    mined = mine_false_positives(model, [arrays], cfg, torch.device("cpu"))
    expected = false_positive_voxels(arrays.brain.astype(np.float32), arrays, cfg.mining_threshold,
                                     cfg.mining_margin_mm)
    np.testing.assert_array_equal(mined[0], expected)
    assert len(expected) and not arrays.label.ravel()[expected].any()
    with torch.no_grad():  # and "no blood" everywhere mines no false positive
        model.head.bias.copy_(torch.tensor([5.0, -5.0]))
    assert len(mine_false_positives(model, [arrays], cfg, torch.device("cpu"))[0]) == 0
    # The trained model is untouched: still training mode, and autograd still accepts its parameters.
    assert model.training
    model(torch.zeros(1, 1, 16, 48, 48)).sum().backward()
    assert model.head.weight.grad is not None


def test_patches_near_borders_are_padded():
    arrays = _arrays(shape=(6, 20, 20))
    arrays.brain[:] = True
    for spec in (PatchSpec(0, (0, 0, 0)), PatchSpec(0, (5, 19, 19), True, True, 8.0)):
        image, label = extract(arrays, spec, (16, 48, 48))
        assert image.shape == (1, 16, 48, 48) and label.shape == (16, 48, 48)
        assert np.isfinite(image).all()


def test_flip_augmentation_moves_image_and_label_together():
    arrays = _arrays()
    spec = PatchSpec(0, (10, 25, 29))
    image, label = extract(arrays, spec, (16, 32, 32))
    fimage, flabel = extract(arrays, PatchSpec(0, (10, 25, 29), True, True, 0.0), (16, 32, 32))
    np.testing.assert_array_equal(fimage, image[:, :, ::-1, ::-1])
    np.testing.assert_array_equal(flabel, label[:, ::-1, ::-1])


def test_hard_cases_are_the_smallest_lesions_and_get_extra_patches():
    cases = [_arrays(i) for i in range(4)]
    cases[2].label[:] = False
    cases[2].label[10, 30, 30] = True
    cases[3].label[:] = False
    assert hard_cases(cases, 0.25) == {2}
    specs = epoch_specs(cases, SamplingConfig(10, 0.5), np.random.default_rng(0), hard={2})
    counts = np.bincount([s.case_index for s in specs])
    assert counts.tolist() == [10, 10, 20, 10]


def test_loss_matches_a_hand_computation():
    logits = torch.tensor([[[0.0, 2.0, -1.0]], [[1.0, 0.0, 1.0]]]).permute(1, 0, 2).reshape(1, 2, 3)
    target = torch.tensor([[1, 0, 1]])
    # cross-entropy with class weights (1, 2): sum(w_i * nll_i) / sum(w_i)
    p1 = torch.softmax(logits, dim=1)[0, 1]
    nll = torch.stack([-torch.log(p1[0]), -torch.log(1 - p1[1]), -torch.log(p1[2])])
    w = torch.tensor([2.0, 1.0, 2.0])
    ce = (w * nll).sum() / w.sum()
    dice = (2 * (p1[0] + p1[2]) + 1) / (p1.sum() + 2 + 1)
    expected = ce + 1 - dice
    got = dice_ce_loss(logits.reshape(1, 2, 1, 1, 3), target.reshape(1, 1, 1, 3), lesion_weight=2.0)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_folds_are_deterministic_and_partition_the_cases():
    folds = split_folds(23, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(23))
    assert [f.tolist() for f in folds] == [f.tolist() for f in split_folds(23, 5, seed=3)]
    train, val = train_val_split(np.arange(20), 0.2, 0, 1)
    assert len(val) == 4 and not set(train) & set(val)


def test_several_datasets_keep_each_ones_folds(tmp_path, smoke_data):
    assert [f.tolist() for f in dataset_folds([23], 5, 3)] == [f.tolist() for f in split_folds(23, 5, 3)]
    folds = dataset_folds([23, 12], 5, 3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(35))
    for k, (a, b) in enumerate(zip(split_folds(23, 5, 3), split_folds(12, 5, 3))):
        assert folds[k].tolist() == a.tolist() + (b + 23).tolist()  # fold k of each, unmoved
    groups = discover_datasets([smoke_data])
    assert [len(g) for g in groups] == [6] and groups[0] == discover(smoke_data)
    with pytest.raises(IchsegError, match="also in"):
        discover_datasets([smoke_data, smoke_data])


def test_named_configs():
    assert load_config("paper").patches_per_image == 3000
    assert load_config("paper").ich.inference.patch_size == (16, 48, 48)
    assert load_config("symmetric").ich.model.in_channels == 2
    assert {"se_ends", "se_all", "patch16", "patch32", "minmax", "depth3", "smoke", "cpu"} <= set(CONFIGS)
    with pytest.raises(ValueError, match="unknown config"):
        load_config("nope")


def test_describe_data_names_generator_version_and_dataset_seed(tmp_path, smoke_data):
    from training.phantom import CASE_SEED_STRIDE, GENERATOR_VERSION

    cases = discover(smoke_data)
    catalogue = {c.case: {"seed": 2027 * CASE_SEED_STRIDE + i, "generator_version": GENERATOR_VERSION, "lesions": []}
                 for i, c in enumerate(cases)}  # what write_dataset(seed=2027) records
    folder = tmp_path / "phantoms"
    folder.mkdir()
    (folder / "cases.json").write_text(json.dumps(catalogue))
    line = describe_data(folder, cases)
    assert line.startswith(f"6 synthetic phantoms from ichseg's phantom generator v{GENERATOR_VERSION} ")
    assert "dataset seed 2027;" in line and line.endswith("no patient data, not INSTANCE 2022)")
    catalogue[cases[0].case]["generator_version"] = -1  # a mixed folder says so
    (folder / "cases.json").write_text(json.dumps(catalogue))
    assert f"generator v-1/{GENERATOR_VERSION} " in describe_data(folder, cases)


def test_discovery_errors(tmp_path, smoke_data):
    assert len(discover(smoke_data)) == 6
    with pytest.raises(IchsegError, match="expected images/"):
        discover(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "x.nii.gz").write_bytes(b"1")
    with pytest.raises(IchsegError, match="x.nii.gz: has no counterpart"):
        discover(tmp_path)


def test_smoke_training_end_to_end_and_resume(tmp_path, smoke_data, smoke_weights, shared_cache):
    out = smoke_weights
    ensemble = load_weights(out)
    assert len(ensemble.models) == 2
    assert (out / "cv_report.csv").read_text().startswith("fold,case,dice")
    training = ensemble.manifest["training"]
    assert training["cv_summary"]["cases"] == 6
    # Provenance written by the run itself, not by hand (phantom folders: see test_describe_data).
    assert training["data_source"] == f"6 cases from {smoke_data.name}/"
    assert training["command"].startswith("python -m training.cv --data ") and "--config smoke" in training["command"]
    assert training["hardware"].startswith("cpu")
    from training.phantom import GENERATOR_VERSION
    from training.provenance import git_commit

    assert training["git_commit"] == git_commit() and training["git_commit"] != ""
    assert training["generator_version"] == GENERATOR_VERSION and training["real_heads"] == []
    assert training["datasets"] == [{"folder": smoke_data.name, "cases": 6}]
    assert ensemble.config.preprocess.registration in ("sitk", "flirt")  # decided when training

    # Interrupted after epoch 0, resumed: the same weights as the uninterrupted run.
    from dataclasses import replace

    config = tmp_path / "one_epoch.json"
    config.write_text(json.dumps(replace(CONFIGS["smoke"], max_epochs=1).to_dict()))
    part = tmp_path / "part"
    work_with_cache(part, shared_cache)
    assert cv_main(["--data", str(smoke_data), "--out", str(part), "--config", str(config), "--device", "cpu",
                    "--folds", "0"]) == 0
    (part / "work" / "fold_0_done.json").unlink()  # as if killed before the fold finished
    assert cv_main(["--data", str(smoke_data), "--out", str(part), "--config", "smoke", "--device", "cpu",
                    "--resume"]) == 0
    resumed = load_weights(part)
    for a, b in zip(ensemble.models, resumed.models):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka


@pytest.mark.slow
def test_mined_training_resumes_to_the_same_weights(tmp_path, smoke_data, shared_cache):
    """Mining reads the model at the start of each epoch, so a resumed run must mine what an
    uninterrupted one mined and end with the same weights."""
    from dataclasses import replace

    def config(epochs: int):
        path = tmp_path / f"mined_{epochs}.json"
        mined = replace(CONFIGS["smoke"], max_epochs=epochs, mined_negative_fraction=0.25)
        path.write_text(json.dumps(mined.to_dict()))
        return str(path)

    lines: list[str] = []
    common = ["--data", str(smoke_data), "--device", "cpu", "--folds", "0"]
    for run in "ab":
        work_with_cache(tmp_path / run, shared_cache)
    assert cv_main([*common, "--out", str(tmp_path / "a"), "--config", config(2)]) == 0
    assert cv_main([*common, "--out", str(tmp_path / "b"), "--config", config(1)]) == 0
    (tmp_path / "b" / "work" / "fold_0_done.json").unlink()
    options = CvOptions(folds=[0], device=torch.device("cpu"), resume=True, echo=lines.append)
    done = cv_run(smoke_data, tmp_path / "b", load_config(config(2)), options)
    assert done == {"missing_folds": [1]}
    assert any(line.startswith("fold 0 epoch 1: mined ") and "false-positive voxels" in line for line in lines)
    a, b = (torch.load(tmp_path / d / "work" / "fold_0_last.pt", weights_only=True)["model"] for d in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_smoke_weights_drive_ichseg_predict(tmp_path, smoke_data, smoke_weights):
    import shutil

    from ich_infer.predict import predict_folder

    scans = tmp_path / "scans"
    scans.mkdir()
    for image in sorted((smoke_data / "images").iterdir())[:2]:
        shutil.copy(image, scans / image.name)
    report = predict_folder(scans, tmp_path / "pred", weights=smoke_weights, device="cpu", echo=lambda s: None)
    assert not report.failed and len(report.cases) == 2
    assert all((tmp_path / "pred" / image.name).is_file() for image in scans.iterdir())


@pytest.mark.slow
def test_init_starts_each_fold_from_released_weights(tmp_path, smoke_data, smoke_weights, shared_cache):
    import hashlib
    from dataclasses import replace

    released = smoke_weights
    config = tmp_path / "one_epoch.json"
    config.write_text(json.dumps(replace(CONFIGS["smoke"], max_epochs=1, seed=5).to_dict()))
    tuned, scratch = tmp_path / "tuned", tmp_path / "scratch"
    for out in (tuned, scratch):
        work_with_cache(out, shared_cache)
    common = ["--data", str(smoke_data), "--config", str(config), "--device", "cpu"]
    assert cv_main([*common, "--out", str(tuned), "--init", str(released)]) == 0
    assert cv_main([*common, "--out", str(scratch)]) == 0
    start, after, fresh = (load_weights(p).models for p in (released, tuned, scratch))

    def distance(a, b):
        return sum(float((va - vb).pow(2).sum()) for va, vb in zip(a.state_dict().values(), b.state_dict().values()))

    for s, a, f in zip(start, after, fresh):  # one epoch moves a fold a little away from where it started
        assert distance(a, s) < 0.1 * distance(f, s)
    note = load_weights(tuned).manifest["training"]["initialised_from"]
    released_sha = hashlib.sha256((released / "manifest.json").read_bytes()).hexdigest()
    assert note["manifest_sha256"] == released_sha

    other = tmp_path / "wider.json"
    other.write_text(json.dumps(load_config("cpu").to_dict()))
    assert cv_main([*common[:2], "--config", str(other), "--device", "cpu", "--out", str(tmp_path / "x"),
                    "--init", str(released)]) == 1  # a different architecture is refused, not half-loaded


def test_intensity_augmentation_changes_brain_voxels_only_and_is_reproducible():
    from training.sampling import IntensityAugment, PatchSpec, SamplingConfig, epoch_specs, extract

    image = np.full((1, 20, 60, 60), -2.0, np.float32)
    image[:, :, 10:50, 10:50] = np.linspace(-1, 2, 40, dtype=np.float32)
    arrays = CaseArrays("c", image, image[0] > -2, np.zeros((20, 60, 60), bool), (0.9, 0.9, 5.0))
    plain, _ = extract(arrays, PatchSpec(0, (10, 30, 30)), (16, 48, 48))
    spec = PatchSpec(0, (10, 30, 30), shift=0.5, gain=1.0, noise=0.0, blur=0.0)
    shifted, _ = extract(arrays, spec, (16, 48, 48))
    inside = plain > -2
    assert np.allclose(shifted[inside], plain[inside] + 0.5) and np.all(shifted[~inside] == -2)
    sampling = SamplingConfig(8, 0.0, intensity=IntensityAugment(shift=0.5, gain=0.1, noise=0.2, blur_probability=1))
    a = epoch_specs([arrays], sampling, np.random.default_rng(3))
    b = epoch_specs([arrays], sampling, np.random.default_rng(3))
    assert a == b and all(s.blur != 0 and abs(s.shift) <= 0.5 for s in a)
    assert np.array_equal(extract(arrays, a[0], (16, 48, 48))[0], extract(arrays, b[0], (16, 48, 48))[0])


def test_a_one_channel_release_starts_a_symmetric_network_unchanged(tiny_weights, tiny_config):
    from dataclasses import replace

    from ich_infer.model import SEUNet3D
    from training.configs import TrainConfig
    from training.cv import initial_weights

    two = replace(tiny_config, preprocess=replace(tiny_config.preprocess, symmetric_channel=True),
                  model=replace(tiny_config.model, in_channels=2))
    states = initial_weights(tiny_weights, TrainConfig(ich=two))
    one_net = load_weights(tiny_weights).models[0].eval()
    two_net = SEUNet3D(two.model).eval()
    two_net.load_state_dict(states[0])
    x = torch.randn(1, 1, 8, 32, 32)
    with torch.no_grad():  # whatever the mirror holds, the widened net computes what the release did
        assert torch.allclose(two_net(torch.cat([x, torch.randn_like(x)], 1)), one_net(x), atol=1e-6)
    wider = replace(two, model=replace(two.model, base_width=8, in_channels=2))
    with pytest.raises(ValueError, match="initial weights are"):
        initial_weights(tiny_weights, TrainConfig(ich=wider))
