"""Real head CTs of ``../shared/data`` as test beds: their variants and haemorrhage pasted into them.

The heads carry no haemorrhage, so every voxel the product calls blood in an unaltered head is a
false positive, and a lesion pasted into the head's own brain has a known extent. Lesions follow
the five INSTANCE subtypes plus the real expert lesion shape of BLAST-CT scan 0; each is a blood
*fraction* per voxel, so thin lesions keep their partial volume on the head's own grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ich_infer.config import PreprocessConfig
from ich_infer.io import Geometry, read_image, read_mask
from ich_infer.preprocess import preprocess

# The real-data folder: $ICHSEG_REAL_DATA, else ../shared/data beside the checkout (where the project's
# machines keep it; a user points the variable at their own copy).
SHARED = Path(os.environ.get("ICHSEG_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
HEADS = {  # name -> file under SHARED; the name is what manifests list under training.real_heads
    "invesalius": "invesalius_head/head.nii.gz",
    "ge_trauma": "ge_trauma_head/head_tilt_corrected.nii.gz",
}
# The same heads as their scanner wrote them (a DICOM series), where the folder has it: the judge
# also segments this form, since it is what users hand over and its grid (tilted, uneven slices) is
# not the converter's.
AS_ACQUIRED = {"ge_trauma": "ge_trauma_head/dicom"}
BLAST = ("blast_ct/scan_0_segmentation.nii.gz", "blast_ct/scan_0_sampling_mask.nii.gz")


@dataclass(frozen=True)
class Lesion:
    name: str
    subtype: str
    blood: np.ndarray  # blood fraction per voxel, (k, j, i) on the head's grid
    oedema: np.ndarray | None = None


def available_heads(root: Path = SHARED) -> dict[str, Path]:
    return {name: root / rel for name, rel in HEADS.items() if (root / rel).is_file()}


def load_head(path: Path) -> tuple[np.ndarray, Geometry, np.ndarray]:
    """A real head as float32 HU, its geometry, and its brain mask on its own grid (the product's
    skull stripping with the default configuration): where lesions are pasted and what stripping keeps."""
    hu, geometry = read_image(path)
    hu = hu.astype(np.float32)
    brain = preprocess(hu, geometry.spacing, geometry.direction, PreprocessConfig()).brain_native
    return hu, geometry, brain


# ------------------------------------------------------------------------------------------ variants
def skull_stripped(hu: np.ndarray, brain: np.ndarray, background: float = 0.0) -> np.ndarray:
    """The head as a research pipeline hands it over: the brain (one voxel wider) on a constant background."""
    keep = ndi.binary_dilation(brain, iterations=1)
    return np.where(keep, hu, np.float32(background)).astype(np.float32)


def with_calcification(hu: np.ndarray, brain: np.ndarray, value: float = 400.0) -> np.ndarray:
    """A pineal-like calcification as research data keep it after stripping: a 3 x 3 voxel dot of
    ``value`` HU on two slices at the brain's centre, touching no background."""
    k, j, i = (int(round(c)) for c in np.argwhere(brain).mean(axis=0))
    out = hu.copy()
    out[k:k + 2, j - 1:j + 2, i - 1:i + 2] = value
    return out


def windowed(hu: np.ndarray, low: float = 0.0, high: float = 100.0) -> np.ndarray:
    """A pre-windowed export: every value outside ``[low, high]`` set to 0 (no air, no bone)."""
    return np.where((hu >= low) & (hu <= high), hu, np.float32(0.0)).astype(np.float32)


# ------------------------------------------------------------------------------------------- lesions
def _grid(shape, spacing_kji):
    return np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing_kji)], indexing="ij", sparse=True)


def _cone(brain: np.ndarray, spacing_kji, axis_kji: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Angle (degrees) of each voxel from ``axis`` seen from the brain's centre, and distance to the edge."""
    grid = _grid(brain.shape, spacing_kji)
    centre = [np.mean(np.nonzero(brain)[a]) * spacing_kji[a] for a in range(3)]
    rel = [g - c for g, c in zip(grid, centre)]
    norm = np.sqrt(sum(r * r for r in rel)) + 1e-6
    axis = np.asarray(axis_kji, dtype=float) / np.linalg.norm(axis_kji)
    angle = np.degrees(np.arccos(np.clip(sum(a * r for a, r in zip(axis, rel)) / norm, -1, 1)))
    return angle, ndi.distance_transform_edt(brain, sampling=spacing_kji)


def extra_axial(brain, spacing_kji, axis_kji, span_deg: float, peak_mm: float, power: float) -> np.ndarray:
    """A collection against the inner table, ``peak_mm`` thick at its middle (crescent or lens by ``power``)."""
    angle, depth = _cone(brain, spacing_kji, axis_kji)
    profile = peak_mm * np.clip(1 - (angle / span_deg) ** power, 0, 1)
    return (np.clip(profile - depth + 0.5, 0, 1) * (profile > 0) * brain).astype(np.float32)


def intraparenchymal(brain, spacing_kji, rng: np.random.Generator, ml: float = 25.0):
    """An irregular haematoma deep in the brain, with an oedema rim."""
    grid = _grid(brain.shape, spacing_kji)
    depth = ndi.distance_transform_edt(brain, sampling=spacing_kji)
    deep = np.argwhere(depth > 25)
    centre = deep[rng.integers(len(deep))] * np.asarray(spacing_kji)
    radius = np.cbrt(3 * ml * 1000 / (4 * np.pi))
    wobble = ndi.gaussian_filter(rng.standard_normal(brain.shape), 6 / np.asarray(spacing_kji))
    wobble /= wobble.std() + 1e-6
    dist = np.sqrt(sum(((g - c) / radius) ** 2 for g, c in zip(grid, centre)))
    blood = np.clip((1 - dist + 0.15 * wobble) * radius + 0.5, 0, 1) * brain
    rim = np.clip(1 - ndi.distance_transform_edt(blood < 0.5, sampling=spacing_kji) / 4, 0, 1) * (blood < 0.5) * brain
    return blood.astype(np.float32), (0.8 * rim).astype(np.float32)


def _csf(hu: np.ndarray, brain: np.ndarray, spacing_kji) -> np.ndarray:
    smooth = ndi.gaussian_filter(hu.astype(np.float32), (0, 1.0 / spacing_kji[1], 1.0 / spacing_kji[2]))
    return brain & (smooth > -10) & (smooth < 18)


def intraventricular(hu, brain, spacing_kji) -> np.ndarray:
    """Blood layering in the dependent (posterior) half of the largest deep CSF space, the lateral ventricles."""
    depth = ndi.distance_transform_edt(brain, sampling=spacing_kji)
    ventricles, n = ndi.label(_csf(hu, brain, spacing_kji) & (depth > 20))
    if n == 0:
        return np.zeros(hu.shape, np.float32)
    sizes = np.bincount(ventricles.ravel())
    sizes[0] = 0
    vent = ventricles == int(np.argmax(sizes))
    j = np.nonzero(vent)[1]
    posterior = np.arange(hu.shape[1])[None, :, None] >= np.median(j)
    return ndi.binary_opening(vent & posterior).astype(np.float32)


def subarachnoid(hu, brain, spacing_kji, axis_kji) -> np.ndarray:
    """Blood in the convexity sulci (CSF-valued voxels within 12 mm of the brain's edge) of one region."""
    angle, depth = _cone(brain, spacing_kji, axis_kji)
    return (_csf(hu, brain, spacing_kji) & (depth < 12) & (depth > 1.5) & (angle < 30)).astype(np.float32)


def blast_lesion(brain: np.ndarray, root: Path = SHARED) -> np.ndarray | None:
    """BLAST-CT scan 0 haemorrhage (labels 1, 2, 4) mapped into ``brain`` by brain bounding boxes."""
    if not (root / BLAST[0]).is_file():
        return None
    seg, _ = read_image(root / BLAST[0])
    mask, _ = read_mask(root / BLAST[1])
    blood = np.isin(seg, (1, 2, 4)).astype(np.float32)

    def box(m):
        out = []
        for k in range(3):
            idx = np.nonzero(m.any(axis=tuple(a for a in range(3) if a != k)))[0]
            out.append((idx[[0, -1]].mean(), np.ptp(idx) + 1))
        return out

    src, dst = box(mask), box(brain)
    coords = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in brain.shape], indexing="ij")
    src_coords = [(c - d_c) * s_n / d_n + s_c for c, (d_c, d_n), (s_c, s_n) in zip(coords, dst, src)]
    return (ndi.map_coordinates(blood, src_coords, order=1, mode="constant") * brain).astype(np.float32)


def lesions_for(hu: np.ndarray, brain: np.ndarray, spacing_kji, seed: int = 0) -> list[Lesion]:
    """The benchmark's lesion set in one head: every subtype, a thin subdural, and the BLAST-CT shape.

    Directions are in (k, j, i) = (inferior->superior, posterior->anterior or reverse, left-right) of a
    head stored near-axially; the cones only need to land on the convexity, not on a named lobe.
    """
    rng = np.random.default_rng(seed)
    iph, oedema = intraparenchymal(brain, spacing_kji, rng)
    out = [
        Lesion("IPH 25 mL deep", "IPH", iph, oedema),
        Lesion("SDH crescent 10 mm", "SDH", extra_axial(brain, spacing_kji, (0.35, 0.1, 1.0), 50, 10, 4)),
        Lesion("SDH thin 4 mm", "SDH", extra_axial(brain, spacing_kji, (0.5, -0.2, -1.0), 45, 4, 4)),
        Lesion("EDH lens 18 mm", "EDH", extra_axial(brain, spacing_kji, (0.35, 0.1, -1.0), 25, 18, 2)),
        Lesion("IVH posterior horns", "IVH", intraventricular(hu, brain, spacing_kji)),
        Lesion("SAH convexity sulci", "SAH", subarachnoid(hu, brain, spacing_kji, (0.6, 0.3, 1.0))),
    ]
    blast = blast_lesion(brain)
    if blast is not None:
        out.append(Lesion("BLAST-CT scan 0 shape", "mixed", blast))
    return [lesion for lesion in out if (lesion.blood >= 0.5).sum() > 20]


def paste(hu: np.ndarray, lesion: Lesion, rng: np.random.Generator,
          hu_range: tuple[float, float] = (60.0, 80.0)) -> np.ndarray:
    """Blood of ``hu_range`` HU with a little texture mixed in by fraction (partial volume stays partial)."""
    texture = 3 * ndi.gaussian_filter(rng.standard_normal(hu.shape), 1.0)
    out = hu * (1 - lesion.blood) + lesion.blood * (rng.uniform(*hu_range) + texture)
    if lesion.oedema is not None:
        out = out * (1 - lesion.oedema) + lesion.oedema * rng.uniform(15, 22)
    return np.round(out).astype(np.float32)
