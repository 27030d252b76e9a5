"""A figure to check skull stripping by eye: every real head in ../shared/data, every 2nd to 4th slice
from the skull base to the vertex, brain window W80/L40, the brain mask's outline in green.

    python benchmarks/brain_mask_figure.py --out docs/figures/brain_masks.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi
from skimage.transform import resize

from ich_infer.config import PreprocessConfig
from ich_infer.io import read_image
from ich_infer.orientation import reorientation
from ich_infer.preprocess import preprocess
from training.real_heads import available_heads

TILE = 200  # pixels per slice in the figure
COLUMNS = 8


def head_rows(name: str, path: Path) -> np.ndarray:
    """One row per eight slices of this head: canonical axial slices, window W80/L40, mask outline."""
    hu, geometry = read_image(path)
    pre = preprocess(hu, geometry.spacing, geometry.direction, PreprocessConfig())
    orient = reorientation(geometry.direction)
    image, brain = orient.to_canonical(hu), orient.to_canonical(pre.brain_native)
    slices = np.nonzero(brain.any(axis=(1, 2)))[0]
    picks = np.linspace(slices[0], slices[-1], COLUMNS * 2).round().astype(int)[::-1]  # vertex first
    tiles = []
    for z in picks:
        gray = np.clip((image[z] - 0.0) / 80.0, 0, 1)
        rgb = np.stack([gray] * 3, axis=-1)
        edge = brain[z] & ~ndi.binary_erosion(brain[z], iterations=2)
        rgb[edge] = (0.1, 1.0, 0.1)
        tiles.append((resize(rgb, (TILE, TILE), order=0, anti_aliasing=False) * 255).astype(np.uint8))
    rows = [np.concatenate(tiles[i:i + COLUMNS], axis=1) for i in range(0, len(tiles), COLUMNS)]
    block = np.concatenate(rows, axis=0)
    picture = Image.fromarray(block)
    ImageDraw.Draw(picture).text((4, 4), f"{name}: {path.name}", fill=(255, 255, 0))
    return np.asarray(picture)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures/brain_masks.png"))
    args = parser.parse_args()
    heads = available_heads()
    if not heads:
        print("skipped: no real heads under ../shared/data")
        return
    figure = np.concatenate([head_rows(name, path) for name, path in heads.items()], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(figure).save(args.out, optimize=True)
    print(f"{len(heads)} heads -> {args.out}")


if __name__ == "__main__":
    main()
