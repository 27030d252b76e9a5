"""Connected components of the ensemble's probability on the unaltered real head, before post-processing.

Where the false positive of the transfer check comes from: each component at ``--threshold`` inside
the brain mask with its volume, slices, mean HU, peak probability and mean distance from the mask
edge. On the unaltered head that ``transfer_real_head.py --out DIR`` saved (``--image``), release 5
has 126 (thin rims along the inner table of the upper cerebrum and the left sigmoid sinus), release
6 has 14. Without ``--image`` the head is resampled the same way but its noise comes from seed 0
alone, so the small components differ (release 6: 22, the same 2.11 mL in all).

    python benchmarks/real_head_components.py [--weights weights] [--image DIR/images/unaltered_head.nii.gz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import table
from scipy import ndimage as ndi
from transfer_real_head import SHARED, unaltered_instance_head

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
        head = unaltered_instance_head()
        if head is None:
            print(f"skipped: {SHARED / 'invesalius_head'} is absent")
            return
        image, grid = head
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
