"""``JudgeSettings``: everything a judge pass needs, flat and typed (``judge.judge_settings`` builds it)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import ArmConfig
from harness.signals import judge_prompts as jp
from harness.signals.judge_admission import Bar


@dataclass(frozen=True)
class JudgeSettings:
    """Everything ``run_judge`` needs, flat and typed (built from ``JudgeConfig`` by ``judge_settings``)."""

    arm: ArmConfig
    rubric: jp.Rubric
    template_version: str = "v1"
    pairwise: bool = True
    max_chars: int = 2000
    max_unscored: float = 0.05
    agreement_bar: float = 0.6
    agreement_min_n: int = 20
    annotations: str | None = None
    arms: tuple[str, str] = ("baseline", "candidate")
    imported: str | None = None  # an imported judge file instead of the judge arm (``judge_import``)
    calibration: str | None = None  # the judge's verdicts on labelled pairs outside the run (admission only)
    accuracy_bar: float = 0.75
    agreement_level: float = 0.95
    trust_target: float = 0.8

    @property
    def bar(self) -> Bar:
        """The admission bar of the pairwise preference (``judge_admission``)."""
        return Bar(self.agreement_bar, self.accuracy_bar, self.agreement_min_n, self.agreement_level,
                   self.trust_target)
