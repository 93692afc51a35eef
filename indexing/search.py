"""Search over an alias (or one index): query builders and rank fusion are pure; `search` runs them.
hybrid uses Elasticsearch's RRF retriever when the cluster allows it, else the same fusion here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from indexing.mapping import CJK

MODES = ("bm25", "knn", "hybrid")
# Boosts: the title and the shop's structured fields say what a product is; generated copy adds
# vocabulary (use cases, synonyms) but also filler, so it counts for less.
EN_FIELDS = ["title^3", "category.text^2", "brand.text^2", "attributes_text^1.5", "bullets^1.5", "seo_title^1.5",
             "description", "source_description", "ad_text^0.5", "faq_text^0.5"]
ZH_FIELDS = [f.replace("^", ".zh^", 1) if "^" in f and not f.startswith(("category", "brand")) else
             (f + ".zh" if "^" not in f else f) for f in EN_FIELDS]
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


def bm25_query(text: str, filters: Filters = Filters()) -> dict[str, Any]:
    fields = ZH_FIELDS if CJK.search(text) else EN_FIELDS
    mm = {"multi_match": {"query": text, "fields": fields, "type": "best_fields", "tie_breaker": 0.3}}
    return {"bool": {"must": [mm], "filter": filters.clauses()}}


def bm25_body(text: str, k: int, filters: Filters = Filters()) -> dict[str, Any]:
    return {"query": bm25_query(text, filters), "size": k, "_source": _SOURCE}


def knn_spec(vector: Sequence[float], k: int, filters: Filters = Filters()) -> dict[str, Any]:
    knn: dict[str, Any] = {"field": "embedding", "query_vector": list(map(float, vector)), "k": k,
                           "num_candidates": max(100, 2 * k)}
    if filters.clauses():
        knn["filter"] = filters.clauses()
    return knn


def knn_body(vector: Sequence[float], k: int, filters: Filters = Filters()) -> dict[str, Any]:
    return {"knn": knn_spec(vector, k, filters), "size": k, "_source": _SOURCE}


def rrf_body(text: str, vector: Sequence[float], k: int, filters: Filters = Filters(), window: int = 100,
             rank_constant: int = 60) -> dict[str, Any]:
    window = max(window, k)
    return {"retriever": {"rrf": {
        "retrievers": [{"standard": {"query": bm25_query(text, filters)}}, {"knn": knn_spec(vector, window, filters)}],
        "rank_window_size": window, "rank_constant": rank_constant}}, "size": k, "_source": _SOURCE}


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
            "price": s.get("price"), "locale": s.get("locale"), "model_version": s.get("model_version"),
            "related_skus": s.get("related_skus"), "source_description": s.get("source_description"),
            # Per content type: copy.<type>.status (fresh, kept, none) and why it failed.
            "copy": s.get("copy")}


# Clusters (by their node URLs) whose license or version refused the RRF retriever; we fuse here for them.
_NO_SERVER_RRF: set[tuple[str, ...]] = set()


def _cluster_key(es: Elasticsearch) -> tuple[str, ...]:
    return tuple(sorted(n.base_url for n in es.transport.node_pool.all()))


def _rrf_refused(e: ApiError) -> bool:
    """A license refusal, or a version that does not know the retriever (not any other bad request)."""
    msg = str(e).lower()
    return (e.status_code == 403 and "licen" in msg) or "non-compliant" in msg or (
        e.status_code == 400 and ("unknown" in msg or "parsing" in msg) and ("retriever" in msg or "rrf" in msg))


def hybrid_hits(es: Elasticsearch, target: str, text: str, vector: Sequence[float], k: int, filters: Filters,
                how: str = "auto", window: int = 100, rank_constant: int = 60) -> tuple[list[dict[str, Any]], str]:
    """Returns the fused hits and which fusion ran ("server" or "client")."""
    if how == "server" or (how == "auto" and _cluster_key(es) not in _NO_SERVER_RRF):
        try:
            return es.search(index=target, **rrf_body(text, vector, k, filters, window, rank_constant))["hits"]["hits"], "server"
        except ApiError as e:
            if how == "server" or not _rrf_refused(e):
                raise
            _NO_SERVER_RRF.add(_cluster_key(es))
    window = max(window, k)
    bm25 = es.search(index=target, **bm25_body(text, window, filters))["hits"]["hits"]
    knn = es.search(index=target, **knn_body(vector, window, filters))["hits"]["hits"]
    return rrf([bm25, knn], k, rank_constant), "client"


def search(es: Elasticsearch, target: str, text: str, mode: str = "bm25", k: int = 10,
           encoder: Any = None, filters: Filters = Filters(), hybrid: str = "auto", window: int = 100,
           rank_constant: int = 60) -> list[dict[str, Any]]:
    """`target` is an alias or one index (the gate searches a new index before it goes live)."""
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    if not es.indices.exists(index=target):
        raise LookupError(f"alias or index {target!r} does not exist yet: run `shopgen nightly` or "
                          "`shopgen index build` first")
    if mode == "bm25":
        hits = es.search(index=target, **bm25_body(text, k, filters))["hits"]["hits"]
    else:
        vec = encoder.encode([text], normalize_embeddings=True)[0]
        if mode == "knn":
            hits = es.search(index=target, **knn_body(vec, k, filters))["hits"]["hits"]
        else:
            hits, _ = hybrid_hits(es, target, text, vec, k, filters, hybrid, window, rank_constant)
    return [to_hit(h) for h in hits[:k]]
