"""Numbers and units (pure): `1/2 in.`, `1/2-inch` and `1/2"` are one thing to a shopper, so the index's
text analyzer rewrites every unit that follows a number to one canonical word, and `x` between two
numbers to a separate token. The same rules run here (Python) for the ranker's features, so the
index and the features agree. A shop's units come from `search.units` ({canonical: [aliases]});
its synonyms from `search.synonyms` (Solr rules, e.g. "tee, t-shirt" or "hoody => hoodie")."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# Longer aliases first within a unit; units whose aliases contain another's (cubic feet, fl oz) first.
DEFAULT_UNITS: dict[str, list[str]] = {
    "cubic feet": ["cu. ft.", "cu.ft.", "cu ft", "cubic foot", "cubic feet", "cu. ft"],
    "fl oz": ["fl. oz.", "fl.oz.", "fl oz", "fluid ounces", "fluid ounce"],
    "inch": ["inches", "inch", "in.", "in", '"', "''", "\u201d"],
    "feet": ["feet", "foot", "ft.", "ft", "'", "\u2019"],
    "watt": ["watts", "watt", "w"],
    "volt": ["volts", "volt", "v"],
    "amp": ["amperes", "ampere", "amps", "amp"],
    "mm": ["millimeters", "millimetres", "millimeter", "millimetre", "mm"],
    "cm": ["centimeters", "centimetres", "centimeter", "centimetre", "cm"],
    "meter": ["meters", "metres", "meter", "metre", "m"],
    "kg": ["kilograms", "kilogram", "kilos", "kilo", "kg"],
    "lb": ["pounds", "pound", "lbs.", "lbs", "lb."],
    "oz": ["ounces", "ounce", "oz.", "oz"],
    "ml": ["milliliters", "millilitres", "milliliter", "millilitre", "ml"],
    "liter": ["liters", "litres", "liter", "litre", "l"],
    "gallon": ["gallons", "gallon", "gal."],
    "gb": ["gigabytes", "gigabyte", "gb"],
    "tb": ["terabytes", "terabyte", "tb"],
    "mah": ["mah"],
}
_META = set("\\.+*?()|[]{}^$#&-~")
# `10x20`, `10 X 20`, `10 × 20`, `2"x4"`: the x becomes its own token (it is glued to the numbers otherwise).
DIMENSIONS = ("(?i)(\\d['\"\u2019\u201d]{0,2})\\s*[x\u00d7*]\\s*(?=\\d)", "$1 x ")
# Aliases read only when glued to the number (`60W`, `2in`, `10M`): with a space they are words or sizes
# (`size 10 M`, `3 in 1`, `2 v-neck`). Any one-character alias is glued too.
GLUED = {"in", "w", "v", "m", "l"}
# 1,299.99 (thousands separated), 12.5, 12,5, 1/2.
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?(?:/\d+)?", re.ASCII)


def _escape(alias: str) -> str:
    """A regex for the alias that reads the same in Java (Elasticsearch) and Python (with re.ASCII): only
    meta characters are escaped, and a space matches any run of spaces (or none: `cu.ft.`)."""
    out = []
    for ch in alias:
        if ch == " ":
            out.append(r"\s*")
        elif ch in _META:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def validate_units(units: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Canonical names are lower-case words; aliases are non-empty and have no line breaks."""
    out: dict[str, list[str]] = {}
    for canon, aliases in units.items():
        if not re.fullmatch(r"[a-z][a-z0-9 ]{0,30}", canon or ""):
            raise ValueError(f"search.units: {canon!r} must be lower-case letters, digits and spaces (a unit's "
                             "canonical word)")
        clean = [a.strip() for a in aliases if a and a.strip()]
        if not clean or any("\n" in a or len(a) > 30 for a in clean):
            raise ValueError(f"search.units.{canon}: give 1 or more aliases of at most 30 characters, one line each")
        out[canon] = clean
    return out


def unit_rules(units: Mapping[str, Sequence[str]] = DEFAULT_UNITS) -> list[tuple[str, str]]:
    """(pattern, replacement) in Elasticsearch's pattern_replace form: a unit right after a number
    (with or without a space or one hyphen; the GLUED ones only right after it) becomes ` canonical `.
    A letter or digit right after the alias means it was not a unit (`6 mo` is left alone)."""
    rules = [DIMENSIONS]
    for canon, aliases in units.items():
        spaced = [a for a in aliases if len(a) > 1 and a.lower() not in GLUED]
        glued = [a for a in aliases if a not in spaced]
        for sep, group in (("\\s*(?:-\\s*)?", spaced), ("", glued)):
            if group:
                alts = "|".join(_escape(a) for a in sorted(group, key=len, reverse=True))
                rules.append((f"(?i)(\\d){sep}(?:{alts})(?![a-z0-9])", f"$1 {canon} "))
    return rules


def analysis(units: Mapping[str, Sequence[str]] = DEFAULT_UNITS, synonyms: Sequence[str] = (),
             name: str = "shopgen_text") -> dict[str, Any]:
    """Index settings `analysis`: Elasticsearch's english analyzer rebuilt (same filters, same order)
    with the unit char filters in front and the shop's synonyms after lower-casing."""
    chars = {f"{name}_unit_{i}": {"type": "pattern_replace", "pattern": p, "replacement": r}
             for i, (p, r) in enumerate(unit_rules(units))}
    filters: dict[str, Any] = {
        f"{name}_possessive": {"type": "stemmer", "language": "possessive_english"},
        f"{name}_stop": {"type": "stop", "stopwords": "_english_"},
        f"{name}_stemmer": {"type": "stemmer", "language": "english"},
    }
    chain = [f"{name}_possessive", "lowercase"]
    if synonyms:
        filters[f"{name}_synonyms"] = {"type": "synonym", "synonyms": list(synonyms), "lenient": True}
        chain.append(f"{name}_synonyms")
    chain += [f"{name}_stop", f"{name}_stemmer"]
    return {"char_filter": chars, "filter": filters,
            "analyzer": {name: {"type": "custom", "char_filter": list(chars), "tokenizer": "standard",
                                "filter": chain}}}


def _compiled(units: Mapping[str, Sequence[str]]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(p, re.ASCII), re.sub(r"\$(\d)", r"\\\1", r)) for p, r in unit_rules(units)]


_DEFAULT = _compiled(DEFAULT_UNITS)


def normalise(text: str, units: Mapping[str, Sequence[str]] | None = None) -> str:
    """The char filters' rewrite, in Python: `1/2-in. x 10ft` -> `1/2 inch  x 10 feet `."""
    for pat, rep in (_DEFAULT if units is None else _compiled(units)):
        text = pat.sub(rep, text)
    return text


def number_value(raw: str) -> float | None:
    """`1,299.99` -> 1299.99, `12,5` -> 12.5, `1/2` -> 0.5."""
    raw = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw) else raw.replace(",", ".")
    try:
        if "/" in raw:
            a, b = raw.split("/")
            return float(a) / float(b) if float(b) else None
        return float(raw)
    except ValueError:
        return None


def quantities(text: str, units: Mapping[str, Sequence[str]] | None = None) -> set[tuple[float, str]]:
    """Every (number, canonical unit) the text states, fractions as numbers: `1/2" pipe` ->
    {(0.5, "inch")}. A mixed number (`1-1/2 in.`) counts as its parts' sum."""
    canon = list((units or DEFAULT_UNITS).keys())
    norm = normalise(text, units)
    alts = "|".join(re.escape(c) for c in sorted(canon, key=len, reverse=True))
    out: set[tuple[float, str]] = set()
    for m in re.finditer(rf"(?:(\d+)[\s-]+)?({NUMBER.pattern})\s+({alts})\b", norm, flags=re.I | re.ASCII):
        whole, value = m.group(1), number_value(m.group(2))
        if value is None:
            continue
        if whole and "/" in m.group(2):
            value += float(whole)
        out.add((round(value, 4), m.group(3).lower()))
    return out


def numbers(text: str) -> set[float]:
    """Every bare number the text states (with or without a unit)."""
    return {v for v in (number_value(m) for m in NUMBER.findall(text)) if v is not None}


def quantity_tokens(text: str, units: Mapping[str, Sequence[str]] | None = None) -> tuple[str, str]:
    """(amounts, units) as space-separated tokens: `1/2" x 10 ft.` -> ("0.5_inch 10_feet", "inch feet").
    A canonical unit of two words is joined by `_` (`cubic_feet`)."""
    found = sorted(quantities(text, units))
    amounts = " ".join(f"{v:g}_{u.replace(' ', '_')}" for v, u in found)
    names = " ".join(dict.fromkeys(u.replace(" ", "_") for _, u in found))
    return amounts, names
