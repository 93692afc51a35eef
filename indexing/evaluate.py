"""Offline relevance metrics (NDCG, recall, MRR) over graded judgments; pure, no Elasticsearch."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REQUIRED_COLUMNS = ("query", "sku", "grade")


def load_judgments(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a ``query,sku,grade`` CSV into ``{query: {sku: grade}}`` (queries in first-seen order)."""
    path = Path(path)
    out: dict[str, dict[str, float]] = {}
    first_line: dict[tuple[str, str], int] = {}
    # utf-8-sig: spreadsheet exports often start with a BOM, which would otherwise rename the first column.
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [(h or "").strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path.name}: line 1: missing column(s) {', '.join(missing)}; "
                             f"expected a header with {','.join(REQUIRED_COLUMNS)}")
        reader.fieldnames = header
        for row in reader:
            line = reader.line_num
            query = (row.get("query") or "").strip()
            sku = (row.get("sku") or "").strip()
            raw = (row.get("grade") or "").strip()
            if not query:
                raise ValueError(f"{path.name}: line {line}: empty query")
            if not sku:
                raise ValueError(f"{path.name}: line {line}: empty sku")
            try:
                grade = float(raw)
            except ValueError:
                raise ValueError(f"{path.name}: line {line}: grade {raw!r} is not a number") from None
            if not math.isfinite(grade) or grade < 0:
                raise ValueError(f"{path.name}: line {line}: grade {raw!r} must be a finite number >= 0")
            judged = out.setdefault(query, {})
            if sku in judged:
                if judged[sku] != grade:
                    raise ValueError(f"{path.name}: line {line}: ({query!r}, {sku!r}) graded {raw} here but "
                                     f"{judged[sku]:g} on line {first_line[query, sku]}")
                continue
            judged[sku] = grade
            first_line[query, sku] = line
    return out


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _gain(grade: float) -> float:
    return 2.0 ** grade - 1.0


def ndcg_at(ranked: Sequence[str], judged: Mapping[str, float], k: int) -> float:
    """NDCG@k with gain 2**grade - 1 and discount 1/log2(rank + 1); unjudged skus count as grade 0."""
    _check_k(k)
    ideal = sorted(judged.values(), reverse=True)[:k]
    idcg = sum(_gain(g) / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg <= 0:
        return 0.0
    dcg = 0.0
    seen: set[str] = set()
    for i, sku in enumerate(ranked[:k]):
        # A repeated sku earns nothing the second time, or a run could exceed the ideal ranking.
        if sku in seen:
            continue
        seen.add(sku)
        dcg += _gain(judged.get(sku, 0.0)) / math.log2(i + 2)
    return dcg / idcg


def _relevant(judged: Mapping[str, float]) -> set[str]:
    return {sku for sku, g in judged.items() if g > 0}


def recall_at(ranked: Sequence[str], judged: Mapping[str, float], k: int) -> float:
    """Fraction of the relevant (grade > 0) skus that appear in ``ranked[:k]``; 0.0 if none is relevant."""
    _check_k(k)
    relevant = _relevant(judged)
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], judged: Mapping[str, float]) -> float:
    """1/rank of the first relevant (grade > 0) sku in ``ranked``; 0.0 if there is none."""
    for i, sku in enumerate(ranked):
        if judged.get(sku, 0.0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def evaluate(run: Callable[[str, int], Sequence[str]], judgments: Mapping[str, Mapping[str, float]],
             k: int = 10, depth: int = 100) -> dict[str, Any]:
    """Run every judged query through ``run(query, size)`` and average NDCG@10 (and @k), recall@depth and RR.

    Queries without any relevant sku are skipped (they would score 0 whatever the engine does).
    """
    _check_k(k)
    _check_k(depth)
    size = max(depth, k)
    recall_key = f"recall@{depth}"
    ndcg_k = f"ndcg@{k}"
    per_query: list[dict[str, Any]] = []
    skipped = 0
    for query, judged in judgments.items():
        if not _relevant(judged):
            skipped += 1
            continue
        ranked = list(run(query, size))[:size]
        entry: dict[str, Any] = {"query": query, "ndcg@10": ndcg_at(ranked, judged, 10),
                                 recall_key: recall_at(ranked, judged, depth),
                                 "rr": reciprocal_rank(ranked, judged)}
        if k != 10:
            entry[ndcg_k] = ndcg_at(ranked, judged, k)
        per_query.append(entry)
    if not per_query:
        raise ValueError("no judged query has a relevant sku")

    def mean(key: str) -> float:
        return round(sum(q[key] for q in per_query) / len(per_query), 4)

    out: dict[str, Any] = {"ndcg@10": mean("ndcg@10")}
    if k != 10:
        out[ndcg_k] = mean(ndcg_k)
    out.update({recall_key: mean(recall_key), "mrr": mean("rr"), "queries": len(per_query),
                "skipped": skipped, "per_query": per_query})
    return out
