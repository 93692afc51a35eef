"""Every number and name of a text, linked to the fact it came from or marked when no fact backs it
(pure). The item page shows the marks; the queue counts the unbacked ones as the text's risk."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shopgen.checks.base import STOPWORDS
from shopgen.generate.lexicon import GLUE_EN

# Capitalised words that name nothing (a title-cased text capitalises every word).
PLAIN = frozenset(STOPWORDS) | frozenset(GLUE_EN)

_NUMBER = r"\d+(?:[.,]\d+)*"
_NAME = r"[A-Z][\w'’&-]*[A-Za-z0-9]"
TOKEN = re.compile(rf"(?P<num>{_NUMBER})|(?P<name>{_NAME})")
_SENTENCE_END = re.compile(r"[.!?:;]\s*$|^\s*$")


@dataclass(frozen=True)
class Fact:
    key: str  # e.g. attributes.weight_g, title
    label: str
    value: str


@dataclass(frozen=True)
class Mark:
    text: str
    kind: str | None = None  # None: plain text; "fact": backed by `fact`; "unbacked"
    fact: str | None = None


def product_facts(doc: dict[str, Any]) -> list[Fact]:
    """The facts a product document states, each with a key the page links to."""
    out = [Fact(k, k.replace("_", " "), str(doc[k])) for k in ("title", "brand", "category") if doc.get(k)]
    if doc.get("price") is not None:
        out.append(Fact("price", "price", f"{doc['price']} {doc.get('currency') or ''}".strip()))
    attrs = doc.get("attributes") or {}
    if isinstance(attrs, str):
        attrs = json.loads(attrs or "{}")
    for k, v in attrs.items():
        val = ", ".join(map(str, v)) if isinstance(v, list) else "yes" if v is True else "no" if v is False else str(v)
        out.append(Fact(f"attributes.{k}", str(k).replace("_", " "), val))
    if doc.get("source_description"):
        out.append(Fact("source_description", "description", str(doc["source_description"])))
    return out


def _num(s: str) -> str:
    s = s.replace(",", "")
    return s.rstrip("0").rstrip(".") if "." in s else s


def _index(facts: list[Fact]) -> tuple[dict[str, str], dict[str, str]]:
    nums: dict[str, str] = {}
    words: dict[str, str] = {}
    for f in facts:
        blob = f"{f.label} {f.value}"
        for m in re.finditer(_NUMBER, blob):
            nums.setdefault(_num(m.group()), f.key)
        for w in re.findall(r"[\w'’&-]+", blob.lower()):
            words.setdefault(w, f.key)
    return nums, words


def marks(text: str, facts: list[Fact]) -> list[Mark]:
    """The text cut into plain runs and marked numbers and names."""
    nums, words = _index(facts)
    out: list[Mark] = []
    at = 0
    for m in TOKEN.finditer(text or ""):
        tok = m.group()
        if m.group("num") is not None:
            key = nums.get(_num(tok))
        else:
            plain_word = tok[1:].islower() or len(tok) == 1
            if (plain_word and _SENTENCE_END.search(text[:m.start()])) or tok.lower() in PLAIN:
                continue  # an ordinary capitalised word at a sentence's start is not a name; TOTAL_SIZE_XS is
            key = words.get(tok.lower()) or words.get(tok.lower().rstrip("s"))
        if m.start() > at:
            out.append(Mark(text[at:m.start()]))
        out.append(Mark(tok, "fact" if key else "unbacked", key))
        at = m.end()
    if at < len(text or ""):
        out.append(Mark(text[at:]))
    return out


def unbacked(texts: list[str], facts: list[Fact]) -> list[str]:
    """The numbers and names of the texts that no fact states."""
    return [m.text for t in texts for m in marks(t, facts) if m.kind == "unbacked"]
