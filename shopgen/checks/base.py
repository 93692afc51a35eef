"""The gate's shared vocabulary: the CheckResult every check returns, text normalisation, word and sentence
splitting (English and Chinese), and the product's own text as evidence. Pure; no I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from shopgen.core.records import Product


@dataclass
class CheckResult:
    check: str
    passed: bool
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    for a, b in SYNONYMS.items():
        t = re.sub(rf"\b{a}\b", b, t)
    return t


SYNONYMS = {"aluminium": "aluminum", "grey": "gray", "colour": "color", "stainless-steel": "stainless steel"}

CJK = re.compile(r"[\u3400-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")
WORD = re.compile(r"[A-Za-z0-9]+(?:['’&-][A-Za-z0-9]+)*")
CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
# English sentences end at .!? followed by space (so "3.5 mm" stays whole); Chinese ones at 。！？.
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])|\n+")
STOPWORDS = frozenset("""a an the and or but nor so yet of to in on at by for with from into onto over under about as
    is are was were be been being am it its it's this that these those there here their they them you your yours we
    our ours us he she his her i me my mine what which who whom whose when where why how all any each every both
    few more most other some such no not only own same than too very can will just should would could may might
    must do does did done has have had having if then else also up down out off again further once per via yes
    one two three four five six""".split())


def as_texts(texts: Any) -> list[str]:
    """Tolerate a bare string, None items or non-strings: a check must never raise on odd input."""
    if texts is None:
        return []
    if isinstance(texts, str):
        return [texts]
    return ["" if t is None else t if isinstance(t, str) else str(t) for t in texts]


def shorten(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_SPLIT.split(text) if s and s.strip()]


def n_words(text: str) -> int:
    return len(WORD.findall(CJK.sub(" ", text)))


def n_cjk(text: str) -> int:
    return len(CJK.findall(text))


def stem(w: str) -> str:
    """Crude singular form so 'sleepers'/'Sleeper's' match 'sleeper'."""
    w = w.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w


def word_tokens(text: str) -> set[str]:
    """Lower-cased word stems, with hyphen/ampersand parts too ('gore-tex' -> gore-tex, gore, tex)."""
    out = set()
    for w in WORD.findall(unicodedata.normalize("NFKC", text)):
        out.add(stem(w))
        for part in re.split(r"[-&'’]", w):
            if part:
                out.add(stem(part))
    return out


_FALSY = {"", "false", "no", "none", "n/a", "na", "0", "null", "not included", "否", "无", "不", "没有", "不含"}


def is_falsy(v: Any) -> bool:
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v == 0
    if isinstance(v, list):
        return all(is_falsy(x) for x in v)
    return str(v).strip().lower() in _FALSY


def evidence_text(p: Product) -> str:
    """product_text without attributes whose value says 'no': {"waterproof": false} is not evidence."""
    parts = [p.title, p.brand or "", p.category or "", p.description or ""]
    for k, v in p.attributes.items():
        if is_falsy(v):
            continue
        # A rating's name is no evidence of what it rates: {"waterproof_rating": "IPX4"} says IPX4, not
        # "waterproof"; with a unit (waterproof_rating_mm: 15000) it names the measure and is.
        if not re.search(r"(?:^|_)(?:rating|rated|level|grade|class)(?:$|_)", k) or re.search(r"_(?:mm|cm|g|pct)$", k):
            parts.append(k.replace("_", " "))
        parts.append(" ".join(map(str, v)) if isinstance(v, list) else str(v))
    return "\n".join(parts)


def product_text(p: Product) -> str:
    """Everything the seller stated, attribute names included (weight_g says the unit is grams)."""
    parts = [p.title, p.brand or "", p.category or "", p.description or ""]
    for k, v in p.attributes.items():
        parts.append(k.replace("_", " "))
        parts.append(" ".join(map(str, v)) if isinstance(v, list) else str(v))
    return "\n".join(parts)


# "not waterproof", "does not come with a sheath", "non-recycled", "不防水": a negated mention is
# neither a claim nor evidence. Negation reaches back to the start of the clause ("not only" aside).
_NEGATION = re.compile(r"\b(?:not|no|non|without|never|nor|neither|lacks?|lacking)\b(?! only| just)|n't\b", re.I)
_NEGATION_ZH = re.compile(r"(?:[不非无没未]|[不没][可会能有含带]|不是|并非|并不)$")  # right before: 不防水, 没有认证
_NEGATED_AFTER = re.compile(r"^[\w\s-]{0,20}?\b(?:is|are|was|were|comes?)\s+(?:not|n't|never)\b|^\s*(?:sold separately|"
                            r"not included)", re.I)


def negated(text: str, start: int, end: int | None = None) -> bool:
    clause = re.split(r"[.!?;,:。！？；，、\n]", text[max(0, start - 80):start])[-1]
    if _NEGATION.search(clause) or _NEGATION_ZH.search(clause):
        return True
    if end is None:
        return False
    stop = re.search(r"[.!?。！？\n]", text[end:])
    if stop and stop.group(0) in "?？":  # a question ("Does it have pit zips?") asserts nothing
        return True
    return bool(_NEGATED_AFTER.search(text[end:end + 40]))
