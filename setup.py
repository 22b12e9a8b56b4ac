"""Maps the top-level data folders into the package (everything else is in pyproject.toml).

``configs/`` and ``replays/`` are installed as ``harness/configs`` and ``harness/replays`` (package data); the
setuptools ``package-dir`` table cannot be combined with ``packages.find`` in pyproject.toml alone.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["harness*"]), "harness.configs", "harness.replays"],
      package_dir={"harness.configs": "configs", "harness.replays": "replays"})
