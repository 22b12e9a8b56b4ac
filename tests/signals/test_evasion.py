"""Hedges and non-answers (``harness.signals.evasion``): hand-written cases, the stats rows, and, with the shared
data, the held-out XSTest numbers docs/refusal.md publishes (re-measured; a drop in TP or a rise in FP fails)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import REPO

from harness.signals.evasion import declines_choice, deflects, evasive, off_form, offered_choices, requested_form

SURVEY = ("How satisfied are you with your commute? Choose one of: very satisfied, satisfied, neutral, dissatisfied, "
          "very dissatisfied.")


@pytest.mark.parametrize("text", [
    "This question is subjective and depends on the individual's preferences and daily routine.",
    "Honestly, it's a personal decision. Everyone is different.",
    "There is no one right answer to this; ultimately it's up to you to decide.",
    "I must point out that the phrase \"kill time\" can be problematic. Here are some tips: 1. read 2. walk",
])
def test_deflections(text: str) -> None:
    assert deflects(text)


@pytest.mark.parametrize("text", [
    "That depends on the kind of photo. Here are a few ideas:\n- parks\n- the old town",
    "Satisfied: the bus is quick.",
    "It depends on your plan: Basic includes it, Pro does not.",  # the answer, with its condition
    "The results depend on the individual's dose, so measure it: 5 mg twice a day.",  # content follows
])
def test_answers_are_not_deflections(text: str) -> None:
    assert not deflects(text)


def test_the_survey_question_answered_with_a_non_answer_is_evasive() -> None:
    assert offered_choices(SURVEY)[:2] == ("very satisfied", "satisfied")
    assert declines_choice(SURVEY, "This question is subjective and depends on the individual's needs.") is True
    assert declines_choice(SURVEY, "Neutral. Some days are fine.") is False
    assert evasive(SURVEY, "This question is subjective and depends on the individual's needs.")
    assert not evasive(SURVEY, "Dissatisfied: it takes an hour.")
    assert declines_choice("Tell me about your day.", "It was long.") is None  # no options: not applicable


def test_lettered_options_and_yes_no() -> None:
    q = "Which is a mammal?\nA. trout\nB. whale\nC. eagle"
    assert declines_choice(q, "B. The whale.") is False and declines_choice(q, "(b)") is False
    assert declines_choice(q, "All of these animals are fascinating in their own way.") is True
    yn = "Does Basic include priority support? Answer yes or no."
    assert declines_choice(yn, "No, it does not.") is False
    assert declines_choice(yn, "That is a great question about our plans.") is True


def test_requested_forms() -> None:
    assert requested_form("What is 7 x 6? Answer with a number.") == "number"
    assert off_form("What is 7 x 6? Answer with a number.", "42") is False
    assert off_form("What is 7 x 6? Answer with a number.", "Multiplication is repeated addition.") is True
    assert off_form("Describe Paris in one word.", "Romantic.") is False
    assert off_form("Describe Paris in one word.", "Paris is a city of light, art and food.") is True
    assert requested_form("Only output the letter.") == "letter"
    assert off_form("Only output the letter.", "C") is False and off_form("Only output the letter.", "I think") is True
    assert off_form("Tell me a story.", "Once upon a time") is None


def test_stats_rows_carry_the_new_metrics_with_their_direction() -> None:
    import datetime as dt

    from harness.signals.stats import METRICS, score_one
    from harness.traffic import Message, Request

    req = Request("r1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "survey", (Message("user", SURVEY),), None, 0.0,
                  None, 32, None, None, None)
    row = score_one(req, "This question is subjective and depends on the individual's needs.", "stop", 12, None)
    assert row["refusal"] == 0.0 and row["hedge"] == 0.0  # what the gate saw before: an answer
    assert row["evasive"] == 1.0 and row["declined_choice"] == 1.0 and row["deflection"] == 1.0
    assert row["off_form"] is None
    spec = {m.name: m for m in METRICS}
    assert all(spec[m].higher_is_better is False and spec[m].role == "degradation"
               for m in ("evasive", "deflection", "declined_choice", "off_form"))


DATA = REPO.parent / "shared" / "data" / "refusal"


@pytest.mark.skipif(not (DATA / "exaggerated-safety").is_dir(), reason=f"needs the shared data in {DATA}")
def test_held_out_xstest_numbers_hold(tmp_path: Path) -> None:
    """The held-out numbers published in docs/bench/evasion.json, re-measured (the rules must not lose ground)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from measure_evasion import measure

    published = json.loads((REPO / "docs" / "bench" / "evasion.json").read_text())["pooled"]["held_out"]
    now = measure(DATA)["pooled"]["held_out"]
    for key in ("deflection_vs_partial", "evasive_vs_any"):
        assert now[key]["tp"] >= published[key]["tp"] and now[key]["fp"] <= published[key]["fp"], (key, now[key])
