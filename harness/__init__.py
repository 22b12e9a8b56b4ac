"""The model-upgrade gate: replay captured traffic through two model versions and gate the candidate.

What ships inside the package (so an installed, non-editable package runs the default experiment from any
directory): ``configs/`` (Hydra), ``replays/`` (the sample traffic, the zoo's golden set, the sample annotations),
``analysis/*.sql`` and the zoo checkpoints. Configs name shipped files as ``${pkg:replays/NAME}``.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_DIR / "configs"
REPLAYS_DIR = PACKAGE_DIR / "replays"
