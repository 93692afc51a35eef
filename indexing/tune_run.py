"""The tune-search job: fetch each judged query's lists once, score every candidate, choose, store
the choice with every index behind the alias, and write report.json."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from rich.console import Console
from rich.progress import Progress

from indexing import tune
from indexing.evaluate import load_judgments
from indexing.lifecycle import config_profile, index_meta, search_meta, update_meta, vector_facts
from indexing.search import Filters, SearchProfile, ranked_lists
from indexing.writer import alias_targets
from shopgen.core.config import Settings
from shopgen.core.run import Report


def _base_profile(es: Elasticsearch, target: str, settings: Settings) -> SearchProfile:
    """The config's profile with the index's uninformative fields, size and vector type (as `search`
    sees them), but none of an earlier tuning."""
    base = SearchProfile.from_meta({"uninformative": search_meta(es, target).get("uninformative")},
                                   config_profile(settings))
    return replace(base, **vector_facts(es, target))


def fetch_lists(es: Elasticsearch, target: str, queries: list[str], encode: Callable[[str], Any],
                base: SearchProfile, progress: Callable[[], None] = lambda: None) -> dict[str, tuple[list, list]]:
    """Each query's bm25 and knn hits, `base.window` deep, with scores: what every candidate fuses."""
    out = {}
    for q in queries:
        out[q] = ranked_lists(es, target, q, encode(q), base.window, Filters(), base)
        progress()
    return out


def run_judged_job(es: Elasticsearch, alias: str, judgments_path: str, workdir: Path, job: str,
                   body: Callable[[list[str], dict, Report, datetime], None]) -> dict[str, Any]:
    """A job over an alias's judged queries (tune-search, train-ranker): the judgments read, the
    alias's indices found, `body(indices, judgments, report, started)` run, report.json written
    whatever happens."""
    judgments = load_judgments(judgments_path)
    indices = alias_targets(es, alias) or ([alias] if es.indices.exists(index=alias) else [])
    if not indices:
        raise LookupError(f"alias or index {alias!r} does not exist yet: run `shopgen nightly` or "
                          "`shopgen index build` first")
    workdir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    rep = Report(run_id=started.strftime("%Y%m%dT%H%M%S%fZ"), job=job, workdir=str(workdir.resolve()),
                 started_at=started.isoformat(), alias=alias, judgments=str(Path(judgments_path).resolve()),
                 outputs={"report": str((workdir / "report.json").resolve())})
    try:
        body(indices, judgments, rep, started)
        rep.data["status"] = "succeeded"
    except Exception as e:
        rep.data["status"] = "failed"
        rep.data["errors"].append(f"{type(e).__name__}: {e}")
        raise
    finally:
        rep.data["finished_at"] = datetime.now(timezone.utc).isoformat()
        rep.write(workdir / "report.json")
    return rep.data


def run_tune(es: Elasticsearch, alias: str, judgments_path: str, settings: Settings, workdir: Path,
             encoder: Callable[[], Any], store: bool = True, console: Console | None = None,
             ranker: Callable[[], Any] | None = None) -> dict[str, Any]:
    """`ranker` loads the alias's ranker (indexing/ltr.py) when it has one: ltr is then a candidate."""
    console = console or Console(stderr=True)
    return run_judged_job(es, alias, judgments_path, workdir, "tune-search", lambda indices, judgments, rep, started: _tune(
        es, alias, indices, judgments, judgments_path, settings, encoder, store, console, rep, started, ranker))


def _ltr_heldout(es: Elasticsearch, alias: str, held: list[str], judgments: dict, encode: Callable,
                 profile: SearchProfile, model: Any) -> float | None:
    """ltr's held-out NDCG@10 as search serves it (the tuned hybrid's candidates, reranked)."""
    from indexing.evaluate import ndcg_at
    from indexing.search import search

    got = {}
    for q in held:
        if any(g > 0 for g in judgments[q].values()):
            hits = search(es, alias, q, "ltr", 10, profile=profile, query_vector=encode(q), ranker=model)
            got[q] = ndcg_at([h["sku"] for h in hits], judgments[q], 10)
    return tune.mean(got, list(got))


def _consider_ltr(es: Elasticsearch, alias: str, held: list[str], judgments: dict, encode: Callable,
                  base: SearchProfile, result: dict[str, Any], ranker: Callable[[], Any] | None,
                  cfg: Any) -> dict[str, Any] | None:
    """tune-search's verdict on the alias's ranker (None: it has none); the result's mode becomes ltr
    when the ranker beats the tuned hybrid on the held-out queries."""
    ref = search_meta(es, alias).get("ranker")
    if not ref or ranker is None:
        return None
    model = ranker()
    same = ref.get("heldout_fraction") == cfg.heldout_fraction and ref.get("split_seed") == cfg.split_seed
    score = _ltr_heldout(es, alias, held, judgments, encode, result["hybrid"].profile(base), model) if same else None
    ok, why = tune.ltr_verdict(score, result["heldout"]["hybrid"], same)
    if ok:
        result["mode"] = "ltr"
    return {"version": ref.get("version"), "heldout": score, "hybrid_heldout": result["heldout"]["hybrid"],
            "chosen": ok, "reason": why}


def _tune(es: Elasticsearch, alias: str, indices: list[str], judgments: dict, judgments_path: str, settings: Settings,
          encoder: Callable[[], Any], store: bool, console: Console, rep: Report, started: datetime,
          ranker: Callable[[], Any] | None = None) -> None:
    from shopgen.adapters.encoder import query_encoder

    cfg = settings.search
    base = _base_profile(es, alias, settings)
    embedding_model = index_meta(es, indices[0]).get("embedding_model")
    with rep.stage("tune", console) as st:
        encode = query_encoder(encoder(), settings.embedding)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("judged queries", total=len(judgments))
            lists = fetch_lists(es, alias, list(judgments), encode, base, lambda: bar.advance(task))
        cands = tune.candidates()
        table = tune.score_table(cands, lists, judgments, base)
        tune_qs, held_qs = tune.split_queries(judgments, cfg.heldout_fraction, cfg.split_seed)
        if not [q for q in tune_qs if q in table["bm25"]]:
            raise ValueError(f"{judgments_path}: no tuning query has a relevant SKU (of {len(judgments)} queries, "
                             f"{len(held_qs)} held out); add judged queries or lower search.heldout_fraction")
        result = tune.choose(table, cands, list(tune_qs), list(held_qs), cfg.folds, cfg.split_seed)
        verdict = _consider_ltr(es, alias, list(held_qs), judgments, encode, base, result, ranker, cfg)
        digest = hashlib.sha256(Path(judgments_path).read_bytes()).hexdigest()[:16]
        meta = tune.tuned_meta(result, cfg.heldout_fraction, cfg.split_seed, f"{Path(judgments_path).name}@{digest}",
                               embedding_model, started.isoformat())
        if verdict:
            meta["tuning"]["ltr"] = verdict
        st.update(mode=result["mode"], chosen=result["chosen"], hybrid=result["hybrid"].name,
                  tuning=result["tuning"], heldout=result["heldout"], queries=result["queries"],
                  cv={k: v["ndcg@10"] for k, v in result["cv"].items()}, candidates=len(cands),
                  tuned=meta["tuned"], stored_in=[], ltr=verdict)
        if store:
            for name in indices:
                update_meta(es, name, search={**search_meta(es, name), **meta})
            st["stored_in"] = indices
