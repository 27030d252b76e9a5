"""Regenerate the figures in docs/: ``python docs/make_figures.py`` (needs matplotlib and nilearn).

- phantom_montage.png: middle lesion slices of 8 phantoms with label contours;
- phantom_vs_real.png: the real InVesalius head CT beside a phantom, same window;
- brain_mask_real.png / brain_mask_headsq.png: skull-stripping contours on the real scans in
  ../shared/data (skipped when that folder is absent).
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


def brain_masks() -> None:
    for name, path in (("real", SHARED / "invesalius_head" / "head.nii.gz"),
                       ("headsq", SHARED / "vtk_headsq" / "headsq_quarter_HU.nii.gz")):
        if not path.is_file():
            continue
        volume, geo = read_image(path)
        pre = preprocess(volume, geo.spacing, geo.direction, PreprocessConfig())
        r = reorientation(geo.direction)
        v, b, h = r.to_canonical(volume), r.to_canonical(pre.brain_native), r.to_canonical(pre.head_native)
        sp = r.spacing(geo.spacing)
        c = [int(np.mean(np.nonzero(b.any(axis=tuple(a for a in range(3) if a != k)))[0])) for k in range(3)]
        fig, axes = plt.subplots(1, 3, figsize=(15, 5.5))
        _show(axes[0], v[c[0]], sp[1:], "axial", [(b[c[0]], "r"), (h[c[0]], "y")])
        _show(axes[1], v[::-1, c[1]], (sp[0], sp[2]), "coronal", [(b[::-1, c[1]], "r"), (h[::-1, c[1]], "y")])
        _show(axes[2], v[::-1, :, c[2]], (sp[0], sp[1]), "sagittal", [(b[::-1, :, c[2]], "r"), (h[::-1, :, c[2]], "y")])
        ml = pre.brain_native.sum() * geo.voxel_volume_ml
        fig.suptitle(f"{path.name}: brain mask (red, {ml:.0f} mL) and head mask after holder removal (yellow)")
        fig.tight_layout()
        fig.savefig(DOCS / f"brain_mask_{name}.png", dpi=70)


if __name__ == "__main__":
    montage()
    real_vs_phantom()
    brain_masks()
