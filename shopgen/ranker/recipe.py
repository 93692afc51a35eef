"""The train-ranker job: each judged query's hybrid candidates and their features from the cluster, a
LambdaMART fit chosen by query-grouped cross-validation on the tuning queries, the held-out queries
(tune-search's split) scored for the ranker and for the hybrid order it rearranges, the model
registered (kind `ranker`) and, with an alias, stored in its indices' `_meta.search.ranker`."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from rich.console import Console
from rich.progress import Progress

from indexing import ltr
from indexing.lifecycle import index_meta, profile_for, search_meta, update_meta
from indexing.search import Filters, hybrid_hits
from indexing.tune import mean, split_queries
from indexing.tune_run import run_judged_job
from shopgen.adapters.registry import Registry, gate, new_version_id
from shopgen.core.config import Settings
from shopgen.core.run import Report
from shopgen.ranker import train


def groups_for(es: Elasticsearch, target: str, judgments: dict[str, dict[str, float]], encode: Callable[[str], Any],
               candidates: int, settings: Settings, progress: Callable[[], None] = lambda: None) -> list[train.Group]:
    """One group per judged query: the hybrid ranking the index serves, its head's features."""
    p = profile_for(es, target, settings)
    p = replace(p, window=max(p.window, candidates))
    out = []
    for q, judged in judgments.items():
        vec = encode(q)
        hits, _ = hybrid_hits(es, target, q, vec, candidates, Filters(), p)
        ids = [h["_id"] for h in hits]
        rows = ltr.features(es, target, q, vec, hits[:candidates], settings.search.units)
        out.append(train.make_group(q, ids, rows, judged))
        progress()
    return out


def run_train_ranker(es: Elasticsearch, alias: str, judgments_path: str, settings: Settings, workdir: Path,
                     encoder: Callable[[], Any], store: bool = True, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    return run_judged_job(es, alias, judgments_path, workdir, "train-ranker", lambda indices, judgments, rep, _: _train(
        es, alias, indices, judgments, judgments_path, settings, encoder, store, console, rep))


def _train(es: Elasticsearch, alias: str, indices: list[str], judgments: dict, judgments_path: str,
           settings: Settings, encoder: Callable[[], Any], store: bool, console: Console, rep: Report) -> None:
    from shopgen.adapters.encoder import query_encoder

    cfg = settings.search
    n = cfg.ltr_candidates
    embedding_model = index_meta(es, indices[0]).get("embedding_model")
    with rep.stage("features", console) as st:
        encode = query_encoder(encoder(), settings.embedding)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("judged queries", total=len(judgments))
            groups = groups_for(es, alias, judgments, encode, n, settings, lambda: bar.advance(task))
        st.update(queries=len(groups), candidates=n, features=len(ltr.FEATURES),
                  judged_in_candidates=sum(1 for g in groups for v in g.labels if v > 0))
    tune_qs, held_qs = split_queries(judgments, cfg.heldout_fraction, cfg.split_seed)
    tuning = [g for g in groups if g.query in tune_qs and any(v > 0 for v in g.labels)]
    held = [g for g in groups if g.query in held_qs]
    if len(tuning) < 2:
        raise ValueError(f"{judgments_path}: {len(tuning)} tuning queries have a relevant product among their "
                         f"{n} hybrid candidates; a ranker needs more judged queries")
    with rep.stage("train", console) as st:
        cv = train.cross_validate(tuning, judgments, ltr.FEATURES, cfg.folds, cfg.split_seed)
        model = train.fit(tuning, cv["best"], ltr.FEATURES)
        ltr_held, hyb_held = train.ndcgs(held, judgments, model, ltr.FEATURES), train.ndcgs(held, judgments)
        metrics = {"ltr": {"ndcg@10": mean(ltr_held, list(ltr_held)), "n": len(ltr_held)},
                   "hybrid": {"ndcg@10": mean(hyb_held, list(hyb_held)), "n": len(hyb_held)},
                   "cv": {"ndcg@10": cv["ndcg@10"], "hybrid_ndcg@10": cv["hybrid_ndcg@10"], "folds": cv["folds"],
                          "grid": cv["grid"]}}
        beats, reasons = gate(metrics, "ranker")
        st.update(params=cv["best"], tuning_queries=len(tuning), heldout_queries=len(ltr_held),
                  heldout_ltr=metrics["ltr"]["ndcg@10"], heldout_hybrid=metrics["hybrid"]["ndcg@10"],
                  cv_ltr=cv["ndcg@10"], cv_hybrid=cv["hybrid_ndcg@10"], beats_hybrid=beats, reasons=reasons)
    with rep.stage("register", console) as st:
        digest = hashlib.sha256(Path(judgments_path).read_bytes()).hexdigest()[:16]
        version = new_version_id(f"ranker:{alias}:{digest}")
        ranker = ltr.Ranker(model.booster, list(ltr.FEATURES), n, {"params": cv["best"], "alias": alias,
                            "judgments": f"{Path(judgments_path).name}@{digest}", "units": settings.search.units,
                            "embedding_model": embedding_model}, model.mean, model.scale)
        reg = Registry(settings.registry_uri, settings.s3)
        with tempfile.TemporaryDirectory() as tmp:
            ranker.save(Path(tmp) / "model")
            reg.register({"model": Path(tmp) / "model"}, {
                "version": version, "kind": "ranker", "method": "xgboost rank:ndcg", "data_hash": digest,
                "alias": alias, "features": list(ltr.FEATURES), "candidates": n, "params": cv["best"],
                "heldout_fraction": cfg.heldout_fraction, "split_seed": cfg.split_seed, "metrics": metrics})
        st.update(version=version, registry=reg.uri, stored_in=[])
        if store:
            ref = {"version": version, "registry": reg.uri, "heldout_ndcg": metrics["ltr"]["ndcg@10"],
                   "hybrid_heldout_ndcg": metrics["hybrid"]["ndcg@10"], "beats_hybrid": beats,
                   "heldout_fraction": cfg.heldout_fraction, "split_seed": cfg.split_seed,
                   "embedding_model": embedding_model}
            for name in indices:
                meta = search_meta(es, name)
                tuned = meta.get("tuned") or {}
                if tuned.get("mode") == "ltr" and not beats:  # auto served ltr: not this one, untested
                    meta["tuned"] = {**tuned, "mode": "hybrid"}
                    st["auto_mode"] = "hybrid (the new ranker does not beat it on the held-out queries)"
                update_meta(es, name, search={**meta, "ranker": ref})
            st["stored_in"] = indices
    rep.data["ranker"] = {"version": version, **metrics}
