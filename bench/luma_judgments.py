"""Graded judgments for the Magento Luma catalog (bench/luma.py), by explicit rules over its own
fields; no search engine output is looked at. Deterministic.

A query names a product type (a rule over category, style attributes and title words) and up to two
constraints (gender, colour, material, climate, style, bag feature). Grades:
  3  the type, meeting every constraint
  2  the type, meeting one of two constraints
  1  the type, meeting none
  0  anything else (not written)
Gender: Luma's apparel SKUs start with M (men) or W (women); gear has a `gender` attribute, and
Unisex meets either. Typo queries are graded as their correct spelling. Name queries (a product's
full title, for 12 products picked by a hash of the SKU) grade that product 3 and its type 1."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from typing import Any

Pred = Callable[[dict[str, Any]], bool]


def _vals(p: dict[str, Any], key: str) -> list[str]:
    v = p["attributes"].get(key)
    return [html.unescape(str(x)).lower() for x in (v if isinstance(v, list) else [v] if v else [])]


def _title(p: dict[str, Any]) -> str:
    return html.unescape(p["title"]).lower()


def _cat(*names: str) -> Pred:
    return lambda p: p["category"] in names


def _word(*words: str) -> Pred:
    return lambda p: any(w in _title(p) for w in words)


def _attr(key: str, *values: str) -> Pred:
    return lambda p: any(v in x for x in _vals(p, key) for v in values)


def _all(*preds: Pred) -> Pred:
    return lambda p: all(f(p) for f in preds)


def _any(*preds: Pred) -> Pred:
    return lambda p: any(f(p) for f in preds)


def _gender(g: str) -> Pred:
    def pred(p: dict[str, Any]) -> bool:
        if p["sku"][:1] in "MW" and not p["sku"].startswith("24-"):
            return p["sku"][0] == g[0].upper()
        return bool({g.lower(), "unisex"} & set(_vals(p, "gender")))
    return pred


TYPES: dict[str, Pred] = {
    "hoodie": _all(_cat("Hoodies & Sweatshirts"), _any(_word("hoodie"), _attr("style_general", "hoodie", "hooded"))),
    "sweatshirt": _cat("Hoodies & Sweatshirts"),
    "jacket": _cat("Jackets"),
    "pants": _cat("Pants"),
    "shorts": _cat("Shorts"),
    "tee": _cat("Tees"),
    "tank": _any(_cat("Tanks"), _all(_cat("Bras & Tanks"), _any(_word("tank"), _attr("style_general", "tank")))),
    "bra": _all(_cat("Bras & Tanks"), _any(_word("bra"), _attr("style_general", "bra"))),
    "bag": _cat("Bags"),
    "backpack": _all(_cat("Bags"), _any(_word("backpack"), _attr("style_bags", "backpack"))),
    "duffle": _all(_cat("Bags"), _any(_word("duffle"), _attr("style_bags", "duffel"))),
    "messenger": _all(_cat("Bags"), _any(_word("messenger"), _attr("style_bags", "messenger"))),
    "watch": _cat("Watches"),
    "ball": _all(_cat("Fitness Equipment"), _word("ball")),
    "band": _all(_cat("Fitness Equipment"), _word("band")),
    "yoga strap": _all(_cat("Fitness Equipment"), _word("strap")),
}

# (query, type, constraints)
QUERIES: list[tuple[str, str, list[Pred]]] = [
    ("hoodie", "hoodie", []), ("sweatshirt", "sweatshirt", []), ("jacket", "jacket", []),
    ("pants", "pants", []), ("shorts", "shorts", []), ("t-shirt", "tee", []), ("tank top", "tank", []),
    ("sports bra", "bra", []), ("gym bag", "bag", []), ("backpack", "backpack", []),
    ("duffle bag", "duffle", []), ("messenger bag", "messenger", []), ("watch", "watch", []),
    ("exercise ball", "ball", []), ("resistance band", "band", []), ("yoga strap", "yoga strap", []),
    ("men's hoodie", "hoodie", [_gender("men")]), ("women's jacket", "jacket", [_gender("women")]),
    ("womens shorts", "shorts", [_gender("women")]), ("mens pants", "pants", [_gender("men")]),
    ("men's tee", "tee", [_gender("men")]), ("women's tank top", "tank", [_gender("women")]),
    ("women's watch", "watch", [_gender("women")]), ("mens watch", "watch", [_gender("men")]),
    ("black hoodie", "hoodie", [_attr("color", "black")]), ("blue jacket", "jacket", [_attr("color", "blue")]),
    ("red t-shirt", "tee", [_attr("color", "red")]), ("gray pants", "pants", [_attr("color", "gray")]),
    ("green shorts", "shorts", [_attr("color", "green")]), ("purple bra", "bra", [_attr("color", "purple")]),
    ("wool hoodie", "hoodie", [_attr("material", "wool")]), ("fleece jacket", "jacket", [_attr("material", "fleece")]),
    ("cotton tee", "tee", [_attr("material", "cotton")]), ("nylon shorts", "shorts", [_attr("material", "nylon")]),
    ("leather bag", "bag", [_attr("material", "leather")]),
    ("rain jacket", "jacket", [_any(_attr("climate", "rainy"), _attr("style_general", "rain coat"))]),
    ("winter jacket", "jacket", [_attr("climate", "cold", "wintry")]),
    ("windbreaker", "jacket", [_attr("style_general", "windbreaker")]),
    ("insulated jacket", "jacket", [_attr("style_general", "insulated")]),
    ("track pants", "pants", [_attr("style_bottom", "track pants")]),
    ("sweatpants", "pants", [_attr("style_bottom", "sweatpants")]),
    ("leggings", "pants", [_attr("style_bottom", "leggings", "tights")]),
    ("capri pants", "pants", [_attr("style_bottom", "capri")]),
    ("compression shorts", "shorts", [_attr("style_bottom", "compression")]),
    ("full zip hoodie", "hoodie", [_attr("style_general", "full zip")]),
    ("pullover sweatshirt", "sweatshirt", [_attr("style_general", "pullover")]),
    ("waterproof backpack", "backpack", [_attr("features_bags", "waterproof")]),
    ("laptop bag", "bag", [_any(_attr("style_bags", "laptop"), _attr("features_bags", "laptop sleeve"))]),
    ("women's black jacket", "jacket", [_gender("women"), _attr("color", "black")]),
    ("men's blue shorts", "shorts", [_gender("men"), _attr("color", "blue")]),
    ("women's cotton tee", "tee", [_gender("women"), _attr("material", "cotton")]),
    ("men's fleece jacket", "jacket", [_gender("men"), _attr("material", "fleece")]),
    ("women's yoga pants", "pants", [_gender("women"), _any(_attr("activity", "yoga"), _word("yoga"))]),
    # Typos, graded as their correct spelling.
    ("hoodei", "hoodie", []), ("jaket", "jacket", []), ("backpak", "backpack", []),
    ("sweatshrit", "sweatshirt", []), ("mens jakcet", "jacket", [_gender("men")]),
]


def judgments(products: list[dict[str, Any]], names: int = 12) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    for query, typ, cons in QUERIES:
        for p in products:
            if not TYPES[typ](p):
                continue
            met = sum(c(p) for c in cons)
            grade = 3 if met == len(cons) else (2 if met else 1)
            out.append((query, p["sku"], grade))
    seen: set[str] = set()
    picked = sorted(products, key=lambda p: hashlib.sha256(f"name:{p['sku']}".encode()).hexdigest())
    for p in picked:
        q = " ".join(_title(p).split())
        if len(seen) == names or q in seen or q in {x[0] for x in QUERIES}:
            continue
        seen.add(q)
        typ = next((t for t, f in TYPES.items() if f(p)), None)
        same = [o for o in products if typ and TYPES[typ](o)] if typ else [o for o in products
                                                                       if o["category"] == p["category"]]
        out += [(q, o["sku"], 3 if o["sku"] == p["sku"] else 1) for o in same]
        if p not in same:
            out.append((q, p["sku"], 3))
    return out
