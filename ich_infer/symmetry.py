"""The optional "symmetric" input channel: the scan mirrored about the mid-sagittal plane and
registered back onto itself, so each voxel sees its contralateral twin (paper 2.2, after [11]).

The mirror flips the array's left-right axis and keeps the geometry: a true mirror. (``sitk.Flip``
keeps physical space, which would make the registration undo the flip.) The rigid transform is
estimated on the HU image, skull included, whose symmetric bone outline pins the midline far better
than the brain's texture, and is then applied to the normalised image. FSL FLIRT, as in the paper,
is used through ``fslpy`` when ``$FSLDIR`` is set; otherwise a rigid SimpleITK registration gives a
result of the same format.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HU_WINDOW = (-100.0, 1000.0)


def mirror(volume: np.ndarray) -> np.ndarray:
    """Left-right mirror of a canonical ``(S, P, L)`` array."""
    return np.ascontiguousarray(volume[..., ::-1])


def _to_sitk(volume: np.ndarray, spacing: tuple[float, float, float]) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume, dtype=np.float32))
    image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))
    return image


def estimate_rigid_sitk(fixed: np.ndarray, moving: np.ndarray, spacing: tuple[float, float, float],
                        seed: int = 0) -> sitk.Transform:
    """Rigid transform taking ``moving`` onto ``fixed`` (same grid); correlation metric, 3 levels."""
    fixed_img, moving_img = _to_sitk(fixed, spacing), _to_sitk(moving, spacing)
    initial = sitk.CenteredTransformInitializer(fixed_img, moving_img, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsCorrelation()
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.25, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=200,
                                                 relaxationFactor=0.6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    return reg.Execute(fixed_img, moving_img)


def apply_rigid_sitk(volume: np.ndarray, spacing: tuple[float, float, float], transform: sitk.Transform,
                     default: float, order: int = 1) -> np.ndarray:
    image = _to_sitk(volume, spacing)
    interp = sitk.sitkLinear if order == 1 else sitk.sitkNearestNeighbor
    return sitk.GetArrayFromImage(sitk.Resample(image, image, transform, interp, float(default))).astype(np.float32)


def register_rigid_sitk(fixed: np.ndarray, moving: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """``moving`` rigidly registered onto ``fixed`` and resampled there."""
    transform = estimate_rigid_sitk(fixed, moving, spacing)
    return apply_rigid_sitk(moving, spacing, transform, float(moving.min()))


def _flirt_mirror(hu: np.ndarray, volume: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """FLIRT (6 dof) on the HU images through fslpy, then the same matrix applied to ``mirror(volume)``."""
    from fsl.wrappers import flirt  # imported lazily: fslpy is only useful with FSL present

    with tempfile.TemporaryDirectory() as tmp:
        p = {name: str(Path(tmp) / f"{name}.nii.gz") for name in ("fixed", "moving", "vol", "out")}
        sitk.WriteImage(_to_sitk(hu, spacing), p["fixed"])
        sitk.WriteImage(_to_sitk(mirror(hu), spacing), p["moving"])
        sitk.WriteImage(_to_sitk(mirror(volume), spacing), p["vol"])
        matrix = str(Path(tmp) / "mirror.mat")
        flirt(p["moving"], p["fixed"], omat=matrix, dof=6)
        flirt(p["vol"], p["fixed"], out=p["out"], applyxfm=True, init=matrix, interp="trilinear")
        return sitk.GetArrayFromImage(sitk.ReadImage(p["out"])).astype(np.float32)


def fsl_available() -> bool:
    return bool(os.environ.get("FSLDIR")) and Path(os.environ["FSLDIR"], "bin", "flirt").exists()


def symmetric_channel(hu: np.ndarray, volume: np.ndarray, brain: np.ndarray, spacing: tuple[float, float, float],
                      method: str = "auto") -> np.ndarray:
    """``mirror(volume)`` registered onto ``volume`` by the transform that maps ``mirror(hu)`` onto ``hu``.

    ``hu`` is the head in HU (holder removed) on the same grid as the normalised ``volume``;
    voxels outside the brain take ``volume``'s floor, like the first channel.
    """
    hu = np.clip(hu, *HU_WINDOW)
    if method == "flirt" or (method == "auto" and fsl_available()):
        registered = _flirt_mirror(hu, volume, spacing)
    else:
        transform = estimate_rigid_sitk(hu, mirror(hu), spacing)
        registered = apply_rigid_sitk(mirror(volume), spacing, transform, float(volume.min()))
    floor = float(volume[~brain].min()) if (~brain).any() else float(volume.min())
    registered[~brain] = floor
    return registered
