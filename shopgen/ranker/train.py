"""The LambdaMART fit (XGBoost `rank:ndcg`) and its cross-validation, grouped by query.

A group is one judged query's candidates (the hybrid top N), their feature rows and their grades
(unjudged = 0). The model is scored as it serves: NDCG@10 of the reranked head followed by the rest,
against every judged product of the query (a relevant product the candidates missed still counts in
the ideal ranking)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from indexing.evaluate import ndcg_at
from indexing.ltr import rerank
from indexing.tune import fold_of, mean

# Small on purpose: a shop has tens to hundreds of judged queries. Chosen by cross-validation. With
# that few, a linear LambdaRank over standardised features often generalises best (on the read Luma
# judgments: 0.705 NDCG@10 out of sample against 0.676-0.684 for trees of depth 1-3).
GRID = ({"booster": "gblinear", "rounds": 300, "eta": 0.3},
        {"booster": "gblinear", "rounds": 1000, "eta": 0.1},
        {"booster": "gbtree", "max_depth": 1, "rounds": 100},
        {"booster": "gbtree", "max_depth": 2, "rounds": 150})
RANK = {"objective": "rank:ndcg", "eval_metric": "ndcg@10", "lambdarank_pair_method": "topk", "seed": 0, "nthread": 2}
TREES = {"eta": 0.05, "min_child_weight": 1.0, "subsample": 0.8, "colsample_bytree": 0.8,
         "lambdarank_num_pair_per_sample": 16, "tree_method": "hist"}
LINEAR = {"lambda": 0.0, "alpha": 0.0}


@dataclass(frozen=True)
class Group:
    query: str
    ids: tuple[str, ...]  # the hybrid ranking, the candidates first
    rows: tuple[tuple[float, ...], ...]  # one per candidate (the head of `ids`)
    labels: tuple[float, ...]


def label(grade: float) -> float:
    """rank:ndcg takes whole relevance levels up to 31: a grade is rounded (1.5 -> 2) and capped."""
    return float(min(31, round(grade)))


def make_group(query: str, ids: Sequence[str], rows: Sequence[Sequence[float]], judged: Mapping[str, float]) -> Group:
    return Group(query, tuple(ids), tuple(tuple(r) for r in rows),
                 tuple(label(judged.get(i, 0.0)) for i in ids[:len(rows)]))


def fit(groups: Sequence[Group], params: Mapping[str, Any], features: Sequence[str]) -> Model:
    """A model on standardised features (the training rows' mean and spread are kept with it)."""
    import numpy as np
    import xgboost as xgb

    use = [g for g in groups if g.rows]
    x = np.asarray([r for g in use for r in g.rows], dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    y = np.asarray([v for g in use for v in g.labels], dtype=np.float32)
    d = xgb.DMatrix(((x - mean) / scale).astype(np.float32), label=y, feature_names=list(features))
    d.set_group([len(g.rows) for g in use])
    kind = params.get("booster", "gbtree")
    p = {**RANK, **(LINEAR if kind == "gblinear" else TREES), **{k: v for k, v in params.items() if k != "rounds"}}
    booster = xgb.train(p, d, num_boost_round=int(params["rounds"]))
    return Model(booster, [float(v) for v in mean], [float(v) for v in scale])


@dataclass(frozen=True)
class Model:
    booster: Any
    mean: list[float]
    scale: list[float]


def predict(model: Model, group: Group, features: Sequence[str]) -> list[float]:
    from indexing.ltr import Ranker

    return Ranker(model.booster, list(features), len(group.rows), mean=model.mean, scale=model.scale).scores(
        group.rows)


def ranked(group: Group, scores: Sequence[float]) -> list[str]:
    return [h["_id"] for h in rerank([{"_id": i} for i in group.ids], scores, len(group.ids))]


def ndcgs(groups: Sequence[Group], judgments: Mapping[str, Mapping[str, float]], model: Model | None = None,
          features: Sequence[str] = ()) -> dict[str, float]:
    """query -> NDCG@10, reranked by `model` (None: the hybrid order), for queries with a relevant product."""
    out = {}
    for g in groups:
        if not any(v > 0 for v in judgments[g.query].values()):
            continue
        order = ranked(g, predict(model, g, features)) if model is not None else list(g.ids)
        out[g.query] = ndcg_at(order, judgments[g.query], 10)
    return out


def cross_validate(groups: Sequence[Group], judgments: Mapping[str, Mapping[str, float]], features: Sequence[str],
                   folds: int, seed: int = 0) -> dict[str, Any]:
    """Each grid point's NDCG@10 on queries it did not train on (folds by query hash), and the best."""
    by_fold: dict[int, list[Group]] = {}
    for g in groups:
        by_fold.setdefault(fold_of(g.query, folds, seed), []).append(g)
    table = []
    for params in GRID:
        got: dict[str, float] = {}
        for f, held in by_fold.items():
            train = [g for k, gs in by_fold.items() if k != f for g in gs]
            if any(v > 0 for g in train for v in g.labels):
                got.update(ndcgs(held, judgments, fit(train, params, features), features))
        table.append({"params": dict(params), "ndcg@10": mean(got, list(got)), "queries": len(got)})
    best = max(table, key=lambda r: r["ndcg@10"] or 0.0)
    return {"grid": table, "best": best["params"], "ndcg@10": best["ndcg@10"], "folds": len(by_fold),
            "hybrid_ndcg@10": mean(ndcgs(groups, judgments), [g.query for g in groups])}
