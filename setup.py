"""Packages are found, not listed: every subpackage of ich_infer and training goes into the wheel.

The bundled weights live in weights/ at the top of the repository and travel inside the installed
distribution as the package ich_infer.bundled_weights, so a non-editable install can segment; that
mapping is the one package named here by hand.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=("ich_infer", "ich_infer.*", "training", "training.*")),
                "ich_infer.bundled_weights"],
      package_dir={"ich_infer.bundled_weights": "weights"})
