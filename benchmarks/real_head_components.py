"""Connected components of the ensemble's probability on the unaltered real head, before post-processing.

Where the false positive of the transfer check comes from: each component at ``--threshold`` inside
the brain mask with its volume, slices, mean HU, peak probability and mean distance from the mask
edge. Release 5 had 126 (thin rims along the inner table of the upper cerebrum and the left sigmoid
sinus); release 6, 14. Reads the unaltered head that ``transfer_real_head.py --out DIR`` saved, or
makes it the same way when ``--image`` is absent.

    python benchmarks/real_head_components.py [--weights weights] [--image DIR/images/unaltered_head.nii.gz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import table
from scipy import ndimage as ndi
from transfer_real_head import SHARED, to_instance_grid, with_scanner_noise

from ich_infer.io import read_image
from ich_infer.predict import DEFAULT_WEIGHTS, native_probabilities
from ich_infer.weights import load_weights


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--image", type=Path, default=None, help="an unaltered head saved by transfer_real_head.py")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if args.image is not None:
        image, grid = read_image(args.image)
    else:
        path = SHARED / "invesalius_head" / "head.nii.gz"
        if not path.is_file():
            print(f"skipped: {path} is absent")
            return
        hu, geo = read_image(path)
        image, grid = to_instance_grid(hu, geo.spacing)
        image = with_scanner_noise(image, np.random.default_rng(0))
    prob, pre = native_probabilities(image, grid, load_weights(args.weights))
    brain = pre.brain_native
    spacing = tuple(grid.spacing[::-1])
    edge_mm = ndi.distance_transform_edt(brain, sampling=spacing)
    labels, n = ndi.label((prob >= args.threshold) & brain)
    voxel_ml = float(np.prod(spacing)) / 1000
    rows = []
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        inside = labels[box] == index
        rows.append((float(inside.sum()) * voxel_ml, f"{box[0].start}-{box[0].stop - 1}",
                     f"{image[box][inside].mean():.0f}", f"{prob[box][inside].max():.3f}",
                     f"{edge_mm[box][inside].mean():.1f}"))
    rows.sort(key=lambda r: -r[0])
    total = sum(r[0] for r in rows)
    print(f"{n} components at {args.threshold} in the brain mask, {total:.2f} mL in all; weights {args.weights}")
    print(table([(f"{r[0]:.3f}", *r[1:]) for r in rows[:args.top]],
                ("mL", "slices", "mean HU", "peak p", "mm from mask edge")))


if __name__ == "__main__":
    main()
