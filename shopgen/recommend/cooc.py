"""Behaviour aggregates (pure): weighted, time-decayed co-occurrence within sessions, purchases made
together, and the order of views ("viewed next").

A session (split where the shopper was idle recommend.session_gap_minutes) gives each product its
strongest event weight a(p) (view 1 ... purchase 5 by default). The session adds, decayed by its age:
  items[p]       += d * a(p)
  pairs[p, q]    += d * min(a(p), a(q))        (p < q)
  bought[p, q]   += d * min(a(p), a(q))        both purchased in the session
  trans[p -> q]  += d                          q is the next product viewed after p
where d = 2 ** (-(ref - session start) / half-life), and ref is the latest event time seen. Decay is
multiplicative, so last night's aggregates decayed to tonight plus tonight's events equal a rebuild
from all events; sessions still open at the end of a night are kept (`Aggregates.open`) and continue."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from shopgen.core.config import RecommendConfig
from shopgen.recommend.events import KIND_ORDER, Event

DAY_S = 86400.0


@dataclass
class Segment:
    """An open session: its start, last event, each product's strongest weight (first-seen order),
    the products purchased and the last product seen."""

    start: float
    last: float
    aff: dict[str, float] = field(default_factory=dict)
    bought: list[str] = field(default_factory=list)
    prev: str | None = None


def pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


@dataclass
class Aggregates:
    ref: float = 0.0
    items: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    pairs: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    bought: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    trans: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    sessions: float = 0.0
    events: int = 0
    open: dict[str, Segment] = field(default_factory=dict)

    def decay_to(self, ref: float, half_life_days: float) -> None:
        """Every value as of event time `ref` (later than the current one)."""
        if ref <= self.ref:
            return
        f = 2.0 ** (-(ref - self.ref) / (half_life_days * DAY_S)) if self.ref else 1.0
        if f != 1.0:
            for table in (self.items, self.pairs, self.bought, self.trans):
                for k in table:
                    table[k] *= f
            self.sessions *= f
        self.ref = ref


def _sort_key(e: Event) -> tuple[float, int, str]:
    return (e.ts, KIND_ORDER[e.kind], e.sku)


def add_events(agg: Aggregates, events: Iterable[Event], cfg: RecommendConfig) -> Aggregates:
    """Folds a batch of events (one night's, any order) into the aggregates, in place."""
    by_session: dict[str, list[Event]] = defaultdict(list)
    latest = agg.ref
    for e in events:
        by_session[e.session].append(e)
        latest = max(latest, e.ts)
        agg.events += 1
    agg.decay_to(latest, cfg.half_life_days)
    for session in sorted(by_session):
        agg.open[session] = fold_session(agg, by_session[session], agg.open.get(session), cfg)
    agg.open = {s: seg for s, seg in agg.open.items() if still_open(seg, agg.ref, cfg)}
    return agg


def still_open(seg: Segment, ref: float, cfg: RecommendConfig) -> bool:
    """A session that may still continue after event time `ref`."""
    return ref - seg.last <= cfg.session_gap_minutes * 60.0


def fold_session(agg: Aggregates, events: Iterable[Event], seg: Segment | None, cfg: RecommendConfig) -> Segment:
    """One session's events (with its open segment from an earlier night, if any) into `agg`, whose
    ref is already tonight's; returns the segment it ends in."""
    gap = cfg.session_gap_minutes * 60.0
    for e in sorted(events, key=_sort_key):
        if seg is None or e.ts - seg.last > gap:
            seg = Segment(start=e.ts, last=e.ts)
            agg.sessions += _decay(agg.ref, seg.start, cfg)
        _step(agg, seg, e, cfg)
    assert seg is not None, "a session has at least one event"
    return seg


def _decay(ref: float, start: float, cfg: RecommendConfig) -> float:
    return 2.0 ** (-(ref - start) / (cfg.half_life_days * DAY_S))


def _step(agg: Aggregates, seg: Segment, e: Event, cfg: RecommendConfig) -> None:
    d = _decay(agg.ref, seg.start, cfg)
    w = cfg.weights[e.kind]
    seg.last = max(seg.last, e.ts)
    old = seg.aff.get(e.sku)
    if old is None and len(seg.aff) >= cfg.max_session_items:
        return
    if old is None or w > old:
        before = old or 0.0
        agg.items[e.sku] += d * (w - before)
        for q, aq in seg.aff.items():
            if q != e.sku:
                agg.pairs[pair(e.sku, q)] += d * (min(w, aq) - min(before, aq))
        if e.sku in seg.bought:  # a bought pair follows the stronger weight too
            for q in seg.bought:
                if q != e.sku:
                    agg.bought[pair(e.sku, q)] += d * (min(w, seg.aff[q]) - min(before, seg.aff[q]))
        seg.aff[e.sku] = w
    if e.kind == "purchase" and e.sku not in seg.bought:
        for q in seg.bought:
            agg.bought[pair(e.sku, q)] += d * min(seg.aff[e.sku], seg.aff[q])
        seg.bought.append(e.sku)
    if seg.prev is not None and seg.prev != e.sku:
        agg.trans[(seg.prev, e.sku)] += d
    seg.prev = e.sku


def similarity(c_ab: float, c_a: float, c_b: float, how: str, total: float = 1.0) -> float:
    if c_ab <= 0 or c_a <= 0 or c_b <= 0:
        return 0.0
    if how == "jaccard":
        return c_ab / max(c_a + c_b - c_ab, c_ab)
    if how == "lift":
        return c_ab * max(total, 1e-12) / (c_a * c_b)
    return c_ab / math.sqrt(c_a * c_b)


def scored(table: str, a: str, b: str, v: float, items: dict[str, float], cfg: RecommendConfig, total: float,
           from_total: dict[str, float]) -> list[tuple[str, str, float]]:
    """One aggregate row -> (product, partner, score) rows: both directions of a co-occurrence pair
    (its similarity), one of a transition (the share of next views after `a`); none below support."""
    if table == "trans":
        if v < cfg.min_support / cfg.weights["view"] or not from_total.get(a):  # support in sessions
            return []
        return [(a, b, v / from_total[a])]
    if v < cfg.min_support:
        return []
    sim = similarity(v, items.get(a, 0.0), items.get(b, 0.0), cfg.similarity, total)
    return [(a, b, sim), (b, a, sim)] if sim > 0 else []


def top(cands: Iterable[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    """Best first; ties broken by SKU so every run lists them the same way."""
    return sorted(cands, key=lambda x: (-x[1], x[0]))[:k]


def neighbours(table: dict[tuple[str, str], float], items: dict[str, float], cfg: RecommendConfig,
               total: float = 1.0, directed: bool = False, k: int | None = None) -> dict[str, list[tuple[str, float]]]:
    """Per product, its k best partners by similarity (pairs) or by share of next views (directed)."""
    k = cfg.k if k is None else k
    from_total: dict[str, float] = defaultdict(float)
    if directed:
        for (a, _), v in table.items():
            from_total[a] += v
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (a, b), v in table.items():
        for x, y, score in scored("trans" if directed else "pairs", a, b, v, items, cfg, total, from_total):
            out[x].append((y, score))
    return {p: top(c, k) for p, c in out.items()}
