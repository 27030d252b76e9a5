"""Where a weights folder came from, written into its manifest by code, never by hand.

The manifest's ``training`` block gets the git commit of the code that trained it, the phantom
generator version and dataset seeds of every data folder (from their ``cases.json``), the real heads
trained on (so a real-head benchmark can refuse to report a head the weights saw), the hardware and
the exact command. The parent weights' manifest sha256 is recorded by ``--init`` itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .data import catalogue_entries
from .phantom import CASE_SEED_STRIDE, GENERATOR_VERSION

REPO = Path(__file__).resolve().parents[1]


def git_commit(repo: Path = REPO) -> str:
    """HEAD's sha, with ``-dirty`` when tracked files differ from it; ``unknown`` outside a checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def dataset_record(folder: Path, case_names: list[str]) -> dict:
    """What one data folder holds: case count, and for phantoms their generator versions, seeds, acquisition."""
    entries = catalogue_entries(folder, case_names)
    record = {"folder": Path(folder).name, "cases": len(case_names)}
    if entries and all(isinstance(e, dict) and "seed" in e for e in entries):
        record.update(generator_versions=sorted({e.get("generator_version", 0) for e in entries}),
                      dataset_seeds=sorted({e["seed"] // CASE_SEED_STRIDE for e in entries}),
                      acquisition=sorted({e.get("acquisition", "instance") for e in entries}))
        variants = sorted({e["variant"] for e in entries if "variant" in e})
        if variants:
            record["variants"] = variants  # e.g. skull_stripped: a twin of another folder
    patients = [e["patient"] for e in entries if isinstance(e, dict) and "patient" in e]
    if patients:  # real patients (training.ct_ich): which ones, so a report can refuse to score them
        record.update(source=sorted({e.get("source", "") for e in entries if isinstance(e, dict)}),
                      patients=sorted(patients))
    return record


def real_heads_in(folder: Path, case_names: list[str]) -> set[str]:
    """The real heads that the named cases of a data folder were cut from (its ``cases.json`` says)."""
    entries = catalogue_entries(folder, case_names)
    return {e["real_head"] for e in entries if isinstance(e, dict) and "real_head" in e}


def provenance(folders: list[Path], case_names: list[list[str]]) -> dict:
    heads = set().union(*(real_heads_in(f, names) for f, names in zip(folders, case_names)))
    return {"git_commit": git_commit(), "generator_version": GENERATOR_VERSION,
            "datasets": [dataset_record(f, names) for f, names in zip(folders, case_names)],
            "real_heads": sorted(heads)}
