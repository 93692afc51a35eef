"""Search over the alias: query builders and rank fusion are pure; `search` runs them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

MODES = ("bm25", "knn", "hybrid")
BM25_FIELDS = ["title^3", "attributes_text^2", "brand^2", "category^1.5", "description", "ad_text",
               "source_description"]
_SOURCE = {"excludes": ["embedding"]}


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    brand: str | None = None
    locale: str | None = None
    min_price: float | None = None
    max_price: float | None = None

    def clauses(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"term": {f: getattr(self, f)}} for f in ("category", "brand", "locale")
                                     if getattr(self, f)]
        rng = {k: v for k, v in (("gte", self.min_price), ("lte", self.max_price)) if v is not None}
        if rng:
            out.append({"range": {"price": rng}})
        return out


def bm25_body(text: str, k: int, filters: Filters = Filters()) -> dict[str, Any]:
    mm = {"multi_match": {"query": text, "fields": BM25_FIELDS, "type": "best_fields", "tie_breaker": 0.3}}
    return {"query": {"bool": {"must": [mm], "filter": filters.clauses()}}, "size": k, "_source": _SOURCE}


def knn_body(vector: Sequence[float], k: int, filters: Filters = Filters()) -> dict[str, Any]:
    knn: dict[str, Any] = {"field": "embedding", "query_vector": list(map(float, vector)), "k": k,
                           "num_candidates": max(100, 10 * k)}
    if filters.clauses():
        knn["filter"] = filters.clauses()
    return {"knn": knn, "size": k, "_source": _SOURCE}


def rrf(rankings: Sequence[Sequence[dict[str, Any]]], k: int, rank_constant: int = 60) -> list[dict[str, Any]]:
    """Reciprocal-rank fusion of several hit lists (keyed by _id): score = sum 1/(c + rank)."""
    scores: dict[str, float] = {}
    first: dict[str, dict[str, Any]] = {}
    for hits in rankings:
        for rank, h in enumerate(hits, start=1):
            scores[h["_id"]] = scores.get(h["_id"], 0.0) + 1.0 / (rank_constant + rank)
            first.setdefault(h["_id"], h)
    order = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    return [{**first[i], "_score": scores[i]} for i in order]


def to_hit(h: dict[str, Any]) -> dict[str, Any]:
    s = h.get("_source", {})
    return {"sku": s.get("sku", h["_id"]), "score": h["_score"], "title": s.get("title"),
            "description": s.get("description"), "brand": s.get("brand"), "category": s.get("category"),
            "price": s.get("price"), "model_version": s.get("model_version")}


def search(es: Elasticsearch, alias: str, text: str, mode: str = "bm25", k: int = 10,
           encoder: Any = None, filters: Filters = Filters()) -> list[dict[str, Any]]:
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    if not es.indices.exists_alias(name=alias):
        raise LookupError(f"alias {alias!r} does not exist yet: run `shopgen nightly` first")
    bm25 = knn = None
    if mode in ("bm25", "hybrid"):
        bm25 = es.search(index=alias, **bm25_body(text, k if mode == "bm25" else 2 * k, filters))["hits"]["hits"]
    if mode in ("knn", "hybrid"):
        vec = encoder.encode([text], normalize_embeddings=True)[0]
        knn = es.search(index=alias, **knn_body(vec, k if mode == "knn" else 2 * k, filters))["hits"]["hits"]
    hits = bm25 if mode == "bm25" else knn if mode == "knn" else rrf([bm25, knn], k)
    return [to_hit(h) for h in hits[:k]]
