import json

from training.phantom import CASE_SEED_STRIDE
from training.provenance import dataset_record, git_commit


def test_phantom_folders_record_generator_seed_and_acquisition(tmp_path):
    catalogue = {f"c{i}": {"seed": 2040 * CASE_SEED_STRIDE + i, "generator_version": 9, "acquisition": "varied"}
                 for i in range(3)}
    (tmp_path / "cases.json").write_text(json.dumps(catalogue))
    record = dataset_record(tmp_path, list(catalogue))
    assert record == {"folder": tmp_path.name, "cases": 3, "generator_versions": [9], "dataset_seeds": [2040],
                      "acquisition": ["varied"]}
    assert dataset_record(tmp_path, ["c0", "other"]) == {"folder": tmp_path.name, "cases": 2}


def test_git_commit_outside_a_checkout_says_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    sha = git_commit()
    assert sha == "unknown" or len(sha.split("-")[0]) == 40
