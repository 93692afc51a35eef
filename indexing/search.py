"""Search over an alias (or one index). The query builders and the fusions are pure; `search` runs them.

bm25 is title-first: the title's own match (exact terms, a phrase boost, and typo-tolerant terms worth
less, by default only when the exact query finds fewer products than asked for) plus one BM25F
`combined_fields` clause over the catalog's other informative fields. hybrid
fuses bm25 and knn by weighted RRF or a normalised linear combination, with Elasticsearch's
retrievers when the cluster allows them, else the same computation here. A `SearchProfile` holds
every choice; `tune-search` stores the tuned one in the index's `_meta.search`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from indexing.mapping import CJK

MODES = ("bm25", "knn", "hybrid", "ltr")
FUSIONS = ("rrf", "linear")
NORMALIZERS = ("minmax", "l2_norm")
RESCORE = ("auto", "server", "client", "off")
FUZZY = ("fallback", "always", "off")
MAX_CANDIDATES = 10_000  # Elasticsearch's limit on num_candidates
# The secondary fields and their BM25F weights: the shop's structured fields say what a product is;
# generated copy adds vocabulary (use cases, synonyms) but also filler. combined_fields needs >= 1.
DEFAULT_FIELD_WEIGHTS = {"category.text": 3.0, "brand.text": 2.0, "attributes_text": 2.0, "seo_title": 1.5,
                         "bullets": 1.5, "description": 1.0, "source_description": 1.0, "ad_text": 1.0,
                         "faq_text": 1.0, "qa_text": 1.0}
# Fields without a Chinese sub-field (keywords with an English `.text`).
_NO_ZH = ("category.text", "brand.text")
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


@dataclass(frozen=True)
class SearchProfile:
    """Every ranking choice of one index: the bm25 query's shape, the knn candidates and the fusion."""

    mode: str = "bm25"  # what `--mode auto` runs
    title_boost: float = 2.0
    phrase_boost: float = 1.0
    phrase_slop: int = 1
    fuzzy_boost: float = 0.3  # typo-tolerant title terms; below title_boost, so exact matches rank first
    fuzziness: str = "AUTO"
    fuzzy_prefix_length: int = 1
    # fallback: the fuzzy terms join only when the exact query finds fewer than min(k, fuzzy_min_hits)
    # products (a page; an evaluation asking for 100 hits ranks its top 10 as a search for 10 does).
    fuzzy: str = "fallback"
    fuzzy_min_hits: int = 10
    fields_boost: float = 1.0  # the combined_fields clause over the other fields
    field_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FIELD_WEIGHTS))
    # Fields empty or constant across the index when it was built are left out (a field the build
    # did not count, e.g. one added to the weights later, is searched).
    uninformative: tuple[str, ...] = ()
    knn_candidates: int = 200
    # num_candidates grows with the index: this share of its documents (capped at ES's 10000).
    knn_candidates_share: float = 0.01
    docs: int = 0  # the index's size when the profile was read (0: unknown)
    # Approximate kNN rescored exactly: auto = when the vectors are quantized (int8/int4/bbq), by the
    # cluster's rescore_vector when it has one, else here over the top k x oversample candidates.
    knn_rescore: str = "auto"
    knn_oversample: float = 3.0
    quantized: bool = True
    fusion: str = "rrf"
    weights: tuple[float, float] = (1.0, 1.0)  # bm25, knn
    normalizer: str = "minmax"
    rank_constant: int = 60
    window: int = 100
    where: str = "auto"  # fuse on the server (retrievers), the client, or auto = server when it can

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown search mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; use one of {', '.join(FUSIONS)}")
        if self.normalizer not in NORMALIZERS:
            raise ValueError(f"unknown normalizer {self.normalizer!r}; use one of {', '.join(NORMALIZERS)}")
        if self.fuzzy not in FUZZY:
            raise ValueError(f"unknown fuzzy {self.fuzzy!r}; use one of {', '.join(FUZZY)}")
        if self.knn_rescore not in RESCORE:
            raise ValueError(f"unknown knn_rescore {self.knn_rescore!r}; use one of {', '.join(RESCORE)}")
        if len(self.weights) != 2 or min(self.weights) < 0 or not sum(self.weights) > 0:
            raise ValueError(f"fusion weights must be two numbers >= 0, not both 0; got {self.weights}")

    def to_meta(self) -> dict[str, Any]:
        d = asdict(self)
        d["weights"] = {"bm25": self.weights[0], "knn": self.weights[1]}
        d["uninformative"] = list(self.uninformative)
        return d

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None, base: SearchProfile | None = None) -> SearchProfile:
        """`base` with the keys `meta` sets (unknown keys are ignored: a newer shopgen may add some)."""
        base = base or cls()
        if not meta:
            return base
        known = {k: v for k, v in meta.items() if k in cls.__dataclass_fields__ and v is not None}
        if isinstance(known.get("weights"), dict):
            known["weights"] = (float(known["weights"].get("bm25", 0)), float(known["weights"].get("knn", 0)))
        if "uninformative" in known:
            known["uninformative"] = tuple(known["uninformative"])
        if "field_weights" in known:
            known["field_weights"] = {**base.field_weights, **known["field_weights"]}
        return replace(base, **known)


def _other_fields(p: SearchProfile, zh: bool) -> list[str]:
    out = []
    for f, w in p.field_weights.items():
        if w <= 0 or f in p.uninformative or (zh and f in _NO_ZH):
            continue  # a weight of 0 turns a field off; combined_fields needs one analyzer across its fields
        name = f"{f}.zh" if zh else f
        out.append(f"{name}^{max(1.0, w):g}" if w != 1 else name)
    return out


def text_query(text: str, p: SearchProfile = SearchProfile(), fuzzy: bool | None = None) -> dict[str, Any]:
    """The bm25 scoring query (no filters). `fuzzy`: with the typo-tolerant title terms (None: when
    the profile says always). A query with Chinese characters searches the `.zh` sub-fields and gets
    no fuzziness (edit distance means nothing for CJK bigrams)."""
    zh = bool(CJK.search(text))
    title = "title.zh" if zh else "title"
    should: list[dict[str, Any]] = [
        {"match": {title: {"query": text, "boost": p.title_boost}}},
        {"match_phrase": {title: {"query": text, "slop": p.phrase_slop, "boost": p.phrase_boost}}},
    ]
    if (p.fuzzy == "always" if fuzzy is None else fuzzy) and not zh and p.fuzzy_boost > 0:
        should.append({"match": {title: {"query": text, "fuzziness": p.fuzziness,
                                         "prefix_length": p.fuzzy_prefix_length, "boost": p.fuzzy_boost}}})
    fields = _other_fields(p, zh)
    if fields and p.fields_boost > 0:
        should.append({"combined_fields": {"query": text, "fields": fields, "boost": p.fields_boost}})
    keywords = [f"{f}^{w:g}" for f, w in p.field_weights.items() if zh and f in _NO_ZH and w > 0
                and f not in p.uninformative]
    if keywords and p.fields_boost > 0:  # brand and category have no Chinese sub-field: their own clause
        should.append({"multi_match": {"query": text, "fields": keywords, "boost": p.fields_boost}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def bm25_query(text: str, filters: Filters = Filters(), p: SearchProfile = SearchProfile(),
               fuzzy: bool | None = None) -> dict[str, Any]:
    return {"bool": {"must": [text_query(text, p, fuzzy)], "filter": filters.clauses()}}


def bm25_body(text: str, k: int, filters: Filters = Filters(), p: SearchProfile = SearchProfile(),
              fuzzy: bool | None = None) -> dict[str, Any]:
    return {"query": bm25_query(text, filters, p, fuzzy), "size": k, "_source": _SOURCE}


def _total(res: Any) -> int:
    t = res["hits"].get("total")
    return int(t["value"] if isinstance(t, dict) else t or 0)


def _fuzzy_after(exact_matches: Callable[[], int], text: str, k: int, p: SearchProfile) -> bool:
    """The one fallback rule: typo-tolerant terms when the profile says always, or (fallback) when the
    exact query finds fewer than min(k, fuzzy_min_hits) products and a fuzzy query would differ
    (not for Chinese, nor with fuzzy_boost 0). `exact_matches` is asked only when needed."""
    if p.fuzzy != "fallback" or p.fuzzy_boost <= 0 or CJK.search(text):
        return p.fuzzy == "always"
    return exact_matches() < min(k, p.fuzzy_min_hits)


def bm25_hits(es: Elasticsearch, target: str, text: str, size: int, filters: Filters = Filters(),
              p: SearchProfile = SearchProfile(), k: int | None = None) -> list[dict[str, Any]]:
    """bm25's top `size` (`k`, default `size`: the hits the search asks for); with fuzzy fallback the
    exact query first, and the typo-tolerant one only when _fuzzy_after says so."""
    if p.fuzzy != "fallback":
        return es.search(index=target, **bm25_body(text, size, filters, p))["hits"]["hits"]
    res = es.search(index=target, **bm25_body(text, size, filters, p, fuzzy=False))
    if not _fuzzy_after(lambda: _total(res), text, k or size, p):
        return res["hits"]["hits"]
    return es.search(index=target, **bm25_body(text, size, filters, p, fuzzy=True))["hits"]["hits"]


def fuzzy_needed(es: Elasticsearch, target: str, text: str, k: int, filters: Filters, p: SearchProfile) -> bool:
    """Whether bm25 runs with its typo-tolerant terms (fallback: a count of the exact query's matches)."""
    return _fuzzy_after(lambda: int(es.count(index=target, query=bm25_query(text, filters, p, fuzzy=False))["count"]),
                        text, k, p)


def num_candidates(k: int, p: SearchProfile) -> int:
    """HNSW's candidate list, at least the configured floor and 2 x k, and growing with the index."""
    return min(MAX_CANDIDATES, max(p.knn_candidates, 2 * k, math.ceil(p.docs * p.knn_candidates_share)))


def knn_spec(vector: Sequence[float], k: int, filters: Filters = Filters(),
             p: SearchProfile = SearchProfile(), rescore: bool = False) -> dict[str, Any]:
    """`rescore`: the cluster rescores k x oversample candidates with the full-precision vectors."""
    knn: dict[str, Any] = {"field": "embedding", "query_vector": list(map(float, vector)), "k": k,
                           "num_candidates": max(num_candidates(k, p), k)}
    if filters.clauses():
        knn["filter"] = filters.clauses()
    if rescore:
        knn["rescore_vector"] = {"oversample": p.knn_oversample}
    return knn


def knn_body(vector: Sequence[float], k: int, filters: Filters = Filters(),
             p: SearchProfile = SearchProfile(), rescore: bool = False) -> dict[str, Any]:
    return {"knn": knn_spec(vector, k, filters, p, rescore), "size": k, "_source": _SOURCE}


def exact_rescore(hits: Sequence[dict[str, Any]], vector: Sequence[float], k: int) -> list[dict[str, Any]]:
    """Pure: hits (with `fields.embedding`) re-ranked by their exact cosine to `vector`, scored as
    Elasticsearch scores cosine ((1 + cos) / 2); ties by id. The vectors are dropped from the hits."""
    import numpy as np

    q = np.asarray(vector, dtype=np.float64)
    q = q / (np.linalg.norm(q) or 1.0)
    out = []
    for h in hits:
        v = np.asarray((h.get("fields") or {}).get("embedding") or [], dtype=np.float64)
        if v.shape != q.shape:  # no stored vector came back: keep the approximate score
            out.append(dict(h))
            continue
        cos = float(v @ q) / (float(np.linalg.norm(v)) or 1.0)
        out.append({**{x: y for x, y in h.items() if x != "fields"}, "_score": (1.0 + cos) / 2.0})
    return sorted(out, key=lambda h: (-h["_score"], h["_id"]))[:k]


def rescore_mode(es: Elasticsearch, p: SearchProfile) -> str:
    """server, client or off: what rescores the approximate kNN candidates on this cluster."""
    if p.knn_rescore == "off" or (p.knn_rescore == "auto" and not p.quantized):
        return "off"
    if p.knn_rescore == "auto" and (_cluster_key(es), "rescore_vector") in _REFUSED:
        return "client"
    return "server" if p.knn_rescore in ("auto", "server") else "client"


def _rescore_refused(e: ApiError) -> bool:
    return e.status_code == 400 and "rescore_vector" in str(e)


def knn_hits(es: Elasticsearch, target: str, vector: Sequence[float], k: int, filters: Filters = Filters(),
             p: SearchProfile = SearchProfile()) -> list[dict[str, Any]]:
    """The k nearest products, the approximate candidates rescored exactly (rescore_mode)."""
    how = rescore_mode(es, p)
    if how == "server":
        try:
            return es.search(index=target, **knn_body(vector, k, filters, p, rescore=True))["hits"]["hits"]
        except ApiError as e:
            if p.knn_rescore == "server" or not _rescore_refused(e):
                raise
            _REFUSED.add((_cluster_key(es), "rescore_vector"))
            how = "client"
    if how == "off":
        return es.search(index=target, **knn_body(vector, k, filters, p))["hits"]["hits"]
    n = min(MAX_CANDIDATES, max(k, math.ceil(k * p.knn_oversample)))
    body = {**knn_body(vector, n, filters, p), "fields": ["embedding"]}
    return exact_rescore(es.search(index=target, **body)["hits"]["hits"], vector, k)


def hybrid_body(text: str, vector: Sequence[float], k: int, filters: Filters = Filters(),
                p: SearchProfile = SearchProfile(), rescore: bool = False, fuzzy: bool | None = None) -> dict[str, Any]:
    """The retriever request: plain RRF when the weights are equal (any 8.x cluster knows it),
    weighted RRF or the linear retriever otherwise."""
    window = max(p.window, k)
    subs = [{"standard": {"query": bm25_query(text, filters, p, fuzzy)}},
            {"knn": knn_spec(vector, window, filters, p, rescore=rescore)}]
    if p.fusion == "linear":
        ret = {"linear": {"retrievers": [{"retriever": r, "weight": w, "normalizer": p.normalizer}
                                         for r, w in zip(subs, p.weights)], "rank_window_size": window}}
    elif p.weights[0] == p.weights[1]:
        ret = {"rrf": {"retrievers": subs, "rank_window_size": window, "rank_constant": p.rank_constant}}
    else:
        ret = {"rrf": {"retrievers": [{"retriever": r, "weight": w} for r, w in zip(subs, p.weights)],
                       "rank_window_size": window, "rank_constant": p.rank_constant}}
    return {"retriever": ret, "size": k, "_source": _SOURCE}


def _scored(rankings: Sequence[Sequence[dict[str, Any]]], contrib: Iterable[dict[str, float]], k: int,
            ) -> list[dict[str, Any]]:
    scores: dict[str, float] = {}
    first: dict[str, dict[str, Any]] = {}
    for hits, part in zip(rankings, contrib):
        for h in hits:
            scores[h["_id"]] = scores.get(h["_id"], 0.0) + part[h["_id"]]
            first.setdefault(h["_id"], h)
    seen = {i: n for n, i in enumerate(first)}  # a tie goes to the doc the first list ranked first
    order = sorted(scores, key=lambda i: (-scores[i], seen[i]))[:k]
    return [{**first[i], "_score": scores[i]} for i in order]


def rrf(rankings: Sequence[Sequence[dict[str, Any]]], k: int, rank_constant: int = 60,
        weights: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Weighted reciprocal-rank fusion of hit lists (keyed by _id): score = sum w / (c + rank)."""
    weights = weights or [1.0] * len(rankings)
    return _scored(rankings, ({h["_id"]: w / (rank_constant + r) for r, h in enumerate(hits, start=1)}
                              for hits, w in zip(rankings, weights)), k)


def normalize(scores: Sequence[float], how: str = "minmax") -> list[float]:
    """minmax: (s - min) / (max - min), all 1.0 when they are equal; l2_norm: s / ||s||."""
    if not scores:
        return []
    if how == "l2_norm":
        n = math.sqrt(sum(s * s for s in scores))
        return [s / n if n > 0 else 0.0 for s in scores]
    lo, hi = min(scores), max(scores)
    return [(s - lo) / (hi - lo) if hi > lo else 1.0 for s in scores]


def linear(rankings: Sequence[Sequence[dict[str, Any]]], k: int, weights: Sequence[float],
           normalizer: str = "minmax") -> list[dict[str, Any]]:
    """Weighted sum of each list's normalised scores; a doc missing from a list gets 0 from it."""
    return _scored(rankings, ({h["_id"]: w * n for h, n in zip(hits, normalize([h["_score"] or 0.0 for h in hits],
                                                                                normalizer))}
                              for hits, w in zip(rankings, weights)), k)


def fuse(bm25: Sequence[dict[str, Any]], knn: Sequence[dict[str, Any]], k: int,
         p: SearchProfile) -> list[dict[str, Any]]:
    """The client-side twin of `hybrid_body`."""
    if p.fusion == "linear":
        return linear([bm25, knn], k, p.weights, p.normalizer)
    return rrf([bm25, knn], k, p.rank_constant, p.weights)


def to_hit(h: dict[str, Any]) -> dict[str, Any]:
    s = h.get("_source", {})
    return {"sku": s.get("sku", h["_id"]), "score": h["_score"], "title": s.get("title"),
            "description": s.get("description"), "brand": s.get("brand"), "category": s.get("category"),
            "price": s.get("price"), "locale": s.get("locale"), "model_version": s.get("model_version"),
            "related_skus": s.get("related_skus"), "source_description": s.get("source_description"),
            "also_viewed": s.get("also_viewed"), "bought_together": s.get("bought_together"),
            "recommended": s.get("recommended"), "recommended_sources": s.get("recommended_sources"),
            # Per content type: copy.<type>.status (fresh, kept, none) and why it failed.
            "copy": s.get("copy")}


# (cluster, retriever) pairs the cluster's license or version refused; we fuse here for them.
_REFUSED: set[tuple[tuple[str, ...], str]] = set()


def _cluster_key(es: Elasticsearch) -> tuple[str, ...]:
    return tuple(sorted(n.base_url for n in es.transport.node_pool.all()))


def _retriever_kind(p: SearchProfile) -> str:
    return p.fusion if p.fusion == "linear" or p.weights[0] != p.weights[1] else "rrf-plain"


def _rrf_refused(e: ApiError) -> bool:
    """A license refusal, or a version that does not know the retriever (not any other bad request)."""
    msg = str(e).lower()
    return (e.status_code == 403 and "licen" in msg) or "non-compliant" in msg or (
        e.status_code == 400 and ("unknown" in msg or "parsing" in msg) and
        ("retriever" in msg or "rrf" in msg or "linear" in msg or "weight" in msg))


def ranked_lists(es: Elasticsearch, target: str, text: str, vector: Sequence[float], size: int,
                 filters: Filters, p: SearchProfile, k: int = 10) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """bm25's and knn's hits with their scores, each `size` deep (what the fusions take); `k` is the
    hits the search asks for (bm25's fuzzy fallback)."""
    bm25 = bm25_hits(es, target, text, size, filters, p, k)
    return bm25, knn_hits(es, target, vector, size, filters, p)


def hybrid_hits(es: Elasticsearch, target: str, text: str, vector: Sequence[float], k: int, filters: Filters,
                p: SearchProfile = SearchProfile()) -> tuple[list[dict[str, Any]], str]:
    """Returns the fused hits and which side fused them ("server" or "client")."""
    key = (_cluster_key(es), _retriever_kind(p))
    rescore = rescore_mode(es, p)
    # The retriever's kNN must be exact too: where only the client can rescore, the client fuses.
    if p.where == "server" or (p.where == "auto" and key not in _REFUSED and rescore != "client"):
        fuzzy = fuzzy_needed(es, target, text, k, filters, p)
        try:
            body = hybrid_body(text, vector, k, filters, p, rescore=rescore == "server", fuzzy=fuzzy)
            return es.search(index=target, **body)["hits"]["hits"], "server"
        except ApiError as e:
            if rescore == "server" and _rescore_refused(e) and p.knn_rescore == "auto":
                _REFUSED.add((_cluster_key(es), "rescore_vector"))
                if p.where == "server":  # fusion stays where it was asked for, without the rescoring
                    body = hybrid_body(text, vector, k, filters, p, fuzzy=fuzzy)
                    return es.search(index=target, **body)["hits"]["hits"], "server"
            elif p.where == "server" or not _rrf_refused(e):
                raise
            else:
                _REFUSED.add(key)
    bm25, knn = ranked_lists(es, target, text, vector, max(p.window, k), filters, p, k)
    return fuse(bm25, knn, k, p), "client"


def ltr_hits(es: Elasticsearch, target: str, text: str, vector: Sequence[float], k: int, filters: Filters,
             p: SearchProfile, ranker: Any) -> list[dict[str, Any]]:
    """The hybrid ranking with its top `ranker.candidates` reordered by the ranker (indexing/ltr.py)."""
    from indexing import ltr

    hits, _ = hybrid_hits(es, target, text, vector, max(ranker.candidates, k), filters,
                          replace(p, window=max(p.window, ranker.candidates)))
    head = hits[:ranker.candidates]
    rows = ltr.features(es, target, text, vector, head, ranker.info.get("units"))
    return ltr.rerank(hits, ranker.scores(ranker.columns(rows)), k)


def search(es: Elasticsearch, target: str, text: str, mode: str = "bm25", k: int = 10,
           encoder: Any = None, filters: Filters = Filters(), profile: SearchProfile | None = None,
           query_vector: Sequence[float] | None = None, ranker: Any = None) -> list[dict[str, Any]]:
    """`target` is an alias or one index (the gate searches a new index before it goes live). `mode`
    auto runs the profile's mode; `encoder(text)` gives the query vector (knn, hybrid and ltr);
    `ranker` (an indexing.ltr.Ranker) reranks the hybrid candidates in ltr mode."""
    p = profile or SearchProfile()
    mode = p.mode if mode == "auto" else mode
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; use one of auto, {', '.join(MODES)}")
    if not es.indices.exists(index=target):
        raise LookupError(f"alias or index {target!r} does not exist yet: run `shopgen nightly` or "
                          "`shopgen index build` first")
    if mode == "ltr" and ranker is None:
        raise ValueError("search mode ltr needs a ranker: train one with `shopgen train-ranker`")
    if mode == "bm25":
        hits = bm25_hits(es, target, text, k, filters, p)
    else:
        vec = query_vector if query_vector is not None else encoder(text)
        if mode == "ltr":
            hits = ltr_hits(es, target, text, vec, k, filters, p, ranker)
        elif mode == "knn":
            hits = knn_hits(es, target, vec, k, filters, p)
        else:
            hits, _ = hybrid_hits(es, target, text, vec, k, filters, p)
    return [to_hit(h) for h in hits[:k]]
