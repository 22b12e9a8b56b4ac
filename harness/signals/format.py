"""The format profile of a model output: markdown structure, a leading JSON value, and the dominant script.

Pure functions of the output text, standard library only. Every feature is a per-request 0/1 rate whose share
the gate compares between arms (e.g. code answers suddenly wrapped in markdown fences). The script features are
one-hot over the dominant writing system of the output's letters, and None (not applicable) when it has none.

The parsing is line based and deliberately approximate (a CommonMark/GFM subset, see each feature); the few
regular expressions are anchored with no nested quantifiers, so untrusted text is scanned in linear time.
"""

from __future__ import annotations

import json
import re
import unicodedata

FORMAT_FEATURES: tuple[tuple[str, str], ...] = (
    ("fenced_code", "contains a fenced code block (``` or ~~~ at line start)"),
    ("heading", "contains a markdown heading (ATX '# ' to '###### ', or a setext ===/--- underline)"),
    ("table", "contains a markdown table (a header row with '|' followed by a |---|:--:| delimiter row)"),
    ("bullet_list", "has at least two bullet lines (-, *, + or •) outside code fences"),
    ("numbered_list", "has at least two numbered lines (1. or 2) style) outside code fences"),
    ("starts_with_json", "starts with a JSON object or array (or a ```json fence whose content parses)"),
    ("script_latin", "the dominant script of the letters is Latin"),
    ("script_cjk", "the dominant script of the letters is CJK (Han, kana, Hangul)"),
    ("script_cyrillic", "the dominant script of the letters is Cyrillic"),
    ("script_arabic", "the dominant script of the letters is Arabic"),
    ("script_other", "the dominant script of the letters is another one (Devanagari, Greek, Hebrew, ...)"),
)

SCRIPTS = ("latin", "cjk", "cyrillic", "arabic", "other")
"""Script classes, in tie-break order (the first of equally frequent scripts wins)."""

_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}#{1,6}[ \t]")
_SETEXT = re.compile(r" {0,3}(?:={3,}|-{3,})[ \t]*")
_BULLET = re.compile(r"[ \t]*[-*+\u2022][ \t]+\S")
_NUMBERED = re.compile(r"[ \t]*[0-9]{1,9}[.)][ \t]+\S")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_SCRIPT_PREFIXES = (("LATIN", "latin"), ("FULLWIDTH LATIN", "latin"), ("CJK UNIFIED", "cjk"),
                    ("CJK COMPATIBILITY IDEOGRAPH", "cjk"), ("HIRAGANA", "cjk"), ("KATAKANA", "cjk"), ("HANGUL", "cjk"),
                    ("HALFWIDTH KATAKANA", "cjk"), ("HALFWIDTH HANGUL", "cjk"), ("CYRILLIC", "cyrillic"),
                    ("ARABIC", "arabic"))
_DECODER = json.JSONDecoder()


def _open_fence(line: str) -> tuple[str, int, str] | None:
    """The fence character, fence length and info string of a line that opens a code fence, else None."""
    m = _FENCE.fullmatch(line) if line.lstrip(" \t")[:3] in ("```", "~~~") else None
    if m is None:
        return None
    fence, info = m.group(1), m.group(2)
    if fence[0] == "`" and "`" in info:  # ```inline``` on one line is a code span, not a fence
        return None
    return fence[0], len(fence), info.strip()


def _closes(line: str, char: str, length: int) -> bool:
    """Whether ``line`` closes a fence opened with ``length`` times ``char``."""
    body = line.strip()
    return len(body) >= length and body.count(char) == len(body)


def _split(text: str) -> tuple[bool, list[str | None]]:
    """Whether the text has a code fence, and its lines with those in or of a fence replaced by None."""
    lines: list[str | None] = []
    fenced = False
    fence: tuple[str, int, str] | None = None
    for line in _NEWLINE.split(text):
        if fence is not None:
            fence = None if _closes(line, fence[0], fence[1]) else fence
            lines.append(None)
        elif (fence := _open_fence(line)) is not None:
            fenced = True
            lines.append(None)
        else:
            lines.append(line)
    return fenced, lines


def _thematic_break(line: str) -> bool:
    """A horizontal rule: three or more of the same ``-``, ``*`` or ``_``, spaces allowed between them."""
    body = line.replace(" ", "").replace("\t", "")
    return len(body) >= 3 and body[0] in "-*_" and body.count(body[0]) == len(body)


def _is_bullet(line: str) -> bool:
    return _BULLET.match(line) is not None and not _thematic_break(line)


def _is_paragraph(line: str | None) -> bool:
    """Whether a line can be the text of a setext heading (non-blank, not another block's start)."""
    return (line is not None and line.strip() != "" and _ATX.match(line) is None and not _thematic_break(line)
            and not _is_bullet(line) and _NUMBERED.match(line) is None)


def _cells(line: str) -> list[str]:
    """The cells of a table row: split on unescaped ``|``, without the optional outer pipes."""
    body = line.strip().replace("\\|", "\x00")
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") else body
    return [cell.strip() for cell in body.split("|")]


def _delimiter_cell(cell: str) -> bool:
    """A delimiter-row cell: one or more ``-`` with an optional ``:`` at either end."""
    body = cell[1:] if cell.startswith(":") else cell
    body = body[:-1] if body.endswith(":") else body
    return body != "" and body.count("-") == len(body)


def _is_table(header: str | None, delimiter: str) -> bool:
    if header is None or "|" not in header or "|" not in delimiter or delimiter.strip(" \t|:-"):
        return False
    head, delim = _cells(header), _cells(delimiter)
    return len(head) == len(delim) and any(head) and all(_delimiter_cell(cell) for cell in delim)


def _parses(s: str, whole: bool) -> bool:
    """Whether ``s`` (whole: all of it; else its longest JSON-value prefix) is JSON."""
    try:
        (json.loads if whole else _DECODER.raw_decode)(s)
    except (ValueError, RecursionError):
        return False
    return True


def _starts_with_json(text: str) -> bool:
    """Whether the text starts with a JSON object/array, or with a ```json fence whose content parses."""
    body = text.strip()
    if body[:1] in ("{", "["):
        return _parses(body, whole=False)
    lines = _NEWLINE.split(body)
    fence = _open_fence(lines[0])
    if fence is None or fence[2].lower().split(maxsplit=1)[:1] != ["json"]:
        return False
    content: list[str] = []
    for line in lines[1:]:
        if _closes(line, fence[0], fence[1]):
            break
        content.append(line)
    return _parses("\n".join(content), whole=True)


def _script(ch: str, cache: dict[str, str]) -> str:
    """The script class of a letter (``SCRIPTS``), by its Unicode name."""
    if ch.isascii():
        return "latin"
    cls = cache.get(ch)
    if cls is None:
        name = unicodedata.name(ch, "")
        cls = cache[ch] = next((c for prefix, c in _SCRIPT_PREFIXES if name.startswith(prefix)), "other")
    return cls


def dominant_script(text: str) -> str | None:
    """The most frequent script class (``SCRIPTS``) among the letters (category L*) of ``text``; None if none."""
    counts = dict.fromkeys(SCRIPTS, 0)
    cache: dict[str, str] = {}
    for ch in text:
        if ch.isalpha():
            counts[_script(ch, cache)] += 1
    best = max(SCRIPTS, key=lambda s: counts[s])
    return best if counts[best] else None


def format_profile(text: str) -> dict[str, float | None]:
    """The format features of one output.

    Args:
        text: the model's output, untrusted.

    Returns:
        Every ``FORMAT_FEATURES`` name, in order, to 1.0 or 0.0; the ``script_*`` ones are None when the
        text has no letters (including the empty text).
    """
    fenced, lines = _split(text)
    heading = table = False
    bullets = numbered = 0
    prev: str | None = None
    for line in lines:
        first = "" if line is None else line.lstrip(" \t")[:1]
        if line is not None and first:
            heading = heading or (first == "#" and _ATX.match(line) is not None) or (
                first in "=-" and _SETEXT.fullmatch(line) is not None and _is_paragraph(prev))
            table = table or (first in "|:-" and _is_table(prev, line))
            bullets += first in "-*+\u2022" and _is_bullet(line)
            numbered += first in "0123456789" and _NUMBERED.match(line) is not None
        prev = line
    structural = {"fenced_code": fenced, "heading": heading, "table": table, "bullet_list": bullets >= 2,
                  "numbered_list": numbered >= 2, "starts_with_json": _starts_with_json(text)}
    script = dominant_script(text)
    profile: dict[str, float | None] = {name: float(bool(value)) for name, value in structural.items()}
    for name in SCRIPTS:
        profile[f"script_{name}"] = None if script is None else float(script == name)
    return {name: profile[name] for name, _ in FORMAT_FEATURES}
