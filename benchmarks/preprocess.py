"""Preprocessing time on a 512 x 512 x 40 phantom (target: <= 5 s on a 2-core CPU).

    python benchmarks/preprocess.py
"""

from __future__ import annotations

import time

import numpy as np
from common import instance_like_case

from ich_infer.config import PreprocessConfig
from ich_infer.orientation import reorientation
from ich_infer.preprocess import normalise, preprocess, remove_head_holder, skull_strip
from training.release.tables import table


def main(repeats: int = 3) -> None:
    ph = instance_like_case()
    volume = ph.image.astype(np.float32)
    cfg = PreprocessConfig()
    orient = reorientation(ph.geometry.direction)
    canon, spacing = orient.to_canonical(volume), orient.spacing(ph.geometry.spacing)
    stages = {
        "head-holder removal": lambda: remove_head_holder(canon, spacing, cfg),
        "skull stripping": lambda: skull_strip(canon, spacing, cfg),
        "normalisation": lambda: normalise(canon, canon > 0, cfg),
        "preprocess() total": lambda: preprocess(volume, ph.geometry.spacing, ph.geometry.direction, cfg),
        "total, 0.9 mm working grid": lambda: preprocess(volume, ph.geometry.spacing, ph.geometry.direction,
                                                         PreprocessConfig(target_spacing=(0.9, 0.9, 5.0))),
    }
    rows = []
    for name, fn in stages.items():
        times = []
        for _ in range(repeats):
            tic = time.perf_counter()
            fn()
            times.append(time.perf_counter() - tic)
        rows.append((name, f"{min(times):.2f}", f"{np.median(times):.2f}"))
    print(f"volume {volume.shape[::-1]} (x, y, z), spacing {tuple(round(s, 3) for s in ph.geometry.spacing)}")
    print(table(rows, ("stage", "best s", "median s")))
    total = float(rows[3][1])
    print(f"preprocess_seconds={total:.2f} (target <= 5)")


if __name__ == "__main__":
    main()
