"""tune-search: pick the search mode and the fusion weights on the shop's own judged queries.

Each judged query's bm25 and knn lists are fetched once (with scores); every candidate (bm25, knn,
weighted RRF, linear fusion with min-max or L2 normalisation, over a grid of weights) is then scored
here by the same fusion the server would run. The choice is made on the tuning queries; the
queries held out by query hash only measure it, and cross-validation over the tuning queries says
what the choosing itself is worth. All of it is pure: indexing.tune_run fetches the lists."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from indexing.evaluate import ndcg_at
from indexing.search import SearchProfile, fuse

Judgments = Mapping[str, Mapping[str, float]]
Lists = Mapping[str, tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]]]]
# bm25's share of the weight in the hybrid grids (0 and 1 included: a fusion may learn one side is best).
GRID = tuple(round(i / 10, 1) for i in range(11))


def _norm(q: str) -> str:
    return " ".join(q.lower().split())


def query_unit(query: str, seed: int, salt: str = "") -> float:
    """A stable number in [0, 1) per query (case and spacing do not matter)."""
    h = hashlib.sha256(f"{seed}:{salt}:{_norm(query)}".encode()).hexdigest()
    return int(h[:12], 16) / 16 ** 12


def split_queries(judgments: Judgments, fraction: float, seed: int = 0) -> tuple[dict, dict]:
    """(tuning, held out): a query is held out when its hash falls below `fraction`."""
    tune, held = {}, {}
    for q, j in judgments.items():
        (held if query_unit(q, seed, "heldout") < fraction else tune)[q] = j
    return tune, held


def fold_of(query: str, folds: int, seed: int = 0) -> int:
    return int(query_unit(query, seed, "fold") * folds)


@dataclass(frozen=True)
class Candidate:
    mode: str
    fusion: str = "rrf"
    weights: tuple[float, float] = (1.0, 1.0)
    normalizer: str = "minmax"

    @property
    def name(self) -> str:
        if self.mode != "hybrid":
            return self.mode
        extra = f"-{self.normalizer}" if self.fusion == "linear" else ""
        return f"{self.fusion}{extra}:{self.weights[0]:g}/{self.weights[1]:g}"

    def profile(self, base: SearchProfile) -> SearchProfile:
        return replace(base, mode=self.mode, fusion=self.fusion, weights=self.weights, normalizer=self.normalizer)


def candidates() -> list[Candidate]:
    """bm25 first: on equal scores the simpler, cheaper mode wins."""
    out = [Candidate("bm25"), Candidate("knn"), Candidate("hybrid")]
    out += [Candidate("hybrid", "rrf", (w, round(1 - w, 1))) for w in GRID if 0 < w < 1 and w != 0.5]
    out += [Candidate("hybrid", "linear", (w, round(1 - w, 1)), n) for n in ("minmax", "l2_norm") for w in GRID]
    return out


def ranking(c: Candidate, bm25: Sequence[dict[str, Any]], knn: Sequence[dict[str, Any]], k: int,
            base: SearchProfile) -> list[str]:
    if c.mode == "bm25":
        hits = list(bm25)[:k]
    elif c.mode == "knn":
        hits = list(knn)[:k]
    else:
        hits = fuse(bm25, knn, k, c.profile(base))
    return [h["_id"] for h in hits]


def score_table(cands: Sequence[Candidate], lists: Lists, judgments: Judgments, base: SearchProfile,
                k: int = 10) -> dict[str, dict[str, float]]:
    """candidate name -> query -> NDCG@k, for the judged queries that have a relevant SKU."""
    qs = [q for q in judgments if q in lists and any(g > 0 for g in judgments[q].values())]
    return {c.name: {q: ndcg_at(ranking(c, *lists[q], k, base), judgments[q], k) for q in qs} for c in cands}


def mean(scores: Mapping[str, float], queries: Sequence[str]) -> float | None:
    qs = [q for q in queries if q in scores]
    return round(sum(scores[q] for q in qs) / len(qs), 4) if qs else None


def best(table: Mapping[str, Mapping[str, float]], names: Sequence[str], queries: Sequence[str]) -> str:
    """The name with the highest mean over `queries`; the first such in `names` on a tie."""
    return max(names, key=lambda n: (mean(table[n], queries) or 0.0, -names.index(n)))


def cross_validate(table: Mapping[str, Mapping[str, float]], names: Sequence[str], queries: Sequence[str],
                   folds: int, seed: int = 0) -> dict[str, Any]:
    """What choosing among `names` is worth on queries it did not see: each fold is scored with the
    choice made on the other folds."""
    by_fold: dict[int, list[str]] = {}
    for q in queries:
        by_fold.setdefault(fold_of(q, folds, seed), []).append(q)
    if len(by_fold) < 2:
        return {"ndcg@10": None, "folds": len(by_fold), "choices": []}
    got: dict[str, float] = {}
    choices = []
    for _, held in sorted(by_fold.items()):
        train = [q for q in queries if q not in set(held)]
        pick = best(table, names, train)
        choices.append(pick)
        got.update({q: table[pick][q] for q in held if q in table[pick]})
    return {"ndcg@10": mean(got, list(got)), "folds": len(by_fold), "choices": choices}


def choose(table: Mapping[str, Mapping[str, float]], cands: Sequence[Candidate], tune: Sequence[str],
           held: Sequence[str], folds: int, seed: int = 0) -> dict[str, Any]:
    """The mode and the hybrid weights, chosen on `tune`; figures on `tune`, by cross-validation,
    and on `held`."""
    names = [c.name for c in cands]
    by_name = {c.name: c for c in cands}
    hybrids = [c.name for c in cands if c.mode == "hybrid"]
    plain = Candidate("hybrid").name
    hybrid = best(table, hybrids, tune)
    chosen = best(table, ["bm25", "knn", hybrid], tune)

    def figures(queries: Sequence[str]) -> dict[str, float | None]:
        return {"bm25": mean(table["bm25"], queries), "knn": mean(table["knn"], queries),
                "hybrid": mean(table[hybrid], queries), "hybrid_untuned": mean(table[plain], queries),
                "chosen": mean(table[chosen], queries)}

    return {"mode": by_name[chosen].mode, "chosen": chosen, "hybrid": by_name[hybrid],
            "tuning": figures(tune), "heldout": figures(held),
            "cv": {"chosen": cross_validate(table, names, tune, folds, seed),
                   "hybrid": cross_validate(table, hybrids, tune, folds, seed)},
            "queries": {"tuning": len([q for q in tune if q in table["bm25"]]),
                        "heldout": len([q for q in held if q in table["bm25"]])}}


def tuned_meta(result: dict[str, Any], heldout_fraction: float, split_seed: int, judgments: str,
               embedding_model: str | None, tuned_at: str) -> dict[str, dict[str, Any]]:
    """What the index keeps in `_meta.search`: `tuned` (the profile keys search reads) and `tuning`
    (how they were chosen, so the gate and eval-search can find the held-out queries)."""
    h = result["hybrid"]
    return {"tuned": {"mode": result["mode"], "fusion": h.fusion,
                      "weights": {"bm25": h.weights[0], "knn": h.weights[1]}, "normalizer": h.normalizer},
            "tuning": {"chosen": result["chosen"], "hybrid": h.name, "heldout_fraction": heldout_fraction,
                       "split_seed": split_seed, "judgments": judgments, "embedding_model": embedding_model,
                       "tuned_at": tuned_at, "tuning_ndcg": result["tuning"], "heldout_ndcg": result["heldout"],
                       "cv_ndcg": {k: v["ndcg@10"] for k, v in result["cv"].items()},
                       "queries": result["queries"]}}


def ltr_verdict(ltr: float | None, hybrid: float | None, same_split: bool) -> tuple[bool, str]:
    """Whether `auto` may serve ltr: only when the ranker beats the tuned hybrid on held-out queries
    that it did not train on (the ranker's split must be this tuning's)."""
    if not same_split:
        return False, "the ranker was trained on another query split: its held-out queries are not these"
    if ltr is None or hybrid is None:
        return False, "no held-out judged query to compare ltr with hybrid on"
    if round(ltr, 4) > round(hybrid, 4):
        return True, f"held-out NDCG@10 {ltr:.4f} beats hybrid's {hybrid:.4f}"
    return False, f"held-out NDCG@10 {ltr:.4f} does not beat hybrid's {hybrid:.4f}"
