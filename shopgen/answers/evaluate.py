"""Scoring answers against labelled questions (pure). A labelled row adds `expected`: `answerable`
and, when answerable, the `values` a right answer contains.

- correct: an answerable question answered with every expected value;
- wrong: an answer published where the facts do not say (an unanswerable question, an instruction,
  a request), or one that contradicts the expected values (the opposite yes/no, or an expected
  figure missing where the answer states another figure);
- incomplete: answered, not wrong, but missing a value (it states the right fact without the verdict);
- refusal rate: of the unanswerable questions, the share not answered."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shopgen.core.questions import Answer


class Expected(BaseModel):
    model_config = ConfigDict(extra="ignore")

    answerable: bool
    values: list[str] = Field(default_factory=list)
    kind: str | None = None


def canon(text: str) -> str:
    """Case, degree signs, thousands separators, hyphens and the space between a number and its unit
    do not matter: `2,390g` = `2390 g`, `10°C` = `10 c`, `2-year` = `2 year`."""
    t = unicodedata.normalize("NFKC", text).lower().replace("°", " ").replace("º", " ").replace("−", "-")
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", t)
    t = re.sub(r"(?<=[a-z])-(?=[a-z0-9])|(?<=\d)-(?=[a-z])", " ", t)
    t = re.sub(r"(\d)\s*([a-z%])", r"\1 \2", t)
    t = re.sub(r"(?<=\d)\.0+\b", "", t)
    for unit, same in UNIT_WORDS.items():  # 15 lbs = 15 lb, 8 hours = 8 h
        t = re.sub(rf"(\d) ?(?:{same})\b", rf"\1 {unit}", t)
    return " ".join(re.findall(r"-?\d+(?:\.\d+)?|[a-z%]+|[\u3400-\u9fff]", t))


UNIT_WORDS = {"lb": "lbs|pounds|pound", "h": "hours|hour|hrs|hr", "l": "litres|liters|litre|liter",
              "g": "grams|gram", "kg": "kilograms|kilogram|kgs", "ml": "millilitres|milliliters", "in": "inches|inch",
              "ft": "feet|foot", "m": "meters|metres|meter|metre", "cm": "centimeters|centimetres", "mm": "millimeters|millimetres"}


def contains(answer: str, value: str) -> bool:
    a, v = f" {canon(answer)} ", f" {canon(value)} "
    return v in a if v.strip() else False


_YES, _NO = re.compile(r"^\W*yes\b", re.I), re.compile(r"^\W*no\b", re.I)


def grade(ans: Answer, exp: Expected) -> str:
    """correct | wrong | incomplete | not_answered."""
    if ans.status != "answered":
        return "not_answered"
    if not exp.answerable:
        return "wrong"
    if all(contains(ans.answer, v) for v in exp.values):
        return "correct"
    polar = [v.lower() for v in exp.values if v.lower() in ("yes", "no")]
    if polar and (_YES if polar[0] == "no" else _NO).search(ans.answer):
        return "wrong"
    figures = [v for v in exp.values if re.search(r"\d", v)]
    if any(not contains(ans.answer, v) for v in figures) and re.search(r"\d", ans.answer):
        return "wrong"
    return "incomplete"


def _rate(n: int, d: int) -> float:
    return round(n / d, 4) if d else 0.0


def summary(pairs: Iterable[tuple[Answer, Expected]]) -> dict[str, Any]:
    """The figures `shopgen eval-answers` prints: correct_rate (over answerable questions), wrong_rate
    (over all), refusal_rate (over unanswerable ones), n; and the same per status, locale and kind."""
    rows = [(a, e, grade(a, e)) for a, e in pairs]
    return {**_figures(rows),
            "by_status": dict(Counter(a.status for a, _, _ in rows)),
            "by_locale": {k: _figures(v) for k, v in _group(rows, lambda a, e: a.locale).items()},
            "by_kind": {k: _figures(v) for k, v in _group(rows, lambda a, e: e.kind or "-").items()},
            "by_drafter": dict(Counter(a.drafted_by for a, _, _ in rows if a.status == "answered"))}


def _group(rows: Sequence[tuple[Answer, Expected, str]], key: Any) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for r in rows:
        out[key(r[0], r[1])].append(r)
    return dict(sorted(out.items()))


def _figures(rows: Sequence[tuple[Answer, Expected, str]]) -> dict[str, Any]:
    g = Counter(x for _, _, x in rows)
    answerable = sum(e.answerable for _, e, _ in rows)
    unanswerable = [(a, e) for a, e, _ in rows if not e.answerable]
    return {"n": len(rows), "correct_rate": _rate(g["correct"], answerable), "wrong_rate": _rate(g["wrong"], len(rows)),
            "refusal_rate": _rate(sum(a.status != "answered" for a, _ in unanswerable), len(unanswerable)),
            "incomplete_rate": _rate(g["incomplete"], len(rows)), "answerable": answerable,
            "correct": g["correct"], "wrong": g["wrong"]}


def expected_of(row: Mapping[str, Any]) -> Expected | None:
    e = row.get("expected")
    return Expected.model_validate(e) if isinstance(e, dict) else None
