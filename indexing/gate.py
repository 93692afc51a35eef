"""The gate a new index must pass before the alias moves to it. Each check is a pure function
returning {check, passed, detail}; `decide` turns them into a verdict with reasons."""

from __future__ import annotations

from typing import Any


def _check(name: str, passed: bool, detail: str, **figures: Any) -> dict[str, Any]:
    return {"check": name, "passed": bool(passed), "detail": detail, **figures}


def doc_count(count: int, expected: int) -> dict[str, Any]:
    return _check("doc_count", count == expected,
                  f"{count} docs in the new index, {expected} expected (input minus quarantined)",
                  count=count, expected=expected)


def doc_drop(count: int, live_count: int | None, max_drop: float, min_docs: int = 0) -> dict[str, Any]:
    """Refuses losing more than max_drop of the live docs, unless it is at most min_docs docs (so
    one legitimate deletion does not stop a small catalog's nightly)."""
    if not live_count:
        return _check("doc_drop", True, "no live index to compare with", count=count, live_count=live_count)
    drop = 1 - count / live_count
    lost = live_count - count
    return _check("doc_drop", drop <= max_drop or lost <= min_docs,
                  f"{count} docs vs {live_count} live: {'drop' if drop >= 0 else 'growth'} of {abs(drop):.1%} "
                  f"(max drop {max_drop:.1%}, or up to {min_docs} docs)", count=count, live_count=live_count,
                  drop=round(drop, 4))


def error_rate(errors: int, attempted: int, max_rate: float) -> dict[str, Any]:
    rate = errors / attempted if attempted else 0.0
    return _check("bulk_error_rate", rate <= max_rate,
                  f"{errors} of {attempted} bulk items failed ({rate:.2%}, max {max_rate:.2%})",
                  errors=errors, attempted=attempted, rate=round(rate, 4))


def smoke(results: list[dict[str, Any]]) -> dict[str, Any]:
    """results: {query, hits, expect_sku (optional), found}; each query needs a hit (and its SKU, if named)."""
    bad = [r for r in results if not r["hits"] or (r.get("expect_sku") and not r["found"])]
    detail = (f"{len(results) - len(bad)}/{len(results)} smoke queries passed"
              + ("; failed: " + ", ".join(repr(r["query"]) for r in bad[:5]) if bad else ""))
    return _check("smoke_queries", not bad, detail, queries=results)


def ndcg(new: float, live: float | None, tolerance: float) -> dict[str, Any]:
    if live is None:
        return _check("ndcg@10", True, f"NDCG@10 {new:.4f}; no live index to compare with", new=new, live=None)
    return _check("ndcg@10", new >= live - tolerance,
                  f"NDCG@10 {new:.4f} vs live {live:.4f} (tolerance {tolerance})", new=new, live=live)


def ltr_ranker(problem: str | None) -> dict[str, Any]:
    """Whether the ranker auto serves (tuned mode ltr) loads and fits the new index's vectors. When it
    does not, the new index serves the tuned hybrid instead (passed: nothing is lost by the swap)."""
    if problem is None:
        return _check("ltr_ranker", True, "the ranker loads and was trained on this index's embedder")
    return _check("ltr_ranker", True, f"{problem}; this index serves hybrid until train-ranker runs again",
                  fallback="hybrid")


def mode_vs_bm25(mode: str, chosen: float | None, bm25: float | None) -> dict[str, Any]:
    """The chosen search mode may not score below bm25 alone on the held-out judged queries."""
    if chosen is None or bm25 is None:
        return _check("mode_vs_bm25", True, f"no held-out judged query to compare {mode} with bm25 on",
                      mode=mode, chosen=None, bm25=None)
    return _check("mode_vs_bm25", round(chosen, 4) >= round(bm25, 4),
                  f"held-out NDCG@10 of the chosen mode {mode} {chosen:.4f} vs bm25 {bm25:.4f}",
                  mode=mode, chosen=chosen, bm25=bm25)


def decide(checks: list[dict[str, Any]]) -> dict[str, Any]:
    reasons = [f"{c['check']}: {c['detail']}" for c in checks if not c["passed"]]
    return {"passed": not reasons, "reasons": reasons, "checks": checks}
