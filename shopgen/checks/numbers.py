"""number_roles: a number in the copy keeps the unit and the role of the input fact it comes from.
A 15000 mm waterproof rating is not "15000% recycled", a 20000 breathability is not a "20000
capacity", a 102 cm height is not "102 square feet" (faithfulness checks that the number occurs at
all; this checks that it is used as what it is)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shopgen.checks.base import CheckResult, as_texts, norm
from shopgen.checks.faithfulness import UNITS
from shopgen.core.records import Product

# Units beyond faithfulness.UNITS that change what a number means: shares, areas and volumes.
UNIT_CLASSES: dict[str, str] = {
    **UNITS, "%": "pct", "percent": "pct", "per cent": "pct", "pct": "pct", "百分之": "pct",
    "square foot": "area", "square feet": "area", "sq ft": "area", "sq. ft.": "area", "sqft": "area",
    "square meter": "area", "square meters": "area", "square metre": "area", "square metres": "area", "m²": "area",
    "m2": "area", "ft²": "area", "sq m": "area", "sqm": "area", "square inch": "area", "square inches": "area",
    "平方米": "area", "平米": "area", "平方": "area",
    "cubic foot": "volume", "cubic feet": "volume", "cu ft": "volume", "cu. ft.": "volume", "m³": "volume",
    "立方米": "volume",
}
KEY_UNITS = {"c": "°c", "f": "°f", "pct": "pct", "percent": "pct", "m2": "area", "sqm": "area", "sqft": "area"}
_UNIT_ALT = "|".join(sorted((re.escape(u) for u in UNIT_CLASSES), key=len, reverse=True))
# A number, then (after a space, a hyphen or nothing) a unit; the unit must end at a word boundary
# unless it is a CJK or symbol unit ('15000%', '500毫升').
_NUM_UNIT = re.compile(rf"(?<![\w.])(\d+(?:[.,]\d+)*)(?:\s*-?\s*({_UNIT_ALT})(?![a-z]))?", re.I)

# What a unit says a number measures; lengths are one class (a width may be given as a length).
UNIT_ROLE = {"mm": "length", "cm": "length", "m": "length", "km": "length", "in": "length", "ft": "length",
             "g": "weight", "kg": "weight", "oz": "weight", "lb": "weight", "l": "capacity", "ml": "capacity",
             "w": "power", "v": "voltage", "mah": "charge", "wh": "charge", "lm": "brightness", "°c": "temperature",
             "°f": "temperature", "pct": "share", "area": "area", "volume": "capacity", "hz": "frequency",
             "db": "loudness"}
# Role nouns a copy may put next to a number, and the attribute words that back each role.
ROLE_WORDS: dict[str, tuple[str, ...]] = {
    "capacity": ("capacity", "volume", "liter", "litre", "holds", "容量", "容积"),
    "weight": ("weight", "weighs", "weighing", "heavy", "重量", "重"),
    "length": ("height", "tall", "high", "width", "wide", "depth", "deep", "length", "long", "diameter", "size",
               "dimension", "dimensions", "thick", "thickness", "高", "宽", "长", "深", "尺寸", "厚"),
    "area": ("area", "square", "面积"),
    "share": ("percent", "percentage", "含量"),
    "temperature": ("temperature", "degrees", "comfort", "limit", "温度"),
    "power": ("watt", "watts", "power", "功率"),
    "seats": ("seat", "seats", "seater", "seating", "座"),
    "persons": ("person", "persons", "people", "sleeps", "人"),
    "breathability": ("breathability", "breathable", "透气"),
    "waterproof": ("waterproof", "hydrostatic", "防水"),
}
_ROLE_OF_WORD = {w: r for r, ws in ROLE_WORDS.items() for w in ws}


@dataclass(frozen=True)
class Occurrence:
    value: str
    unit: str | None  # a UNIT_CLASSES value
    roles: frozenset[str]  # roles from the words around it (attribute key or nearby text)


def _value(raw: str) -> str | None:
    try:
        return f"{float(raw.replace(',', '')):g}"
    except ValueError:
        return None


def _roles(words: str) -> set[str]:
    out = set()
    for w in re.findall(r"[a-z]+|[\u4e00-\u9fff]", norm(words)):
        if w in _ROLE_OF_WORD:
            out.add(_ROLE_OF_WORD[w])
    for zh, r in ((z, r) for r, ws in ROLE_WORDS.items() for z in ws if not z.isascii() and len(z) > 1):
        if zh in words:
            out.add(r)
    return out


def occurrences(text: str, key: str = "") -> list[Occurrence]:
    """Every number of `text` with its unit and the roles of the words around it (and of `key`,
    the attribute's name: 'waterproof_rating_mm' gives the unit mm and the role waterproof)."""
    key_words = key.replace("_", " ")
    # the first unit among the key's later words: weight_g, breathability_g_m2_24h, temperature_rating_c
    parts = re.split(r"[_\s]+", key.lower())[1:]
    key_unit = next((KEY_UNITS.get(w) or UNIT_CLASSES.get(w) for w in parts if w in KEY_UNITS or w in UNIT_CLASSES), None)
    out = []
    for m in _NUM_UNIT.finditer(text):
        v = _value(m.group(1))
        if v is None:
            continue
        unit = UNIT_CLASSES.get((m.group(2) or "").lower()) or key_unit
        before = " ".join(re.findall(r"\S+", text[max(0, m.start() - 30):m.start()])[-3:])
        after = " ".join(re.findall(r"\S+", text[m.end():m.end() + 30])[:2])
        roles = _roles(key_words) | (_roles(f"{before} {after}") if not key else set())
        if unit in UNIT_ROLE:
            roles.add(UNIT_ROLE[unit])
        out.append(Occurrence(v, unit, frozenset(roles)))
    return out


def source_occurrences(p: Product) -> list[Occurrence]:
    out = []
    for text in (p.title, p.description or ""):
        out += occurrences(text)
    for k, v in p.attributes.items():
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, bool):
                continue
            out += occurrences(str(x), k)
    return out


def _output_roles(text: str, m: re.Match[str]) -> set[str]:
    """Role nouns right after the number (and its unit): '20000 capacity', '102-square-foot area'."""
    after = re.findall(r"[a-z]+|[\u4e00-\u9fff]{1,2}", norm(text[m.end():m.end() + 24]))[:1]
    before = re.findall(r"[a-z]+", norm(text[max(0, m.start() - 16):m.start()]))[-1:]
    roles = {_ROLE_OF_WORD[w] for w in after if w in _ROLE_OF_WORD}
    # 'a capacity of 20' / 'weighs 980': the role word just before
    roles |= {_ROLE_OF_WORD[w] for w in before if w in _ROLE_OF_WORD and w not in ("long", "high", "wide", "deep")}
    return roles


def check_number_roles(texts: Sequence[str], p: Product) -> CheckResult:
    src = source_occurrences(p)
    bad: list[str] = []
    for text in as_texts(texts):
        text = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", text)  # '102-square-foot'
        for m in _NUM_UNIT.finditer(text):
            v = _value(m.group(1))
            cands = [o for o in src if o.value == v]
            if v is None or not cands:
                continue  # an absent number is faithfulness's finding
            unit = UNIT_CLASSES.get((m.group(2) or "").lower())
            shown = m.group(0).strip()
            if unit and not any(o.unit == unit or (o.unit is None and unit != "pct" and unit not in ("area", "volume")
                                                   and UNIT_ROLE.get(unit) in o.roles) for o in cands):
                given = next((o for o in cands if o.unit), None)
                was = f"the input gives {v} {given.unit}" if given else f"the input gives {v} without that unit"
                bad.append(f"number {shown!r} in the wrong unit ({was})")
                continue
            said = _output_roles(text, m) - ({UNIT_ROLE[unit]} if unit in UNIT_ROLE else set())
            if unit == "pct":
                said.discard("share")
            for role in said:
                known = set().union(*(o.roles for o in cands))
                if known and role not in known and not (role == "length" and known & {"length", "area"}):
                    bad.append(f"number {shown!r} as {role} (the input's {v} is {'/'.join(sorted(known))})")
    bad = list(dict.fromkeys(bad))
    return CheckResult("number_roles", not bad, bad)
