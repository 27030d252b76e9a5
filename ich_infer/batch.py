"""Checks a batch passes before any model is loaded: where it writes, what it reads, what a killed run left.

A batch must never write into its input folder (``-o`` equal to, inside or around the input would
overwrite scans with masks or mix reports with data), must name every case once, and must fail in
seconds, not after its first case, when the output folder cannot be written.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path

from .errors import IchsegError
from .inputs import list_inputs
from .io import IMAGE_SUFFIXES

# What io.write_image and io.atomic_write_text leave behind when killed: ".<name>.<8 random>.tmp<suffix>".
_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(" + "|".join(re.escape(s) for s in IMAGE_SUFFIXES) + r")?$")


def check_output_folder(input_dir: Path, output_dir: Path) -> None:
    """Refuse an output folder that is, lies inside or contains the input folder, or that cannot be written."""
    source, target = input_dir.resolve(), output_dir.resolve()
    if target == source or source in target.parents or target in source.parents:
        relation = "is" if target == source else "lies inside" if source in target.parents else "contains"
        raise IchsegError(output_dir, f"output folder {relation} the input folder {input_dir}; choose another "
                                      "(ichseg never writes into its input)")
    if target.exists() and not target.is_dir():
        raise IchsegError(output_dir, "exists and is not a folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        raise IchsegError(output_dir, f"output folder cannot be written ({exc.strerror or exc})") from None


def split_clashing(items: list) -> tuple[list, list[tuple]]:
    """``X.nii`` beside ``X.nii.gz`` would share one mask name, one row and one QC picture: such items
    are set apart, each with the line that names both files, and every other item runs.

    ``items`` have ``case`` and ``path`` (``ich_infer.inputs.ScanInput``). Returns (items to run,
    [(item, message)] for the clashing ones)."""
    by_case: dict[str, list] = defaultdict(list)
    for item in items:
        by_case[item.case].append(item)
    keep, clashing = [], []
    for item in items:
        group = by_case[item.case]
        if len(group) == 1:
            keep.append(item)
            continue
        others = ", ".join(str(other.path) for other in group if other is not item)
        clashing.append((item, f"{item.path}: case id {item.case!r} is also the id of {others}; rename one so "
                               "each case has one mask (neither was segmented)"))
    return keep, clashing


def plan_batch(input_dir: Path, output_dir: Path) -> tuple[list, list[tuple]]:
    """What a batch runs: the input folder's cases (``inputs.list_inputs``), clashing ids set apart
    (``split_clashing``), after the output folder passed its checks. Raises for a folder with no case."""
    if not input_dir.is_dir():
        raise IchsegError(input_dir, "is not a folder")
    items = list_inputs(input_dir)
    if not items:
        raise IchsegError(input_dir, "contains no .nii/.nii.gz/.mha/.mhd/.nrrd images and no DICOM series")
    items, clashing = split_clashing(items)
    check_output_folder(input_dir, output_dir)
    return items, clashing


def remove_stale_temps(output_dir: Path) -> list[Path]:
    """Delete temp files a killed run of ichseg left (only names of its own pattern); returns them."""
    removed = []
    for folder in (output_dir, output_dir / "qc"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if _TEMP.match(path.name) and path.is_file():
                os.unlink(path)
                removed.append(path)
    return removed
