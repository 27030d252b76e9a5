"""Scoring a folder of predicted masks against a folder of reference masks (challenge semantics)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import IchsegError
from .io import atomic_write_text, case_id, csv_text, list_images, read_mask
from .metrics import case_metrics

COLUMNS = ["case", "dice", "rvd", "nsd", "hd", "hd95", "volume_pred_ml", "volume_gt_ml"]


def evaluate_pair(pred_path: Path, gt_path: Path) -> dict[str, float]:
    """Metrics of one case; spacing comes from the reference header, as in the challenge script."""
    pred, pred_geo = read_mask(pred_path)
    gt, gt_geo = read_mask(gt_path)
    if pred.shape != gt.shape:
        raise IchsegError(pred_path, f"shape {pred.shape[::-1]} differs from the reference {gt.shape[::-1]}")
    if not np.allclose(pred_geo.spacing, gt_geo.spacing, rtol=1e-4, atol=1e-5):
        raise IchsegError(pred_path, f"spacing {pred_geo.spacing} differs from the reference {gt_geo.spacing}")
    spacing = tuple(float(s) for s in gt_geo.spacing[::-1])  # arrays are (k, j, i)
    return case_metrics(gt, pred, spacing)


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path) -> tuple[list[dict], list[str]]:
    """Per-case rows (by file name) and one error line per case that could not be scored."""
    preds = {p.name: p for p in list_images(pred_dir)}
    gts = {p.name: p for p in list_images(gt_dir)}
    if not gts:
        raise IchsegError(gt_dir, "contains no reference masks")
    rows, errors = [], []
    for name in sorted(gts):
        if name not in preds:
            errors.append(f"{Path(pred_dir) / name}: prediction missing for reference {gts[name]}")
            continue
        try:
            rows.append({"case": case_id(name), **evaluate_pair(preds[name], gts[name])})
        except (IchsegError, ValueError) as exc:
            errors.append(str(exc))
    for name in sorted(set(preds) - set(gts)):
        errors.append(f"{preds[name]}: no reference mask with this name in {gt_dir}")
    return rows, errors


def summarise(rows: list[dict]) -> dict[str, object]:
    """Mean and std per metric; HD both over all cases (inf if any is inf, as the challenge) and finite."""
    out: dict[str, object] = {"cases": len(rows)}
    for key in COLUMNS[1:]:
        values = np.array([r[key] for r in rows if not (isinstance(r[key], float) and math.isnan(r[key]))], float)
        if key in ("hd", "hd95"):
            finite = values[np.isfinite(values)]
            out[f"{key}_finite_mean"] = float(finite.mean()) if len(finite) else math.nan
            out[f"{key}_finite_std"] = float(finite.std()) if len(finite) else math.nan
            out[f"{key}_finite_count"] = int(len(finite))
        out[f"{key}_mean"] = float(values.mean()) if len(values) else math.nan
        out[f"{key}_std"] = float(values.std()) if len(values) and np.isfinite(values).all() else (
            math.inf if len(values) else math.nan)
    return out


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    return str(value)


def rows_to_csv(rows: list[dict]) -> str:
    return csv_text(COLUMNS, ([_fmt(row[c]) for c in COLUMNS] for row in rows))


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    return atomic_write_text(path, rows_to_csv(rows))


def format_summary(summary: dict[str, object]) -> str:
    lines = [f"cases: {summary['cases']}"]
    for key in COLUMNS[1:]:
        lines.append(f"{key:>15}: {_fmt(summary[f'{key}_mean'])} ± {_fmt(summary[f'{key}_std'])}")
        if key in ("hd", "hd95"):
            lines.append(f"{key + ' (finite)':>15}: {_fmt(summary[f'{key}_finite_mean'])} ± "
                         f"{_fmt(summary[f'{key}_finite_std'])} over {summary[f'{key}_finite_count']} cases")
    return "\n".join(lines)
