"""Time-split replay of the behaviour log (pure): learn from the events before the split; in each
later session, predict every next product the shopper had not yet seen from the products before it.
Recall@k, MRR@k and NDCG@k (one relevant product per prediction) and catalog coverage, for the blend
and for baselines learned from the same events: popularity, plain co-occurrence (unweighted, no
decay, no transitions) and content similarity alone."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from shopgen.core.config import RecommendConfig
from shopgen.recommend.blend import Item, Recommender
from shopgen.recommend.cooc import Aggregates, add_events
from shopgen.recommend.events import KIND_ORDER, Event

METHODS = ("blend", "popularity", "cooc", "content")


@dataclass(frozen=True)
class Case:
    history: tuple[str, ...]
    target: str


def replay_cases(events: Iterable[Event], gap_s: float, known: Callable[[str], bool] = lambda s: True) -> list[Case]:
    """(the products seen so far in the session, the next product not seen yet), for every step of every
    session; consecutive repeats of one product count once. Targets outside the catalog are skipped."""
    by_session: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_session[e.session].append(e)
    cases: list[Case] = []
    for s in sorted(by_session):
        seq: list[str] = []
        last_ts = None
        for e in sorted(by_session[s], key=lambda e: (e.ts, KIND_ORDER[e.kind], e.sku)):
            if last_ts is not None and e.ts - last_ts > gap_s:
                seq = []
            last_ts = e.ts
            if seq and e.sku == seq[-1]:
                continue
            if seq and e.sku not in seq and known(e.sku):
                cases.append(Case(tuple(dict.fromkeys(seq)), e.sku))
            seq.append(e.sku)
    return cases


def plain_config(cfg: RecommendConfig) -> RecommendConfig:
    """Unweighted, undecayed co-occurrence counts: the textbook baseline."""
    return cfg.model_copy(update={"weights": dict.fromkeys(cfg.weights, 1.0), "half_life_days": 1e9,
                                  "min_support": 0.0})


class Baselines:
    def __init__(self, plain: Aggregates, content: Mapping[str, Sequence[str]], catalog: Mapping[str, Item] | None):
        self.catalog = catalog
        self.counts: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for (a, b), v in plain.pairs.items():
            self.counts[a].append((b, v))
            self.counts[b].append((a, v))
        self.popular = [s for s, _ in sorted(plain.items.items(), key=lambda x: (-x[1], x[0]))
                        if catalog is None or s in catalog]
        self.content = content

    def popularity(self, history: Sequence[str], k: int) -> list[str]:
        seen = set(history)
        return [s for s in self.popular if s not in seen][:k]

    def cooc(self, history: Sequence[str], k: int) -> list[str]:
        scores: dict[str, float] = defaultdict(float)
        for p in history:
            for q, v in self.counts.get(p, []):
                scores[q] += v
        seen = set(history)
        ranked = [s for s, _ in sorted(scores.items(), key=lambda x: (-x[1], x[0])) if s not in seen
                  and (self.catalog is None or s in self.catalog)]
        return ranked[:k]

    def content_knn(self, history: Sequence[str], k: int) -> list[str]:
        seen = set(history)
        return [s for s in self.content.get(history[-1], []) if s not in seen][:k]


def _rank(target: str, recs: Sequence[str]) -> int | None:
    try:
        return recs.index(target) + 1
    except ValueError:
        return None


def score(cases: Sequence[Case], predict: Callable[[Sequence[str], int], Sequence[str]], k: int,
          catalog_size: int) -> dict[str, float]:
    hits = rr = gain = 0.0
    shown: set[str] = set()
    for c in cases:
        recs = list(predict(c.history, k))[:k]
        shown.update(recs)
        r = _rank(c.target, recs)
        if r is not None:
            hits += 1
            rr += 1.0 / r
            gain += 1.0 / math.log2(r + 1)
    n = max(len(cases), 1)
    return {"recall": round(hits / n, 4), "mrr": round(rr / n, 4), "ndcg": round(gain / n, 4),
            "coverage": round(len(shown) / max(catalog_size, 1), 4)}


def evaluate(train: Iterable[Event], test: Iterable[Event], cfg: RecommendConfig, k: int = 20,
             catalog: Mapping[str, Item] | None = None, content: Mapping[str, Sequence[str]] | None = None,
             methods: Sequence[str] = METHODS) -> dict[str, dict[str, float]]:
    """Figures per method, all learned from `train` and replayed on `test`."""
    train = list(train)
    agg = add_events(Aggregates(), train, cfg)
    plain = add_events(Aggregates(), train, plain_config(cfg))
    rec = Recommender(agg, cfg, catalog, content)
    base = Baselines(plain, content or {}, catalog)
    known = (lambda s: s in catalog) if catalog is not None else (lambda s: True)
    cases = replay_cases(test, cfg.session_gap_minutes * 60.0, known)
    size = len(catalog) if catalog is not None else len(set(agg.items) | {c.target for c in cases})
    predictors = {"blend": lambda h, n: [s.sku for s in rec.for_session(h, n)],
                  "popularity": base.popularity, "cooc": base.cooc, "content": base.content_knn}
    out = {m: score(cases, predictors[m], k, size) for m in methods if m != "content" or content}
    out["_cases"] = {"n": len(cases), "train_events": len(train)}
    return out
