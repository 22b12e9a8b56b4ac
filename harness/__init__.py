"""The model-upgrade gate: replay captured traffic through two model versions and gate the candidate.

The pipeline is the package tree: ``traffic/`` -> ``replay/`` (through ``engines/``) -> ``signals/`` ->
``analysis/`` -> ``gate.py`` -> ``report/``; ``run.py`` reads top to bottom like that recipe and ``cli.py`` turns a
config into one call of it. Beside the pipeline: ``canary/`` (live traffic), ``golden/`` (reference sets),
``fixtures/`` (the zoo and the real model the default experiment and the tests run on) and ``bench/``.

Data at the repository's top level ships inside the package (so a non-editable install runs the default experiment
from any directory): ``configs/`` (Hydra) and ``replays/`` (the sample traffic, the zoo's golden set, the sample
annotations) are installed as ``harness/configs`` and ``harness/replays`` (``setup.py``); a source checkout
reads them where they are. Configs name shipped files as ``${pkg:replays/NAME}``.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """A top-level data folder (``configs``, ``replays``): inside the installed package, else the checkout's."""
    installed = PACKAGE_DIR / name
    return installed if installed.is_dir() else PACKAGE_DIR.parent / name


CONFIG_DIR = data_dir("configs")
REPLAYS_DIR = data_dir("replays")
