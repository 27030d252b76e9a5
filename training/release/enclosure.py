"""The skull-enclosure figure (``ich_infer.preprocess.bone_enclosure``) on every head and non-head at hand.

The product refuses a full-head input whose brain is not walled in by skull. The limit
(``MIN_BONE_ENCLOSURE``) must sit with margin between the two distributions this prints: every real
head (the ct-ich patients as ``training.ct_ich`` writes them, the GE and InVesalius heads) and the
non-heads (synthetic torsos). ``tests/test_input_kind.py`` holds both distributions.

    python -m training.release.enclosure [--ct-ich runs/ct_ich]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ich_infer.config import PreprocessConfig
from ich_infer.inputs import ScanInput, load_input
from ich_infer.io import read_image
from ich_infer.preprocess import MIN_BONE_ENCLOSURE, bone_enclosure, find_brain
from training.real_heads import AS_ACQUIRED, SHARED, available_heads

IDENTITY = tuple(np.eye(3).ravel())


def torso(shape=(30, 160, 160), spacing_mm=2.5, seed=0, ribs: int = 12) -> np.ndarray:
    """A torso in HU: fat and muscle wall, two lungs, a spine and a ring of ``ribs`` ribs, in air."""
    rng = np.random.default_rng(seed)
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    y, x = (j - shape[1] / 2) * spacing_mm, (i - shape[2] / 2) * spacing_mm
    body = (x / 170) ** 2 + (y / 120) ** 2 <= 1
    out = np.full(shape, -1000.0) + rng.normal(0, 10, shape)
    out[np.broadcast_to(body, shape)] = -100  # subcutaneous fat
    inner = (x / 155) ** 2 + (y / 105) ** 2 <= 1
    out[np.broadcast_to(inner, shape)] = 45  # muscle and mediastinum
    for side in (-1, 1):
        lung = ((x - side * 75) / 60) ** 2 + (y / 80) ** 2 <= 1
        out[np.broadcast_to(lung, shape)] = -850
    out[np.broadcast_to(((x / 20) ** 2 + ((y + 85) / 20) ** 2) <= 1, shape)] = 700  # vertebra
    ring = np.abs(np.hypot(x / 150, y / 100) - 0.97) < 0.03
    out[np.broadcast_to(ring & (np.cos(np.arctan2(y, x) * ribs) > 0.3), shape)] = 900
    return (out + rng.normal(0, 5, shape)).astype(np.float32)


NON_HEADS = {"torso, 12 ribs": lambda: torso(), "torso, 16 ribs": lambda: torso(ribs=16, seed=1),
             "torso, 8 ribs": lambda: torso(ribs=8, seed=2)}


def enclosure(volume: np.ndarray, spacing: tuple[float, float, float], direction: tuple[float, ...]) -> float:
    found = find_brain(volume.astype(np.float32), spacing, direction, PreprocessConfig())
    return bone_enclosure(found.clean, found.brain, found.spacing)


def real_heads(ct_ich: Path | None) -> dict[str, Path]:
    """name -> file or DICOM folder of every real head at hand (``load`` reads one)."""
    out = dict(available_heads())
    for name, rel in AS_ACQUIRED.items():
        if (SHARED / rel).is_dir():
            out[f"{name} (DICOM)"] = SHARED / rel
    if ct_ich is not None:
        for path in sorted((ct_ich / "images").glob("*.nii.gz")):
            out[path.name.removesuffix(".nii.gz")] = path
    return out


def load(name: str, path: Path) -> tuple[np.ndarray, tuple, tuple]:
    if path.is_dir():
        scan = load_input(ScanInput(name, path, f"{name}.nii.gz"))
        volume, geometry = scan.volume, scan.geometry
    else:
        volume, geometry = read_image(path)
    return volume, geometry.spacing, geometry.direction


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.release.enclosure", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ct-ich", type=Path, default=None, help="a training.ct_ich folder")
    args = parser.parse_args(argv)
    heads = {}
    for name, path in real_heads(args.ct_ich).items():
        heads[name] = enclosure(*load(name, path))
        print(f"head {name}: {heads[name]:.3f}", flush=True)
    others = {}
    for name, make in NON_HEADS.items():
        others[name] = enclosure(make(), (2.5, 2.5, 2.5), IDENTITY)
        print(f"non-head {name}: {others[name]:.3f}", flush=True)
    print(f"heads: {len(heads)}, min {min(heads.values()):.3f}, 5th percentile "
          f"{np.percentile(list(heads.values()), 5):.3f}; non-heads max {max(others.values()):.3f}; "
          f"limit {MIN_BONE_ENCLOSURE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
