"""Recommendation lists from the aggregates (pure): per product (also viewed, bought together, the
blend) and for a session or cart. Behaviour fills the first slots, then content similarity (for
products with too little behaviour: cold start), then what is popular in the category. Every slot
names its source; a list holds only products of the same locale, never the product itself or one of
its variants, and nothing outside the catalog."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from shopgen.core.config import RecommendConfig
from shopgen.recommend.cooc import Aggregates, neighbours

SOURCES = ("behaviour", "content", "popular")
# How much the share of next views after the shopper's last product adds to the co-occurrence score.
TRANSITION_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class Item:
    locale: str
    category: str
    group: str  # variant group: the product itself, or the parent it names


@dataclass(frozen=True, slots=True)
class Slot:
    sku: str
    source: str  # behaviour | content | popular
    score: float


def fill_slots(out: list[Slot], seen: set[str], cands: Sequence[tuple[str, float]], source: str, k: int,
          ok: Callable[[str], bool]) -> None:
    for sku, score in cands:
        if len(out) >= k:
            return
        if sku not in seen and ok(sku):
            out.append(Slot(sku, source, round(float(score), 6)))
            seen.add(sku)


def allowed(items: Mapping[str, Item] | None, anchors: Sequence[str]) -> Callable[[str], bool]:
    """Same locale as the latest anchor, not an anchor or a variant of one, and in `items` (the
    catalog; None: anything but the anchors)."""
    if items is None:
        return lambda s: s not in anchors
    known = [items[a] for a in anchors if a in items]
    groups = set(anchors) | {i.group for i in known}
    locale = known[-1].locale if known else None

    def ok(s: str) -> bool:
        it = items.get(s)
        return it is not None and s not in groups and it.group not in groups and (locale is None or it.locale == locale)
    return ok


class Recommender:
    """Lists from one night's aggregates; `catalog` (sku -> Item) limits them to products on sale.
    `content` is each product's content-similar products (the related kNN), best first."""

    def __init__(self, agg: Aggregates, cfg: RecommendConfig, catalog: Mapping[str, Item] | None = None,
                 content: Mapping[str, Sequence[str]] | None = None, candidates: int = 100):
        self.cfg, self.catalog, self.content = cfg, catalog, content or {}
        self.similar = neighbours(agg.pairs, agg.items, cfg, agg.sessions, k=candidates)
        self.together = neighbours(agg.bought, agg.items, cfg, agg.sessions, k=candidates)
        self.next = neighbours(agg.trans, agg.items, cfg, directed=True, k=candidates)
        pop = sorted(((s, v) for s, v in agg.items.items() if catalog is None or s in catalog),
                     key=lambda x: (-x[1], x[0]))
        self.popular = pop
        by_cat: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for s, v in pop:
            if catalog is not None:
                by_cat[catalog[s].category].append((s, v))
        self.popular_by_category = dict(by_cat)

    def _ok(self, anchors: Sequence[str]) -> Callable[[str], bool]:
        return allowed(self.catalog, anchors)

    def _popular_for(self, anchor: str | None) -> list[tuple[str, float]]:
        if anchor is not None and self.catalog is not None and anchor in self.catalog:
            return self.popular_by_category.get(self.catalog[anchor].category, []) + self.popular
        return self.popular

    def lists(self, sku: str, k: int | None = None) -> dict[str, list[Slot]]:
        """also_viewed, bought_together and recommended (the blend) for one product."""
        return product_lists(sku, self.similar.get(sku, []), self.together.get(sku, []), self.next.get(sku, []),
                             self.content.get(sku, []), self._popular_for(sku), self._ok([sku]),
                             self.cfg.k if k is None else k)

    def behaviour_scores(self, history: Sequence[str]) -> list[tuple[str, float]]:
        return behaviour_scores([self.similar.get(p, []) for p in history],
                                self.next.get(history[-1], []) if history else [])

    def for_session(self, history: Sequence[str], k: int | None = None) -> list[Slot]:
        last = history[-1] if history else None
        return blend(history, self.behaviour_scores(history), self.content.get(last, []) if last else [],
                     self._popular_for(last), self._ok(list(history)), self.cfg.k if k is None else k)


def blend(history: Sequence[str], behaviour: Sequence[tuple[str, float]], content: Sequence[str],
          popular: Sequence[tuple[str, float]], ok: Callable[[str], bool], k: int) -> list[Slot]:
    """The slots of a recommended list: behaviour first, then content-similar, then popular products,
    none of them already in `history`."""
    out: list[Slot] = []
    seen = set(history)
    fill_slots(out, seen, behaviour, "behaviour", k, ok)
    fill_slots(out, seen, [(s, 0.0) for s in content], "content", k, ok)
    fill_slots(out, seen, popular, "popular", k, ok)
    return out


def behaviour_scores(similar: Sequence[Sequence[tuple[str, float]]],
                     next_after_last: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Co-occurrence with each product of a session (`similar`, oldest first: the latest counts most),
    plus the share of shoppers who viewed each product next after the last one."""
    scores: dict[str, float] = defaultdict(float)
    m = len(similar)
    for i, lst in enumerate(similar):
        for q, s in lst:
            scores[q] += s / (m - i)
    for q, share in next_after_last:
        scores[q] += TRANSITION_WEIGHT * share
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))


def product_lists(sku: str, similar: Sequence[tuple[str, float]], together: Sequence[tuple[str, float]],
                  next_views: Sequence[tuple[str, float]], content: Sequence[str],
                  popular: Sequence[tuple[str, float]], ok: Callable[[str], bool], k: int) -> dict[str, list[Slot]]:
    """One product's also_viewed and bought_together (behaviour only) and recommended (the blend)."""
    out: dict[str, list[Slot]] = {}
    for name, cands in (("also_viewed", similar), ("bought_together", together)):
        lst: list[Slot] = []
        fill_slots(lst, set(), cands, "behaviour", k, ok)
        out[name] = lst
    out["recommended"] = blend([sku], behaviour_scores([similar], next_views), content, popular, ok, k)
    return out
