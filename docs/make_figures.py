"""Regenerate the figures in docs/: ``python docs/make_figures.py`` (needs matplotlib and nilearn).

- phantom_montage.png: middle lesion slices of 8 phantoms with label contours;
- phantom_vs_real.png: the real InVesalius head CT beside a phantom, same window;
- brain_masks.png: skull-stripping outlines on every real head in ../shared/data, vertex to skull
  base (skipped when that folder is absent);
- qc_montage.png: the QC montage ``ichseg predict --qc`` writes for the sample scan with the largest
  haemorrhage, with the bundled weights.

``python docs/make_figures.py brain_masks`` makes one of them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ich_infer.config import PreprocessConfig  # noqa: E402
from ich_infer.io import read_image  # noqa: E402
from ich_infer.orientation import reorientation  # noqa: E402
from ich_infer.preprocess import preprocess  # noqa: E402
from training.phantom import generate  # noqa: E402

DOCS = Path(__file__).resolve().parent
SHARED = DOCS.parent.parent / "shared" / "data"
WINDOW = (-10, 90)


def _show(ax, image, spacing_pl, title, contours=()):
    aspect = spacing_pl[0] / spacing_pl[1]
    ax.imshow(np.clip(image, *WINDOW), cmap="gray", aspect=aspect)
    for mask, colour in contours:
        if mask.any():
            ax.contour(mask, [0.5], colors=colour, linewidths=0.8)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def montage(seeds=(0, 1, 2, 3, 4, 5, 7, 8)) -> None:
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.5))
    for ax, seed in zip(axes.flat, seeds):
        ph = generate(seed)
        r = reorientation(ph.geometry.direction)
        image, label = r.to_canonical(ph.image), r.to_canonical(ph.label)
        sp = r.spacing(ph.geometry.spacing)
        areas = label.sum(axis=(1, 2))
        z = int(np.argmax(areas)) if areas.any() else image.shape[0] // 2
        kinds = ", ".join(lesion["type"] for lesion in ph.lesions if "type" in lesion) or "no lesion"
        _show(ax, image[z], sp[1:], f"seed {seed}: {kinds} (slice {z})", [(label[z], "r")])
    fig.suptitle("ichseg phantoms (512 x 512, 5 mm slices), haemorrhage label in red; window -10..90 HU")
    fig.tight_layout()
    fig.savefig(DOCS / "phantom_montage.png", dpi=70)


def real_vs_phantom() -> None:
    path = SHARED / "invesalius_head" / "head.nii.gz"
    if not path.is_file():
        return
    real, geo = read_image(path)
    r = reorientation(geo.direction)
    real_c, sp = r.to_canonical(real), r.spacing(geo.spacing)
    ph = generate(3)
    rp = reorientation(ph.geometry.direction)
    ph_c, psp = rp.to_canonical(ph.image), rp.spacing(ph.geometry.spacing)
    fig, axes = plt.subplots(2, 2, figsize=(11, 10))
    for row, frac in enumerate((0.62, 0.45)):
        _show(axes[row, 0], real_c[int(real_c.shape[0] * (frac + 0.08))], sp[1:], "real head CT (InVesalius)")
        _show(axes[row, 1], ph_c[int(ph_c.shape[0] * frac)], psp[1:], "phantom (seed 3)")
    fig.tight_layout()
    fig.savefig(DOCS / "phantom_vs_real.png", dpi=70)


def brain_masks(tile: int = 180, columns: int = 8) -> None:
    """Every real head: 16 slices, vertex (top left) to skull base, W80/L40, brain-mask outline green."""
    from PIL import Image, ImageDraw
    from scipy import ndimage as ndi
    from skimage.transform import resize

    from training.real_heads import available_heads

    blocks = []
    for name, path in available_heads(SHARED).items():
        hu, geo = read_image(path)
        pre = preprocess(hu, geo.spacing, geo.direction, PreprocessConfig())
        r = reorientation(geo.direction)
        image, brain = r.to_canonical(hu), r.to_canonical(pre.brain_native)
        slices = np.nonzero(brain.any(axis=(1, 2)))[0]
        tiles = []
        for z in np.linspace(slices[0], slices[-1], 2 * columns).round().astype(int)[::-1]:
            rgb = np.stack([np.clip(image[z] / 80.0, 0, 1)] * 3, axis=-1)
            rgb[brain[z] & ~ndi.binary_erosion(brain[z], iterations=2)] = (0.1, 1.0, 0.1)
            tiles.append((resize(rgb, (tile, tile), order=0, anti_aliasing=False) * 255).astype(np.uint8))
        block = Image.fromarray(np.concatenate([np.concatenate(tiles[i:i + columns], axis=1)
                                                for i in range(0, len(tiles), columns)], axis=0))
        ml = pre.brain_native.sum() * geo.voxel_volume_ml
        ImageDraw.Draw(block).text((4, 4), f"{name} ({path.name}): brain mask {ml:.0f} mL", fill=(255, 255, 0))
        blocks.append(np.asarray(block))
    if blocks:
        Image.fromarray(np.concatenate(blocks, axis=0)).save(DOCS / "brain_masks.png", optimize=True)


def qc_montage() -> None:
    import shutil
    import tempfile

    from ich_infer.predict import predict_folder

    with tempfile.TemporaryDirectory() as tmp:
        report = predict_folder(DOCS.parent / "test_data" / "images", Path(tmp), device="cpu", qc=True)
        largest = max((c for c in report.cases if c.status == "ok"), key=lambda c: c.volume_ml)
        shutil.copy(Path(tmp) / "qc" / f"{largest.case}.png", DOCS / "qc_montage.png")


if __name__ == "__main__":
    import sys

    for figure in sys.argv[1:] or ["montage", "real_vs_phantom", "brain_masks", "qc_montage"]:
        globals()[figure]()
