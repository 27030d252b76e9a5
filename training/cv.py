"""Five-fold cross-validation training: ``python -m training.cv --data DIR --out DIR``.

Per fold (paper 2.5): the fold's training cases are split 80/20 into training and validation;
patches are drawn by balanced sampling with augmentation and hard-case oversampling; the network
is trained with Dice + weighted cross-entropy and Adadelta until the validation loss has not
improved for ``patience`` epochs; the best epoch is kept. The held-out cases are then segmented by
the same function as ``ichseg predict`` and scored with the challenge metrics. At the end the fold
models go to ``--out`` as a weights folder (safetensors + manifest) with ``cv_report.csv``.

The jobs live apart: ``folds`` (splits), ``loop`` (one fold's training), ``checkpoint``,
``assembly`` (held-out evaluation and the weights folder); this module wires them and is the CLI.
Checkpoints are written after every epoch; ``--resume`` continues an interrupted run and gives the
same weights as an uninterrupted one. Several GPUs: run one process per fold (``--folds 0 --device
cuda:0`` ...) on the same ``--out``, then once more with ``--resume`` to assemble; see docs/training.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ich_infer.errors import IchsegError
from ich_infer.io import atomic_write_text
from ich_infer.predict import resolve_device
from ich_infer.weights import MANIFEST, load_weights, sha256_of

from .assembly import assemble, evaluate_cases
from .configs import TrainConfig, concrete, load_config
from .data import CaseArrays, describe_data, load_case
from .folds import dataset_folds, discover_datasets, split_folds, train_val_split
from .loop import FoldPlace, train_fold
from .provenance import provenance

__all__ = ["CvOptions", "run", "main", "split_folds", "dataset_folds", "discover_datasets", "train_val_split"]


def initial_weights(folder: Path, cfg: TrainConfig) -> list[dict[str, torch.Tensor]]:
    """State dicts of a shipped weights folder, to start each fold from (checked like any weights).

    Why: fine-tuning the previous release on a new phantom generation costs a fraction of training
    from scratch on a CPU; the architecture must be the one being trained.
    A one-channel network may start a two-channel one (the symmetric channel added): the mirror's input
    weights start at zero, so the first step computes exactly what the initial weights computed.
    """
    ensemble = load_weights(folder)
    have, want = ensemble.config.model, cfg.ich.model
    if dataclasses.replace(have, in_channels=want.in_channels) != want or have.in_channels > want.in_channels:
        raise ValueError(f"{folder}: initial weights are {have}, training {want}")
    return [widen_input(model.state_dict(), want.in_channels) for model in ensemble.models]


def widen_input(state: dict[str, torch.Tensor], channels: int) -> dict[str, torch.Tensor]:
    """``state`` with its first convolution taking ``channels`` inputs, the added ones weighted zero."""
    key = next(k for k, v in state.items() if k.endswith("weight") and v.ndim == 5)
    first = state[key]
    if first.shape[1] == channels:
        return state
    pad = first.new_zeros((first.shape[0], channels - first.shape[1], *first.shape[2:]))
    return {**state, key: torch.cat([first, pad], dim=1)}


@dataclass(frozen=True)
class CvOptions:
    """How a cross-validation run goes: which folds, where, resumed or not, started from which weights."""

    folds: list[int] | None = None  # default: all
    device: torch.device = torch.device("cpu")
    resume: bool = False
    work: Path | None = None  # checkpoints and cache; default OUT/work
    init: Path | None = None  # start fold k from fold k of these weights
    command: str = ""  # recorded in the manifest
    echo: Callable[[str], None] = print


def run(data: str | Path | list[Path], out: Path, cfg: TrainConfig, options: CvOptions = CvOptions()) -> dict:
    """Train the wanted folds, then assemble the weights folder once all folds are finished."""
    cfg = concrete(cfg)
    echo = options.echo
    folders = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    groups = discover_datasets(folders)
    cases = [case for group in groups for case in group]
    init = options.init
    init_states = initial_weights(init, cfg) if init is not None else None
    init_note = None if init is None else {"weights": str(init), "manifest_sha256": sha256_of(init / MANIFEST)}
    work = options.work or out / "work"
    place = FoldPlace(options.device, work, options.resume, echo)
    cache = work / "cache"
    fold_sets = dataset_folds([len(group) for group in groups], cfg.folds, cfg.seed)
    wanted = options.folds if options.folds is not None else list(range(cfg.folds))
    echo(f"{len(cases)} cases, {cfg.folds} folds, training folds {wanted} on {options.device}")
    arrays: dict[int, CaseArrays] = {}

    def arrays_of(indices) -> list[CaseArrays]:
        for i in indices:
            if i not in arrays:
                arrays[i] = load_case(cases[i], cfg.ich.preprocess, cache)
        return [arrays[i] for i in indices]

    # Taken before any fold trains: the commit recorded is the code that trained, not what HEAD is later.
    source = " + ".join(describe_data(folder, group) for folder, group in zip(folders, groups))
    record = {"data_source": source, "hardware": describe_device(options.device), "command": options.command,
              **provenance(folders, [[c.case for c in group] for group in groups])}
    for fold in wanted:
        done = work / f"fold_{fold}_done.json"
        if options.resume and done.is_file():
            echo(f"fold {fold}: already finished")
            continue
        held_out = fold_sets[fold]
        rest = np.setdiff1d(np.arange(len(cases)), held_out)
        train_idx, val_idx = train_val_split(rest, cfg.val_fraction, cfg.seed, fold)
        start = init_states[fold % len(init_states)] if init_states else None
        result = train_fold(fold, arrays_of(train_idx), arrays_of(val_idx), cfg, place, start)
        rows = evaluate_cases(result.model, [cases[i] for i in held_out], cfg, fold,
                              work / "heldout_probabilities")
        atomic_write_text(done, json.dumps({"fold": fold, "epochs": result.epochs, "best_epoch": result.best_epoch,
                                            "best_val_loss": result.best_val_loss, "rows": rows,
                                            "initialised_from": init_note,
                                            "train_cases": [cases[i].case for i in train_idx],
                                            "val_cases": [cases[i].case for i in val_idx]}, indent=1, default=str))
        mean = np.mean([r["dice"] for r in rows])
        echo(f"fold {fold}: best epoch {result.best_epoch}, held-out Dice {mean:.3f} over {len(rows)} cases")
    return assemble(out, work, cfg, cases, echo, record)


def describe_device(device: torch.device) -> str:
    """For the manifest: throughput and the width that fits depend on it."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"


def parse_args(argv: list[str] | None = None, prog: str = "python -m training.cv") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True,
                        help="images/ + labels/ (or INSTANCE data/ + label/); several folders are trained on "
                             "together, each split into folds on its own")
    parser.add_argument("-o", "--output", "--out", dest="out", type=Path, required=True,
                        help="weights folder to write")
    parser.add_argument("--config", default="paper", help="named config (paper, cpu, smoke, ablations) or JSON")
    parser.add_argument("--folds", default=None, help="comma-separated fold indices (default: all)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--resume", action="store_true", help="continue from checkpoints in the work folder")
    parser.add_argument("--work", type=Path, default=None, help="checkpoints and cache (default: OUT/work)")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: from config)")
    parser.add_argument("--init", type=Path, default=None,
                        help="start fold k from fold k of this weights folder (same architecture)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "python -m training.cv") -> int:
    args = parse_args(argv, prog)
    try:
        cfg = load_config(args.config)
        if args.workers is not None:
            cfg = dataclasses.replace(cfg, workers=args.workers)
        folds = [int(f) for f in args.folds.split(",")] if args.folds else None
        command = shlex.join(["python", "-m", "training.cv", *(sys.argv[1:] if argv is None else argv)])
        run(args.data, args.out, cfg, CvOptions(folds, resolve_device(args.device), args.resume, args.work, args.init,
                                                command))
    except (IchsegError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
