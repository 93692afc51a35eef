#!/usr/bin/env python3
"""Generate graded relevance judgments for the bundled sample catalog.

Writes ``judgments.csv`` (``query,sku,grade``) next to this script from
``sample_catalog.jsonl``, judging each query by an explicit rule over the
catalog fields (category, brand, attributes, locale); no search engine output
is looked at. Stdlib only and deterministic: rerunning rewrites the same file.

Grades (rows with grade 0 are omitted):
  3  exact: the product type the query asks for, meeting every constraint in it
  2  partial: the right product type, meeting the query's main constraint (or
     one of two) but not all of them; rules say which per query
  1  related: the right category, constraints not met
  0  anything else
A product whose listing language differs from the query's (zh-CN product for
an English query, en-US product for a Chinese one) is graded one lower, but
never below 1: it is the right product, but the shopper may not read its page.
zh-CN attribute values are translated to the English vocabulary (ZH_VALUES)
before the rules run, so one rule covers both locales.

Usage:  python3 data/make_judgments.py
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CATALOG = HERE / "sample_catalog.jsonl"
OUT = HERE / "judgments.csv"

# zh-CN attribute values (from make_sample_catalog.ZH) -> the en-US vocabulary.
ZH_VALUES = {
    "三季": "3-season", "20D 防撕裂尼龙": "20D ripstop nylon", "铝合金": "aluminum",
    "雾灰色": "fog", "650 蓬鸭绒": "650-fill duck down", "木乃伊形": "mummy", "常规": "regular",
    "藏青色": "navy", "左侧": "left", "再生聚酯纤维": "recycled polyester", "橄榄绿": "olive",
    "均码": "one size", "可充电锂电池": "rechargeable Li-ion", "橙色": "orange", "煎锅": "frying pan",
    "铸铁": "cast iron", "公路": "road", "男款": "men's", "工程网布": "engineered mesh",
    "湖蓝色": "lake blue", "女款": "women's", "三层尼龙": "3-layer nylon", "可调节": "adjustable",
    "酒红色": "burgundy", "18/8 不锈钢": "18/8 stainless steel", "吸管盖": "straw lid",
    "薄荷绿": "mint", "软木与天然橡胶": "cork and natural rubber", "原木色": "natural wood",
    "细纹": "fine ribbed", "主厨刀": "chef's knife", "大马士革钢": "Damascus steel", "胡桃木": "walnut",
    "摇臂": "swing arm", "象牙白": "ivory", "竹木": "bamboo", "竹青色": "bamboo green",
}
CJK = re.compile(r"[\u3400-\u9fff]")

GREENS = {"forest green", "olive", "moss", "sage", "pine", "juniper", "mint", "bamboo green"}
BLUES = {"navy", "sky blue", "cobalt", "glacier blue", "midnight", "lake blue"}
BLUE_GREENS = {"teal", "lagoon"}
NEAR_BLACK = {"charcoal", "graphite"}
WOOD_HANDLES = {"pakkawood", "olive wood", "walnut", "bamboo"}
SKILLETS = {"frying pan", "saute pan", "grill pan"}


def load_catalog(path: Path = CATALOG) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def english_attributes(p: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in p["attributes"].items():
        if isinstance(v, str) and CJK.search(v):
            if v not in ZH_VALUES:
                raise KeyError(f"{p['sku']}: no translation for {k}={v!r}; add it to ZH_VALUES")
            v = ZH_VALUES[v]
        out[k] = v
    return out


class P:
    """A product as the rules see it: category, brand and English attribute values."""

    def __init__(self, row: dict[str, Any]):
        self.sku = row["sku"]
        self.category = row["category"]
        self.brand = row["brand"]
        self.locale = row["locale"]
        self.a = english_attributes(row)

    def num(self, key: str) -> float:
        v = self.a.get(key)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")

    def text(self, key: str) -> str:
        return str(self.a.get(key, "")).lower()

    def flag(self, key: str) -> bool:
        return self.a.get(key) is True

    def min_color_temp(self) -> float:
        # "2700-6500" is an adjustable range: it can be as warm as its lower end.
        raw = str(self.a.get("color_temperature_k", ""))
        return float(raw.split("-")[0]) if raw else float("nan")


def tier(p: P, categories: str | tuple[str, ...], exact: bool, partial: bool = False) -> int:
    """0 outside ``categories``; else 3 if ``exact``, 2 if ``partial``, 1 otherwise."""
    if isinstance(categories, str):
        categories = (categories,)
    if p.category not in categories:
        return 0
    return 3 if exact else 2 if partial else 1


def both(a: bool, b: bool) -> tuple[bool, bool]:
    """(exact, partial) for a query with two equally weighted constraints."""
    return a and b, a or b


Rule = Callable[[P], int]

# (query, rule). Each rule's comment states the grade-3 / grade-2 conditions;
# grade 1 is "same category" unless the comment says otherwise.
QUERIES: list[tuple[str, Rule]] = [
    # --- head queries: every product of the category is exact -------------------------
    ("sleeping bag", lambda p: tier(p, "Sleeping Bags", True)),
    ("tent", lambda p: tier(p, "Tents", True)),
    ("headlamp", lambda p: tier(p, "Headlamps", True)),
    ("yoga mat", lambda p: tier(p, "Yoga Mats", True)),
    ("bluetooth speaker", lambda p: tier(p, "Bluetooth Speakers", True)),
    ("water bottle", lambda p: tier(p, "Water Bottles", True)),
    ("rain jacket", lambda p: tier(p, "Rain Jackets", True)),
    ("desk lamp", lambda p: tier(p, "Desk Lamps", True)),
    ("running shoes", lambda p: tier(p, "Running Shoes", True)),

    # --- attribute queries ----------------------------------------------------------
    # 3: sleeps >= 3 and rated >= 2000 mm; 2: sleeps >= 3 (capacity is the hard need).
    ("waterproof tent for 3 people",
     lambda p: tier(p, "Tents", p.num("capacity_persons") >= 3 and p.num("waterproof_rating_mm") >= 2000,
                    p.num("capacity_persons") >= 3)),
    # 3: 4-season rating.
    ("4 season tent", lambda p: tier(p, "Tents", p.text("season_rating") == "4-season")),
    # 3: under 1400 g (the catalog's own "Ultralight" cut-off); 2: under 1800 g.
    ("ultralight tent", lambda p: tier(p, "Tents", p.num("weight_g") < 1400, p.num("weight_g") < 1800)),
    # 3: down fill (incl. blends) rated below 0 °C; 2: rated below 0 °C with other fill.
    ("down sleeping bag rated below freezing",
     lambda p: tier(p, "Sleeping Bags", "down" in p.text("fill") and p.num("temperature_rating_c") < 0,
                    p.num("temperature_rating_c") < 0)),
    # 3: rechargeable Li-ion battery.
    ("rechargeable headlamp", lambda p: tier(p, "Headlamps", "rechargeable" in p.text("battery_type"))),
    # 3: >= 1000 lumens; 2: >= 600 lumens.
    ("1000 lumen headlamp", lambda p: tier(p, "Headlamps", p.num("lumens") >= 1000, p.num("lumens") >= 600)),
    # 3: cast iron (plain or enameled) and skillet-shaped; 2: one of the two.
    ("cast iron skillet",
     lambda p: tier(p, "Cookware", *both("cast iron" in p.text("material"), p.text("item_type") in SKILLETS))),
    # 3: stockpot that works on induction; 2: stockpot (the item type is the hard need).
    ("induction compatible stockpot",
     lambda p: tier(p, "Cookware", p.text("item_type") == "stockpot" and p.flag("induction_compatible"),
                    p.text("item_type") == "stockpot")),
    # 3: Damascus steel chef's knife; 2: one of the two.
    ("damascus chef knife",
     lambda p: tier(p, "Kitchen Knives", *both("damascus" in p.text("blade_material"),
                                               p.text("knife_type") == "chef's knife"))),
    # 3: insulated.
    ("insulated water bottle", lambda p: tier(p, "Water Bottles", p.flag("insulated"))),
    # 3: trail shoe for women (women's or unisex); 2: one of the two.
    ("women's trail running shoes",
     lambda p: tier(p, "Running Shoes", *both(p.text("terrain") == "trail",
                                              p.text("gender") in ("women's", "unisex")))),
    # 3: 0 mm heel drop; 2: low drop (<= 4 mm).
    ("zero drop running shoes",
     lambda p: tier(p, "Running Shoes", p.num("heel_drop_mm") == 0, p.num("heel_drop_mm") <= 4)),
    # 3: men's or unisex 3-layer shell; 2: one of the two.
    ("men's 3 layer rain jacket",
     lambda p: tier(p, "Rain Jackets", *both(p.text("gender") in ("men's", "unisex"),
                                             p.text("material").startswith("3-layer")))),
    # 3: dimmable and has a USB charging port; 2: one of the two.
    ("dimmable desk lamp with usb charging port",
     lambda p: tier(p, "Desk Lamps", *both(p.flag("dimmable"), p.flag("usb_charging_port")))),

    # --- use-case / natural-language queries -----------------------------------------
    # Sleeping bags: 3 rated <= -7 °C, 2 rated below 0 °C, 1 other bags; 4-season tents: 1.
    ("something to keep me warm at night while camping in winter",
     lambda p: max(tier(p, "Sleeping Bags", p.num("temperature_rating_c") <= -7,
                        p.num("temperature_rating_c") < 0),
                   1 if p.category == "Tents" and p.text("season_rating") == "4-season" else 0)),
    # Rain jackets: 3 rated >= 20000 mm, 2 others; backpacks with a rain cover included: 2.
    ("gear to stay dry when hiking in heavy rain",
     lambda p: max(tier(p, "Rain Jackets", p.num("waterproof_rating_mm") >= 20000, True),
                   2 if p.category == "Backpacks" and p.flag("rain_cover_included") else 0)),
    # 3: >= 50 L; 2: 35-49 L.
    ("backpack for a week long trek",
     lambda p: tier(p, "Backpacks", p.num("capacity_l") >= 50, p.num("capacity_l") >= 35)),
    # 3: <= 25 L; 2: 26-30 L (the catalog's daypack range ends at 30 L).
    ("small daypack for commuting",
     lambda p: tier(p, "Backpacks", p.num("capacity_l") <= 25, p.num("capacity_l") <= 30)),
    # 3: >= 6 mm thick; 2: 5 mm or more.
    ("thick yoga mat that is easy on my knees",
     lambda p: tier(p, "Yoga Mats", p.num("thickness_mm") >= 6, p.num("thickness_mm") >= 5)),
    # 3: can be as warm as 3000 K or below and dimmable; 2: one of the two.
    ("warm dimmable light for reading at night",
     lambda p: tier(p, "Desk Lamps", *both(p.min_color_temp() <= 3000, p.flag("dimmable")))),
    # 3: >= 20 h playtime and IPX7/IP67; 2: one of the two.
    ("speaker that lasts all day at the beach",
     lambda p: tier(p, "Bluetooth Speakers",
                    *both(p.num("playtime_h") >= 20, p.text("waterproof_rating") in ("ipx7", "ip67")))),
    # 3: bread knife.
    ("knife for slicing bread", lambda p: tier(p, "Kitchen Knives", p.text("knife_type") == "bread knife")),

    # --- brand queries -------------------------------------------------------------
    # 3: any Outcrop product (a brand-only query has no category).
    ("outcrop", lambda p: 3 if p.brand == "Outcrop" else 0),
    # 3: Northpine sleeping bag.
    ("northpine sleeping bag", lambda p: tier(p, "Sleeping Bags", p.brand == "Northpine")),
    # 3: Hanaori kitchen knife.
    ("hanaori knife", lambda p: tier(p, "Kitchen Knives", p.brand == "Hanaori")),

    # --- material / colour queries ---------------------------------------------------
    # 3: waxed canvas.
    ("waxed canvas backpack", lambda p: tier(p, "Backpacks", p.text("material") == "waxed canvas")),
    # 3: a green colour (GREENS).
    ("green backpack", lambda p: tier(p, "Backpacks", p.text("color") in GREENS)),
    # 3: a blue colour (BLUES); 2: blue-green (teal, lagoon).
    ("blue rain jacket",
     lambda p: tier(p, "Rain Jackets", p.text("color") in BLUES, p.text("color") in BLUE_GREENS)),
    # 3: merino wool upper.
    ("merino wool running shoes", lambda p: tier(p, "Running Shoes", "merino" in p.text("upper_material"))),
    # 3: borosilicate glass.
    ("glass water bottle", lambda p: tier(p, "Water Bottles", "glass" in p.text("material"))),
    # 3: a wooden handle (WOOD_HANDLES, pakkawood counts).
    ("kitchen knife with wooden handle",
     lambda p: tier(p, "Kitchen Knives", p.text("handle_material") in WOOD_HANDLES)),

    # --- Chinese queries (en-US products drop one grade, see module docstring) --------
    # "sleeping bag": every sleeping bag is exact.
    ("睡袋", lambda p: tier(p, "Sleeping Bags", True)),
    # "two-person tent": 3 sleeps exactly 2.
    ("双人帐篷", lambda p: tier(p, "Tents", p.num("capacity_persons") == 2)),
    # "insulated water bottle": 3 insulated.
    ("保温水壶", lambda p: tier(p, "Water Bottles", p.flag("insulated"))),
]


def query_is_chinese(query: str) -> bool:
    return bool(CJK.search(query))


def grade(query: str, rule: Rule, p: P) -> int:
    g = rule(p)
    if g > 0 and query_is_chinese(query) != p.locale.lower().startswith("zh"):
        g = max(1, g - 1)
    return g


def build(catalog: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(query, sku, grade) rows with grade > 0, per query best grade first, then by sku."""
    products = [P(r) for r in catalog]
    rows: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    for query, rule in QUERIES:
        if query in seen:
            raise ValueError(f"duplicate query {query!r}")
        seen.add(query)
        graded = [(p.sku, grade(query, rule, p)) for p in products]
        graded = sorted(((s, g) for s, g in graded if g > 0), key=lambda sg: (-sg[1], sg[0]))
        if not graded:
            raise ValueError(f"query {query!r} has no relevant product")
        rows.extend((query, s, g) for s, g in graded)
    return rows


def render(rows: list[tuple[str, str, int]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("query", "sku", "grade"))
    w.writerows(rows)
    return buf.getvalue()


def main() -> None:
    rows = build(load_catalog())
    OUT.write_text(render(rows), encoding="utf-8")
    queries = len({q for q, _, _ in rows})
    by_grade = {g: sum(1 for *_, x in rows if x == g) for g in (3, 2, 1)}
    print(f"wrote {OUT.name}: {queries} queries, {len(rows)} judged rows "
          f"(grade 3: {by_grade[3]}, grade 2: {by_grade[2]}, grade 1: {by_grade[1]})")


if __name__ == "__main__":
    main()
