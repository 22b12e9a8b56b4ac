"""Packages and package data (everything else is in pyproject.toml).

``configs/`` and ``replays/`` live at the repository's top level and are installed as ``harness/configs`` and
``harness/replays``; data folders (config groups, zoo checkpoints) are listed as namespace packages so that
setuptools installs their files. ``harness.data_dir`` finds the folders either way.
"""

from setuptools import find_namespace_packages, setup

DATA = {"configs": "harness.configs", "replays": "harness.replays"}
SKIP = ["*__pycache__*", "*.egg-info*"]

packages = find_namespace_packages(include=["harness", "harness.*"], exclude=SKIP)
package_dir = {}
for folder, package in DATA.items():
    subs = find_namespace_packages(where=folder, exclude=SKIP)
    packages += [package, *(f"{package}.{s}" for s in subs)]
    package_dir[package] = folder

setup(packages=packages, package_dir=package_dir,
      package_data={"": ["*.sql", "*.yaml", "*.parquet", "*.csv", "*.json", "*.jinja", "*.safetensors", "*.txt",
                         "*.js"]})
