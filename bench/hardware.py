"""A synthetic hardware-store catalog whose titles and queries spell units every which way (`1/2 in.`,
`1/2-Inch`, `1/2"`; `10 ft.`, `10-Foot`, `10'`; `60W`, `60-Watt`), for bench/search.py's `hardware` set.

Each product type has sizes (numbers with units); each title is written in one of several vendors'
styles. A query names one product's type and sizes in a style other than its title's. Grades
(rule-made, from the generator's own specs, never from the index): 3 = the type and every size;
2 = the type and the first size (the diameter, the wattage, the cross-section); 1 = the type. Seeded:
the same set every run."""

from __future__ import annotations

import itertools
import random
from typing import Any

INCH = ["{} in.", "{}-Inch", '{}"', "{} inch"]
FEET = ["{} ft.", "{}-Foot", "{}'", "{} feet"]
WATT = ["{}W", "{}-Watt", "{} watt", "{} W"]
GAL = ["{} gal.", "{}-Gallon", "{} gallon"]
CUFT = ["{} cu. ft.", "{} Cu. Ft.", "{} cubic feet", "{}-cu ft"]
VOLT = ["{}V", "{}-Volt", "{} volt"]
LB = ["{} lb.", "{}-lb", "{} pound"]
# type: (query words, title words per style, [(size values, unit spellings)], title template)
TYPES: dict[str, dict[str, Any]] = {
    "copper pipe": {"names": ["Type L Copper Pipe", "Copper Tube Type M", "Copper Water Pipe"],
                    "sizes": [(["1/4", "3/8", "1/2", "3/4", "1"], INCH), (["2", "5", "10"], FEET)]},
    "pvc pipe": {"names": ["Schedule 40 PVC Pipe", "PVC Plain End Pipe", "White PVC Pipe"],
                 "sizes": [(["1/2", "3/4", "1", "2"], INCH), (["2", "5", "10"], FEET)]},
    "led bulb": {"names": ["Equivalent A19 LED Light Bulb", "LED Bulb Soft White", "Daylight LED Bulb"],
                 "sizes": [(["40", "60", "75", "100"], WATT)]},
    "extension cord": {"names": ["Outdoor Extension Cord", "Indoor Extension Cord 16/3", "Heavy Duty Extension Cord"],
                       "sizes": [(["6", "10", "25", "50", "100"], FEET)]},
    "garden hose": {"names": ["Garden Hose", "Kink-Free Water Hose", "Rubber Garden Hose"],
                    "sizes": [(["1/2", "5/8", "3/4"], INCH), (["25", "50", "75", "100"], FEET)]},
    "mulch": {"names": ["Brown Mulch Bag", "Red Cedar Mulch", "Black Landscape Mulch"],
              "sizes": [(["1.5", "2", "3"], CUFT)]},
    "bucket": {"names": ["Orange Utility Bucket", "Plastic Pail with Lid", "Homer Bucket"],
               "sizes": [(["2", "3.5", "5"], GAL)]},
    "drill battery": {"names": ["Lithium-Ion Battery Pack", "Max Battery 4.0Ah", "Power Tool Battery"],
                      "sizes": [(["12", "18", "20", "40"], VOLT)]},
    "lag screw": {"names": ["Hex Lag Screw Zinc", "Galvanized Lag Bolt", "Lag Screws (25-Pack)"],
                  "sizes": [(["1/4", "5/16", "3/8"], INCH), (["2", "3", "4", "6"], INCH)]},
    "sand": {"names": ["All-Purpose Sand", "Play Sand", "Paver Leveling Sand"],
             "sizes": [(["20", "50"], LB)]},
}
QUERY_FORMS = ["{type} {s}", "{s} {type}"]


def _title(rng: random.Random, name: str, sizes: list[str]) -> str:
    style = rng.randrange(3)
    joined = " x ".join(sizes)
    return [f"{joined} {name}", f"{name}, {joined}", f"{name} {joined}"][style]


def catalog(seed: int = 7) -> tuple[list[dict[str, Any]], list[tuple[str, str, int]]]:
    """(catalog rows, (query, sku, grade) judgments)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    specs: dict[str, tuple[str, tuple[str, ...]]] = {}
    n = 0
    for kind, t in TYPES.items():
        for combo in itertools.product(*[vals for vals, _ in t["sizes"]]):
            for name in rng.sample(t["names"], 2):  # two vendors per size
                n += 1
                sizes = [rng.choice(units).format(v) for v, (_, units) in zip(combo, t["sizes"])]
                sku = f"HW-{n:04d}"
                rows.append({"sku": sku, "title": _title(rng, name, sizes), "category": kind.title(),
                             "price": round(rng.uniform(2, 120), 2)})
                specs[sku] = (kind, combo)
    judged: list[tuple[str, str, int]] = []
    queries: set[str] = set()
    for kind, t in TYPES.items():
        combos = list(itertools.product(*[vals for vals, _ in t["sizes"]]))
        for combo in rng.sample(combos, min(6, len(combos))):
            units = [rng.choice(u) for _, u in t["sizes"]]
            s = " ".join(u.format(v) for v, u in zip(combo, units)).lower()
            q = rng.choice(QUERY_FORMS).format(type=kind, s=s)
            if q in queries:
                continue
            queries.add(q)
            for sku, (k2, c2) in specs.items():
                if k2 != kind:
                    continue
                grade = 3 if c2 == combo else 2 if c2[0] == combo[0] else 1
                judged.append((q, sku, grade))
    return rows, judged
