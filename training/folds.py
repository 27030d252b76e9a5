"""Which cases each fold holds out, and the split of the rest into training and validation.

Folds are a pure function of the case counts and the seed, so every process of a run (one per GPU,
or a resumed one) agrees on them without talking to the others.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ich_infer.errors import IchsegError

from .data import Case, discover


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
