"""The product's main job: a folder of head CTs in, a folder of haemorrhage masks and reports out.

``ichseg predict``, the Docker entrypoint and the training's cross-validation all call
:func:`segment` (one volume) or :func:`predict_folder` (a batch). A bad file is reported in one line
and the run goes on; masks are written atomically and a re-run skips finished cases.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import __version__
from .batch import plan_batch, remove_stale_temps
from .case_record import CSV_COLUMNS, CaseResult
from .dicom_seg import write_dicom_seg
from .errors import IchsegError, about
from .inputs import ScanInput, load_input
from .io import Geometry, atomic_write_text, csv_text, read_mask, write_mask
from .orientation import Reorientation
from .postprocess import postprocess
from .preprocess import Preprocessed, preprocess
from .qc import write_qc
from .qc_index import write_index
from .sliding_window import predict_probabilities
from .threads import apply_threads
from .volumetry import abc2_ml
from .weights import Ensemble, load_weights


def bundled_weights() -> Path:
    """$ICHSEG_WEIGHTS, else weights/ of a source checkout, else the copy installed with the package."""
    if os.environ.get("ICHSEG_WEIGHTS"):
        return Path(os.environ["ICHSEG_WEIGHTS"])
    checkout = Path(__file__).resolve().parent.parent / "weights"
    if (checkout / "manifest.json").is_file():
        return checkout
    return Path(str(resources.files("ich_infer") / "bundled_weights"))


DEFAULT_WEIGHTS = bundled_weights()


@dataclass
class Segmentation:
    mask: np.ndarray  # bool, the scan's own grid and axis order
    probability_max: float
    components: int
    rescued: bool
    volume_ml: float
    abc2_ml: float
    input_kind: str = "full_head"
    orientation: Reorientation | None = None  # the scan's axes -> canonical (S, P, L), from preprocessing


@dataclass
class Progress:
    """What a front end hears while a batch runs: one line per case, and hooks for a progress bar."""

    line: Callable[[str], None] = logging.getLogger(__name__).info  # the CLI passes its own printer
    case: Callable[[int, int, str], None] = lambda done, total, name: None  # before each case
    tiles: Callable[[int, int], None] | None = None  # after each batch of tiles of the current case


@dataclass
class RunReport:
    cases: list[CaseResult] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[CaseResult]:
        return [c for c in self.cases if c.status == "error"]


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise IchsegError(None, f"device {name!r} requested but CUDA is not available")
    return device


def native_probabilities(volume: np.ndarray, geometry: Geometry, ensemble: Ensemble,
                         on_tile: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, Preprocessed]:
    """The ensemble's averaged lesion probability on the scan's own grid, before any post-processing,
    and the preprocessing it came from (brain mask, orientation); also what post-processing is tuned on."""
    cfg = ensemble.config
    pre = preprocess(volume, geometry.spacing, geometry.direction, cfg.preprocess)
    prob = predict_probabilities(pre.image, pre.brain, ensemble.models, cfg.inference, ensemble.device, on_tile)
    return pre.to_native(prob), pre


def segment(volume: np.ndarray, geometry: Geometry, ensemble: Ensemble,
            on_tile: Callable[[int, int], None] | None = None) -> Segmentation:
    """Haemorrhage mask of one scan (HU, ``(k, j, i)``) on its own grid, on the ensemble's device."""
    cfg = ensemble.config
    prob_native, pre = native_probabilities(volume, geometry, ensemble, on_tile)
    mask, info = postprocess(prob_native, pre.brain_native, cfg.inference)
    canonical = pre.orientation.to_canonical(mask)
    spacing = pre.orientation.spacing(geometry.spacing)
    volume_ml = float(mask.sum()) * geometry.voxel_volume_ml
    return Segmentation(mask, float(prob_native[pre.brain_native].max()) if pre.brain_native.any() else 0.0,
                        max(info.components_before - info.components_removed, int(mask.any())), info.rescued,
                        volume_ml, abc2_ml(canonical, spacing), pre.input_kind.kind, pre.orientation)


def write_tables(out_dir: Path, report: RunReport) -> None:
    atomic_write_text(out_dir / "volumes.csv", csv_text(CSV_COLUMNS, (c.csv_row() for c in report.cases)))
    payload = {**report.meta, "cases": [asdict(c) for c in report.cases]}
    atomic_write_text(out_dir / "report.json", json.dumps(payload, indent=2, default=str) + "\n")


@dataclass(frozen=True)
class RunOptions:
    """How a batch runs; ``predict_folder(..., qc=True)`` builds one from keywords."""

    weights: str | Path | None = None  # default: the bundled weights
    device: str = "auto"
    overwrite: bool = False  # redo cases whose mask exists
    qc: bool = False  # qc/<case>.png montages and qc/index.html
    tta: bool | None = None  # average over in-plane flips; None: as the weights' manifest says
    dicom_seg: bool = False  # also <case>.seg.dcm for DICOM input
    threads: int | None = None  # CPU threads; None: ICHSEG_THREADS, OMP_NUM_THREADS or half the cores


@dataclass
class _Batch:
    ensemble: Ensemble  # on its device: segment sends the tiles there
    options: RunOptions
    output_dir: Path
    on_tile: Callable[[int, int], None] | None = None


def predict_folder(input_dir: str | Path, output_dir: str | Path, options: RunOptions | None = None,
                   echo: Callable[[str], None] | Progress | None = None, **settings) -> RunReport:
    """Segment every scan in ``input_dir`` into ``output_dir`` (same file names).

    ``settings`` are :class:`RunOptions` fields (``weights=``, ``device=``, ``qc=`` ...), for a call
    without building the options. ``echo`` gets one line per case; a :class:`Progress` also hears of
    every case and tile batch.
    """
    options = replace(options or RunOptions(), **settings)
    progress = echo if isinstance(echo, Progress) else Progress() if echo is None else Progress(echo)
    echo = progress.line
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    started = time.perf_counter()
    inputs, clashing = plan_batch(input_dir, output_dir)
    for stale in remove_stale_temps(output_dir):
        echo(f"removed {stale.name}, left by an interrupted run")
    weights = Path(options.weights or DEFAULT_WEIGHTS)
    threads = apply_threads(options.threads)
    torch_device = resolve_device(options.device)
    ensemble = load_weights(weights, torch_device)
    if options.tta is not None and options.tta != ensemble.config.inference.tta:
        ensemble = ensemble.with_inference(tta=options.tta)
        now, chosen = ("on", "off") if options.tta else ("off", "on")
        echo(f"note: flip averaging {now}, but these weights' post-processing was chosen with it {chosen} "
             "(ichseg tune-postprocess --tta/--no-tta)")
    batch = _Batch(ensemble, options, output_dir, progress.tiles)
    report = RunReport(meta={
        "ichseg_version": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "device": str(torch_device), "threads": threads, "weights": str(weights.resolve()),
        "weights_sha256": batch.ensemble.sha256, "training": batch.ensemble.manifest.get("training", {}),
        "config": batch.ensemble.config.to_dict(), "input": str(input_dir.resolve()),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    for item, message in clashing:
        report.cases.append(CaseResult(item.case, "error", error=message))
        echo(_summary_line(report.cases[-1]))
    for item in inputs:
        target = output_dir / item.output_name
        if target.exists() and not options.overwrite:
            result = _skipped(item.case, target)
        else:
            progress.case(len(report.cases), len(inputs), item.case)
            result = _predict_one(item, target, batch)
        report.cases.append(result)
        echo(_summary_line(result))
        write_tables(output_dir, report)  # after every case: an interrupted run keeps its table
    report.meta["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report.meta["total_s"] = round(time.perf_counter() - started, 2)
    write_tables(output_dir, report)
    if options.qc:
        write_index(output_dir / "qc", report.cases, f"ichseg QC: {input_dir.name}")
    return report


def _predict_one(item: ScanInput, target: Path, batch: _Batch) -> CaseResult:
    case, path = item.case, item.path
    tic = time.perf_counter()
    try:
        scan = load_input(item, with_source=batch.options.dicom_seg)
        volume, geometry, read_notes = scan.volume, scan.geometry, scan.read
        with about(path):
            seg = segment(volume, geometry, batch.ensemble, batch.on_tile)
        write_mask(target, seg.mask, geometry)
        if scan.source is not None:
            seg_path = write_dicom_seg(target.with_name(f"{case}.seg.dcm"), seg.mask, geometry, scan.source, path)
            read_notes = {**read_notes, "dicom_seg": str(seg_path)}
        result = CaseResult.segmented(case, seg, time.perf_counter() - tic, output=str(target), read=read_notes)
        if batch.options.qc:
            _write_montage(batch.output_dir / "qc" / f"{case}.png", volume, geometry, seg, result)
    except IchsegError as exc:
        return CaseResult(case, "error", error=str(exc), runtime_s=round(time.perf_counter() - tic, 2))
    except Exception as exc:  # noqa: BLE001 - one broken case must not stop the batch
        return CaseResult(case, "error", error=f"{path}: unexpected {type(exc).__name__}: {exc}",
                          runtime_s=round(time.perf_counter() - tic, 2))
    return result


def _write_montage(path: Path, volume: np.ndarray, geometry: Geometry, seg: Segmentation,
                   result: CaseResult) -> None:
    orient = seg.orientation  # as preprocessing decided it, not worked out again
    write_qc(path, orient.to_canonical(volume), orient.to_canonical(seg.mask), orient.spacing(geometry.spacing),
             result.caption())


def _skipped(case: str, target: Path) -> CaseResult:
    try:
        mask, geometry = read_mask(target)
        return CaseResult(case, "skipped", volume_ml=round(float(mask.sum()) * geometry.voxel_volume_ml, 2),
                          output=str(target))
    except IchsegError as exc:
        return CaseResult(case, "error", error=f"existing output unreadable, use --overwrite: {exc}")


def _summary_line(result: CaseResult) -> str:
    if result.status == "error":
        return f"ERROR {result.error}"
    if result.status == "skipped":
        return f"skip  {result.case}: output exists ({result.volume_ml} mL); --overwrite to redo"
    rescue = " (never-empty rule)" if result.rescued else ""
    kind = "" if result.input_kind == "full_head" else f" [{result.input_kind.replace('_', '-')} input]"
    return (f"ok    {result.case}{kind}: {result.volume_ml:.2f} mL in {result.components} component(s){rescue}, "
            f"ABC/2 {result.abc2_ml:.2f} mL, {result.runtime_s:.1f} s")
