"""What an answer may cite (pure): a product's facts, one per field (`attributes.weight_g`, `price`,
`description`), with the words that name each and its number and unit; and the shop's policies, one
fact per Markdown section (`policies#returns`)."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shopgen.checks.base import STOPWORDS, is_falsy, sentences, stem
from shopgen.core.measures import KEY_UNITS, SHOWN, UNITS, convert, key_unit, show
from shopgen.core.records import Product

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_TRUE = {"true", "yes", "y"}
_FALSE = {"false", "no", "n"}

# The words shoppers use for a fact, by the words of its name (and by what its unit measures). A shop
# whose attribute names are other words adds its own with `answers.cues` ({name word: [question words]}).
DEFAULT_CUES: dict[str, list[str]] = {
    "weight": ["weigh", "heavy", "light", "lighter", "heavier", "weight"],
    "capacity": ["hold", "capacity", "volume", "litre", "liter", "big", "fit", "store", "many"],
    "persons": ["people", "person", "sleep", "many"],
    "temperature": ["warm", "cold", "temperature", "degree", "night", "winter", "rated", "rating"],
    "color": ["colour", "color", "shade"],
    "material": ["made", "material", "fabric", "built"],
    "price": ["cost", "price", "expensive", "cheap", "pay", "dollar", "budget", "afford"],
    "lumens": ["bright", "brightness", "lumen", "light", "output"],
    "battery": ["battery", "charge", "mah", "rechargeable", "power"],
    "beam": ["reach", "far", "throw", "beam"],
    "distance": ["reach", "far", "distance"],
    "thickness": ["thick", "thin", "cushion", "thickness"],
    "dimensions": ["size", "big", "long", "wide", "length", "width", "dimension", "measure", "fit"],
    "length": ["long", "length", "tall"],
    "height": ["tall", "high", "height"],
    "width": ["wide", "width"],
    "playtime": ["play", "last", "battery", "life"],
    "wattage": ["watt", "power"],
    "output": ["watt", "power", "loud"],
    "waterproof": ["rain", "water", "wet", "waterproof"],
    "brand": ["maker", "manufacturer", "brand"],
    "oven": ["oven"],
    "induction": ["induction", "hob", "cooktop", "stove"],
    "dishwasher": ["dishwasher"],
    "insulated": ["insulated", "hot", "cold", "warm"],
    "drop": ["drop"],
    "hardness": ["hard", "hardness", "hrc"],
    "blade": ["blade"],
    "gender": ["men", "women", "unisex", "gender"],
    "size": ["size", "fit"],
    "zipper": ["zip", "zipper"],
    "fill": ["fill", "insulation", "filled", "down", "synthetic"],
    "season": ["season", "winter", "summer"],
    "breathability": ["breathable", "breathability"],
}
# What a dimension's facts answer (a key with a unit suffix needs no cue of its own).
DIM_CUES: dict[str, list[str]] = {
    "length": ["long", "length", "measure"],
    "weight": ["weigh", "heavy", "light", "weight"],
    "capacity": ["hold", "capacity", "volume", "big", "fit"],
    "temperature": ["temperature", "degree", "warm", "hot", "cold"],
    "time": ["last", "long", "hour", "time", "duration"],
    "power": ["watt", "power"],
    "charge": ["battery", "charge"],
    "brightness": ["bright", "brightness"],
    "money": ["cost", "price", "much"],
}


@dataclass(frozen=True)
class Fact:
    field: str  # attributes.weight_g | price | title | brand | category | description | policies#returns
    label: str  # how an answer names it: "weight", "capacity persons"
    value: str  # as an answer shows it: "2390 g", "dune", "Black, Gray, Orange"
    words: frozenset[str]  # stems of the name and its cues (the dimension's included)
    value_words: frozenset[str]  # stems of the value
    numbers: tuple[float, ...] = ()
    unit: str | None = None  # a measures.UNITS key
    flag: bool | None = None  # a yes/no attribute's value
    text: str = ""  # the whole fact as evidence (description sentence, policy section)
    sentences: tuple[str, ...] = field(default=())
    own: frozenset[str] = frozenset()  # stems of the name and the name's own cues (not the dimension's)

    @property
    def dim(self) -> str | None:
        return UNITS[self.unit][0] if self.unit in UNITS else None


def stems(text: str) -> set[str]:
    """Content-word stems of a text, folded to ASCII where it has an ASCII form."""
    t = unicodedata.normalize("NFKC", text).lower().replace("colour", "color").replace("’", "'")
    return {stem(w) for w in WORD.findall(t) if w not in STOPWORDS}


def _cue_words(name_words: Iterable[str], dim: str | None, cues: dict[str, list[str]]) -> set[str]:
    out = _own_words(name_words, cues)
    return out | ({stem(c) for c in DIM_CUES.get(dim, ())} if dim else set())


def _own_words(name_words: Iterable[str], cues: dict[str, list[str]]) -> set[str]:
    out = set(name_words)
    by_stem = {stem(k): v for k, v in cues.items()}
    for w in list(out):
        out |= {stem(c) for c in by_stem.get(w, ())}
    return out


def _flag(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    return True if s in _TRUE else False if s in _FALSE else None


def _shown(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else f"{v:g}" if isinstance(v, float) else str(v)


# A minus sign only where no digit is right before it: "30-35" is a range, not 30 and -35.
NUM = re.compile(r"(?<![\d.])-?\d+(?:\.\d+)?|(?<=\d)-?\d+(?:\.\d+)?")


def attribute_fact(key: str, v: Any, cues: dict[str, list[str]], category: str | None = None) -> Fact:
    """One attribute as a fact. A name that repeats the product's category (`features_bags` on a bag)
    is shown without it: "Features: Wheeled, Lockable."."""
    unit = key_unit(key)
    parts = [w for w in key.lower().split("_") if w]
    kind = {stem(w) for w in WORD.findall((category or "").lower())}
    if len(parts) > 1 and stem(parts[-1]) in kind:
        parts = parts[:-1]
    if unit and parts and parts[-1] in KEY_UNITS and len(parts) > 1:
        parts = parts[:-1]  # weight_g -> weight
    elif unit and len(parts) == 1 and parts[0] in KEY_UNITS:  # lumens: 1200 -> brightness
        parts = [DIM_LABELS.get(UNITS[unit][0], parts[0])]
    label = " ".join(parts) or key
    v = html.unescape(v) if isinstance(v, str) else [html.unescape(x) if isinstance(x, str) else x for x in v] \
        if isinstance(v, list) else v
    flag = _flag(v) if not isinstance(v, (int, float)) or isinstance(v, bool) else None
    nums = tuple(abs(float(x)) if i else float(x) for i, x in enumerate(NUM.findall(_shown(v)))) \
        if not isinstance(v, bool) else ()
    if len(nums) > 1 and not re.search(r"\d\s*[x×X*]\s*\d", _shown(v)):
        nums = ()  # a range ("30-35") or a list of figures: stated as written, never compared
    if unit and nums:
        shown = " x ".join(show(n, unit) for n in nums) if len(nums) > 1 else show(nums[0], unit)
    else:
        shown = f"{_shown(v)} {SHOWN.get(unit, unit)}" if unit and NUM.search(_shown(v)) else _shown(v)
    name = {stem(w) for w in parts}
    dim = UNITS[unit][0] if unit in UNITS else None
    return Fact(f"attributes.{key}", label, shown, frozenset(_cue_words(name, dim, cues)),
                frozenset(stems(_shown(v))) if flag is None else frozenset(), nums, unit, flag, f"{label} {shown}",
                own=frozenset(_own_words(name, cues)))


def product_facts(p: Product, cues: dict[str, list[str]] | None = None) -> list[Fact]:
    """One fact per field the seller gave, attribute by attribute; the description as one fact whose
    sentences are its evidence."""
    cues = DEFAULT_CUES if cues is None else cues
    out = []
    for k, v in p.attributes.items():
        if v is None or v == "" or v == []:
            continue
        out.append(attribute_fact(k, v, cues, p.category))
    if p.price is not None:
        cur = (p.currency or "").upper()
        unit = "usd" if cur in ("USD", "") else None
        out.append(Fact("price", "price", f"{p.price:.2f} {cur}".strip(), frozenset(_cue_words({"price"}, "money", cues)),
                        frozenset(), (p.price,), unit, None, f"price {p.price:.2f} {cur}",
                        own=frozenset(_own_words({"price"}, cues))))
    for f in ("brand", "category"):
        if getattr(p, f):
            val = getattr(p, f)
            out.append(Fact(f, f, val, frozenset(_cue_words({f}, None, cues)), frozenset(stems(val)), (), None, None,
                            f"{f} {val}", own=frozenset(_own_words({f}, cues))))
    if p.description:
        sents = tuple(html.unescape(s) for s in sentences(p.description) if len(s) <= 400)
        out.append(Fact("description", "description", p.description, frozenset(), frozenset(stems(p.description)),
                        tuple(float(x) for x in NUM.findall(p.description)), None, None, p.description, sents))
        # A figure the description repeats from an attribute ("It weighs 1280 g.") is that attribute.
        known = {(f.dim, round(convert(n, f.unit, DIM_BASE[f.dim]) or 0, 3)) for f in out if f.dim in DIM_BASE
                 for n in f.numbers}
        out += [f for s in sents for f in sentence_measures(s, cues)
                if (f.dim, round(convert(f.numbers[0], f.unit, DIM_BASE.get(f.dim, f.unit)) or 0, 3)) not in known]
    return out


DIM_BASE = {"length": "cm", "weight": "g", "capacity": "ml", "temperature": "celsius", "time": "hours", "power": "watt",
            "charge": "mah", "brightness": "lumens", "money": "usd", "colour_temp": "kelvin"}


DIM_LABELS = {"length": "size", "weight": "weight", "capacity": "capacity", "temperature": "temperature",
              "time": "time", "power": "power", "charge": "battery", "brightness": "brightness", "money": "price"}


def sentence_measures(sentence: str, cues: dict[str, list[str]]) -> list[Fact]:
    """A figure with a unit in the seller's description ("29 liters", "water resistant to 100 m",
    "15 lb") as a measured fact of the description: the sentence's words name it, so a comparison or
    a "how heavy" finds it; what an answer quotes is the sentence itself."""
    from shopgen.core.measures import question_quantities

    out = []
    words = stems(sentence)
    for q in question_quantities(sentence):
        if q.unit == "usd":
            continue
        label = DIM_LABELS.get(q.dim, q.dim)
        # A length the seller wrote down is a size ("6'' wide by 12'' long", "W 22" x H 17" x D 10"").
        size = {"big", "size", "dimension", "measurement"} if q.dim == "length" else set()
        out.append(Fact("description", label, q.shown(), frozenset(_cue_words(words | size, q.dim, cues)),
                        frozenset(words),
                        (q.value,), q.unit, None, sentence, (sentence,), own=frozenset(words)))
    return out


def negative(fact: Fact) -> bool:
    """A fact whose value says no ({"waterproof": false}, "none")."""
    return fact.flag is False or (fact.flag is None and not fact.numbers and is_falsy(fact.value))


def parse_policies(markdown: str) -> list[Fact]:
    """One fact per `## Section` of the shop's policies file: field `policies#<slug>`, its heading's
    words as its name, its sentences as evidence. Text before the first section is not citable."""
    out = []
    for m in re.finditer(r"(?m)^#{2,3}\s+(.+?)\s*#*\s*$\n(.*?)(?=^#{1,3}\s|\Z)", markdown, re.S):
        heading, body = m.group(1).strip(), " ".join(m.group(2).split())
        if not body:
            continue
        slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")[:40] or "policy"
        name = stems(heading) | POLICY_CUES.get(slug, set())
        # Only the policy's own words name it; "how long" or "cost" alone does not ask about shipping.
        out.append(Fact(f"policies#{slug}", heading.lower(), body, frozenset(name), frozenset(stems(body)),
                        tuple(float(x) for x in NUM.findall(body)), None, None, body, tuple(sentences(body)),
                        own=frozenset(name - GENERIC_CUES)))
    return out


GENERIC_CUES = {stem(w) for w in ("duration", "price", "cost", "cover", "covered", "back", "send", "money", "dry")}
POLICY_CUES = {k: {stem(w) for w in v} for k, v in {
    "shipping": ["duration", "price", "cost", "ship", "shipping", "delivery", "deliver", "arrive", "postage", "express", "send"],
    "returns": ["duration", "price", "cost", "return", "refund", "exchange", "money", "back", "send"],
    "warranty": ["duration", "cover", "covered", "warranty", "guarantee", "defect", "broken", "faulty"],
    "care": ["care", "clean", "label"],
    "payment": ["pay", "payment", "card", "visa", "paypal", "mastercard", "tax"],
}.items()}
