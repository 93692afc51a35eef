"""The shop's own copy as worked examples (pure): for each product and content type, one or two
human-written texts of the same type from the same category and language, each one that passes
every check against the facts it is shown with. This is how a shop's voice reaches the base model
before any fine-tuning. The choice is deterministic (a hash of the two SKUs), so a product sees the
same examples every night and its generation key need not name them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import Product
from shopgen.finetune.data import input_product, target_of
from shopgen.generate.engine import GateSpec, evaluate
from shopgen.generate.prompts import locale_key


def candidates(products: Sequence[Product], content: str, gate: GateSpec) -> dict[tuple[str, str], list[tuple[Product, dict[str, Any]]]]:
    """(category, locale) -> the products whose own text of this type passes the gate, shown
    without that text (the example's facts must support its answer on their own)."""
    ct = CONTENT_TYPES[content]
    out: dict[tuple[str, str], list[tuple[Product, dict[str, Any]]]] = {}
    for p in products:
        target = target_of(p, content)
        if not target or not p.category:
            continue
        shown = input_product(p)
        parsed, _ = evaluate(json.dumps(target, ensure_ascii=False), shown, ct, gate)
        if parsed is not None:
            out.setdefault((p.category, locale_key(p.locale)), []).append((shown, parsed.model_dump()))
    return out


def _rank(a: str, b: str) -> str:
    return hashlib.sha256(f"{a}|{b}".encode()).hexdigest()


def choose(p: Product, pool: dict[tuple[str, str], list[tuple[Product, dict[str, Any]]]], n: int,
           ) -> list[tuple[Product, dict[str, Any]]]:
    """Up to n examples for p from its category, never its own text or a copy of it."""
    own = (p.description or "").strip()
    cands = [c for c in pool.get((p.category or "", locale_key(p.locale)), [])
             if c[0].sku != p.sku and own not in json.dumps(c[1], ensure_ascii=False)]
    return sorted(cands, key=lambda c: _rank(p.sku, c[0].sku))[:n]


def shop_examples(todo: Sequence[Product], catalog: Sequence[Product], types: dict[str, list[str]],
                  gate: GateSpec, n: int | dict[str, int]) -> dict[str, dict[str, list[tuple[Product, dict[str, Any]]]]]:
    """sku -> content type -> examples, for the products to generate tonight. n: examples per
    product, for every type or per type."""
    per = n if isinstance(n, dict) else {t: n for ts in types.values() for t in ts}
    wanted = sorted({t for ts in types.values() for t in ts if per.get(t, 0) > 0})
    if not wanted:
        return {}
    pools = {t: candidates(catalog, t, gate) for t in wanted}
    out: dict[str, dict[str, list[tuple[Product, dict[str, Any]]]]] = {}
    for p in todo:
        ex = {t: chosen for t in types.get(p.sku, []) if t in pools and (chosen := choose(p, pools[t], per[t]))}
        if ex:
            out[p.sku] = ex
    return out
