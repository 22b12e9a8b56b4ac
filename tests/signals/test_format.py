"""The format profile on hand-written outputs, adversarial inputs and arbitrary text (pure logic)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.signals.format import FORMAT_FEATURES, format_profile

NAMES = [name for name, _ in FORMAT_FEATURES]
SCRIPT_NAMES = [name for name in NAMES if name.startswith("script_")]


def test_feature_catalog() -> None:
    assert NAMES == ["fenced_code", "heading", "table", "bullet_list", "numbered_list", "starts_with_json",
                     "script_latin", "script_cjk", "script_cyrillic", "script_arabic", "script_other"]
    assert all(desc and "\n" not in desc for _, desc in FORMAT_FEATURES)


def test_empty_text() -> None:
    p = format_profile("")
    assert list(p) == NAMES
    assert all(p[n] == 0.0 for n in NAMES if n not in SCRIPT_NAMES)
    assert all(p[n] is None for n in SCRIPT_NAMES)


@pytest.mark.parametrize(("feature", "text", "expected"), [
    # fenced code
    ("fenced_code", "Here:\n```python\nprint(1)\n```\nDone.", 1.0),
    ("fenced_code", "~~~\ncode\n~~~", 1.0),
    ("fenced_code", "```\nnever closed, runs to the end", 1.0),
    ("fenced_code", "1. Run:\n   ```bash\n   make\n   ```", 1.0),
    ("fenced_code", "def f():\n    return 1", 0.0),
    ("fenced_code", "Use ``` to open a fence, mid-line.", 0.0),
    ("fenced_code", "```inline code span```", 0.0),
    ("fenced_code", "``not three``\n~~\nstrike", 0.0),
    # heading
    ("heading", "# Title\ntext", 1.0),
    ("heading", "intro\n###### Six", 1.0),
    ("heading", "Title\n=====\nbody", 1.0),
    ("heading", "Title\n---\nbody", 1.0),
    ("heading", "#hashtag and more", 0.0),
    ("heading", "####### seven is too many", 0.0),
    ("heading", "Paragraph.\n\n---\n\nAnother.", 0.0),
    ("heading", "```python\n# a comment\n```", 0.0),
    ("heading", "- item\n---", 0.0),
    ("heading", "a = b\n== is equality", 0.0),
    # table
    ("table", "| a | b |\n|---|:--:|\n| 1 | 2 |", 1.0),
    ("table", "a | b\n--|--\n1 | 2", 1.0),
    ("table", "| a |\n| :- |", 1.0),
    ("table", "Use a | b for the union of two types.\nIt is short.", 0.0),
    ("table", "a | b\n---", 0.0),
    ("table", "| a | b |\n|---|\n", 0.0),
    ("table", "| a | b |\n| x | y |", 0.0),
    ("table", "```\n| a | b |\n|---|---|\n```", 0.0),
    # bullet list
    ("bullet_list", "Options:\n- one\n- two", 1.0),
    ("bullet_list", "* a\n+ b", 1.0),
    ("bullet_list", "• first\n  • nested", 1.0),
    ("bullet_list", "- only one", 0.0),
    ("bullet_list", "text\n\n---\n\nmore\n\n---", 0.0),
    ("bullet_list", "* * *\n- - -", 0.0),
    ("bullet_list", "**bold** start\n**bold** again", 0.0),
    ("bullet_list", "-1 degrees\n-2 degrees", 0.0),
    ("bullet_list", "```\n- a\n- b\n```", 0.0),
    # numbered list
    ("numbered_list", "Steps:\n1. a\n2. b", 1.0),
    ("numbered_list", "1) a\n2) b", 1.0),
    ("numbered_list", "1. only one", 0.0),
    ("numbered_list", "1.5 million\n2.5 million", 0.0),
    ("numbered_list", "~~~\n1. a\n2. b\n~~~", 0.0),
    # starts_with_json
    ("starts_with_json", '{"a": 1}', 1.0),
    ("starts_with_json", '  \n[1, 2, {"b": null}]', 1.0),
    ("starts_with_json", '{"a": 1}\n\nThis object has one key.', 1.0),
    ("starts_with_json", '```json\n{"a": [1, 2]}\n```', 1.0),
    ("starts_with_json", '```JSON\n{"a": 1}\n```\nExplanation follows.', 1.0),
    ("starts_with_json", "{not json", 0.0),
    ("starts_with_json", '{"a": 1', 0.0),
    ("starts_with_json", "[link](https://example.com)", 0.0),
    ("starts_with_json", 'Here it is: {"a": 1}', 0.0),
    ("starts_with_json", '```json\n{"a": 1,}\n```', 0.0),
    ("starts_with_json", '```python\n{"a": 1}\n```', 0.0),
    ("starts_with_json", '```json\n{"a": 1} trailing\n```', 0.0),
    ("starts_with_json", "[" * 100_000, 0.0),
])
def test_structural_feature(feature: str, text: str, expected: float) -> None:
    assert format_profile(text)[feature] == expected


@pytest.mark.parametrize(("text", "script"), [
    ("The quick brown fox jumps over the lazy dog.", "script_latin"),
    ("Café, naïve, Straße: déjà vu.", "script_latin"),
    ("这是一个关于模型升级的简短回答。", "script_cjk"),
    ("これは日本語のテキストです。カタカナも。", "script_cjk"),
    ("안녕하세요, 반갑습니다.", "script_cjk"),
    ("Это короткий ответ на русском языке.", "script_cyrillic"),
    ("هذا نص قصير باللغة العربية.", "script_arabic"),
    ("यह हिंदी में एक छोटा उत्तर है।", "script_other"),
    ("Καλημέρα κόσμε", "script_other"),
    ("Ответ: use `pip install` для установки пакета numpy", "script_cyrillic"),
    ("中文回答 with a few English words", "script_latin"),
])
def test_dominant_script(text: str, script: str) -> None:
    p = format_profile(text)
    assert {n: p[n] for n in SCRIPT_NAMES} == {n: float(n == script) for n in SCRIPT_NAMES}


@pytest.mark.parametrize("text", ["1234567890", "  \n\t", "{}[]", "3.14 + 2 = 5.14 !!! 🙂", "١٢٣"])
def test_no_letters_is_not_applicable(text: str) -> None:
    assert all(format_profile(text)[n] is None for n in SCRIPT_NAMES)


def test_markdown_answer_profile() -> None:
    text = ("## Install\n\nRun these:\n\n1. `pip install x`\n2. `x --init`\n\n| flag | use |\n|---|---|\n"
            "| -v | verbose |\n\n```bash\nx --run\n```\n\n- fast\n- small\n")
    p = format_profile(text)
    assert p == {**dict.fromkeys(NAMES, 1.0), "starts_with_json": 0.0, "script_cjk": 0.0, "script_cyrillic": 0.0,
                 "script_arabic": 0.0, "script_other": 0.0}


N = 200_000
ADVERSARIAL = {
    "pipes": "|" * N + "\n" + "|-" * (N // 2),
    "many_pipe_lines": "| a | b |\n" * (N // 10),
    "spaces_no_marker": " " * N + "x",
    "spaces_then_dash": "-" + " " * N,
    "spaces_then_hash": "#" + " " * N,
    "backticks": "`" * N,
    "fence_with_backticks": "```" + "a`" * (N // 2),
    "tildes_lines": "~~~\n" * (N // 4),
    "digits": "1" * N + ". x",
    "dashes_lines": "x\n---\n" * (N // 6),
    "brackets": "[" * N,
    "braces_json": '{"a":' * (N // 5),
    "json_fence_deep": "```json\n" + "[" * N,
    "numbers": "1. a\n" * (N // 5),
    "mixed_scripts": "aЖ中ع\u0905" * (N // 5),
    "newlines": "\r\n\r" * (N // 3),
    "long_json_number": "[" + "9" * N + "]",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_is_fast(name: str) -> None:
    text = ADVERSARIAL[name]
    assert len(text) >= N * 0.99
    start = time.perf_counter()
    p = format_profile(text)
    assert time.perf_counter() - start < 0.5, name
    assert list(p) == NAMES


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("`~#|-*+•:=123.) \n\t{}[]\"a,Жع中\u0905\\")), max_size=200) | st.text())
def test_never_raises_and_values_are_rates(text: str) -> None:
    p = format_profile(text)
    assert list(p) == NAMES
    assert all(v in (0.0, 1.0) for n, v in p.items() if n not in SCRIPT_NAMES)
    scripts = [p[n] for n in SCRIPT_NAMES]
    assert scripts == [None] * 5 or sorted(scripts) == [0.0, 0.0, 0.0, 0.0, 1.0]
