"""The weights folder: one safetensors file per fold and a ``manifest.json`` that says what they are.

The manifest carries the full :class:`IchConfig` (architecture, preprocessing, tiling, threshold,
postprocessing), the training summary and each file's sha256. Loading checks every checksum and
that each file's tensors are exactly the architecture's before any case is touched. Nothing is
ever unpickled: safetensors holds raw tensors only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from . import __version__
from .config import IchConfig
from .errors import IchsegError
from .io import _file_mode, atomic_write_text
from .model import SEUNet3D

MANIFEST = "manifest.json"
FORMAT = "ichseg-weights/1"


@dataclass
class Ensemble:
    config: IchConfig
    models: list[SEUNet3D]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> dict[str, str]:
        return {f["file"]: f["sha256"] for f in self.manifest.get("folds", [])}

    @property
    def device(self) -> torch.device:
        """Where the models live; tiles go there (``segment`` takes it from here, so a caller cannot
        load on one device and send tiles to another)."""
        return next(self.models[0].parameters()).device if self.models else torch.device("cpu")

    def with_inference(self, **changes: Any) -> Ensemble:
        """The same models under changed inference settings (validated like the manifest's)."""
        config = replace(self.config, inference=replace(self.config.inference, **changes))
        return Ensemble(config, self.models, self.manifest)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(folder: str | Path, config: IchConfig, models: list[torch.nn.Module],
                 training: dict[str, Any] | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """Write ``fold_<i>.safetensors`` for each model and the manifest (written last, atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folds = []
    for index, model in enumerate(models):
        name = f"fold_{index}.safetensors"
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
        tmp = folder / f".{name}.tmp"
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "fold": str(index)})
        tmp.chmod(_file_mode())
        tmp.replace(folder / name)
        folds.append({"file": name, "sha256": sha256_of(folder / name), "dtype": str(dtype).split(".")[-1]})
    manifest = {"format": FORMAT, "ichseg_version": __version__, "config": config.to_dict(),
                "folds": folds, "training": training or {}}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return folder


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise IchsegError(path, "weights manifest not found")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IchsegError(path, f"manifest is not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise IchsegError(path, f"unknown weights format {manifest.get('format')!r}, expected {FORMAT!r}")
    if not manifest.get("folds"):
        raise IchsegError(path, "manifest lists no fold models")
    return manifest


def load_weights(folder: str | Path, device: str | torch.device = "cpu") -> Ensemble:
    """Verify and load every fold; raise IchsegError naming the file at the first problem."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        config = IchConfig.from_dict(manifest["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IchsegError(folder / MANIFEST, f"invalid configuration ({exc})") from None
    entries = manifest["folds"]
    for entry in entries:  # checksums of all folds first: nothing is loaded from a tampered folder
        path = folder / entry["file"]
        if not path.is_file():
            raise IchsegError(path, "fold weights listed in the manifest are missing")
        if sha256_of(path) != entry["sha256"]:
            raise IchsegError(path, "sha256 does not match the manifest (file changed or corrupt)")
    models = []
    for entry in entries:
        path = folder / entry["file"]
        model = SEUNet3D(config.model)
        expected = model.state_dict()
        try:
            tensors = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad files
            raise IchsegError(path, f"not a readable safetensors file ({_first_line(exc)})") from None
        missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
        if missing or extra:
            raise IchsegError(path, f"tensors do not match the manifest's architecture "
                                    f"(missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]})")
        for key, value in expected.items():
            if tuple(tensors[key].shape) != tuple(value.shape):
                raise IchsegError(path, f"tensor {key} has shape {tuple(tensors[key].shape)}, "
                                        f"the manifest's architecture needs {tuple(value.shape)}")
        model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
        models.append(model.to(device).eval())
    return Ensemble(config, models, manifest)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
