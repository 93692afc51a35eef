"""Which product a question without a SKU is about (pure, plus one search adapter). Candidates come
from the search index (`--alias`) or from the catalog's titles; a product is named only when its title
is clearly in the question and no other title comes close. Otherwise no product is guessed: the
question is `not_in_catalog` with the candidates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shopgen.answers.facts import stems
from shopgen.answers.resolve import near, roots
from shopgen.core.records import Product


@dataclass(frozen=True)
class Match:
    sku: str | None
    candidates: tuple[str, ...]
    share: float  # of the best title's words found in the question


def title_share(question: str, title: str) -> float:
    words = roots(stems(title))
    asked = roots(stems(question))
    return sum(1 for w in words if near(w, asked)) / len(words) if words else 0.0


def choose(question: str, titles: Sequence[tuple[str, str]], min_share: float = 0.75, margin: float = 0.15) -> Match:
    """The product whose title the question names, from (sku, title) candidates."""
    scored = sorted(((title_share(question, t), sku) for sku, t in titles), key=lambda x: (-x[0], x[1]))
    cands = tuple(sku for s, sku in scored[:5] if s > 0)
    if not scored or scored[0][0] < min_share:
        return Match(None, cands, scored[0][0] if scored else 0.0)
    # Clear: no runner-up within the margin, or the only title named in full.
    if len(scored) > 1 and scored[1][0] > scored[0][0] - margin and not (scored[0][0] == 1.0 > scored[1][0]):
        return Match(None, cands, scored[0][0])
    return Match(scored[0][1], cands, scored[0][0])


class TitleIndex:
    """The catalog's titles by word, so a question is scored only against titles sharing a word."""

    def __init__(self, products: Iterable[Product]):
        self.titles: dict[str, str] = {}
        self.by_word: dict[str, set[str]] = defaultdict(set)
        self.add(products)

    def add(self, products: Iterable[Product]) -> None:
        for p in products:
            self.titles[p.sku] = p.title
            for w in roots(stems(p.title)):
                self.by_word[w].add(p.sku)

    def candidates(self, question: str, k: int = 50) -> list[tuple[str, str]]:
        hits: dict[str, int] = defaultdict(int)
        for w in roots(stems(question)):
            skus = self.by_word.get(w, set())
            if len(skus) <= max(50, len(self.titles) // 5):  # a word most titles share names nothing
                for s in skus:
                    hits[s] += 1
        best = sorted(hits, key=lambda s: (-hits[s], s))[:k]
        return [(s, self.titles[s]) for s in best]


def index_candidates(es: Any, alias: str, question: str, k: int = 20) -> list[tuple[str, str]]:
    """(sku, title) of the index's best title matches for the question."""
    res = es.search(index=alias, query={"match": {"title": {"query": question[:500]}}}, size=k,
                    source=["sku", "title"])
    return [(h["_source"]["sku"], h["_source"].get("title") or "") for h in res["hits"]["hits"]]


def doc_product(doc: dict[str, Any]) -> Product:
    """An indexed document's seller facts as a Product (the generated copy is not a fact source)."""
    return Product.model_validate({
        "sku": doc["sku"], "title": doc.get("title") or doc["sku"], "category": doc.get("category"),
        "brand": doc.get("brand"), "attributes": doc.get("attributes") or {}, "price": doc.get("price"),
        "currency": doc.get("currency"), "locale": doc.get("locale") or "en-US",
        "description": doc.get("source_description"), "updated_at": doc.get("updated_at")})


def index_products(es: Any, alias: str, skus: Sequence[str]) -> dict[str, Product]:
    """The indexed products of these SKUs (absent ones are left out)."""
    out: dict[str, Product] = {}
    for i in range(0, len(skus), 500):
        res = es.search(index=alias, query={"terms": {"sku": list(skus[i:i + 500])}}, size=500,
                        source_excludes=["embedding", "copy"])
        for h in res["hits"]["hits"]:
            try:
                p = doc_product(h["_source"])
            except ValueError:
                continue
            out[p.sku] = p
    return out
