"""Reference outputs of the bundled weights on test_data, for tests/test_golden.py.

Regenerate them whenever new weights ship (and only then):

    python tests/golden.py

It segments test_data/images through ``ichseg predict`` with the bundled weights and writes the masks
to test_data/golden/ and, to test_data/golden/expected.json, each case's volume and its Dice
against test_data/labels: what the golden test then holds the product to.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES, LABELS, GOLDEN = ROOT / "test_data" / "images", ROOT / "test_data" / "labels", ROOT / "test_data" / "golden"


def run_predict(out: Path) -> dict[str, dict]:
    """``ichseg predict`` on test_data with the bundled weights; per case its volume and Dice to the label."""
    from typer.testing import CliRunner

    from ich_infer.cli import app
    from ich_infer.io import read_mask
    from ich_infer.metrics import dice

    result = CliRunner().invoke(app, ["predict", str(IMAGES), "-o", str(out), "--device", "cpu"])
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    rows = {}
    for line in (out / "volumes.csv").read_text().splitlines()[1:]:
        case, status, kind, volume = line.split(",")[:4]
        mask, _ = read_mask(out / f"{case}.nii.gz")
        label, _ = read_mask(LABELS / f"{case}.nii.gz")
        rows[case] = {"status": status, "input_kind": kind, "volume_ml": float(volume),
                      "dice_to_label": round(float(dice(label, mask)), 4)}
    return rows


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_predict(Path(tmp))
        GOLDEN.mkdir(exist_ok=True)
        for case in rows:
            shutil.copy(Path(tmp) / f"{case}.nii.gz", GOLDEN / f"{case}.nii.gz")
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text())
    payload = {"weights_manifest_format": manifest["format"],
               "weights_sha256": {f["file"]: f["sha256"] for f in manifest["folds"]}, "cases": rows}
    (GOLDEN / "expected.json").write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
