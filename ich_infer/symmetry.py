"""The optional "symmetric" input channel: the scan mirrored about the mid-sagittal plane and
registered back onto itself, so each voxel sees its contralateral twin (paper 2.2, after [11]).

The mirror flips the array's left-right axis and keeps the geometry: a true mirror. (``sitk.Flip``
keeps physical space, which would make the registration undo the flip.) FSL FLIRT, as in the paper,
is used through ``fslpy`` when ``$FSLDIR`` is set; otherwise a rigid SimpleITK registration gives a
result of the same format.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def mirror(volume: np.ndarray) -> np.ndarray:
    """Left-right mirror of a canonical ``(S, P, L)`` array."""
    return np.ascontiguousarray(volume[..., ::-1])


def _to_sitk(volume: np.ndarray, spacing: tuple[float, float, float]) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume, dtype=np.float32))
    image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))
    return image


def register_rigid_sitk(fixed: np.ndarray, moving: np.ndarray, spacing: tuple[float, float, float],
                        mask: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Rigidly register ``moving`` onto ``fixed`` (same grid) and return it resampled there."""
    fixed_img, moving_img = _to_sitk(fixed, spacing), _to_sitk(moving, spacing)
    initial = sitk.CenteredTransformInitializer(fixed_img, moving_img, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsCorrelation()
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, seed)
    if mask is not None and mask.any():
        reg.SetMetricFixedMask(sitk.Cast(_to_sitk(mask.astype(np.float32), spacing), sitk.sitkUInt8))
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=100,
                                                 relaxationFactor=0.6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    transform = reg.Execute(fixed_img, moving_img)
    out = sitk.Resample(moving_img, fixed_img, transform, sitk.sitkLinear, float(moving.min()))
    return sitk.GetArrayFromImage(out).astype(np.float32)


def register_rigid_flirt(fixed: np.ndarray, moving: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """FLIRT (6 dof) through fslpy; requires an FSL installation ($FSLDIR)."""
    from fsl.wrappers import flirt  # imported lazily: fslpy is only useful with FSL present

    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: str(Path(tmp) / f"{name}.nii.gz") for name in ("fixed", "moving", "out")}
        sitk.WriteImage(_to_sitk(fixed, spacing), paths["fixed"])
        sitk.WriteImage(_to_sitk(moving, spacing), paths["moving"])
        flirt(paths["moving"], paths["fixed"], out=paths["out"], dof=6, interp="trilinear")
        return sitk.GetArrayFromImage(sitk.ReadImage(paths["out"])).astype(np.float32)


def fsl_available() -> bool:
    return bool(os.environ.get("FSLDIR")) and Path(os.environ["FSLDIR"], "bin", "flirt").exists()


def symmetric_channel(volume: np.ndarray, brain: np.ndarray, spacing: tuple[float, float, float],
                      method: str = "auto") -> np.ndarray:
    """Mirrored ``volume`` registered onto ``volume``; voxels outside the brain keep ``volume``'s floor."""
    moving = mirror(volume)
    use_flirt = method == "flirt" or (method == "auto" and fsl_available())
    if use_flirt:
        registered = register_rigid_flirt(volume, moving, spacing)
    else:
        registered = register_rigid_sitk(volume, moving, spacing, mask=brain)
    floor = float(volume[~brain].min()) if (~brain).any() else float(volume.min())
    registered[~brain] = floor
    return registered
