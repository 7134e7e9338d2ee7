"""Reading scores out of a judge's own output.

Guarantees (tested, see tests/test_parsing.py):
- Text inside ``<think>...</think>`` is ignored (an unclosed ``<think>`` hides the rest; a stray
  ``</think>`` hides everything before it, for outputs whose ``<think>`` was prefilled).
- ``<score>X</score>`` is matched case-insensitively with any whitespace; the LAST tag wins.
  A trailing unterminated ``<score>X`` (generation stopped at ``</score>``) is accepted.
- X must be an integer (``3`` or ``3.0``); anything else is ``not_integer``. A value outside the
  scale is ``out_of_range``. No tag is ``no_score``. Several dimensions use one tag each
  (``<helpfulness>3</helpfulness>``); a missing one is ``missing_dimension``.
- A number of any length is read without overflow: more than 18 digits is ``out_of_range``.
  Only ASCII digits make a number (``３``, ``³``, ``③`` are ``not_integer``).
- Linear time in the output's length, whatever it holds (thousands of unclosed ``<think>`` or
  ``<score>`` openers included): every scan is one pass of a one-tag pattern (:func:`_tokens`),
  and openers are paired with closers by a walk over those tags, as a lazy
  ``<t>.*?</t>`` regex would pair them but without its quadratic retries.
- A failure is a :class:`ParseFailure` value. It is never turned into a score, and never 0.
- :func:`finite_score` is the one check that a number made into a score (an expected score, a
  label, a stored result) is a finite real number.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

from judgeforge.data.schema import DEFAULT_SCALE, Scale
from judgeforge.errors import DataError, ModelResponseError

__all__ = ["ParsedScore", "ParseFailure", "ParseFailureKind", "ParseResult", "parse_score",
           "strip_thinking", "finite_score", "checked_logprob"]

_THINK_OPEN = re.compile(r"<\s*think\s*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0+)?")
_TAIL_VALUE = re.compile(r"\s*([^<\s]+)\s*\Z")  # after a last, unclosed opener
_MAX_DIGITS = 18  # every scale fits; longer numbers are out of range without building them


def finite_score(value: Any, *, what: str = "score") -> float:
    """``value`` as a float when it is a finite real number (not a bool, NaN, inf or text).

    Anything else is a :class:`~judgeforge.errors.DataError` naming ``what``: the one check
    where scores are made (expected scores, labels, stored results), so NaN never travels on.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"{what}: {str(value)[:40]!r} is not a number")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        bits = int(cast(int, value)).bit_length()
        raise DataError(f"{what}: a {bits}-bit number is not a usable score") from None
    if not math.isfinite(number):
        raise DataError(f"{what}: {number} is not a finite number")
    return number


def checked_logprob(value: object, token: str) -> float:
    """A log-probability from a server: finite and at most 0 (a rounding excess of 1e-3 is
    taken as 0), else :class:`ModelResponseError` (a NaN or 1000 must not become a score).
    ``-inf`` is a valid log-probability (probability 0: servers write ``-Infinity`` for tokens
    they rule out) and is returned as is."""
    if isinstance(value, float) and value == -math.inf:
        return value
    try:
        number = finite_score(value, what=f"logprob of token {token!r}")
    except DataError as exc:
        raise ModelResponseError(f"the server returned an unusable {exc}") from None
    if number > 1e-3:
        raise ModelResponseError(f"the server returned logprob {number} for token {token!r}; "
                                 "a log-probability is at most 0")
    return min(number, 0.0)


class ParseFailureKind(str, Enum):
    NO_SCORE = "no_score"
    NOT_INTEGER = "not_integer"
    OUT_OF_RANGE = "out_of_range"
    MISSING_DIMENSION = "missing_dimension"


@dataclass(frozen=True)
class ParsedScore:
    """A successful parse: one integer per dimension, and the text around the tags as reason."""

    scores: dict[str, int]
    reason: str = ""
    raw: str = ""
    ok: bool = field(default=True, init=False)

    @property
    def score(self) -> int:
        """The score of a one-dimension parse."""
        if len(self.scores) != 1:
            raise DataError(f"several dimensions parsed: {sorted(self.scores)}; use .scores")
        return next(iter(self.scores.values()))


@dataclass(frozen=True)
class ParseFailure:
    """A failed parse. ``partial`` holds dimensions that did parse (multi-dimension outputs)."""

    kind: ParseFailureKind
    message: str
    raw: str = ""
    partial: dict[str, int] = field(default_factory=dict)
    ok: bool = field(default=False, init=False)

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


ParseResult = ParsedScore | ParseFailure


@functools.lru_cache(maxsize=128)
def _tag_token(tag: str) -> re.Pattern[str]:
    """One ``<tag>`` or ``</tag>`` (group 1 set for a closer), any case and spacing. It holds
    exactly one ``<``, so matches never overlap and a scan is linear."""
    return re.compile(rf"<\s*(/\s*)?{re.escape(tag)}\s*>", re.IGNORECASE)


def _tokens(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    """Every match of a one-tag ``pattern`` in ``text``: the parser's only scan of a whole
    text (a test meters it)."""
    return list(pattern.finditer(text))


def _pairs(tokens: list[re.Match[str]]) -> list[tuple[re.Match[str], re.Match[str]]]:
    """(opener, closer) pairs, left to right, as ``<t>.*?</t>`` finds them: an opener waits for
    the first closer after it (openers in between are content), a closer with no opener waiting
    is a stray, an opener never closed stays open."""
    out = []
    opener: re.Match[str] | None = None
    for tok in tokens:
        if tok.group(1) is None:
            opener = opener or tok
        elif opener is not None:
            out.append((opener, tok))
            opener = None
    return out


def strip_thinking(text: str) -> tuple[str, str]:
    """Split ``text`` into (visible text, thinking text)."""
    think = _tag_token("think")
    blocks = _pairs(_tokens(think, text))
    thoughts = [text[o.start():c.end()] for o, c in blocks]
    pieces, at = [], 0
    for o, c in blocks:
        pieces += [text[at:o.start()], " "]
        at = c.end()
    visible = "".join(pieces) + text[at:]
    rest = _tokens(think, visible)
    closers = [t for t in rest if t.group(1) is not None]
    cut = 0
    if closers:  # prefilled "<think>": everything before the last stray close tag is thinking
        cut = closers[-1].end()
        thoughts.insert(0, visible[: closers[-1].start()])
    opened = next((t for t in rest if t.start() >= cut and t.group(1) is None), None)
    if opened:  # unclosed: the rest is thinking
        thoughts.append(visible[opened.end():])
        visible = visible[cut: opened.start()]
    else:
        visible = visible[cut:]
    thinking = "\n".join(_THINK_OPEN.sub("", _THINK_CLOSE.sub("", t)).strip() for t in thoughts)
    return visible, thinking.strip()


def _read_value(value: str, dim: str, scale: Scale, raw: str) -> int | ParseFailure:
    value = value.strip()
    if not _INTEGER.fullmatch(value):
        return ParseFailure(ParseFailureKind.NOT_INTEGER,
                            f"{dim}: {value[:40]!r} is not an integer", raw)
    digits = value.lstrip("+-").split(".")[0].lstrip("0")
    if len(digits) > _MAX_DIGITS:
        return ParseFailure(ParseFailureKind.OUT_OF_RANGE,
                            f"{dim}: a {len(digits)}-digit number is outside the scale {scale}",
                            raw)
    number = int(value.split(".")[0])
    if number not in scale:
        return ParseFailure(ParseFailureKind.OUT_OF_RANGE,
                            f"{dim}: {number} is outside the scale {scale}", raw)
    return number


def _find_last(tag: str, visible: str) -> tuple[str, tuple[int, int]] | None:
    """The value of the last ``<tag>X</tag>`` (or of a trailing unclosed ``<tag>X``) and the
    span to cut from the reason."""
    tokens = _tokens(_tag_token(tag), visible)
    pairs = _pairs(tokens)
    if pairs:
        o, c = pairs[-1]
        return visible[o.end():c.start()], (o.start(), c.end())
    openers = [t for t in tokens if t.group(1) is None]
    if openers:  # only the last opener can be trailing: any earlier one has a '<' after it
        tail = _TAIL_VALUE.match(visible, openers[-1].end())
        if tail:
            return tail.group(1), (openers[-1].start(), tail.end())
    return None


def parse_score(text: str | None, *, scale: Scale = DEFAULT_SCALE,
                dimensions: Mapping[str, Scale] | None = None, tag: str = "score") -> ParseResult:
    """Parse a judge's output.

    With ``dimensions`` of more than one entry, each dimension is read from its own tag; else the
    single ``tag`` (default ``score``) is read and reported under the dimension's name (or
    ``score``).
    """
    raw = text or ""
    visible, thinking = strip_thinking(raw)
    if dimensions and len(dimensions) > 1:
        tags = {d: (d, s) for d, s in dimensions.items()}
    else:
        name, sc = next(iter(dimensions.items())) if dimensions else ("score", scale)
        tags = {name: (tag, sc)}
    scores: dict[str, int] = {}
    missing: list[str] = []
    spans: list[tuple[int, int]] = []
    for dim, (t, sc) in tags.items():
        found = _find_last(t, visible)
        if found is None:
            missing.append(dim)
            continue
        value = _read_value(found[0], dim, sc, raw)
        if isinstance(value, ParseFailure):
            return ParseFailure(value.kind, value.message, raw, dict(scores))
        scores[dim] = value
        spans.append(found[1])
    if missing:
        if not scores:
            names = ", ".join(f"<{tags[d][0]}>" for d in missing)
            return ParseFailure(ParseFailureKind.NO_SCORE, f"no {names} tag in the output", raw)
        return ParseFailure(ParseFailureKind.MISSING_DIMENSION,
                            f"missing dimension(s): {', '.join(missing)}", raw, scores)
    reason = visible
    for start, end in sorted(spans, reverse=True):
        reason = reason[:start] + reason[end:]
    reason = reason.strip() or thinking
    return ParsedScore(scores=scores, reason=reason, raw=raw)
