"""The nightly's check on behaviour lists (gate.recs_min_ratio): last night's item-to-item table
predicts tonight's sessions, which it has not seen, against last night's popularity on the same
predictions. Tonight's lists are published only when the blend's Recall@20 is at least the ratio
times popularity's; else the last published lists stay (the aggregates still learn tonight's events).

Tonight's sessions are sampled by their hashed id (one in HOLDOUT_MOD), and reading stops at
`gate.recs_holdout_events` sampled events, so the check costs a bounded read whatever the log's size."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shopgen.core.config import GateConfig, RecommendConfig
from shopgen.core.records import Quarantined
from shopgen.recommend.blend import Item, allowed, behaviour_scores, blend
from shopgen.recommend.evaluate import replay_cases, score
from shopgen.recommend.events import Event

HOLDOUT_MOD = 16  # one session in 16
K = 20


def in_sample(session: str) -> bool:
    """One session in HOLDOUT_MOD, by a checksum of its (already keyed-hashed) id: no shopper is favoured."""
    return zlib.crc32(session.encode("utf-8")) % HOLDOUT_MOD == 0


def sample_sessions(rows: Iterable[Event | Quarantined], cap: int) -> list[Event]:
    """The valid events of the sampled sessions (in_sample), up to `cap` of them."""
    out: list[Event] = []
    for r in rows:
        if isinstance(r, Event) and in_sample(r.session):
            out.append(r)
            if len(out) >= cap:
                break
    return out


def check(events: Sequence[Event], neighbours: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]],
          popularity: Mapping[str, float], popular_by_group: Mapping[tuple[str, str], Sequence[tuple[str, float]]],
          items: Mapping[str, Item], cfg: RecommendConfig, gate: GateConfig) -> dict[str, Any]:
    """Pure. `neighbours`: last night's table (sku -> similar/together/next); `popularity`: last
    night's decayed weight per product; `items`: the catalog. The blend is what the nightly publishes
    minus its content slots (behaviour, then the category's popular products); the baseline ranks the
    catalog by popularity. Both skip the products already seen."""
    cases = replay_cases(events, cfg.session_gap_minutes * 60.0, lambda s: s in items)
    out: dict[str, Any] = {"cases": len(cases), "min_ratio": gate.recs_min_ratio, "min_cases": gate.recs_min_cases}
    if len(cases) < gate.recs_min_cases:
        return {**out, "passed": True, "skipped": f"{len(cases)} held-out predictions, fewer than {gate.recs_min_cases}"}
    ranked = [s for s, _ in sorted(popularity.items(), key=lambda x: (-x[1], x[0])) if s in items]

    def popular(history: Sequence[str], k: int) -> list[str]:
        seen = set(history)
        return [s for s in ranked if s not in seen][:k]

    def blended(history: Sequence[str], k: int) -> list[str]:
        last = items.get(history[-1])
        scores = behaviour_scores([neighbours.get(s, {}).get("similar", []) for s in history],
                                  neighbours.get(history[-1], {}).get("next", []))
        group = popular_by_group.get((last.locale, last.category), []) if last else []
        return [x.sku for x in blend(history, scores, [], group, allowed(items, history), k)]

    b, p = score(cases, blended, K, len(items)), score(cases, popular, K, len(items))
    ratio = round(b["recall"] / p["recall"], 4) if p["recall"] else None
    passed = b["recall"] >= gate.recs_min_ratio * p["recall"]
    return {**out, f"recall@{K}.blend": b["recall"], f"recall@{K}.popularity": p["recall"], "ratio": ratio,
            "passed": passed}
