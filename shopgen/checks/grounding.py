"""grounding: copy that states at least one fact of the product, and the facts-covered figure that
best-of-n ranks candidates by. A fact is an input value (an attribute value, the brand, the category
or a phrase of the seller's description); the title alone is not a fact the copy adds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from shopgen.checks.base import STOPWORDS, CheckResult, as_texts, is_falsy, norm, stem
from shopgen.core.records import Product

_W = re.compile(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*")


def _words(text: str) -> set[str]:
    t = norm(text)
    out = {stem(w) for w in _W.findall(t) if w not in STOPWORDS and len(w) > 1}
    cjk = re.sub(r"[^\u3400-\u9fff]", "", t)
    out |= {cjk[i:i + 2] for i in range(max(0, len(cjk) - 1))}
    return out


def facts(p: Product) -> list[set[str]]:
    """The product's facts as word sets: each attribute (its value, or its name for a true flag), the
    brand, the category, and each sentence of the seller's description. Title words are removed so
    that naming the product does not count as stating a fact."""
    title = _words(p.title)
    out: list[set[str]] = []

    def add(words: set[str]) -> None:
        w = words - title
        if w:
            out.append(w)

    for k, v in p.attributes.items():
        if is_falsy(v):
            continue
        vals: list[Any] = v if isinstance(v, list) else [v]
        if all(isinstance(x, bool) for x in vals):
            add(_words(k.replace("_", " ")))
        else:
            for x in vals:
                add(_words(str(x)) | (_words(k.replace("_", " ")) if re.fullmatch(r"[\d.,\s]+", str(x)) else set()))
    for f in (p.brand, p.category):
        if f:
            add(_words(f))
    for s in re.split(r"(?<=[.!?。！？])\s*", p.description or ""):
        if s.strip():
            add(_words(s))
    return out


def facts_covered(texts: Sequence[str], p: Product) -> tuple[int, int]:
    """(facts the copy states, facts the product has): a fact counts when most of its words are in the copy
    (a numeric value counts when the number is there)."""
    said = _words(" ".join(as_texts(texts)))
    fs = facts(p)
    hit = 0
    for f in fs:
        nums = {w for w in f if re.fullmatch(r"[\d.]+", w)}
        if (nums and nums <= said) or (not nums and len(f & said) >= max(1, len(f) // 2)):
            hit += 1
    return hit, len(fs)


def check_grounding(texts: Sequence[str], p: Product) -> CheckResult:
    """Fails copy that states no fact of the product at all, when the product has facts to state."""
    hit, total = facts_covered(texts, p)
    ok = hit > 0 or total == 0
    return CheckResult("grounding", ok, [] if ok else ["states no fact of the product"])
