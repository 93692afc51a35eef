"""Offline relevance metrics (NDCG, recall, MRR) over graded judgments; pure, no Elasticsearch."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REQUIRED_COLUMNS = ("query", "sku", "grade")
CLICK_COLUMNS = ("query", "sku", "clicks")  # plus an optional "impressions"

# Click logs -> grades. With impressions: the CTR, shrunk towards 0 by CTR_PRIOR_IMPRESSIONS unclicked
# impressions (ctr = clicks / (impressions + prior), so a handful of impressions never makes a top grade),
# is graded 3 at >= 0.3, 2 at >= 0.1, 1 for any click; no click after >= MIN_IMPRESSIONS impressions is
# 0 (a shown, skipped product), and fewer says too little: the pair is left out. Without impressions:
# grades by the pair's share of its query's most-clicked product: 3 at >= 0.5, 2 at >= 0.2, 1 for any
# click, 0 for a logged pair without clicks. Rows of the same (query, sku) are summed first.
CTR_GRADES = ((0.3, 3.0), (0.1, 2.0))
CTR_PRIOR_IMPRESSIONS = 5.0
MIN_IMPRESSIONS = 10.0
SHARE_GRADES = ((0.5, 3.0), (0.2, 2.0))


def ctr_grade(clicks: float, impressions: float) -> float | None:
    """A pair's grade from its clicks and impressions (None: too few impressions to say)."""
    if clicks <= 0:
        return 0.0 if impressions >= MIN_IMPRESSIONS else None
    ctr = clicks / (impressions + CTR_PRIOR_IMPRESSIONS)
    return next((g for floor, g in CTR_GRADES if ctr >= floor), 1.0)


def share_grade(clicks: float, most: float) -> float:
    """A pair's grade from its clicks against its query's most-clicked product (no impressions)."""
    if clicks <= 0 or most <= 0:
        return 0.0
    return next((g for floor, g in SHARE_GRADES if clicks / most >= floor), 1.0)


def _rows(path: Path):
    """(header, rows as (line, {column: stripped value})) of a CSV; a BOM is dropped."""
    # utf-8-sig: spreadsheet exports often start with a BOM, which would otherwise rename the first column.
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [(h or "").strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        yield header
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}


def _number(path: Path, line: int, row: dict[str, str], column: str) -> float:
    raw = row.get(column, "")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{path.name}: line {line}: {column} {raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{path.name}: line {line}: {column} {raw!r} must be a finite number >= 0")
    return value


def _key(path: Path, line: int, row: dict[str, str]) -> tuple[str, str]:
    if not row.get("query"):
        raise ValueError(f"{path.name}: line {line}: empty query")
    if not row.get("sku"):
        raise ValueError(f"{path.name}: line {line}: empty sku")
    return row["query"], row["sku"]


def _graded(path: Path, rows) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for line, row in rows:
        query, sku = _key(path, line, row)
        grade = _number(path, line, row, "grade")
        judged = out.setdefault(query, {})
        if sku in judged:
            if judged[sku] != grade:
                raise ValueError(f"{path.name}: line {line}: ({query!r}, {sku!r}) graded {row['grade']} here but "
                                 f"{judged[sku]:g} on line {first_line[query, sku]}")
            continue
        judged[sku] = grade
        first_line[query, sku] = line
    return out


def _clicked(path: Path, rows, with_impressions: bool) -> dict[str, dict[str, float]]:
    """Click-log rows summed per (query, sku), then graded by the rule above."""
    sums: dict[str, dict[str, list[float]]] = {}
    for line, row in rows:
        query, sku = _key(path, line, row)
        clicks = _number(path, line, row, "clicks")
        shown = _number(path, line, row, "impressions") if with_impressions else 0.0
        if with_impressions and clicks > shown:
            raise ValueError(f"{path.name}: line {line}: clicks {row['clicks']} > impressions {row['impressions']}")
        tot = sums.setdefault(query, {}).setdefault(sku, [0.0, 0.0])
        tot[0] += clicks
        tot[1] += shown
    out: dict[str, dict[str, float]] = {}
    for query, pairs in sums.items():
        most = max(c for c, _ in pairs.values())
        graded = {sku: ctr_grade(c, n) if with_impressions else share_grade(c, most) for sku, (c, n) in pairs.items()}
        graded = {sku: g for sku, g in graded.items() if g is not None}
        if graded:
            out[query] = graded
    return out


def load_judgments(path: str | Path) -> dict[str, dict[str, float]]:
    """Read judgments into ``{query: {sku: grade}}`` (queries in first-seen order): a ``query,sku,grade``
    CSV, or a click log ``query,sku,clicks[,impressions]`` graded by the rule above (ctr_grade, share_grade)."""
    path = Path(path)
    rows = _rows(path)
    header = next(rows)
    clicks = "grade" not in header and "clicks" in header
    missing = [c for c in (CLICK_COLUMNS if clicks else REQUIRED_COLUMNS) if c not in header]
    if missing:
        want = (f"a click log needs a header with {','.join(CLICK_COLUMNS)}[,impressions]" if clicks else
                f"expected a header with {','.join(REQUIRED_COLUMNS)} (or a click log: {','.join(CLICK_COLUMNS)}"
                "[,impressions])")
        raise ValueError(f"{path.name}: line 1: missing column(s) {', '.join(missing)}; {want}")
    return _clicked(path, rows, "impressions" in header) if clicks else _graded(path, rows)


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
