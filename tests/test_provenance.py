import json

from training.phantom import CASE_SEED_STRIDE
from training.provenance import dataset_record, git_commit, provenance, real_heads_in


def test_phantom_folders_record_generator_seed_and_acquisition(tmp_path):
    catalogue = {f"c{i}": {"seed": 2040 * CASE_SEED_STRIDE + i, "generator_version": 9, "acquisition": "varied"}
                 for i in range(3)}
    (tmp_path / "cases.json").write_text(json.dumps(catalogue))
    record = dataset_record(tmp_path, list(catalogue))
    assert record == {"folder": tmp_path.name, "cases": 3, "generator_versions": [9], "dataset_seeds": [2040],
                      "acquisition": ["varied"]}
    assert dataset_record(tmp_path, ["c0", "other"]) == {"folder": tmp_path.name, "cases": 2}


def test_a_skull_stripped_twin_says_so_in_the_record_and_the_data_line(tmp_path):
    from training.data import Case, describe_data

    catalogue = {f"c{i}_stripped": {"seed": 2040 * CASE_SEED_STRIDE + i, "generator_version": 9,
                                    "acquisition": "varied", "variant": "skull_stripped"} for i in range(2)}
    (tmp_path / "cases.json").write_text(json.dumps(catalogue))
    assert dataset_record(tmp_path, list(catalogue))["variants"] == ["skull_stripped"]
    line = describe_data(tmp_path, [Case(name, tmp_path, tmp_path) for name in catalogue])
    assert line.startswith("2 skull-stripped synthetic phantoms") and "dataset seed 2040" in line


def test_git_commit_outside_a_checkout_says_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    sha = git_commit()
    assert sha == "unknown" or len(sha.split("-")[0]) == 40


def test_real_heads_come_from_the_catalogue_of_the_cases_trained_on(tmp_path):
    heads, phantoms = tmp_path / "heads", tmp_path / "phantoms"
    heads.mkdir(), phantoms.mkdir()
    (heads / "cases.json").write_text(json.dumps({"a_unaltered": {"real_head": "a"},
                                                  "b_lesion_00": {"real_head": "b"}}))
    (phantoms / "cases.json").write_text(json.dumps({"p0": {"seed": 1, "generator_version": 9}}))
    assert real_heads_in(heads, ["a_unaltered"]) == {"a"}
    record = provenance([phantoms, heads], [["p0"], ["a_unaltered", "b_lesion_00"]])
    assert record["real_heads"] == ["a", "b"]
    assert provenance([phantoms], [["p0"]])["real_heads"] == []


def test_real_patients_are_listed_with_their_source(tmp_path):
    """ct-ich patients trained on are named in the manifest, so a report can refuse to score them."""
    (tmp_path / "cases.json").write_text(json.dumps({
        "ct_ich_049": {"source": "ct-ich 1.0.0", "patient": 49, "slices": 33, "label_ml": 5.7},
        "ct_ich_050": {"source": "ct-ich 1.0.0", "patient": 50, "slices": 26, "label_ml": 6.5}}))
    record = dataset_record(tmp_path, ["ct_ich_050", "ct_ich_049"])
    assert record["patients"] == [49, 50] and record["source"] == ["ct-ich 1.0.0"] and record["cases"] == 2
    assert "generator_versions" not in record
