"""Five-fold cross-validation training: ``python -m training.cv --data DIR --out DIR``.

Per fold (paper 2.5): the fold's training cases are split 80/20 into training and validation;
patches are drawn by balanced sampling with augmentation and hard-case oversampling; the network
is trained with Dice + weighted cross-entropy and Adadelta until the validation loss has not
improved for ``patience`` epochs; the best epoch is kept. The held-out cases are then segmented by
the same function as ``ichseg predict`` and scored with the challenge metrics. At the end the fold
models go to ``--out`` as a weights folder (safetensors + manifest) with ``cv_report.csv``.

Checkpoints (safetensors + JSON, never pickles) are written after every epoch; ``--resume``
continues an interrupted run and gives the same weights as an uninterrupted one, because every
random draw of an epoch is seeded from (seed, fold, epoch). Several GPUs: run one process per fold
(``--folds 0 --device cuda:0`` ...) on the same ``--out``, then once more with ``--resume`` to
assemble; see docs/training.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset

from ich_infer.errors import IchsegError
from ich_infer.evaluate import COLUMNS, rows_to_csv, summarise
from ich_infer.io import atomic_write_text, read_image, read_mask
from ich_infer.metrics import case_metrics
from ich_infer.model import SEUNet3D
from ich_infer.predict import resolve_device, segment
from ich_infer.weights import MANIFEST, Ensemble, load_weights, save_weights, sha256_of

from .configs import TrainConfig, concrete, load_config
from .data import Case, CaseArrays, describe_data, discover, load_case
from .loss import dice_ce_loss
from .mining import mine_false_positives
from .provenance import provenance
from .sampling import PatchSpec, SamplingConfig, epoch_specs, extract, hard_cases

LOG_COLUMNS = ["epoch", "train_loss", "val_loss", "val_dice", "seconds", "patches_per_s", "best"]


# ------------------------------------------------------------------------------------------- splits
def split_folds(n_cases: int, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out case indices per fold: a seeded permutation cut into ``folds`` near-equal parts."""
    if n_cases < folds:
        raise ValueError(f"{n_cases} cases cannot make {folds} folds")
    order = np.random.default_rng(seed).permutation(n_cases)
    return [np.sort(part) for part in np.array_split(order, folds)]


def dataset_folds(sizes: list[int], folds: int, seed: int) -> list[np.ndarray]:
    """Held-out indices per fold over datasets concatenated in order, each dataset split on its own.

    Adding a dataset then never moves a case of another one to a different fold, so fold k can be
    fine-tuned from fold k of weights trained on any one of them and its held-out cases stay unseen.
    With one dataset this is ``split_folds``.
    """
    offsets = np.cumsum([0, *sizes[:-1]])
    parts = [split_folds(n, folds, seed) for n in sizes]
    return [np.concatenate([p[k] + off for p, off in zip(parts, offsets)]) for k in range(folds)]


def discover_datasets(folders: list[Path]) -> list[list[Case]]:
    """The cases of each folder, in order; case names must be unique across all of them."""
    groups, seen = [], {}
    for folder in folders:
        found = discover(folder)
        for case in found:
            if case.case in seen:
                raise IchsegError(case.image, f"case name {case.case!r} is also in {seen[case.case]}")
            seen[case.case] = folder
        groups.append(found)
    return groups


def train_val_split(indices: np.ndarray, val_fraction: float, seed: int, fold: int) -> tuple[list[int], list[int]]:
    order = np.random.default_rng([seed, fold, 7]).permutation(indices)
    n_val = max(1, int(round(len(order) * val_fraction)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


# -------------------------------------------------------------------------------------------- data
class PatchDataset(Dataset):
    def __init__(self, cases: list[CaseArrays], specs: list[PatchSpec], patch: tuple[int, int, int]):
        self.cases, self.specs, self.patch = cases, specs, patch

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, i: int):
        spec = self.specs[i]
        image, label = extract(self.cases[spec.case_index], spec, self.patch)
        return torch.from_numpy(image), torch.from_numpy(label)


def _loader(cases, specs, cfg: TrainConfig, device: torch.device) -> DataLoader:
    return DataLoader(PatchDataset(cases, specs, tuple(cfg.ich.inference.patch_size)), batch_size=cfg.batch_size,
                      shuffle=False, num_workers=cfg.workers, pin_memory=device.type == "cuda")


# ------------------------------------------------------------------------------------- checkpoints
def _save_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, meta: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    groups = None
    if optimizer is not None:
        state = optimizer.state_dict()
        for index, values in state["state"].items():
            for name, value in values.items():
                tensors[f"opt.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        groups = state["param_groups"]
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    atomic_write_text(path.with_suffix(".json"), json.dumps({**meta, "param_groups": groups}, indent=1))


def _load_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict:
    tensors = load_file(str(path))
    meta = json.loads(path.with_suffix(".json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None and meta.get("param_groups"):
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta


# ---------------------------------------------------------------------------------------- training
@dataclass
class FoldResult:
    fold: int
    model: SEUNet3D
    epochs: int
    best_epoch: int
    best_val_loss: float
    history: list[dict] = field(default_factory=list)


def _seed_epoch(cfg: TrainConfig, fold: int, epoch: int) -> np.random.Generator:
    torch.manual_seed(cfg.seed * 1_000_003 + fold * 1009 + epoch)
    return np.random.default_rng([cfg.seed, fold, epoch])


def _run_epoch(model, loader, optimizer, cfg: TrainConfig, device: torch.device) -> tuple[float, float]:
    """One pass; trains when ``optimizer`` is given. Returns (mean loss, Dice over all patches)."""
    training = optimizer is not None
    model.train(training)
    total, count, inter, denom = 0.0, 0, 0, 0
    use_amp = device.type == "cuda"
    with torch.set_grad_enabled(training):
        for image, label in loader:
            image, label = image.to(device, non_blocking=True), label.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(image)
            loss = dice_ce_loss(logits.float(), label, cfg.lesion_weight)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            total += float(loss.detach()) * len(image)
            count += len(image)
            if not training:
                pred = logits.argmax(dim=1).bool()
                inter += int((pred & label).sum())
                denom += int(pred.sum()) + int(label.sum())
    return total / max(count, 1), (1.0 if denom == 0 else 2.0 * inter / denom)


def initial_weights(folder: Path, cfg: TrainConfig) -> list[dict[str, torch.Tensor]]:
    """State dicts of a shipped weights folder, to start each fold from (checked like any weights).

    Why: fine-tuning the previous release on a new phantom generation costs a fraction of training
    from scratch on a CPU; the architecture must be the one being trained.
    """
    ensemble = load_weights(folder)
    if ensemble.config.model != cfg.ich.model:
        raise ValueError(f"{folder}: initial weights are {ensemble.config.model}, training {cfg.ich.model}")
    return [model.state_dict() for model in ensemble.models]


def train_fold(fold: int, train: list[CaseArrays], val: list[CaseArrays], cfg: TrainConfig, device: torch.device,
               work: Path, resume: bool, echo=print, init: dict[str, torch.Tensor] | None = None) -> FoldResult:
    work.mkdir(parents=True, exist_ok=True)
    last_path, best_path = work / f"fold_{fold}_last.safetensors", work / f"fold_{fold}_best.safetensors"
    log_path = work / f"fold_{fold}_log.csv"
    torch.manual_seed(cfg.seed * 7919 + fold)
    model = SEUNet3D(cfg.ich.model).to(device)
    if init is not None:
        model.load_state_dict(init)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=cfg.learning_rate)
    meta = {"epoch": -1, "best_val_loss": math.inf, "best_epoch": -1, "bad_epochs": 0, "stopped": False,
            "history": []}
    if resume and last_path.is_file():
        meta = _load_state(last_path, model, optimizer)
        echo(f"fold {fold}: resuming after epoch {meta['epoch']}")
    hard = hard_cases(train, cfg.hard_case_fraction)
    val_specs = epoch_specs(val, SamplingConfig(cfg.val_patches_per_image, cfg.lesion_fraction, augment=False),
                            np.random.default_rng([cfg.seed, fold, 10**6]))
    val_loader = _loader(val, val_specs, cfg, device)
    epoch = meta["epoch"] + 1
    while epoch < cfg.max_epochs and not meta["stopped"]:
        tic = time.perf_counter()
        mined = None
        if cfg.mined_negative_fraction > 0:
            mined = mine_false_positives(model, train, cfg, device)
            echo(f"fold {fold} epoch {epoch}: mined {sum(map(len, mined.values()))} false-positive voxels in "
                 f"{sum(len(m) > 0 for m in mined.values())}/{len(train)} training images "
                 f"({time.perf_counter() - tic:.0f} s)")
        specs = epoch_specs(train, cfg.sampling(), _seed_epoch(cfg, fold, epoch), hard, mined)
        tic = time.perf_counter()
        train_loss, _ = _run_epoch(model, _loader(train, specs, cfg, device), optimizer, cfg, device)
        train_s = time.perf_counter() - tic
        val_loss, val_dice = _run_epoch(model, val_loader, None, cfg, device)
        improved = val_loss < meta["best_val_loss"]
        if improved:
            meta.update(best_val_loss=val_loss, best_epoch=epoch, bad_epochs=0)
            _save_state(best_path, model, None, {"epoch": epoch})
        else:
            meta["bad_epochs"] += 1
            meta["stopped"] = meta["bad_epochs"] >= cfg.patience
        row = {"epoch": epoch, "train_loss": round(train_loss, 5), "val_loss": round(val_loss, 5),
               "val_dice": round(val_dice, 4), "seconds": round(time.perf_counter() - tic, 1),
               "patches_per_s": round(len(specs) / max(train_s, 1e-9), 1), "best": improved}
        meta["history"].append(row)
        meta["epoch"] = epoch
        _save_state(last_path, model, optimizer, meta)
        _write_log(log_path, meta["history"])
        echo(f"fold {fold} epoch {epoch}: loss {train_loss:.4f}, val loss {val_loss:.4f}, val Dice {val_dice:.3f}, "
             f"{row['patches_per_s']} patches/s{' *' if improved else ''}")
        epoch += 1
    best = SEUNet3D(cfg.ich.model).to(device)
    _load_state(best_path if best_path.is_file() else last_path, best, None)
    return FoldResult(fold, best.eval(), meta["epoch"] + 1, meta["best_epoch"], meta["best_val_loss"], meta["history"])


def _write_log(path: Path, history: list[dict]) -> None:
    lines = [",".join(LOG_COLUMNS)] + [",".join(str(row[c]) for c in LOG_COLUMNS) for row in history]
    atomic_write_text(path, "\n".join(lines) + "\n")


# -------------------------------------------------------------------------------------- evaluation
def evaluate_cases(model: torch.nn.Module, cases: list[Case], cfg: TrainConfig, device: torch.device) -> list[dict]:
    """Segment held-out cases exactly as ``ichseg predict`` does and score them."""
    ensemble = Ensemble(cfg.ich, [model])
    rows = []
    for case in cases:
        volume, geometry = read_image(case.image)
        truth, _ = read_mask(case.label)
        seg = segment(volume, geometry, ensemble, device)
        rows.append({"case": case.case, **case_metrics(truth, seg.mask, tuple(geometry.spacing[::-1]))})
    return rows


# ------------------------------------------------------------------------------------------- main
def run(data: str | Path | list[Path], out: Path, cfg: TrainConfig, folds: list[int] | None, device: torch.device,
        resume: bool, work: Path | None = None, echo=print, init: Path | None = None, command: str = "") -> dict:
    cfg = concrete(cfg)
    folders = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    groups = discover_datasets(folders)
    cases = [case for group in groups for case in group]
    init_states = initial_weights(init, cfg) if init is not None else None
    init_note = None if init is None else {"weights": str(init), "manifest_sha256": sha256_of(init / MANIFEST)}
    work = work or out / "work"
    cache = work / "cache"
    fold_sets = dataset_folds([len(group) for group in groups], cfg.folds, cfg.seed)
    wanted = folds if folds is not None else list(range(cfg.folds))
    echo(f"{len(cases)} cases, {cfg.folds} folds, training folds {wanted} on {device}")
    arrays: dict[int, CaseArrays] = {}

    def arrays_of(indices) -> list[CaseArrays]:
        for i in indices:
            if i not in arrays:
                arrays[i] = load_case(cases[i], cfg.ich.preprocess, cache)
        return [arrays[i] for i in indices]

    # Taken before any fold trains: the commit recorded is the code that trained, not what HEAD is later.
    source = " + ".join(describe_data(folder, group) for folder, group in zip(folders, groups))
    record = {"data_source": source, "hardware": describe_device(device), "command": command,
              **provenance(folders, [[c.case for c in group] for group in groups])}
    for fold in wanted:
        done = work / f"fold_{fold}_done.json"
        if resume and done.is_file():
            echo(f"fold {fold}: already finished")
            continue
        held_out = fold_sets[fold]
        rest = np.setdiff1d(np.arange(len(cases)), held_out)
        train_idx, val_idx = train_val_split(rest, cfg.val_fraction, cfg.seed, fold)
        start = init_states[fold % len(init_states)] if init_states else None
        result = train_fold(fold, arrays_of(train_idx), arrays_of(val_idx), cfg, device, work, resume, echo, start)
        rows = evaluate_cases(result.model, [cases[i] for i in held_out], cfg, device)
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


def assemble(out: Path, work: Path, cfg: TrainConfig, cases: list[Case], echo=print,
             provenance: dict | None = None) -> dict:
    """When every fold is finished: weights folder, cv_report.csv and cv_summary.json in ``out``."""
    finished = [json.loads((work / f"fold_{k}_done.json").read_text()) if (work / f"fold_{k}_done.json").is_file()
                else None for k in range(cfg.folds)]
    if any(f is None for f in finished):
        missing = [k for k, f in enumerate(finished) if f is None]
        echo(f"folds {missing} not finished yet: weights are written once all {cfg.folds} folds are done")
        return {"missing_folds": missing}
    rows = [{"fold": f["fold"], **r} for f in finished for r in f["rows"]]
    for r in rows:
        for key in ("hd", "hd95", "rvd"):
            r[key] = float(r[key])
    summary = summarise(rows)
    lesion_rows = [r for r in rows if r["volume_gt_ml"] > 0]
    summary["lesion_cases"] = len(lesion_rows)
    summary["lesion_cases_detected"] = int(sum(math.isfinite(r["hd"]) for r in lesion_rows))
    summary["dice_lesion_cases_mean"] = float(np.mean([r["dice"] for r in lesion_rows])) if lesion_rows else math.nan
    header = "fold," + ",".join(COLUMNS)
    body = rows_to_csv(rows).splitlines()[1:]
    atomic_write_text(out / "cv_report.csv", "\n".join([header] + [f"{r['fold']},{line}" for r, line in
                                                                     zip(rows, body)]) + "\n")
    models = []
    for k in range(cfg.folds):
        model = SEUNet3D(cfg.ich.model)
        _load_state(work / f"fold_{k}_best.safetensors", model, None)
        models.append(model)
    training = {"data": f"{len(cases)} cases", "folds": cfg.folds,
                "epochs": [f["epochs"] for f in finished], "best_epochs": [f["best_epoch"] for f in finished],
                "train_config": {k: v for k, v in cfg.to_dict().items() if k != "ich"},
                "initialised_from": finished[0].get("initialised_from"),
                **(provenance or {}), "cv_summary": summary}
    save_weights(out, cfg.ich, models, training)
    atomic_write_text(out / "cv_summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    echo(f"CV: Dice {summary['dice_mean']:.3f} ± {summary['dice_std']:.3f} over {summary['cases']} cases; "
         f"{summary['lesion_cases_detected']}/{summary['lesion_cases']} lesion cases detected -> {out}")
    return summary


def parse_args(argv: list[str] | None = None, prog: str = "python -m training.cv") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True,
                        help="images/ + labels/ (or INSTANCE data/ + label/); several folders are trained on "
                             "together, each split into folds on its own")
    parser.add_argument("--out", type=Path, required=True, help="weights folder to write")
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
        run(args.data, args.out, cfg, folds, resolve_device(args.device), args.resume, args.work, init=args.init,
            command=command)
    except (IchsegError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
