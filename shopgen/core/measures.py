"""Measures (pure): what a unit measures and how to convert it, for answering shoppers' comparisons
("Will it fit under a 2.3 m ceiling?" against a 221 cm height). A fact's unit comes from its
attribute name's suffix (weight_g, capacity_l, temperature_rating_c) or from a unit name that is the
whole key (lumens, wattage); a question's figures from the same unit words search reads
(shopgen.core.units), plus temperatures, times and money."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shopgen.core.units import DEFAULT_UNITS, NUMBER, normalise, number_value

# canonical unit -> (dimension, factor to the dimension's base unit). Temperatures are affine (below).
UNITS: dict[str, tuple[str, float]] = {
    "mm": ("length", 0.1), "cm": ("length", 1.0), "meter": ("length", 100.0), "km": ("length", 100000.0),
    "inch": ("length", 2.54), "feet": ("length", 30.48), "yard": ("length", 91.44),
    "g": ("weight", 1.0), "kg": ("weight", 1000.0), "oz": ("weight", 28.349523125), "lb": ("weight", 453.59237),
    "ml": ("capacity", 1.0), "liter": ("capacity", 1000.0), "fl oz": ("capacity", 29.5735295625),
    "gallon": ("capacity", 3785.411784),
    "celsius": ("temperature", 1.0), "fahrenheit": ("temperature", 1.0),
    "hours": ("time", 1.0), "minutes": ("time", 1 / 60), "days": ("time", 24.0), "years": ("time", 24.0 * 365),
    "watt": ("power", 1.0), "mah": ("charge", 1.0), "lumens": ("brightness", 1.0), "kelvin": ("colour_temp", 1.0),
    "usd": ("money", 1.0),
}
# How a fact's unit is written in an answer (the shop's own notation).
SHOWN = {"meter": "m", "inch": "in", "feet": "ft", "liter": "L", "celsius": "°C", "fahrenheit": "°F",
         "hours": "h", "minutes": "minutes", "watt": "W", "mah": "mAh", "kelvin": "K", "usd": "USD",
         "gallon": "gal", "days": "days", "years": "years"}
# Attribute-name suffixes (and whole names) that carry a unit.
KEY_UNITS = {"mm": "mm", "cm": "cm", "m": "meter", "km": "km", "in": "inch", "inches": "inch", "ft": "feet",
             "g": "g", "kg": "kg", "oz": "oz", "lb": "lb", "lbs": "lb", "l": "liter", "ml": "ml", "c": "celsius",
             "f": "fahrenheit", "h": "hours", "hrs": "hours", "hours": "hours", "min": "minutes", "w": "watt",
             "watts": "watt", "wattage": "watt", "mah": "mah", "lumens": "lumens", "lm": "lumens", "k": "kelvin",
             "days": "days", "years": "years"}
# Question words for units search does not know (temperatures, times, money); longer aliases first.
EXTRA_UNITS: dict[str, list[str]] = {
    "celsius": ["degrees celsius", "degrees c", "deg c", "celsius", "°c", "ºc", "c"],
    "fahrenheit": ["degrees fahrenheit", "degrees f", "deg f", "fahrenheit", "°f", "ºf", "f"],
    "hours": ["hours", "hour", "hrs", "hr", "h"],
    "minutes": ["minutes", "minute", "mins", "min"],
    "days": ["days", "day"],
    "years": ["years", "year", "yrs"],
    "usd": ["us dollars", "dollars", "dollar", "usd", "bucks"],
    "g": ["grams", "gram", "g"],
    "km": ["kilometers", "kilometres", "km"],
    "yard": ["yards", "yard", "yd"],
    "lumens": ["lumens", "lumen", "lm"],
}
QUESTION_UNITS: dict[str, list[str]] = {**{k: v for k, v in DEFAULT_UNITS.items() if k in UNITS}, **EXTRA_UNITS}


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str  # a UNITS key

    @property
    def dim(self) -> str:
        return UNITS[self.unit][0]

    def shown(self) -> str:
        return show(self.value, self.unit)


def show(value: float, unit: str) -> str:
    """`221 cm`, `10 °C`, `65 L`: the number as the shop writes it (no trailing .0)."""
    u = SHOWN.get(unit, unit)
    return f"{value:g}{u}" if u in ("°C", "°F") else f"{value:g} {u}"


def key_unit(key: str) -> str | None:
    """The unit an attribute name carries: weight_g -> g, temperature_rating_c -> celsius, lumens -> lumens."""
    k = key.lower()
    if k in KEY_UNITS and len(k) > 2:
        return KEY_UNITS[k]
    tail = k.rsplit("_", 1)[-1] if "_" in k else None
    return KEY_UNITS.get(tail) if tail else None


def convert(value: float, unit: str, to: str) -> float | None:
    """value in `unit` expressed in `to`; None across dimensions."""
    if unit == to:
        return value
    if unit not in UNITS or to not in UNITS or UNITS[unit][0] != UNITS[to][0]:
        return None
    if UNITS[unit][0] == "temperature":
        return (value - 32) * 5 / 9 if unit == "fahrenheit" else value * 9 / 5 + 32
    return value * UNITS[unit][1] / UNITS[to][1]


_MONEY = re.compile(r"(?:\$|usd\s*|us\$)\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)", re.I | re.ASCII)
# 6'2" and 5 ft 10: feet and inches together.
_FEET_INCHES = re.compile(r"(\d+)\s*(?:'|ft|feet|foot)\s*(\d+)\s*(?:\"|in|inches)?(?![a-z0-9])", re.I)


_ONES = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen twenty".split()
NUMBER_WORDS = {**{w: i + 1 for i, w in enumerate(_ONES)},
                **{w: 10 * (i + 3) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split())}}
_HUNDRED = re.compile(r"\b(?:a|one|(" + "|".join(_ONES[1:9]) + r"))\s+(hundred|thousand)\b", re.I)
_WORD = re.compile(r"\b(" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")\b(?=\s+(?!and\b)[a-z°$])", re.I)


def spelled(text: str) -> str:
    """Numbers written as words, as digits: `a hundred bucks` -> `100 bucks`, `two litres` -> `2 litres`."""
    def hundreds(m: re.Match[str]) -> str:
        n = NUMBER_WORDS[m.group(1).lower()] if m.group(1) else 1
        return str(n * (100 if m.group(2).lower() == "hundred" else 1000))

    return _WORD.sub(lambda m: str(NUMBER_WORDS[m.group(1).lower()]), _HUNDRED.sub(hundreds, text))


def question_quantities(text: str) -> list[Quantity]:
    """Every figure with a unit a question states, in the order written: `$40`, `2.3 m`, `-5 °C`, `6 ft 2`,
    `a hundred bucks`."""
    text = spelled(text)
    out: list[tuple[int, Quantity]] = []
    for m in _MONEY.finditer(text):
        if (v := number_value(m.group(1))) is not None:
            out.append((m.start(), Quantity(v, "usd")))
    for m in _FEET_INCHES.finditer(text):
        out.append((m.start(), Quantity(int(m.group(1)) * 12 + int(m.group(2)), "inch")))
    text = _FEET_INCHES.sub(lambda m: " " * len(m.group(0)), _MONEY.sub(lambda m: " " * len(m.group(0)), text))
    # A question's `2.3 m` or `5 l` is a unit (a title's `size 10 M` is why search reads them only glued).
    text = re.sub(r"(\d)\s+([mMlLfFcC])(?![\w'])", r"\1\2", text)
    norm = normalise(text, QUESTION_UNITS)
    alts = "|".join(re.escape(c) for c in sorted(QUESTION_UNITS, key=len, reverse=True))
    for m in re.finditer(rf"((?<![\d.\w])-\s*|\bminus\s+)?(?<![\d.,])({NUMBER.pattern})\s+({alts})\b", norm,
                         re.I | re.ASCII):
        v = number_value(m.group(2))
        if v is not None and abs(v) < 1e9:
            out.append((m.start(), Quantity(-v if m.group(1) else v, m.group(3).lower())))
    return [q for _, q in sorted(out, key=lambda x: x[0])]
