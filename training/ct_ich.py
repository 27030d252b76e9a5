"""The ct-ich release (Hssayeni et al., PhysioNet 1.0.0, CC BY 4.0) as an image + label training folder.

``python -m training.ct_ich --root ../shared/data/ct_ich --out runs/ct_ich`` writes
``images/ct_ich_PPP.nii.gz`` (int16 HU), ``labels/ct_ich_PPP.nii.gz`` (the radiologists' masks
stacked), ``slices.csv`` (the slice labels of the release, per slice), ``patients.csv`` (the checks
below, per patient) and ``cases.json`` (what ``training.cv`` records as provenance).

How a volume is rebuilt (the folder's README has the evidence):
- HU from the brain window (level 40, width 120) where its grey is clear of both ends (3 < g < 252);
  elsewhere from the bone window, whose level and width are fitted **per patient** on the pixels both
  windows resolve, since a few patients were exported with another bone window. Bone grey at the
  floor of its window is air (-1024 HU).
- Slice 1 is caudal, slice n the vertex; image top is anterior, image left the patient's right, so the
  array (slice, row, column) is LPS with an identity direction.
- Slices are 5 mm. The in-plane pixel size is not recorded; ``INPLANE_MM`` is used for every patient.
  A per-patient estimate from the head's width (``head_breadth_px``, in ``patients.csv``) cannot tell
  a smaller head (children are among the patients) from another display zoom. Volumes in mL are
  approximate; Dice is not.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from ich_infer.io import Geometry, atomic_write_text, csv_text, write_image, write_mask

BRAIN_LEVEL, BRAIN_WIDTH = 40.0, 120.0
NOMINAL_BONE = (700.0, 3200.0)  # level, width of most patients
INPLANE_MM = 0.34  # an adult skull of about 150 mm spans about 441 pixels
SLICE_MM = 5.0
AIR_HU = -1024
TYPES = ("Intraventricular", "Intraparenchymal", "Subarachnoid", "Epidural", "Subdural")
CREDIT = ("ct-ich: Murtadha D. Hssayeni, Muayad S. Croock, Aymen Al-Ani, Hassan Falah Al-khafaji, Zakaria A. "
          "Yahya, Computed Tomography Images for Intracranial Hemorrhage Detection and Segmentation (version "
          "1.0.0), PhysioNet, doi:10.13026/w8q8-ky94, CC BY 4.0; Hssayeni et al., Intracranial Hemorrhage "
          "Segmentation Using A Deep Convolutional Model, Data 5(1):14, 2020")


@dataclass(frozen=True)
class PatientCheck:
    """What the rebuild measured on one patient; ``odd`` names anything outside the usual range."""

    case: str
    slices: int
    bone_level: float
    bone_width: float
    brain_peak_hu: float
    in_mask_median_hu: float | None
    label_ml: float
    breadth_px: int
    odd: str


def brain_hu(grey: np.ndarray) -> np.ndarray:
    return BRAIN_LEVEL - BRAIN_WIDTH / 2 + grey.astype(np.float32) * (BRAIN_WIDTH / 255.0)


def fit_bone_window(brain_grey: np.ndarray, bone_grey: np.ndarray) -> tuple[float, float]:
    """(level, width) of the bone window from the pixels both windows resolve (brain grey 20..235)."""
    both = (brain_grey > 20) & (brain_grey < 235)
    if both.sum() < 1000:
        return NOMINAL_BONE
    slope, intercept = np.polyfit(brain_hu(brain_grey[both]).astype(np.float64), bone_grey[both].astype(np.float64), 1)
    width = 255.0 / slope
    low = -intercept / slope  # HU at bone grey 0
    return float(low + width / 2), float(width)


def rebuild_hu(brain_grey: np.ndarray, bone_grey: np.ndarray, bone_window: tuple[float, float]) -> np.ndarray:
    """HU from the two 8-bit windows of the same pixels (any shape)."""
    level, width = bone_window
    bone = level - width / 2 + bone_grey.astype(np.float32) * (width / 255.0)
    hu = np.where((brain_grey > 3) & (brain_grey < 252), brain_hu(brain_grey), bone)
    hu = np.where((brain_grey <= 3) & (bone_grey <= 3), AIR_HU, hu)
    return np.clip(np.rint(hu), AIR_HU, 3071).astype(np.int16)


def head_breadth_px(hu: np.ndarray) -> int:
    """Widest left-right extent of the head (tissue above -300 HU, largest component) in pixels."""
    head = hu > -300
    labels, n = ndi.label(head)
    if n == 0:
        return 0
    largest = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    cols = np.nonzero(largest.any(axis=(0, 1)))[0]
    return int(cols[-1] - cols[0] + 1) if cols.size else 0


def _grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def slice_count(patient_dir: Path) -> int:
    return max(int(p.stem) for p in (patient_dir / "brain").glob("*.jpg") if p.stem.isdigit())


def read_patient(patient_dir: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(HU volume, label volume, fitted bone window) of one patient folder, slices caudal to cranial.

    A slice whose bone window is missing (patient 84, slice 36) is rebuilt from the brain window alone,
    bone then reading at most the brain window's top (100 HU)."""
    n = slice_count(patient_dir)
    brain = np.stack([_grey(patient_dir / "brain" / f"{s}.jpg") for s in range(1, n + 1)])
    bone_files = [patient_dir / "bone" / f"{s}.jpg" for s in range(1, n + 1)]
    have = np.array([p.is_file() for p in bone_files])
    bone = np.stack([_grey(p) if p.is_file() else np.zeros_like(brain[0]) for p in bone_files])
    window = fit_bone_window(brain[have], bone[have])
    hu = rebuild_hu(brain, bone, window)
    hu[~have] = np.where(brain[~have] <= 3, AIR_HU, brain_hu(brain[~have])).astype(np.int16)
    masks = [patient_dir / "brain" / f"{s}_HGE_Seg.jpg" for s in range(1, n + 1)]
    label = np.stack([_grey(p) > 127 if p.is_file() else np.zeros(brain.shape[1:], bool) for p in masks])
    return hu, label, window


def geometry_for(shape: tuple[int, int, int]) -> Geometry:
    return Geometry((shape[2], shape[1], shape[0]), (INPLANE_MM, INPLANE_MM, SLICE_MM), (0.0, 0.0, 0.0),
                    (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))


def check_patient(case: str, hu: np.ndarray, label: np.ndarray, window: tuple[float, float]) -> PatientCheck:
    """The per-patient figures of ``patients.csv``; ``odd`` lists what falls outside the usual range."""
    tissue = hu[(hu > 15) & (hu < 60)]
    counts = np.bincount((tissue - 15).astype(int), minlength=45)
    peak = float(15 + np.argmax(ndi.uniform_filter1d(counts.astype(float), 5)))
    inside = float(np.median(hu[label])) if label.any() else None
    ml = float(label.sum()) * INPLANE_MM * INPLANE_MM * SLICE_MM / 1000.0
    odd = []
    if abs(window[1] - NOMINAL_BONE[1]) > 0.1 * NOMINAL_BONE[1]:
        odd.append(f"bone window {window[0]:.0f}/{window[1]:.0f}")
    if not 30 <= peak <= 45:
        odd.append(f"brain peak {peak:.0f} HU")
    if inside is not None and not 45 <= inside <= 85:
        odd.append(f"in-mask median {inside:.0f} HU")
    return PatientCheck(case, hu.shape[0], round(window[0], 1), round(window[1], 1), peak,
                        inside, round(ml, 2), head_breadth_px(hu), "; ".join(odd))


def verify_checksums(root: Path) -> list[str]:
    """Files of ``SHA256SUMS.txt`` whose content differs or that are missing (empty when all match)."""
    bad = []
    for line in (root / "SHA256SUMS.txt").read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = root / name.lstrip("*")
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad


def slice_rows(root: Path, patients: set[int]) -> tuple[list[str], list[list]]:
    with open(root / "hemorrhage_diagnosis.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [r for r in rows[1:] if r and int(r[0]) in patients]


def case_name(patient: int) -> str:
    return f"ct_ich_{patient:03d}"


def convert(root: Path, out: Path, patients: list[int] | None = None, echo=print) -> list[PatientCheck]:
    """Write the training folder; returns the per-patient checks (also in ``patients.csv``)."""
    dirs = sorted(d for d in (root / "Patients_CT").iterdir() if d.is_dir())
    if patients is not None:
        dirs = [d for d in dirs if int(d.name) in set(patients)]
    checks, catalogue = [], {}
    for d in dirs:
        case = case_name(int(d.name))
        hu, label, window = read_patient(d)
        geometry = geometry_for(hu.shape)
        write_image(out / "images" / f"{case}.nii.gz", hu, geometry)
        write_mask(out / "labels" / f"{case}.nii.gz", label, geometry)
        check = check_patient(case, hu, label, window)
        checks.append(check)
        catalogue[case] = {"source": "ct-ich 1.0.0", "patient": int(d.name), "slices": int(hu.shape[0]),
                           "label_ml": check.label_ml}
        echo(f"{case}: {hu.shape[0]} slices, bone window {window[0]:.0f}/{window[1]:.0f}, brain peak "
             f"{check.brain_peak_hu:.0f} HU, label {check.label_ml:.1f} mL{'  ODD: ' + check.odd if check.odd else ''}")
    header, rows = slice_rows(root, {int(d.name) for d in dirs})
    atomic_write_text(out / "slices.csv", csv_text(header, rows))
    fields = list(asdict(checks[0])) if checks else []
    atomic_write_text(out / "patients.csv", csv_text(fields, [list(asdict(c).values()) for c in checks]))
    atomic_write_text(out / "cases.json", json.dumps(catalogue, indent=1))
    atomic_write_text(out / "CREDIT.txt", CREDIT + "\n")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ct_ich", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the ct_ich folder (Patients_CT/, CSVs)")
    parser.add_argument("--out", type=Path, required=True, help="training folder to write (images/, labels/)")
    parser.add_argument("--patients", default=None, help="comma-separated patient numbers (default: all)")
    parser.add_argument("--skip-checksums", action="store_true", help="do not verify SHA256SUMS.txt first")
    args = parser.parse_args(argv)
    if not args.skip_checksums:
        bad = verify_checksums(args.root)
        if bad:
            print(f"error: {args.root}: {len(bad)} file(s) differ from SHA256SUMS.txt, first {bad[0]}", file=sys.stderr)
            return 1
    patients = [int(p) for p in args.patients.split(",")] if args.patients else None
    checks = convert(args.root, args.out, patients)
    odd = [c for c in checks if c.odd]
    print(f"{len(checks)} patients written to {args.out}; {len(odd)} odd: "
          + (", ".join(f"{c.case} ({c.odd})" for c in odd) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
