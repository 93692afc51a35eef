"""The Magento Luma sample catalog (../shared/data/magento-luma, human-written, OSL/AFL) as shopgen
catalog rows, for benchmarks: the 147 configurable parents (apparel) plus the gear products, with
HTML stripped from descriptions and size/colour variants folded into list attributes."""

from __future__ import annotations

import csv
import hashlib
import html
import re
from pathlib import Path
from typing import Any

LUMA = Path(__file__).resolve().parents[2] / "shared" / "data" / "magento-luma"
_SKIP = {"has_options", "required_options", "new", "sale", "erin_recommends", "quantity_and_stock_status"}


def available(root: Path = LUMA) -> bool:
    return (root / "Configurable__products.csv").is_file()


def _text(h: str) -> str:
    t = re.sub(r"<\s*(br|/p|/li)\s*/?>", "\n", h or "", flags=re.I)
    t = html.unescape(re.sub(r"<[^>]+>", " ", t)).replace("\u2022", "\n")
    lines = [" ".join(x.split()) for x in t.splitlines()]
    return "\n".join(x for x in lines if x)


def _category(cats: str) -> str | None:
    paths = [c for c in (cats or "").split(",") if c.count("/") >= 1 and "/Collections/" not in c
             and "/Promotions/" not in c]
    return paths[0].rsplit("/", 1)[-1].strip() if paths else None


def _attrs(extra: str, variations: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in (extra or "").split(","):
        k, _, v = kv.partition("=")
        if k and v and k not in _SKIP:
            vals = [x for x in v.split("|") if x]
            out[k] = vals if len(vals) > 1 else vals[0]
    sizes, colors = [], []
    for var in (variations or "").split("|"):
        d = dict(x.partition("=")[::2] for x in var.split(","))
        if d.get("size") and d["size"] not in sizes:
            sizes.append(d["size"])
        if d.get("color") and d["color"] not in colors:
            colors.append(d["color"])
    if sizes:
        out["size"] = sizes
    if colors:
        out["color"] = colors
    return out


def products(root: Path = LUMA) -> list[dict[str, Any]]:
    csv.field_size_limit(10 ** 9)
    rows: list[dict[str, Any]] = []
    with open(root / "Configurable__products.csv", encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            if r["product_type"] != "configurable":
                continue
            rows.append({"sku": r["sku"], "title": r["name"], "category": _category(r["categories"]),
                         "attributes": _attrs(r["additional_attributes"], r["configurable_variations"]),
                         "price": float(r["price"]) if r.get("price") else None, "currency": "USD",
                         "locale": "en-US", "description": _text(r["description"])})
    for path in sorted(root.glob("Catalog__products_gear_*.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                attrs = {k: (v.split("\n") if "\n" in v else v) for k, v in r.items()
                         if v and k not in {"category", "name", "sku", "price", "qty", "description", "visibility",
                                            "attribute_set", *_SKIP}}
                cats = [c.strip() for c in r["category"].split("\n") if c.strip() not in ("", "Gear")
                        and "Collection" not in c]
                rows.append({"sku": r["sku"], "title": r["name"], "category": cats[0] if cats else "Gear",
                             "attributes": attrs, "price": float(r["price"]) if r.get("price") else None,
                             "currency": "USD", "locale": "en-US", "description": _text(r["description"])})
    return rows


def sample(n: int, root: Path = LUMA, salt: str = "shopgen") -> list[dict[str, Any]]:
    """A deterministic sample: the n products with the smallest hash of their SKU."""
    rows = products(root)
    return sorted(rows, key=lambda r: hashlib.sha256(f"{salt}:{r['sku']}".encode()).hexdigest())[:n]
