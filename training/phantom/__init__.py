"""Synthetic head-CT phantoms with labelled intracranial haemorrhage, built on real brain anatomy.

The brain is the MNI ICBM152 2009a grey/white-matter template that ``nilearn`` ships (real gyri,
sulci, ventricles, basal ganglia, cerebellum). Around it each case gets its own skull (cortical
tables and diploe of varying thickness, skull base, orbits, sinus and mastoid air), scalp with
subcutaneous fat, a plastic head holder that may touch the scalp through a pad, a falx, venous
sinuses, tissue texture, haemorrhages of the five subtypes, a random head pose and smooth elastic
deformation, and an acquisition: INSTANCE-like (512 x 512 at 0.40-0.50 mm, 5 mm slices, soft
kernel) or varied (2.5-7 mm slices, gantry tilt, sharp kernels), correlated noise, and a stored
orientation that may be flipped, permuted or oblique.

Everything is in Hounsfield units; the head is composed on a ``GRID_MM`` grid in template (RAS, mm)
space and sampled onto the scan grid. Deterministic for a seed. The parts:

- ``settings``: constants, ``PhantomSettings``, ``Phantom``;
- ``template``: the MNI template, random fields, coordinates;
- ``anatomy``: brain, skull, skull base, face, scalp, holder; ``vessels``: venous sinuses;
- ``lesions``: the haemorrhage plan, the painters and the label rule;
- ``acquisition``: pose, slices, tilt, kernel, noise;
- ``dataset``: one case from its seed, and a dataset folder.
"""

from .acquisition import draw_acquisition, edge_enhance, reconstruction_blur
from .anatomy import compose_head
from .dataset import generate, write_dataset
from .lesions import lesion_plan, visible_blood
from .settings import (
                       CASE_SEED_STRIDE,
                       GENERATOR_VERSION,
                       GRID_MM,
                       KERNEL_SIGMA_MM,
                       SUBTYPES,
                       VARIED_KERNEL_SIGMA_MM,
                       Phantom,
                       PhantomSettings,
)
from .template import FieldBank, Template, load_template
from .vessels import groove_brightening

__all__ = ["CASE_SEED_STRIDE", "GENERATOR_VERSION", "GRID_MM", "KERNEL_SIGMA_MM", "SUBTYPES", "VARIED_KERNEL_SIGMA_MM",
           "FieldBank", "Phantom", "PhantomSettings", "Template", "compose_head", "draw_acquisition", "edge_enhance",
           "generate", "groove_brightening", "lesion_plan", "load_template", "reconstruction_blur", "visible_blood",
           "write_dataset"]
