"""Finding training cases and caching their preprocessed arrays.

Layouts: ``images/`` + ``labels/`` with matching file names (what ``ichseg phantom`` writes), or
the INSTANCE 2022 layout ``data/`` + ``label/``. Preprocessing goes through ``ich_infer.preprocess``
unchanged; results are cached as ``.npz`` keyed by the sha256 of the image and label files and of
the preprocessing configuration, so folds and reruns never redo it. The cache holds plain arrays
(``allow_pickle=False``), never pickles.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ich_infer.config import PreprocessConfig
from ich_infer.errors import IchsegError, about
from ich_infer.io import atomic_output, case_id, list_images, read_image, read_mask
from ich_infer.preprocess import Preprocessed, preprocess
from ich_infer.weights import sha256_of

LAYOUTS = (("images", "labels"), ("data", "label"))


@dataclass(frozen=True)
class Case:
    case: str
    image: Path
    label: Path


@dataclass
class CaseArrays:
    case: str
    image: np.ndarray  # (C, S, P, L) float32, working grid
    brain: np.ndarray  # (S, P, L) bool
    label: np.ndarray  # (S, P, L) bool
    spacing: tuple[float, float, float]

    @property
    def lesion_voxels(self) -> int:
        return int(self.label.sum())


def discover(data_dir: str | Path) -> list[Case]:
    """Pairs of (image, label) by file name; unmatched files are an error naming them."""
    data_dir = Path(data_dir)
    for img_name, lbl_name in LAYOUTS:
        if (data_dir / img_name).is_dir() and (data_dir / lbl_name).is_dir():
            images = {p.name: p for p in list_images(data_dir / img_name)}
            labels = {p.name: p for p in list_images(data_dir / lbl_name)}
            unmatched = sorted(set(images) ^ set(labels))
            if unmatched:
                first = unmatched[0]
                where = images.get(first) or labels.get(first)
                raise IchsegError(where, f"has no counterpart in {lbl_name if first in images else img_name}/ "
                                         f"({len(unmatched)} unmatched file(s))")
            if not images:
                raise IchsegError(data_dir / img_name, "contains no images")
            return [Case(case_id(n), images[n], labels[n]) for n in sorted(images)]
    raise IchsegError(data_dir, "expected images/ + labels/ or data/ + label/ subfolders")


def _cache_key(case: Case, cfg: PreprocessConfig) -> str:
    digest = hashlib.sha256()
    digest.update(sha256_of(case.image).encode())
    digest.update(sha256_of(case.label).encode())
    digest.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    return digest.hexdigest()[:24]


def training_target(label: np.ndarray, pre: Preprocessed) -> np.ndarray:
    """What the network is taught for a native-grid label: the voxels of the working grid that are at
    least half lesion, inside the brain (outside it the answer is background by construction)."""
    return (pre.to_working(label.astype(np.float32)) >= 0.5) & pre.brain


def load_case(case: Case, cfg: PreprocessConfig, cache_dir: Path | None = None) -> CaseArrays:
    """Preprocess one case (or read it from the cache); checks the label shares the image's grid."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{case.case}-{_cache_key(case, cfg)}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return CaseArrays(case.case, z["image"], z["brain"], z["label"], tuple(z["spacing"].tolist()))
    volume, geometry = read_image(case.image)
    label, label_geometry = read_mask(case.label)
    if label.shape != volume.shape or not np.allclose(label_geometry.spacing, geometry.spacing, rtol=1e-4) \
            or not np.allclose(label_geometry.origin, geometry.origin, atol=1e-3) \
            or not np.allclose(label_geometry.direction, geometry.direction, atol=1e-5):
        raise IchsegError(case.label, f"grid differs from its image {case.image}")
    with about(case.image):
        pre = preprocess(volume, geometry.spacing, geometry.direction, cfg)
    arrays = CaseArrays(case.case, pre.image, pre.brain, training_target(label, pre), tuple(pre.spacing))
    if path is not None:
        with atomic_output(path, ".tmp.npz") as tmp:
            np.savez(tmp, image=arrays.image, brain=arrays.brain, label=arrays.label,
                     spacing=np.asarray(arrays.spacing))
    return arrays


def catalogue_entries(data_dir: str | Path, case_names: list[str]) -> list:
    """Each named case's entry in the folder's ``cases.json`` (phantom seeds, real head, lesions), or
    ``None`` where it has none or the folder has no catalogue."""
    path = Path(data_dir) / "cases.json"
    catalogue = json.loads(path.read_text()) if path.is_file() else {}
    return [catalogue.get(name) for name in case_names]


def describe_data(data_dir: str | Path, cases: list[Case]) -> str:
    """One line for the weights manifest saying what the models were trained on.

    Phantom folders carry ``cases.json`` with each case's seed and generator version, from which the
    dataset seed follows (see ``write_dataset``), so the line is enough to regenerate the data;
    anything else is named by its folder and case count.
    """
    from .phantom import CASE_SEED_STRIDE

    entries = catalogue_entries(data_dir, [c.case for c in cases])
    if entries and all(isinstance(e, dict) and "generator_version" in e and "seed" in e for e in entries):
        versions = sorted({e["generator_version"] for e in entries})
        seeds = sorted({e["seed"] // CASE_SEED_STRIDE for e in entries})
        variant = " ".join(sorted({e["variant"].replace("_", "-") for e in entries if "variant" in e}))
        return (f"{len(cases)} {variant + ' ' if variant else ''}synthetic phantoms from ichseg's phantom generator "
                f"v{'/'.join(map(str, versions))} (training/phantom, dataset seed "
                f"{', '.join(map(str, seeds))}; synthetic: no patient data, not INSTANCE 2022)")
    if entries and all(isinstance(e, dict) and "source" in e for e in entries):
        sources = ", ".join(sorted({e["source"] for e in entries}))
        return f"{len(cases)} real head CT{'s' * (len(cases) != 1)} from {Path(data_dir).name}/ ({sources})"
    return f"{len(cases)} cases from {Path(data_dir).name}/"
