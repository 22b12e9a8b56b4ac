"""`replay.load` is checked before anything starts: a known mode, a rate where the mode needs one, every generated
arm on the server backend (harness.spec.check_load); the config composes into the run spec."""

from __future__ import annotations

import pytest

from harness.bench.load import compose
from harness.errors import BadInput
from harness.spec import run_spec


def test_real_load_composes_into_the_spec() -> None:
    spec = run_spec(compose(["experiment=real_load"]))
    assert spec.load.mode == "poisson" and spec.load.rate == 1.5 and spec.load.slo_ttft_s == 1.0
    assert "latency" in spec.signals and spec.to_json()["load"]["mode"] == "poisson"


@pytest.mark.parametrize(("overrides", "says"), [
    (["replay.load.mode=sometimes"], "replay.load.mode='sometimes' is not one of"),
    (["replay.load.mode=constant", "replay.load.rate=null"], "needs replay.load.rate"),
    (["replay.load.speedup=0", "replay.load.mode=timestamps"], "speedup=0.0: must be > 0"),
    (["candidate.engine.backend=vllm"], "candidate.engine.backend=server"),
])
def test_bad_load_settings_say_the_fix(overrides: list[str], says: str) -> None:
    with pytest.raises(BadInput, match=says.replace("(", r"\(").replace(".", r"\.")):
        run_spec(compose(["experiment=real_load", *overrides]))
