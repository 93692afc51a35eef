"""The shop's own copy as worked examples (pure): for each product and content type, one or two
human-written texts of the same type from the same category and language, each one that passes
every check against the facts it is shown with. Only the candidates a product is shown are checked,
so a night costs O(products generated), not O(catalog). This is how a shop's voice reaches the base model
before any fine-tuning. The choice is deterministic (a hash of the two SKUs), so a product sees the
same examples every night and its generation key need not name them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from shopgen.core.content import CONTENT_TYPES, input_product, target_of
from shopgen.core.records import Product
from shopgen.generate.engine import GateSpec, evaluate
from shopgen.generate.prompts import locale_key

Pool = dict[tuple[str, str], list[Product]]


def candidates(products: Sequence[Product], content: str, wanted: set[tuple[str, str]] | None = None) -> Pool:
    """(category, locale) -> the products with their own text of this type, in the groups asked for.
    Nothing is checked here: the gate runs only on the few examples a product is shown (choose)."""
    out: Pool = {}
    for p in products:
        if not p.category:
            continue
        group = (p.category, locale_key(p.locale))
        if (wanted is None or group in wanted) and target_of(p, content):
            out.setdefault(group, []).append(p)
    return out


def _rank(a: str, b: str) -> str:
    return hashlib.sha256(f"{a}|{b}".encode()).hexdigest()


class CandidatePool:
    """candidates() over a stream of products with at most `cap` per group and type, chosen in a
    fixed order (a hash of the SKU), so a driver that streams the catalog keeps a bounded pool."""

    def __init__(self, contents: Sequence[str], groups: set[tuple[str, str]], cap: int = 32):
        self.contents, self.groups, self.cap = list(contents), groups, cap
        self.heaps: dict[str, dict[tuple[str, str], list[tuple[str, str, Product]]]] = {t: {} for t in contents}

    def add(self, p: Product) -> None:
        import heapq

        group = (p.category or "", locale_key(p.locale))
        if not p.category or group not in self.groups:
            return
        for t in self.contents:
            if target_of(p, t):
                heap = self.heaps[t].setdefault(group, [])
                # A max-heap on the rank (negated hex digits) keeps the `cap` lowest ranks.
                item = (_negate(_rank("pool", p.sku)), p.sku, p)
                (heapq.heappush if len(heap) < self.cap else heapq.heappushpop)(heap, item)

    def pools(self) -> dict[str, Pool]:
        return {t: {g: [p for _, _, p in h] for g, h in gs.items()} for t, gs in self.heaps.items()}


def _negate(hexdigest: str) -> str:
    return hexdigest.translate(str.maketrans("0123456789abcdef", "fedcba9876543210"))


class Examples:
    """Examples of one content type, each checked once, when first chosen: an example must pass
    every check against the facts it is shown with (its own text removed from them)."""

    def __init__(self, pool: Pool, content: str, gate: GateSpec):
        self.pool, self.ct, self.gate = pool, CONTENT_TYPES[content], gate
        self.content = content
        self.verdicts: dict[str, tuple[Product, dict[str, Any]] | None] = {}

    def _checked(self, p: Product) -> tuple[Product, dict[str, Any]] | None:
        if p.sku not in self.verdicts:
            shown = input_product(p)
            target = target_of(p, self.content)
            parsed, _ = evaluate(json.dumps(target, ensure_ascii=False), shown, self.ct, self.gate)
            self.verdicts[p.sku] = (shown, parsed.model_dump()) if parsed is not None else None
        return self.verdicts[p.sku]

    def choose(self, p: Product, n: int) -> list[tuple[Product, dict[str, Any]]]:
        """Up to n examples for p from its category, never its own text or a copy of it; candidates
        are taken in a fixed order (a hash of both SKUs) and checked until n pass."""
        own = (p.description or "").strip()
        out = []
        for c in sorted(self.pool.get((p.category or "", locale_key(p.locale)), []), key=lambda c: _rank(p.sku, c.sku)):
            if len(out) >= n:
                break
            if c.sku == p.sku:
                continue
            ok = self._checked(c)
            if ok is not None and own not in json.dumps(ok[1], ensure_ascii=False):
                out.append(ok)
        return out


def wanted_types(types: dict[str, list[str]], n: int | dict[str, int]) -> list[str]:
    """The content types for which tonight's products are shown examples."""
    per = n if isinstance(n, dict) else {t: n for ts in types.values() for t in ts}
    return sorted({t for ts in types.values() for t in ts if per.get(t, 0) > 0})


def shop_examples(todo: Sequence[Product], catalog: Sequence[Product] | dict[str, Pool], types: dict[str, list[str]],
                  gate: GateSpec, n: int | dict[str, int]) -> dict[str, dict[str, list[tuple[Product, dict[str, Any]]]]]:
    """sku -> content type -> examples, for the products to generate tonight. catalog: the
    products to choose from, or their pools per type (CandidatePool.pools). n: examples per
    product, for every type or per type."""
    per = n if isinstance(n, dict) else {t: n for ts in types.values() for t in ts}
    wanted = wanted_types(types, n)
    if not wanted:
        return {}
    groups = {(p.category, locale_key(p.locale)) for p in todo if p.category}
    pools = {t: Examples(catalog.get(t, {}) if isinstance(catalog, dict) else candidates(catalog, t, groups), t, gate)
             for t in wanted}
    out: dict[str, dict[str, list[tuple[Product, dict[str, Any]]]]] = {}
    for p in todo:
        ex = {t: chosen for t in types.get(p.sku, []) if t in pools and (chosen := pools[t].choose(p, per[t]))}
        if ex:
            out[p.sku] = ex
    return out
