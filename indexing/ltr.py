"""Learning to rank: the features of a (query, product) pair, and a LambdaMART ranker over them.

Every feature but one is an Elasticsearch query over one field, scored on the candidates alone (an
`ids` filter), so the cluster computes it exactly as it scores a search: BM25 per field, the title
phrase, the title's coverage of the query's terms, fuzzy title terms, and the number-and-unit
agreement between the query's sizes and the product's (`quantities`, filled by indexing/docs.py).
The one more is the exact cosine of the query's and the product's vectors. A field a catalog lacks
scores 0 for every product, so one feature list fits any shop.

`rerank` puts the top `candidates` of the hybrid ranking in the model's order; the rest keep theirs.
The model is XGBoost's `rank:ndcg` (LambdaRank: boosted trees, LambdaMART, or a linear booster), saved
as JSON with its feature names and standardisation."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexing.mapping import CJK
from shopgen.core.units import number_value, quantities, quantity_tokens

COPY_FIELDS = ("description", "seo_title", "bullets", "ad_text", "faq_text")


@dataclass(frozen=True)
class QueryParams:
    """What a query's features are computed from (all derived from its text, and its vector)."""

    text: str
    quantities: str = ""  # `0.5_inch 10_feet`
    units: str = ""  # `inch feet`
    zh: bool = False
    max_price: float | None = None  # "under 50", "below $30", "less than 20", "50 or less"

    @classmethod
    def of(cls, text: str, units: Mapping[str, Sequence[str]] | None = None) -> QueryParams:
        amounts, units = quantity_tokens(text, units)
        return cls(text=text, quantities=amounts, units=units, zh=bool(CJK.search(text)),
                   max_price=price_limit(text))


_AMOUNT = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)"
_LIMIT = re.compile(rf"(?:under|below|less than|cheaper than|max(?:imum)?|up to|within|<|<=)\s*[$€£¥]?\s*{_AMOUNT}"
                    rf"|[$€£¥]?{_AMOUNT}\s*(?:[$€£¥]|dollars|euros?|pounds)?\s*(?:or less|or under|max)\b"
                    rf"|(?:低于|不超过|以下|以内)\s*{_AMOUNT}|{_AMOUNT}\s*(?:元)?\s*(?:以下|以内)", re.I)


def price_limit(text: str) -> float | None:
    """The most a query says it will pay (`under 50` -> 50.0), else None."""
    for m in _LIMIT.finditer(text):
        value = number_value(next(g for g in m.groups() if g))
        if value is None:
            continue
        # "under 8 ft" is a size, not a price.
        if not any(v == value for v, _ in quantities(text[m.start():m.end() + 16])):
            return value
    return None


def _match(f: str, **extra: Any) -> Callable[[QueryParams], dict[str, Any] | None]:
    return lambda q: {"match": {f: {"query": q.text, **extra}}}


def _zh_or(f: str) -> Callable[[QueryParams], dict[str, Any] | None]:
    """A text field, or its Chinese sub-field for a Chinese query."""
    return lambda q: {"match": {f"{f}.zh" if q.zh else f: q.text}}


# name -> the query that scores it (None: the feature is 0 for this query).
QUERY_FEATURES: dict[str, Callable[[QueryParams], dict[str, Any] | None]] = {
    "title_bm25": _zh_or("title"),
    "title_phrase": lambda q: {"match_phrase": {"title.zh" if q.zh else "title": {"query": q.text, "slop": 1}}},
    "title_all_terms": lambda q: {"constant_score": {"filter": {"match": {"title": {"query": q.text,
                                                                                     "operator": "and"}}}}},
    "title_most_terms": lambda q: {"constant_score": {"filter": {"match": {"title": {
        "query": q.text, "minimum_should_match": "75%"}}}}},
    "title_fuzzy": lambda q: None if q.zh else {"match": {"title": {"query": q.text, "fuzziness": "AUTO",
                                                                    "prefix_length": 1}}},
    "category_bm25": _match("category.text"),
    "brand_bm25": _match("brand.text"),
    "attributes_bm25": _zh_or("attributes_text"),
    "source_bm25": _zh_or("source_description"),
    "copy_bm25": lambda q: {"multi_match": {"query": q.text, "fields": [f"{f}.zh" if q.zh else f
                                                                          for f in COPY_FIELDS]}},
    "quantity_match": lambda q: {"match": {"quantities": q.quantities}} if q.quantities else None,
    "unit_match": lambda q: {"match": {"quantity_units": q.units}} if q.units else None,
    "price_within": lambda q: None if q.max_price is None else {"constant_score": {"filter": {"range": {
        "price": {"lte": q.max_price}}}}},
}
VECTOR_FEATURES = ("knn_cosine",)
# The hybrid ranking's own evidence: 1 / rank, and (below) its fused score over the top one's (the raw
# score's scale depends on the fusion: RRF's ~0.03, linear's up to 2).
HYBRID_FEATURES = ("hybrid_rank",)
# The candidate's price over the dearest candidate's ("cheap gear"); 0 without a price. Popularity from
# the behaviour log (round(log2(1 + weight)), the shop's `popularity` field), and over the top candidate's.
PRICE_FEATURES = ("price_rel", "popularity", "popularity_rel")
# Scores relative to the query's best candidate (BM25 scales differ from query to query): a feature
# over its maximum among the candidates, the cosine as its distance below the best one.
RELATIVE = ("title_bm25", "category_bm25", "attributes_bm25", "source_bm25", "copy_bm25", "knn_cosine",
            "hybrid_score")
FEATURES = (*QUERY_FEATURES, *VECTOR_FEATURES, *HYBRID_FEATURES, *PRICE_FEATURES, *(f"{f}_rel" for f in RELATIVE))


def feature_searches(q: QueryParams, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(feature, search body) per query feature that applies: the candidates alone, each scored by
    the feature's query (0 where it does not match)."""
    out = []
    for name, make in QUERY_FEATURES.items():
        query = make(q)
        if query is None:
            continue
        out.append((name, {"query": {"bool": {"filter": [{"ids": {"values": list(ids)}}], "should": [query]}},
                           "size": len(ids), "_source": False}))
    return out


def cosine(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """0 when either vector is missing or they differ in length (no signal, not an error)."""
    if a is None or b is None or len(a) == 0 or len(a) != len(b):
        return 0.0
    a, b = [float(x) for x in a], [float(x) for x in b]
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b)) / (na * nb) if na and nb else 0.0


def feature_rows(ids: Sequence[str], scores: Mapping[str, Mapping[str, float]],
                 vectors: Mapping[str, Sequence[float]], query_vector: Sequence[float] | None,
                 hybrid: Sequence[float] | None = None, prices: Mapping[str, float | None] | None = None,
                 popularity: Mapping[str, float | None] | None = None) -> list[list[float]]:
    """Pure: one row per candidate, in FEATURES order. `scores` is feature -> id -> score (an id or a
    feature missing there scores 0); `vectors` the candidates' stored vectors; `hybrid` their fused
    scores, in the hybrid order `ids` has; `prices` and `popularity` theirs."""
    prices = {i: float(p) for i, p in (prices or {}).items() if isinstance(p, (int, float)) and p > 0}
    dearest = max(prices.values(), default=0.0)
    pop = {i: float(v) for i, v in (popularity or {}).items() if isinstance(v, (int, float)) and v > 0}
    most = max(pop.values(), default=0.0)
    base = []
    for n, i in enumerate(ids):
        row = {f: float(scores.get(f, {}).get(i, 0.0) or 0.0) for f in QUERY_FEATURES}
        row["knn_cosine"] = cosine(vectors.get(i), query_vector)
        row["hybrid_score"] = float(hybrid[n]) if hybrid is not None and n < len(hybrid) else 0.0
        row["hybrid_rank"] = 1.0 / (n + 1)
        row["price_rel"] = prices.get(i, 0.0) / dearest if dearest else 0.0
        row["popularity"] = pop.get(i, 0.0)
        row["popularity_rel"] = pop.get(i, 0.0) / most if most else 0.0
        base.append(row)
    top = {f: max((r[f] for r in base), default=0.0) for f in RELATIVE}
    for r in base:
        for f in RELATIVE:
            if f == "knn_cosine":
                r[f"{f}_rel"] = r[f] - top[f]
            else:
                r[f"{f}_rel"] = r[f] / top[f] if top[f] > 0 else 0.0
    return [[r[f] for f in FEATURES] for r in base]


def features(es: Any, target: str, text: str, query_vector: Sequence[float] | None,
             hits: Sequence[dict[str, Any]], units: Mapping[str, Sequence[str]] | None = None) -> list[list[float]]:
    """The feature rows of the hybrid candidates `hits` (in their order, with their fused `_score`),
    from one multi-search on the cluster (plus their vectors). `units`: the shop's (search.units)."""
    ids = [h["_id"] for h in hits]
    if not ids:
        return []
    q = QueryParams.of(text, units)
    named = feature_searches(q, ids)
    body: list[dict[str, Any]] = []
    for _, b in named:
        body += [{"index": target}, b]
    body += [{"index": target}, {"query": {"ids": {"values": list(ids)}}, "size": len(ids), "_source": ["price", "popularity"],
                                 "fields": ["embedding"]}]
    res = es.msearch(searches=body)["responses"]
    scores: dict[str, dict[str, float]] = {}
    for (name, _), r in zip(named, res):
        if "error" in r:
            raise RuntimeError(f"feature {name}: {r['error']}")
        scores[name] = {h["_id"]: h["_score"] or 0.0 for h in r["hits"]["hits"]}
    if "error" in res[-1]:
        raise RuntimeError(f"the candidates' vectors: {res[-1]['error']}")
    vectors = {h["_id"]: (h.get("fields") or {}).get("embedding") for h in res[-1]["hits"]["hits"]}
    src = {h["_id"]: h.get("_source") or {} for h in res[-1]["hits"]["hits"]}
    return feature_rows(ids, scores, vectors, query_vector, [h.get("_score") or 0.0 for h in hits],
                        {i: s.get("price") for i, s in src.items()}, {i: s.get("popularity") for i, s in src.items()})


@dataclass
class Ranker:
    """A trained LambdaRank model (XGBoost, trees or linear) with the features it reads, their
    standardisation (training mean and spread), and how many candidates it reranks."""

    booster: Any
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    candidates: int = 100
    info: dict[str, Any] = field(default_factory=dict)
    mean: list[float] | None = None
    scale: list[float] | None = None

    def scores(self, rows: Sequence[Sequence[float]]) -> list[float]:
        import numpy as np
        import xgboost as xgb

        if not rows:
            return []
        x = np.asarray(rows, dtype=np.float64)
        if self.mean is not None and self.scale is not None:
            x = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return [float(v) for v in self.booster.predict(xgb.DMatrix(x.astype(np.float32), feature_names=self.features))]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "model.json"))
        (folder / "ranker.json").write_text(json.dumps({"features": self.features, "candidates": self.candidates,
                                                        "mean": self.mean, "scale": self.scale, **self.info},
                                                       indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Ranker:
        import xgboost as xgb

        spec = json.loads((folder / "ranker.json").read_text(encoding="utf-8"))
        unknown = [f for f in spec["features"] if f not in FEATURES]
        if unknown:
            raise ValueError(f"{folder}: ranker reads features this shopgen does not compute: {unknown}")
        booster = xgb.Booster()
        booster.load_model(str(folder / "model.json"))
        return cls(booster, list(spec["features"]), int(spec["candidates"]),
                   {k: v for k, v in spec.items() if k not in ("features", "candidates", "mean", "scale")},
                   spec.get("mean"), spec.get("scale"))

    def columns(self, rows: Sequence[Sequence[float]]) -> list[list[float]]:
        """The model's features out of full FEATURES rows (a ranker may read fewer)."""
        pos = [FEATURES.index(f) for f in self.features]
        return [[r[i] for i in pos] for r in rows]


def rerank(hits: Sequence[dict[str, Any]], model_scores: Sequence[float], k: int) -> list[dict[str, Any]]:
    """Pure: the scored head in the model's order (ties keep the hybrid order), then the rest of the
    hits in theirs; `_score` is the model's score for the head."""
    head = [{**h, "_score": s} for h, s in zip(hits, model_scores)]
    order = sorted(range(len(head)), key=lambda i: (-head[i]["_score"], i))
    return ([head[i] for i in order] + list(hits[len(head):]))[:k]
