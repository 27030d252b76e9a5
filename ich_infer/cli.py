"""The ``ichseg`` command. Thin: it parses, calls the library, and turns IchsegError into one line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .errors import IchsegError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Intracranial haemorrhage segmentation in non-contrast head CT (NIfTI, MHA, NRRD or DICOM in; "
                  "masks out).")

EXISTING_DIR = dict(exists=True, file_okay=False, dir_okay=True, readable=True, resolve_path=True)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ichseg {__version__}")
        raise typer.Exit()


STATE = {"quiet": False, "threads": None}  # global options, set by the callback before any command runs


@app.callback()
def main(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Print the version and exit."),
         quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (it is off anyway when "
                                    "output is not a terminal)."),
         threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for every command "
                                               "(default: $ICHSEG_THREADS, else $OMP_NUM_THREADS, else half "
                                               "the cores).")) -> None:
    """Segment haemorrhage, evaluate against references, make phantoms, inspect preprocessing."""
    from .threads import apply_threads

    STATE["quiet"], STATE["threads"] = quiet, threads
    try:
        apply_threads(threads)
    except IchsegError as exc:
        _fail(str(exc))


@app.command()
def predict(
    input_dir: Path = typer.Argument(..., help="Folder of scans (.nii, .nii.gz, .mha, .mhd, .nrrd) and DICOM series "
                                     "(sub-folders or .zip).", **EXISTING_DIR),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for masks, volumes.csv and report.json."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights folder (default: bundled).",
                                           **EXISTING_DIR),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo cases whose mask already exists."),
    qc: bool = typer.Option(False, "--qc", help="Also write qc/<case>.png montages and qc/index.html."),
    dicom_seg: bool = typer.Option(False, "--dicom-seg", help="For DICOM input, also write <case>.seg.dcm "
                                   "(DICOM SEG referencing the source series)."),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Average over in-plane flips (4x the "
                                       "compute). Default: as the weights' manifest says."),
) -> None:
    """Segment every scan in INPUT_DIR; masks keep the input's file name and exact grid."""
    from .predict import RunOptions, predict_folder
    from .progress_bar import progress_hooks

    options = RunOptions(weights, device, overwrite, qc, tta, dicom_seg, STATE["threads"])
    try:
        with progress_hooks(typer.echo, enabled=not STATE["quiet"]) as hooks:
            report = predict_folder(input_dir, output, options, echo=hooks)
    except IchsegError as exc:
        _fail(str(exc))
    done = sum(c.status == "ok" for c in report.cases)
    typer.echo(f"{done} segmented, {sum(c.status == 'skipped' for c in report.cases)} skipped, "
               f"{len(report.failed)} failed -> {output / 'volumes.csv'}, {output / 'report.json'}")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    pred_dir: Path = typer.Argument(..., help="Folder of predicted masks.", **EXISTING_DIR),
    gt_dir: Path = typer.Argument(..., help="Folder of reference masks (same file names).", **EXISTING_DIR),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write per-case metrics to this CSV."),
) -> None:
    """Dice, RVD, NSD (0.42 mm), HD and HD95 as scored by INSTANCE 2022."""
    from .evaluate import evaluate_folders, format_summary, rows_to_csv, summarise, write_csv

    try:
        rows, errors = evaluate_folders(pred_dir, gt_dir)
    except IchsegError as exc:
        _fail(str(exc))
    if output:
        write_csv(output, rows)
    else:
        typer.echo(rows_to_csv(rows), nl=False)
    if rows:
        typer.echo(format_summary(summarise(rows)))
    for line in errors:
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
    if errors:
        raise typer.Exit(1)


@app.command()
def phantom(
    out: Path = typer.Option(..., "-o", "--output", "--out", help="Folder; writes images/, labels/ and cases.json."),
    n: int = typer.Option(10, "--n", min=1, help="Number of cases."),
    seed: int = typer.Option(0, "--seed", min=0, help="Dataset seed (case i uses seed*100003+i)."),
    matrix: int = typer.Option(512, "--matrix", min=64, help="In-plane matrix (512 = INSTANCE-like)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes (~1.5 GB each); output is the same."),
    lesion_free: Optional[float] = typer.Option(None, "--lesion-free-fraction", min=0.0, max=1.0,
                                                help="Chance that a case has no haemorrhage (default: the "
                                                "generator's; a set for tuning false-positive rules wants many)."),
    acquisition: str = typer.Option("instance", "--acquisition", help="instance: INSTANCE-like 5 mm slices; "
                                    "varied: 2.5-7 mm slices, gantry tilt, sharp kernels (training data)."),
) -> None:
    """Write synthetic head CTs with labelled haemorrhage (needs nilearn, the 'phantom' extra)."""
    from dataclasses import replace

    from training.phantom import PhantomSettings, write_dataset

    try:
        settings = PhantomSettings(matrix=matrix, acquisition=acquisition)
    except ValueError as exc:
        _fail(str(exc))
    if lesion_free is not None:  # the generator's own default stays the one source of it
        settings = replace(settings, lesion_free_fraction=lesion_free)
    try:
        paths = write_dataset(out, n, seed, settings, workers=workers)
    except RuntimeError as exc:
        _fail(str(exc))
    typer.echo(f"{len(paths)} cases -> {out / 'images'}, {out / 'labels'}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train(ctx: typer.Context) -> None:
    """Five-fold training: the same command as `python -m training.cv` (see `ichseg train --help`)."""
    from training.cv import main as train_main

    code = train_main(list(ctx.args), prog="ichseg train")
    if code:
        raise typer.Exit(code)


@app.command("tune-postprocess")
def tune_postprocess(
    weights: Path = typer.Argument(..., help="Weights folder written by training (with cv_report.csv).",
                                   **EXISTING_DIR),
    data: list[Path] = typer.Option(..., "--data", help="The data folders it was cross-validated on (repeat)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Probability cache (default: WEIGHTS/"
                                         "postprocess_cache)."),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Make the probabilities with in-plane "
                                       "flip averaging (or not), and write that with the rules. Default: as now."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the choice; leave the manifest alone."),
) -> None:
    """Choose the post-processing rules on the cross-validation, as nnU-Net does, into the manifest."""
    from training.postprocess_selection import tune

    try:
        record = tune(weights, data, cache, apply=not dry_run, echo=typer.echo, tta=tta)
    except IchsegError as exc:
        _fail(str(exc))
    before, chosen = record["before"], record["chosen"]

    def rules(values: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in values.items() if k != "mean_dice") + f" (Dice {values['mean_dice']})"

    flips = ", in-plane flips averaged" if record["tta"] else ""
    typer.echo(f"{record['cases']} cases{flips}: {rules(before)} -> {rules(chosen)}"
               + (" [dry run]" if dry_run else f"; written to {weights / 'manifest.json'}"))


@app.command("preprocess")
def preprocess_cmd(
    input_dir: Path = typer.Argument(..., help="Folder of scans (.nii, .nii.gz, .mha, .mhd, .nrrd) and DICOM "
                                     "series (sub-folders or .zip).", **EXISTING_DIR),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for <case>_brain and <case>_norm."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Take the preprocessing config from "
                                           "this weights folder (default: bundled weights, else defaults)."),
) -> None:
    """Write the brain mask and the normalised image of each scan, on the scan's own grid."""
    from .preprocess_folder import preprocess_folder, preprocessing_of

    def say(line: str) -> None:
        typer.secho(line, fg=typer.colors.RED, err=True) if line.startswith("ERROR") else typer.echo(line)

    try:
        results = preprocess_folder(input_dir, output, preprocessing_of(weights), echo=say)
    except IchsegError as exc:
        _fail(str(exc))
    if any(r.status == "error" for r in results):
        raise typer.Exit(1)


def run() -> None:  # pragma: no cover - console entry for `python -m ich_infer`
    app(prog_name="ichseg")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
