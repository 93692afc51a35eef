"""Writes a SYNTHETIC customer-support log for the sample catalog, by explicit rules (a seeded RNG,
``random.Random(7)``, so the same arguments give the same file). Stdlib only. zh-CN products are skipped.

Each row is {"sku": ... (absent when the question has no product page), "question", "answer", "resolved"}.
The agent answers only from the catalog's facts and the shop's policies, in one or two short sentences,
and never promises prices, stock, delivery dates or discounts, nor gives contact details or URLs.

1. facts: a question about one attribute (several phrasings per attribute, plus the price); the answer
   states the value with the unit its name gives (_g -> g, _kg -> kg, _l -> L, _ml -> ml, _mm -> mm,
   _cm -> cm, _m -> m, _c -> °C, _h -> hours, _mah -> mAh, _k -> K, _w -> W, _pct -> %, _g_m2 -> g/m²,
   _hrc -> HRC; lumens and wattage have no suffix and read "lumens" and "W").
2. yes/no: a question on a boolean attribute; "Yes, it is freestanding." / "No, ... is not included."
3. comparisons: the question gives a figure, sometimes in another unit (kg/g/lb, cm/inches, m/feet,
   mm/cm, L/ml, °C/°F, USD); the answer starts with Yes or No, worked out exactly (fractions, exact
   conversion factors) and quotes the product's own figure: "Yes. It weighs 980 g, which is under 1 kg."
   A lower temperature rating is warmer: a bag rated to 10 °C is not warm enough for 0 °C. Every answer
   is re-read by an independent checker (verify_comparison) before it is written.
4. rephrasings: a copy of a rule 1-3 or 6 question, rewritten (lowercase, no question mark, two
   adjacent letters swapped, a letter dropped, "pls"/"hi,"/"hey" prefixes); same answer.
5. across products (no sku): "Which is lighter, the <A> or the <B>?" (also warmer, holds more,
   brighter, cheaper, longer blade, longer playtime) and "How much does the <title> weigh?"/"cost?".
6. policies (no sku): answered only with what a policies.md section says, quoting its figures; each
   answer's figures are checked against the section text.
7. unanswerable: facts the catalog lacks (country of origin, stock, an attribute other products in the
   category have but this one does not) -> "The product information does not say."; discounts, contact
   details, competitors, delivery promises and how-to instructions -> "I can't help with that here.".
   A third of these are resolved=false (the agent escalated), the rest true.
8. noise: about 5% of all rows, resolved=false: an empty answer, or a fact answer about another product
   of the same category. A training recipe must filter on `resolved`.

  python3 data/make_support_log.py [--catalog data/sample_catalog.jsonl] [--policies data/policies.md]
                                   [--out data/support_log.jsonl]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 7
N_FACT, N_BOOL, N_COMPARE, N_REPHRASE, N_CROSS, N_POLICY, N_UNANSWERABLE = 480, 190, 260, 150, 130, 120, 120
NOISE_SHARE = 0.05
NOT_SAID = "The product information does not say."
CANT_HELP = "I can't help with that here."

# --------------------------------------------------------------------------------------------------
# Units and formatting
# --------------------------------------------------------------------------------------------------

SUFFIX_UNITS = [  # longest first, so _mah is not read as _h nor _mm as _m
    ("_g_m2", "g/m²"), ("_mah", "mAh"), ("_pct", "%"), ("_hrc", "HRC"), ("_kg", "kg"), ("_ml", "ml"),
    ("_mm", "mm"), ("_cm", "cm"), ("_g", "g"), ("_l", "L"), ("_m", "m"), ("_c", "°C"), ("_h", "hours"),
    ("_k", "K"), ("_w", "W"),
]
NAME_UNITS = {"lumens": "lumens", "wattage": "W"}  # attributes whose name carries no unit suffix
SINGULAR = {"hours": "hour", "lumens": "lumen", "inches": "inch", "feet": "foot", "pounds": "pound",
            "grams": "gram", "kilos": "kilo", "litres": "litre", "liters": "liter", "meters": "meter",
            "metres": "metre", "watts": "watt", "dollars": "dollar", "hrs": "hr"}


def unit_of(attr: str) -> str:
    if attr in NAME_UNITS:
        return NAME_UNITS[attr]
    for suffix, unit in SUFFIX_UNITS:
        if attr.endswith(suffix):
            return unit
    return ""


def num(x) -> str:
    """A number as a person writes it: 4.0 -> 4, 4.5 -> 4.5, Fraction(3, 2) -> 1.5."""
    if isinstance(x, bool):
        raise TypeError("bool is not a number here")
    if isinstance(x, Fraction):
        if x.denominator == 1:
            return str(x.numerator)
        s = f"{float(x):.2f}".rstrip("0").rstrip(".")
        if Fraction(s) != x:
            raise ValueError(f"{x} has no short decimal form")
        return s
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def qty(x, unit: str) -> str:
    """A figure with its unit: 980 g, 10 °C, 1 hour, 12 hours, 50%."""
    if unit == "%":
        return f"{num(x)}%"
    if unit in SINGULAR and Fraction(str(x) if isinstance(x, float) else x) == 1:
        unit = SINGULAR[unit]
    return f"{num(x)} {unit}"


def value_text(attr: str, value) -> str:
    unit = unit_of(attr)
    if isinstance(value, str):
        if unit and re.fullmatch(r"\d+-\d+", value):
            return value.replace("-", "–") + f" {unit}"  # a range: 2700–6500 K
        return f"{value} {unit}" if unit else value
    return qty(value, unit) if unit else num(value)


def article(phrase: str) -> str:
    low = phrase.lower()
    vowel = low[:1] in "aeiou" and not low.startswith(("uni", "use", "uti", "eu"))
    return f"{'an' if vowel else 'a'} {phrase}"


def price_text(p: dict) -> str:
    return f"{p['price']:.2f} {p['currency']}"


# --------------------------------------------------------------------------------------------------
# Rule 1: fact questions. attr -> (phrasings, answer template); {v} is the value with its unit.
# --------------------------------------------------------------------------------------------------

ITEM_NAMES = {"dutch oven": "Dutch oven"}
ARM_TEXT = {"architect": "an architect-style arm", "clamp-on": "a clamp-on arm", "fixed": "a fixed arm",
            "gooseneck": "a gooseneck arm", "swing arm": "a swing arm"}

FACTS: dict[str, tuple[list[str], str]] = {
    "weight_g": (["How much does it weigh?", "What's the weight?", "Is it heavy?", "How heavy is it?",
                  "What does it weigh?"], "It weighs {v}."),
    "capacity_l": (["What's the capacity?", "How many litres does it hold?", "How big is it?",
                    "What's the volume?"], "The capacity is {v}."),
    "capacity_ml": (["How much does it hold?", "What's the capacity?", "How many ml is it?",
                     "What size is the bottle?"], "The capacity is {v}."),
    "capacity_persons": (["How many people does it sleep?", "How many people fit in it?",
                          "How many person tent is this?"], "It sleeps {persons}."),
    "season_rating": (["What's the season rating?", "Is it a 3-season or 4-season tent?"], "It is a {v} tent."),
    "floor_material": (["What is the floor made of?", "What's the floor fabric?"], "The floor is made of {v}."),
    "pole_material": (["What are the poles made of?", "What kind of poles does it have?"],
                      "The poles are made of {v}."),
    "material": (["What is it made of?", "What material is it?", "What's the material?"], "It is made of {v}."),
    "upper_material": (["What is the upper made of?", "What's the upper material?"], "The upper is {v}."),
    "blade_material": (["What steel is the blade?", "What is the blade made of?"], "The blade is made of {v}."),
    "handle_material": (["What is the handle made of?", "What's the handle material?"],
                        "The handle is made of {v}."),
    "body_material": (["What is the body made of?", "What's the housing made of?"], "The body is made of {v}."),
    "shell_material": (["What is the shell made of?", "What's the outside made of?"],
                       "The shell is made of {v}."),
    "color": (["What color is it?", "What colour is it?", "Which color is this one?", "What's the color?"],
              "The color is {v}."),
    "temperature_rating_c": (["What's the temperature rating?", "How warm is it?", "What temperature is it rated to?"],
                             "The temperature rating is {v}."),
    "oven_safe_c": (["Is it oven safe?", "How hot can it go in the oven?", "What's the max oven temperature?"],
                    "It is oven safe up to {v}."),
    "fill": (["What is it filled with?", "What insulation does it use?", "What's the fill?"],
             "It is filled with {fill}."),
    "shape": (["What shape is it?", "What shape is the bag?"], "{shape}"),
    "length": (["What length is it?", "Is it the regular or long length?"], "It comes in the {v} length."),
    "zipper_side": (["Which side is the zipper on?", "Is the zip on the left or right?"],
                    "The zipper is on the {v} side."),
    "torso_size": (["What torso size is it?", "What size is it?"], "{torso}"),
    "hip_belt_pockets": (["How many hip belt pockets does it have?", "Does it have hip belt pockets?"], "{pockets}"),
    "lumens": (["How bright is it?", "How many lumens is it?", "What's the brightness?"], "It puts out {v}."),
    "beam_distance_m": (["How far does the beam reach?", "What's the beam distance?"], "The beam distance is {v}."),
    "battery_mah": (["What's the battery capacity?", "How big is the battery?", "How many mAh is the battery?"],
                    "The battery capacity is {v}."),
    "battery_type": (["What batteries does it take?", "What kind of battery does it use?"],
                     "The battery type is {v}."),
    "waterproof_rating": (["What's the IP rating?", "How water resistant is it?", "What's the water rating?"],
                          "It is rated {v}."),
    "waterproof_rating_mm": (["What's the waterproof rating?", "How waterproof is the fabric?"],
                             "The waterproof rating is {v}."),
    "breathability_g_m2": (["How breathable is it?", "What's the breathability rating?"],
                           "The breathability rating is {v}."),
    "item_type": (["What kind of cookware is it?", "What type of pan is it?"], "It is {item}."),
    "diameter_cm": (["What's the diameter?", "How wide is it?", "What size is the pan?"], "The diameter is {v}."),
    "coating": (["What's the coating?", "Is it nonstick?"], "It has {coating} coating."),
    "terrain": (["Is it for road or trail?", "What terrain is it made for?"], "It is made for {v} running."),
    "gender": (["Is it men's or women's?", "Is this a men's or a women's model?"], "It is {gender} model."),
    "heel_drop_mm": (["What's the heel drop?", "What's the drop?", "How much drop does it have?"],
                     "The heel drop is {v}."),
    "stack_height_mm": (["What's the stack height?", "How much cushion height does it have?"],
                        "The stack height is {v}."),
    "lug_depth_mm": (["How deep are the lugs?", "What's the lug depth?"], "The lugs are {v} deep."),
    "width": (["What width is it?", "Is it a wide fit?"], "It comes in the {v} width."),
    "hood": (["What kind of hood does it have?", "Does it have a hood?"], "It has {hood} hood."),
    "lid_type": (["What kind of lid does it have?", "What's the lid like?"], "It has {lid}."),
    "keeps_cold_h": (["How long does it keep drinks cold?", "How long does it stay cold?"],
                     "It keeps drinks cold for {v}."),
    "thickness_mm": (["How thick is it?", "What's the thickness?", "How thick is the mat?"], "It is {v} thick."),
    "dimensions_cm": (["How big is the mat?", "What are the dimensions?", "How long and wide is it?"],
                      "It measures {v}."),
    "texture": (["What's the surface like?", "What texture is it?"], "The surface is {v}."),
    "knife_type": (["What kind of knife is it?", "What type of knife is this?"], "It is {knife}."),
    "blade_length_cm": (["How long is the blade?", "What's the blade length?"], "The blade is {v} long."),
    "hardness_hrc": (["How hard is the steel?", "What's the HRC?", "What's the hardness?"],
                     "The blade hardness is {v}."),
    "bevel": (["Is it single or double bevel?", "What's the bevel?"], "It has {bevel} bevel."),
    "wattage": (["How many watts does it use?", "What's the wattage?"], "The wattage is {v}."),
    "color_temperature_k": (["What's the color temperature?", "How warm is the light?"],
                            "The color temperature is {v}."),
    "arm_type": (["What kind of arm does it have?", "Is the arm adjustable?"], "It has {arm}."),
    "power_source": (["How is it powered?", "What's the power source?"], "It is powered by {power}."),
    "output_w": (["What's the output power?", "How many watts is it?", "How powerful is it?"],
                 "The output is {v}."),
    "playtime_h": (["What's the playtime?", "How long does the battery last?", "How many hours does it play?"],
                   "The playtime is {v}."),
    "bluetooth_version": (["Which Bluetooth version does it use?", "What Bluetooth version is it?"],
                          "It uses Bluetooth {v}."),
    "price": (["How much is it?", "What does it cost?", "What's the price?", "How much does it cost?"],
              "It costs {v}."),
}


def fact_value(p: dict, attr: str):
    return p["price"] if attr == "price" else p["attributes"].get(attr)


def fact_answer(p: dict, attr: str) -> str:
    v = fact_value(p, attr)
    persons = v if attr == "capacity_persons" else None
    pockets = v if attr == "hip_belt_pockets" else None
    fields = {
        "v": price_text(p) if attr == "price" else value_text(attr, v),
        "persons": persons and ("1 person" if persons == 1 else f"{persons} people"),
        "fill": article(v) if attr == "fill" and v.endswith("blend") else v,
        "shape": attr == "shape" and ("It is a quilt." if v == "quilt" else f"It is {article(v)} bag."),
        "torso": attr == "torso_size" and ("It comes in one size." if v == "one size" else f"The torso size is {v}."),
        "pockets": pockets is not None and ("It has no hip belt pockets." if pockets == 0 else
                                            f"It has {pockets} hip belt pocket{'s' if pockets != 1 else ''}."),
        "item": attr == "item_type" and article(ITEM_NAMES.get(v, v)),
        "coating": attr == "coating" and article(v),
        "gender": attr == "gender" and article(v),
        "hood": attr == "hood" and article(v),
        "lid": attr == "lid_type" and article(v),
        "knife": attr == "knife_type" and article(v),
        "bevel": attr == "bevel" and article(v),
        "arm": attr == "arm_type" and ARM_TEXT.get(v, article(f"{v} arm")),
        "power": attr == "power_source" and ("an AC adapter" if v == "AC adapter" else v),
    }
    return FACTS[attr][1].format(**fields)


def fact_attrs(p: dict) -> list[str]:
    return [a for a, v in p["attributes"].items() if a in FACTS and not isinstance(v, bool)] + ["price"]


def weighted_sample(rng: random.Random, items: list, weights: list[float], n: int) -> list:
    """n items without replacement, each drawn in proportion to its weight (Efraimidis-Spirakis keys)."""
    keyed = sorted(((rng.random() ** (1.0 / w), i) for i, w in enumerate(weights)), reverse=True)
    return [items[i] for _, i in keyed[:n]]


def balanced(rng: random.Random, pairs: list[tuple[dict, str]], n: int) -> list[tuple[dict, str]]:
    """Samples (product, attr) pairs so rare attributes are not drowned by weight and price."""
    per_attr = Counter(a for _, a in pairs)
    return weighted_sample(rng, pairs, [1 / math.sqrt(per_attr[a]) for _, a in pairs], n)


def row(rule: str, sku: str | None, question: str, answer: str, resolved: bool = True, **private) -> dict:
    r = {"sku": sku} if sku else {}
    r.update(question=question, answer=answer, resolved=resolved, _rule=rule)
    r.update({f"_{k}": v for k, v in private.items()})
    return r


def fact_rows(products: list[dict], rng: random.Random, n: int) -> list[dict]:
    pairs = [(p, a) for p in products for a in fact_attrs(p)]
    out = []
    for p, a in balanced(rng, pairs, n):
        out.append(row("1 facts", p["sku"], rng.choice(FACTS[a][0]), fact_answer(p, a), attr=a))
    return out


# --------------------------------------------------------------------------------------------------
# Rule 2: yes/no on boolean attributes. attr -> (phrasings, yes answer, no answer)
# --------------------------------------------------------------------------------------------------

BOOLS: dict[str, tuple[list[str], str, str]] = {
    "freestanding": (["Is it freestanding?", "Does it stand up without stakes?", "Is this a freestanding tent?"],
                     "Yes, it is freestanding.", "No, it is not freestanding."),
    "compression_sack_included": (["Does it come with a compression sack?", "Is a compression sack included?",
                                   "Do I get a compression sack with it?"],
                                  "Yes, a compression sack is included.", "No, a compression sack is not included."),
    "hydration_compatible": (["Is it hydration compatible?", "Can I use a hydration bladder with it?",
                              "Does it fit a water reservoir?"],
                             "Yes, it is hydration compatible.", "No, it is not hydration compatible."),
    "rain_cover_included": (["Does it come with a rain cover?", "Is a rain cover included?"],
                            "Yes, the rain cover is included.", "No, the rain cover is not included."),
    "red_light": (["Does it have a red light?", "Is there a red light mode?"],
                  "Yes, it has a red light.", "No, it does not have a red light."),
    "induction_compatible": (["Does it work on induction?", "Is it induction compatible?",
                              "Can I use it on an induction hob?"],
                             "Yes, it is induction compatible.", "No, it is not induction compatible."),
    "waterproof": (["Is it waterproof?", "Are these waterproof?", "Will my feet stay dry in the rain?"],
                   "Yes, it is waterproof.", "No, it is not waterproof."),
    "pit_zips": (["Does it have pit zips?", "Are there underarm vents?"],
                 "Yes, it has pit zips.", "No, it does not have pit zips."),
    "insulated": (["Is it insulated?", "Is the bottle insulated?", "Is it an insulated bottle?"],
                  "Yes, it is insulated.", "No, it is not insulated."),
    "dishwasher_safe": (["Is it dishwasher safe?", "Can it go in the dishwasher?", "Can I put it in the dishwasher?"],
                        "Yes, it is dishwasher safe.", "No, it is not dishwasher safe."),
    "alignment_lines": (["Does it have alignment lines?", "Are there alignment markings on the mat?"],
                        "Yes, it has alignment lines.", "No, it does not have alignment lines."),
    "carry_strap_included": (["Does it come with a carry strap?", "Is a strap included?"],
                             "Yes, a carry strap is included.", "No, a carry strap is not included."),
    "sheath_included": (["Does it come with a sheath?", "Is a blade guard included?", "Does it have a sheath?"],
                        "Yes, a sheath is included.", "No, a sheath is not included."),
    "dimmable": (["Is it dimmable?", "Can I dim it?", "Does it have a dimmer?"],
                 "Yes, it is dimmable.", "No, it is not dimmable."),
    "usb_charging_port": (["Does it have a USB port?", "Can I charge my phone from it?",
                           "Is there a USB charging port?"],
                          "Yes, it has a USB charging port.", "No, it does not have a USB charging port."),
    "stereo_pairing": (["Can I pair two for stereo?", "Does it support stereo pairing?"],
                       "Yes, it supports stereo pairing.", "No, it does not support stereo pairing."),
}


def bool_answer(p: dict, attr: str) -> str:
    _, yes, no = BOOLS[attr]
    return yes if p["attributes"][attr] else no


def bool_rows(products: list[dict], rng: random.Random, n: int) -> list[dict]:
    pairs = [(p, a) for p in products for a, v in p["attributes"].items() if isinstance(v, bool) and a in BOOLS]
    missing = {a for p in products for a, v in p["attributes"].items() if isinstance(v, bool)} - set(BOOLS)
    if missing:
        raise SystemExit(f"no yes/no phrasings for {sorted(missing)}")
    return [row("2 yes/no", p["sku"], rng.choice(BOOLS[a][0]), bool_answer(p, a), attr=a)
            for p, a in balanced(rng, pairs, n)]


# --------------------------------------------------------------------------------------------------
# Rule 3: comparisons with units, computed exactly
# --------------------------------------------------------------------------------------------------

# unit -> (factor to the base unit of its dimension, as an exact Fraction; spellings a shopper types)
UNITS: dict[str, tuple[Fraction, list[str]]] = {
    "g": (Fraction(1), ["{x} g", "{x}g", "{x} grams"]),
    "kg": (Fraction(1000), ["{x} kg", "{x}kg", "{x} kilos"]),
    "lb": (Fraction("453.59237"), ["{x} lb", "{x} lbs", "{x} pounds"]),
    "ml": (Fraction(1), ["{x} ml", "{x}ml"]),
    "L": (Fraction(1000), ["{x} L", "{x} litres", "{x} liters", "{x}L"]),
    "mm": (Fraction(1, 10), ["{x} mm", "{x}mm"]),
    "cm": (Fraction(1), ["{x} cm", "{x}cm"]),
    "m": (Fraction(100), ["{x} m", "{x} meters", "{x} metres"]),
    "inches": (Fraction("2.54"), ["{x} inches", "{x} in", '{x}"']),
    "feet": (Fraction("30.48"), ["{x} feet", "{x} ft"]),
    "hours": (Fraction(1), ["{x} hours", "{x} hrs", "{x}h"]),
    "mAh": (Fraction(1), ["{x} mAh", "{x}mAh"]),
    "lumens": (Fraction(1), ["{x} lumens", "{x} lm"]),
    "W": (Fraction(1), ["{x} W", "{x} watts", "{x}W"]),
    "USD": (Fraction(1), ["{x} USD", "${x}", "{x} dollars"]),
}
# attr -> (units the question may use, ">" phrasings, "<" phrasings, (word for more, word for less), fact)
# fact is the answer's clause before ", which is ...": the product's own figure in its own unit.
COMPARES: dict[str, tuple[list[str], list[str], list[str], tuple[str, str], str]] = {
    "weight_g": (["g", "kg", "kg", "lb"],
                 ["Does it weigh more than {t}?", "Is it over {t}?", "Is it heavier than {t}?"],
                 ["Is it under {t}?", "Does it weigh less than {t}?", "Is it lighter than {t}?"],
                 ("over", "under"), "It weighs {v}"),
    "capacity_l": (["L", "L", "ml"],
                   ["Does it hold more than {t}?", "Is it bigger than {t}?", "Will it hold over {t}?"],
                   ["Is it smaller than {t}?", "Does it hold less than {t}?"],
                   ("more than", "less than"), "The capacity is {v}"),
    "capacity_ml": (["ml", "L", "L"],
                    ["Does it hold more than {t}?", "Is it bigger than {t}?"],
                    ["Is it smaller than {t}?", "Does it hold less than {t}?"],
                    ("more than", "less than"), "The capacity is {v}"),
    "blade_length_cm": (["cm", "inches", "inches"],
                        ["Is the blade longer than {t}?", "Is the blade over {t}?"],
                        ["Is the blade shorter than {t}?", "Is the blade under {t}?"],
                        ("longer than", "shorter than"), "The blade is {v} long"),
    "diameter_cm": (["cm", "inches"],
                    ["Is it wider than {t} across?", "Is it bigger than {t}?"],
                    ["Is it smaller than {t} across?", "Is it less than {t} wide?"],
                    ("more than", "less than"), "The diameter is {v}"),
    "thickness_mm": (["mm", "cm"],
                     ["Is it thicker than {t}?", "Is the mat more than {t} thick?"],
                     ["Is it thinner than {t}?", "Is the mat less than {t} thick?"],
                     ("thicker than", "thinner than"), "It is {v} thick"),
    "dimensions_cm": (["cm", "m", "feet", "inches"],
                      ["Is it longer than {t}?", "Is the mat more than {t} long?"],
                      ["Is it shorter than {t}?", "Is the mat less than {t} long?"],
                      ("longer than", "shorter than"), "It is {v} long"),
    "beam_distance_m": (["m", "feet"],
                        ["Does the beam reach farther than {t}?", "Does it throw light more than {t}?"],
                        ["Is the beam distance under {t}?", "Does the beam reach less than {t}?"],
                        ("more than", "less than"), "The beam distance is {v}"),
    "heel_drop_mm": (["mm", "cm"],
                     ["Is the drop more than {t}?", "Is the heel drop over {t}?"],
                     ["Is the drop less than {t}?", "Is the heel drop under {t}?"],
                     ("more than", "less than"), "The heel drop is {v}"),
    "stack_height_mm": (["mm", "cm"],
                        ["Is the stack height more than {t}?", "Is the stack over {t}?"],
                        ["Is the stack height under {t}?", "Is the stack less than {t}?"],
                        ("more than", "less than"), "The stack height is {v}"),
    "lumens": (["lumens"],
               ["Is it brighter than {t}?", "Does it put out more than {t}?"],
               ["Is it under {t}?", "Is it less than {t}?"],
               ("more than", "less than"), "It puts out {v}"),
    "battery_mah": (["mAh"],
                    ["Is the battery bigger than {t}?", "Is the battery over {t}?"],
                    ["Is the battery under {t}?", "Is the battery less than {t}?"],
                    ("more than", "less than"), "The battery capacity is {v}"),
    "playtime_h": (["hours"],
                   ["Does it play for more than {t}?", "Will it last more than {t} on a charge?"],
                   ["Is the playtime under {t}?", "Does it play for less than {t}?"],
                   ("more than", "less than"), "The playtime is {v}"),
    "output_w": (["W"],
                 ["Is it more powerful than {t}?", "Is the output over {t}?"],
                 ["Is the output under {t}?", "Is it less than {t}?"],
                 ("more than", "less than"), "The output is {v}"),
    "price": (["USD"],
              ["Does it cost more than {t}?", "Is it over {t}?"],
              ["Is it under {t}?", "Does it cost less than {t}?"],
              ("over", "under"), "It costs {v}"),
}
TEMP_QUESTIONS = ["Is it warm enough for {t}?", "Will it keep me warm at {t}?", "Can I use it at {t}?",
                  "Is it good for nights around {t}?"]
OVEN_QUESTIONS = ["Can it go in the oven at {t}?", "Is it oven safe at {t}?", "Can I bake with it at {t}?"]


def compare_value(p: dict, attr: str) -> Fraction:
    """The product's figure as an exact Fraction in the unit its attribute name gives."""
    v = fact_value(p, attr)
    if attr == "dimensions_cm":
        v = v.split(" x ")[0]  # the mat's length
    return Fraction(str(v))


def own_unit(attr: str) -> str:
    return "USD" if attr == "price" else unit_of(attr)


NICE_STEPS = [Fraction(d) * Fraction(10) ** k for k in range(-3, 7) for d in (1, 2, 5)]


def nice_threshold(rng: random.Random, x: Fraction, step: Fraction | None = None,
                   allow_negative: bool = False) -> Fraction:
    """A round figure near x (in the question's unit): a multiple of step (by default the largest
    1/2/5 step with |x|/step >= 3) moved by -1, 0 or +1 steps; never equal to x, positive unless allowed."""
    if step is None:
        step = max((s for s in NICE_STEPS if abs(x) / s >= 3), default=NICE_STEPS[0])
    base = round(x / step) * step
    choices = [t for t in (base - step, base, base + step) if t != x and (allow_negative or t > 0)]
    return rng.choice(choices)


def spell(rng: random.Random, t: Fraction, unit: str) -> str:
    s = rng.choice(UNITS[unit][1]).format(x=num(t))
    if t == 1:
        for plural, single in SINGULAR.items():
            s = s.replace(f" {plural}", f" {single}")
    return s


def question_units(attr: str, v: Fraction) -> list[str]:
    """The units a shopper would use for this figure: nobody asks about a 65 L pack in ml, nor about a
    380 g jacket in kg (a figure below 0.7 kg, lb or L, or below 1 in other units, is not asked)."""
    own = own_unit(attr)
    units = [u for u in COMPARES[attr][0]
             if u == own or v * UNITS[own][0] / UNITS[u][0] >= (Fraction(7, 10) if u in ("kg", "lb", "L") else 1)]
    if attr == "capacity_l" and v >= 10:
        units = [u for u in units if u != "ml"]
    return units


def compare_row(p: dict, attr: str, rng: random.Random) -> dict:
    units, more_qs, less_qs, (more_w, less_w), fact = COMPARES[attr]
    base_unit = own_unit(attr)
    v = compare_value(p, attr)
    unit = rng.choice(question_units(attr, v))
    factor = UNITS[unit][0] / UNITS[base_unit][0]  # question unit -> product's unit
    t = nice_threshold(rng, v / factor)
    t_own = t * factor
    op = rng.choice((">", "<"))
    question = rng.choice(more_qs if op == ">" else less_qs).format(t=spell(rng, t, unit))
    truth = v > t_own if op == ">" else v < t_own
    assert (float(v) > float(t) * float(factor)) == (v > t_own), (p["sku"], attr, v, t, unit)  # cross-check
    own = price_text(p) if attr == "price" else qty(v, base_unit)
    clause = fact.format(v=own)
    answer = f"{'Yes' if truth else 'No'}. {clause}, which is {more_w if v > t_own else less_w} {qty(t, unit)}."
    return row("3 comparisons", p["sku"], question, answer, attr=attr, op=op)


def temperature_row(p: dict, rng: random.Random) -> dict:
    """Sleeping bags: warm enough for t iff the rating is at or below t (a lower rating is warmer)."""
    r = Fraction(p["attributes"]["temperature_rating_c"])
    if rng.random() < 0.4:
        unit = "°F"
        t = nice_threshold(rng, r * 9 / 5 + 32, Fraction(10), allow_negative=True)
        t_c = (t - 32) * 5 / 9
    else:
        unit = "°C"
        t = t_c = nice_threshold(rng, r, Fraction(5), allow_negative=True)
    spelled = rng.choice(["{x} °C", "{x}°C", "{x} C", "{x} degrees C"] if unit == "°C" else
                         ["{x} °F", "{x}°F", "{x}F", "{x} degrees F"]).format(x=num(t))
    ok = r <= t_c
    assert ok == (float(r) <= (float(t) - 32) * 5 / 9 if unit == "°F" else float(r) <= float(t))
    answer = (f"{'Yes' if ok else 'No'}. It is rated to {qty(r, '°C')}, so it is "
              f"{'' if ok else 'not '}warm enough for {qty(t, unit)}.")
    return row("3 comparisons", p["sku"], rng.choice(TEMP_QUESTIONS).format(t=spelled), answer,
               attr="temperature_rating_c", op="warm")


def oven_row(p: dict, rng: random.Random) -> dict:
    """Cookware: oven safe at t iff t is at or below the oven-safe temperature."""
    s = Fraction(p["attributes"]["oven_safe_c"])
    if rng.random() < 0.5:
        unit, t = "°F", nice_threshold(rng, s * 9 / 5 + 32, Fraction(25))
        t_c = (t - 32) * 5 / 9
    else:
        unit = "°C"
        t = t_c = nice_threshold(rng, s, Fraction(10))
    spelled = rng.choice(["{x} °C", "{x}°C", "{x} degrees C"] if unit == "°C" else
                         ["{x} °F", "{x}°F", "{x}F", "{x} degrees F"]).format(x=num(t))
    ok = t_c <= s
    answer = (f"{'Yes' if ok else 'No'}. It is oven safe up to {qty(s, '°C')}, which is "
              f"{'above' if s > t_c else 'below'} {qty(t, unit)}.")
    return row("3 comparisons", p["sku"], rng.choice(OVEN_QUESTIONS).format(t=spelled), answer,
               attr="oven_safe_c", op="oven")


def compare_rows(products: list[dict], rng: random.Random, n: int) -> list[dict]:
    pairs = [(p, a) for p in products for a in list(p["attributes"]) + ["price"]
             if a in ("temperature_rating_c", "oven_safe_c") or (a in COMPARES and compare_value(p, a) > 0)]
    out = []
    for p, a in balanced(rng, pairs, n):
        if a == "temperature_rating_c":
            out.append(temperature_row(p, rng))
        elif a == "oven_safe_c":
            out.append(oven_row(p, rng))
        else:
            out.append(compare_row(p, a, rng))
    return out


# An independent re-reading of every comparison answer (its own conversion table, floats).
CHECK_FACTOR = {"g": 1, "kg": 1000, "lb": 453.59237, "ml": 1, "L": 1000, "mm": 0.1, "cm": 1, "m": 100,
                "inches": 2.54, "inch": 2.54, "feet": 30.48, "foot": 30.48, "hours": 1, "hour": 1, "mAh": 1,
                "lumens": 1, "W": 1, "USD": 1}
MORE_WORDS = {"over", "more than", "longer than", "thicker than"}
LESS_WORDS = {"under", "less than", "shorter than", "thinner than"}
QTY = r"(-?\d+(?:\.\d+)?) ([A-Za-z°]+)"


def to_c(x: float, unit: str) -> float:
    return (x - 32) * 5 / 9 if unit == "°F" else x


def verify_comparison(r: dict) -> None:
    a, op = r["answer"], r["_op"]
    if op == "warm":
        m = re.fullmatch(rf"(Yes|No)\. It is rated to {QTY}, so it is (not )?warm enough for {QTY}\.", a)
        assert m, a
        rating, t = float(m[2]), to_c(float(m[5]), m[6])
        ok = rating <= t + 1e-9
        assert ok == (m[1] == "Yes") == (m[4] is None), a
        return
    if op == "oven":
        m = re.fullmatch(rf"(Yes|No)\. It is oven safe up to {QTY}, which is (above|below) {QTY}\.", a)
        assert m, a
        s, t = float(m[2]), to_c(float(m[5]), m[6])
        assert (s > t) == (m[4] == "above") and (t <= s) == (m[1] == "Yes") and abs(s - t) > 1e-9, a
        return
    words = "|".join(MORE_WORDS | LESS_WORDS)
    m = re.fullmatch(rf"(Yes|No)\. .*?{QTY}(?: long| thick)?, which is ({words}) {QTY}\.", a)
    assert m, a
    v = float(m[2]) * CHECK_FACTOR[m[3]]
    t = float(m[5]) * CHECK_FACTOR[m[6]]
    assert abs(v - t) > 1e-9, a
    assert (v > t) == (m[4] in MORE_WORDS), a
    assert (m[1] == "Yes") == ((v > t) == (op == ">")), a


# --------------------------------------------------------------------------------------------------
# Rule 4: rephrasings and typos
# --------------------------------------------------------------------------------------------------

PREFIXES = ["pls ", "hi, ", "hi ", "hey, ", "hello, ", "quick question: "]


def swap_letters(q: str, rng: random.Random) -> str:
    words = q.split(" ")
    idx = [i for i, w in enumerate(words) if re.fullmatch(r"[A-Za-z]{4,}\??", w)]
    if not idx:
        return q
    i = rng.choice(idx)
    w = words[i]
    core = w.rstrip("?")
    j = rng.randrange(1, len(core) - 2)  # keep the first letter
    if core[j] == core[j + 1]:
        return q
    words[i] = core[:j] + core[j + 1] + core[j] + core[j + 2:] + w[len(core):]
    return " ".join(words)


def drop_letter(q: str, rng: random.Random) -> str:
    words = q.split(" ")
    idx = [i for i, w in enumerate(words) if re.fullmatch(r"[A-Za-z]{5,}\??", w)]
    if not idx:
        return q
    i = rng.choice(idx)
    w = words[i]
    j = rng.randrange(1, len(w.rstrip("?")) - 1)
    words[i] = w[:j] + w[j + 1:]
    return " ".join(words)


def lowercase(q: str, rng: random.Random) -> str:
    return q.lower()


def no_question_mark(q: str, rng: random.Random) -> str:
    return q.rstrip("?")


def prefix(q: str, rng: random.Random) -> str:
    return rng.choice(PREFIXES) + q[:1].lower() + q[1:]


REWRITES = [lowercase, no_question_mark, swap_letters, drop_letter, prefix]


def rephrase(q: str, rng: random.Random) -> str:
    for _ in range(10):
        out = q
        for f in rng.sample(REWRITES, rng.choice((1, 2, 2, 3))):
            out = f(out, rng)
        if out != q:
            return out
    return q.lower().rstrip("?")


def rephrase_rows(sources: list[dict], rng: random.Random, n: int) -> list[dict]:
    out = []
    for src in rng.sample(sources, min(n, len(sources))):
        out.append(row("4 rephrasings", src.get("sku"), rephrase(src["question"], rng), src["answer"],
                       src["resolved"], **{k[1:]: v for k, v in src.items() if k in ("_attr", "_op")}))
    return out


# --------------------------------------------------------------------------------------------------
# Rule 5: questions across products (no sku)
# --------------------------------------------------------------------------------------------------

# kind -> (attr, question, does the smaller value win?, first sentence, second sentence); {w} is the
# winner's title, {l} the other's, {x} and {y} their figures.
PAIR_KINDS = {
    "lighter": ("weight_g", "Which is lighter, the {a} or the {b}?", True, "The {w} is lighter.",
                "It weighs {x}, and the {l} weighs {y}."),
    "heavier": ("weight_g", "Which one is heavier, the {a} or the {b}?", False, "The {w} is heavier.",
                "It weighs {x}, and the {l} weighs {y}."),
    "warmer": ("temperature_rating_c", "Which is warmer, the {a} or the {b}?", True, "The {w} is warmer.",
               "It is rated to {x}, and the {l} to {y}."),
    "bigger_l": ("capacity_l", "Which holds more, the {a} or the {b}?", False, "The {w} holds more.",
                 "It holds {x}, and the {l} holds {y}."),
    "bigger_ml": ("capacity_ml", "Which holds more, the {a} or the {b}?", False, "The {w} holds more.",
                  "It holds {x}, and the {l} holds {y}."),
    "brighter": ("lumens", "Which is brighter, the {a} or the {b}?", False, "The {w} is brighter.",
                 "It puts out {x}, and the {l} puts out {y}."),
    "cheaper": ("price", "Which is cheaper, the {a} or the {b}?", True, "The {w} is cheaper.",
                "It costs {x}, and the {l} costs {y}."),
    "blade": ("blade_length_cm", "Which has the longer blade, the {a} or the {b}?", False,
              "The {w} has the longer blade.", "Its blade is {x} long, and the blade of the {l} is {y} long."),
    "playtime": ("playtime_h", "Which plays longer, the {a} or the {b}?", False, "The {w} plays longer.",
                 "Its playtime is {x}, and the {l} plays for {y}."),
}
SINGLE_KINDS = {
    "weigh": ("weight_g", ["How much does the {a} weigh?", "What does the {a} weigh?"], "The {a} weighs {x}."),
    "cost": ("price", ["How much is the {a}?", "What does the {a} cost?"], "The {a} costs {x}."),
    "bright": ("lumens", ["How bright is the {a}?"], "The {a} puts out {x}."),
    "capacity": ("capacity_l", ["What's the capacity of the {a}?"], "The capacity of the {a} is {x}."),
}


def shown(p: dict, attr: str) -> str:
    return price_text(p) if attr == "price" else value_text(attr, fact_value(p, attr))


def pair_row(kind: str, a: dict, b: dict) -> dict | None:
    attr, q, smaller_wins, first, second = PAIR_KINDS[kind]
    va, vb = fact_value(a, attr), fact_value(b, attr)
    if va is None or vb is None or va == vb:
        return None
    win, lose = (a, b) if (va < vb) == smaller_wins else (b, a)
    assert (fact_value(win, attr) < fact_value(lose, attr)) == smaller_wins
    answer = (first.format(w=win["title"]) + " " +
              second.format(x=shown(win, attr), y=shown(lose, attr), l=lose["title"]))
    return row("5 across products", None, q.format(a=a["title"], b=b["title"]), answer)


def cross_rows(products: list[dict], rng: random.Random, n: int) -> list[dict]:
    by_cat = defaultdict(list)
    for p in products:
        by_cat[p["category"]].append(p)
    out, seen = [], set()
    while len(out) < n:
        if rng.random() < 0.7:
            kind = rng.choice(sorted(PAIR_KINDS))
            attr = PAIR_KINDS[kind][0]
            cats = sorted(c for c, ps in by_cat.items() if sum(fact_value(p, attr) is not None for p in ps) >= 2)
            ps = [p for p in by_cat[rng.choice(cats)] if fact_value(p, attr) is not None]
            a, b = rng.sample(ps, 2)
            r = pair_row(kind, a, b)
        else:
            kind = rng.choice(sorted(SINGLE_KINDS))
            attr, qs, ans = SINGLE_KINDS[kind]
            p = rng.choice([p for p in products if fact_value(p, attr) is not None])
            r = row("5 across products", None, rng.choice(qs).format(a=p["title"]),
                    ans.format(a=p["title"], x=shown(p, attr)))
        if r and r["question"] not in seen:
            seen.add(r["question"])
            out.append(r)
    return out


# --------------------------------------------------------------------------------------------------
# Rule 6: policy questions, answered only from policies.md
# --------------------------------------------------------------------------------------------------

# (section, phrasings, answer): each answer restates sentences of that section and nothing else.
POLICY_QA: list[tuple[str, list[str], str]] = [
    ("Shipping", ["How soon do you ship?", "When will my order ship?", "How long until my order leaves the warehouse?"],
     "Orders ship from our warehouse within 2 business days."),
    ("Shipping", ["How long does shipping take?", "How long does standard delivery take?"],
     "Orders ship within 2 business days, and standard shipping takes 3 to 7 business days."),
    ("Shipping", ["Is shipping free?", "Do you offer free shipping?", "How much is shipping?"],
     "Standard shipping is free on orders over 75 USD; below that it costs 6.95 USD."),
    ("Shipping", ["Do you have express shipping?", "How much is express shipping?", "Can I get it faster?"],
     "Express shipping takes 1 to 2 business days and costs 19.95 USD."),
    ("Shipping", ["Do you ship to the UK?", "Do you ship internationally?", "Can you ship to Germany?",
                  "Which countries do you ship to?"],
     "We ship to addresses in the United States and Canada only."),
    ("Shipping", ["Do you ship to Canada?", "Can I order from Canada?"],
     "Yes. We ship to addresses in the United States and Canada."),
    ("Returns", ["How long do I have to return something?", "What's your return policy?", "Can I return an item?",
                 "What is the return window?"],
     "You can return unused items in their original packaging within 30 days of delivery for a full refund."),
    ("Returns", ["Is return shipping free?", "Who pays for return shipping?", "Do returns cost anything?"],
     "Return shipping is free for exchanges; for refunds it costs 6.95 USD, taken from the refund."),
    ("Returns", ["When will I get my refund?", "How long do refunds take?", "Where does my refund go?"],
     "Refunds are paid to the original payment method within 10 business days of the return reaching us."),
    ("Returns", ["Can I return a knife?", "Can I return a sleeping bag I've opened?",
                 "Can I return an opened sleeping bag?"],
     "Knives and opened sleeping bags cannot be returned for hygiene and safety reasons unless they are faulty."),
    ("Warranty", ["Is there a warranty?", "How long is the warranty?", "What does the warranty cover?"],
     "Every product carries a 2-year warranty against defects in materials and workmanship from the date of delivery."),
    ("Warranty", ["Does the warranty cover accidental damage?", "Is normal wear covered by the warranty?",
                  "I dropped it and it broke, is that covered?"],
     "No. The warranty does not cover normal wear, misuse or damage from accidents."),
    ("Warranty", ["What's the warranty on tent zippers?", "Are backpack seams covered?",
                  "Is there a longer warranty on tents?"],
     "Tents and backpacks carry a 5-year warranty on zippers and seams."),
    ("Care", ["Can I put my down sleeping bag in the dryer?", "Can I tumble dry a down bag?"],
     "Follow the care label, and never machine-dry a down sleeping bag on high heat."),
    ("Care", ["How should I wash my rain jacket?", "Can I tumble dry my waterproof jacket?"],
     "Follow the care label on the product, and never machine-dry a waterproof jacket on high heat."),
    ("Care", ["How do I clean my yoga mat?", "How should I clean a yoga mat?", "Can I wash my yoga mat?"],
     "Wipe yoga mats with a damp cloth and dry them flat, out of direct sun."),
    ("Care", ["How do I wash it?", "What are the care instructions?"],
     "Please follow the care label on the product."),
    ("Payment", ["What payment methods do you accept?", "Which cards do you take?", "Do you take Discover?"],
     "We accept Visa, Mastercard, American Express and PayPal."),
    ("Payment", ["Can I pay with PayPal?", "Do you accept PayPal?"],
     "Yes. We accept Visa, Mastercard, American Express and PayPal."),
    ("Payment", ["Does the price include tax?", "Is sales tax included?"],
     "Prices include sales tax where the law requires it."),
    ("Payment", ["What currency are prices in?", "Are prices in US dollars?"],
     "Prices are shown in the product's currency."),
]


def load_policies(path: Path) -> dict[str, str]:
    sections, name = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            sections[name] = ""
        elif name:
            sections[name] += " " + line.strip()
    return {k: " ".join(v.split()) for k, v in sections.items()}


def check_policy_answer(section: str, text: str, answer: str) -> None:
    """Every figure and every payment brand in the answer must be in the section it cites."""
    for figure in re.findall(r"\d+(?:\.\d+)?(?:-year)?", answer):
        if figure not in text:
            raise SystemExit(f"policy answer quotes {figure!r}, which the {section} section does not say: {answer}")
    for name in ("Visa", "Mastercard", "American Express", "PayPal", "Canada", "United States"):
        if name in answer and name not in text:
            raise SystemExit(f"policy answer names {name!r}, which the {section} section does not say")


def policy_rows(policies: dict[str, str], rng: random.Random, n: int) -> list[dict]:
    for section, _, answer in POLICY_QA:
        if section not in policies:
            raise SystemExit(f"policies.md has no '## {section}' section")
        check_policy_answer(section, policies[section], answer)
    pairs = [(q, a) for _, qs, a in POLICY_QA for q in qs]
    # every phrasing at least once, then repeats drawn at random (shops hear the same questions often)
    chosen = pairs + [rng.choice(pairs) for _ in range(max(0, n - len(pairs)))]
    return [row("6 policies", None, q, a) for q, a in chosen[:n]]


# --------------------------------------------------------------------------------------------------
# Rule 7: questions the facts cannot answer
# --------------------------------------------------------------------------------------------------

# (phrasings, categories they are asked about, or None for all); the answer is NOT_SAID. Care-label
# questions are left to the policies for the categories the Care section names.
UNKNOWN_FACTS = [
    (["Where is it made?", "What country is it made in?", "Is it made in the USA?"], None),
    (["Is it in stock?", "Do you have it in stock?", "Is this available right now?"], None),
    (["Is it machine washable?", "Can I wash it in the machine?"], {"Backpacks", "Tents", "Running Shoes"}),
    (["What's the packed size?", "How small does it pack down?"], {"Tents", "Sleeping Bags", "Rain Jackets"}),
    (["Is it BPA-free?", "Is the plastic food safe?"], {"Water Bottles"}),
    (["Is it vegan?", "Are there any animal materials in it?"], {"Running Shoes"}),
    (["How long does the battery last?", "What's the runtime on high?"], {"Headlamps"}),
    (["Does it come with a lid?", "Is a lid included?"], {"Cookware"}),
    (["How many pockets does it have?", "Does it have a laptop sleeve?"], {"Backpacks"}),
    (["Does it have a built-in microphone?", "Can I take calls on it?"], {"Bluetooth Speakers"}),
    (["Is it dishwasher safe?", "Can it go in the dishwasher?"], {"Kitchen Knives", "Cookware"}),
]
OUT_OF_SCOPE = [  # (phrasings, asked with a product page?)
    (["Do you have a discount code?", "Can I get a coupon?", "Is there a promo code?",
      "Will it go on sale for Black Friday?", "Can you knock something off the price?"], True),
    (["What's your phone number?", "Can I talk to a human?", "What's your email address?",
      "How do I contact customer service?"], False),
    (["Is it cheaper on Amazon?", "Can you price match REI?", "Why is it cheaper at Walmart?"], True),
    (["Will it arrive by Friday?", "Can you deliver to my address by Friday?",
      "Can you guarantee delivery before the weekend?"], True),
    (["Where is my order?", "Can you change my shipping address?", "Can you cancel my order?"], False),
]
HOW_TO = {
    "Tents": ["How do I set up the tent?", "How do I pitch it?"],
    "Bluetooth Speakers": ["How do I pair it with my phone?", "How do I reset it?"],
    "Kitchen Knives": ["How do I sharpen it?", "What angle should I sharpen it at?"],
    "Cookware": ["How do I season it?"],
    "Headlamps": ["How do I change the mode?"],
    "Backpacks": ["How do I adjust the torso length?"],
    "Desk Lamps": ["How do I mount it?"],
}


# Phrasings another fact of the product may answer (a pan without a capacity still has a size).
VAGUE = {"How big is it?", "What size is the pan?", "How wide is it?", "What size is it?", "Is it nonstick?"}


def missing_fact_questions(p: dict, category_attrs: set[str]) -> list[str]:
    """Phrasings of rules 1 and 2 for attributes other products in the category have and this one lacks."""
    qs = []
    for a in sorted(category_attrs - set(p["attributes"])):
        qs.extend(FACTS[a][0] if a in FACTS else BOOLS[a][0] if a in BOOLS else [])
    return [q for q in qs if q not in VAGUE]


def unanswerable_rows(products: list[dict], rng: random.Random, n: int) -> list[dict]:
    cat_attrs = defaultdict(set)
    for p in products:
        cat_attrs[p["category"]].update(p["attributes"])
    out = []
    while len(out) < n:
        r = rng.random()
        p = rng.choice(products)
        if r < 0.3:  # an attribute this product lacks
            qs = missing_fact_questions(p, cat_attrs[p["category"]])
            if qs:
                out.append(row("7 unanswerable", p["sku"], rng.choice(qs), NOT_SAID, kind="missing"))
        elif r < 0.55:
            qs, cats = rng.choice(UNKNOWN_FACTS)
            if cats is None or p["category"] in cats:
                out.append(row("7 unanswerable", p["sku"], rng.choice(qs), NOT_SAID, kind="missing"))
        elif r < 0.65:
            if p["category"] in HOW_TO:
                out.append(row("7 unanswerable", p["sku"], rng.choice(HOW_TO[p["category"]]), CANT_HELP, kind="how-to"))
        else:
            qs, with_page = rng.choice(OUT_OF_SCOPE)
            sku = p["sku"] if with_page and rng.random() < 0.7 else None
            out.append(row("7 unanswerable", sku, rng.choice(qs), CANT_HELP, kind="out of scope"))
    for r in rng.sample(out, round(len(out) / 3)):  # a third escalated
        r["resolved"] = False
    return out


# --------------------------------------------------------------------------------------------------
# Rule 8: noise
# --------------------------------------------------------------------------------------------------

def other_product_answers(p: dict, attr: str, same_cat: list[dict]) -> list[str]:
    """Fact answers of other products in the category that differ from this product's own."""
    mine = fact_answer(p, attr)
    others = {fact_answer(q, attr) for q in same_cat if q is not p and fact_value(q, attr) is not None}
    return sorted(others - {mine})


def noise_rows(products: list[dict], clean: list[dict], rng: random.Random, n: int) -> list[dict]:
    by_cat = defaultdict(list)
    for p in products:
        by_cat[p["category"]].append(p)
    out = []
    while len(out) < n:
        if rng.random() < 0.5:
            src = rng.choice(clean)
            out.append(row("8 noise", src.get("sku"), src["question"], "", False, kind="empty"))
        else:
            p = rng.choice(products)
            a = rng.choice(fact_attrs(p))
            others = other_product_answers(p, a, by_cat[p["category"]])
            if others:
                out.append(row("8 noise", p["sku"], rng.choice(FACTS[a][0]), rng.choice(others), False,
                               kind="other product"))
    return out


# --------------------------------------------------------------------------------------------------
# Checks and output
# --------------------------------------------------------------------------------------------------

FORBIDDEN = re.compile(r"https?:|www\.|@|\b\d{3}[-. ]\d{3,4}\b|discount|coupon|promo|in stock|on sale|"
                       r"price match|will arrive|guarantee", re.I)


def check_row(r: dict) -> None:
    a = r["answer"]
    if r["_rule"] == "8 noise":
        return
    assert a, r
    sentences = re.findall(r"[.!?](?:\s|$)", a)
    assert 1 <= len(sentences) <= 2, f"not one or two sentences: {a}"
    assert not FORBIDDEN.search(a), f"forbidden content: {a}"
    assert "  " not in a and " ," not in a and ".." not in a and " ." not in a, a
    assert a[0].isupper(), a
    if r.get("_op"):
        verify_comparison(r)


def load_products(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r.get("locale") != "zh-CN"]


def build(products: list[dict], policies: dict[str, str], rng: random.Random) -> list[dict]:
    facts = fact_rows(products, rng, N_FACT)
    bools = bool_rows(products, rng, N_BOOL)
    compares = compare_rows(products, rng, N_COMPARE)
    policy = policy_rows(policies, rng, N_POLICY)
    rephrased = rephrase_rows(facts + bools + compares + policy, rng, N_REPHRASE)
    cross = cross_rows(products, rng, N_CROSS)
    unanswerable = unanswerable_rows(products, rng, N_UNANSWERABLE)
    clean = facts + bools + compares + rephrased + cross + policy + unanswerable
    noise = noise_rows(products, facts + bools + compares + cross + policy, rng,
                       round(len(clean) * NOISE_SHARE / (1 - NOISE_SHARE)))
    rows = clean + noise
    for r in rows:
        check_row(r)
    rng.shuffle(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=HERE / "sample_catalog.jsonl")
    ap.add_argument("--policies", type=Path, default=HERE / "policies.md")
    ap.add_argument("--out", type=Path, default=HERE / "support_log.jsonl", help="JSONL file to write")
    a = ap.parse_args(argv)
    rng = random.Random(SEED)
    rows = build(load_products(a.catalog), load_policies(a.policies), rng)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}, ensure_ascii=False) + "\n")
    counts = Counter(r["_rule"] for r in rows)
    unresolved = Counter(r["_rule"] for r in rows if not r["resolved"])
    for rule in sorted(counts):
        print(f"{rule:<20} {counts[rule]:>5}  (resolved=false: {unresolved[rule]})")
    print(f"{'total':<20} {len(rows):>5}  (resolved=false: {sum(unresolved.values())})")
    print(f"wrote {len(rows)} rows to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
