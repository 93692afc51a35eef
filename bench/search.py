"""Search relevance: each shopgen mode against its plain baseline, side by side in one run, on the
bundled judgments, a synthetic hardware catalog whose titles and queries spell units every way
(bench/hardware.py), and (when ../shared is there) the Magento Luma catalog with rule-made judgments
(`luma`) and with 100 shopper queries graded by reading (`luma_read`, bench/luma_read_judgments.csv).
A `_titles` set is the same judgments with the catalog cut to sku and title.

    .venv/bin/python bench/search.py [--datasets bundled,hardware,luma_read] [--folds 5] [--json]

Per dataset: the raw catalog is indexed by `index build` (real MiniLM embeddings, the embedded
Elasticsearch-API server). Baselines, on the same server and queries:
  bm25   a plain `match` on the title, in an index of titles with Elasticsearch's `english` analyzer
  knn    a plain MiniLM embedding of the title (exact cosine over every product)
  hybrid unweighted RRF (c=60) of those two
shopgen's bm25 and knn are its defaults (nothing tuned); its hybrid is tuned by tune-search's
grid, scored out of sample: each of `--folds` query folds is ranked with the weights chosen on the
other folds. `auto` is the same for the mode choice. `ltr` (train-ranker's model over the untuned
hybrid's top search.ltr_candidates) likewise: each fold is ranked by a ranker trained, and its model
chosen, on the other folds; and on tune-search's held-out queries, trained on the tuning ones, against
the hybrid tuned on those. NDCG@10, recall@100 and MRR per mode; queries per second of k=10 searches
(the knn, hybrid and ltr ones include encoding the query).
`knn_exact` is one more baseline: an exact cosine over the vectors the index itself holds (scanned
back), which shopgen's knn (approximate candidates, rescored exactly) must equal.
With --json the last line is one JSON object: `ndcg.<mode>`, `baseline.<mode>`, `baseline.knn_exact`,
`knn_minus_exact`, `qps.<mode>`, `ms_per_query.<mode>`, `baseline_qps.<mode>`, `recall.<mode>`,
`mrr.<mode>`, `heldout.<ltr|hybrid|bm25|queries>`, `ltr_minus_hybrid_heldout`, `ltr_train_seconds`,
each {dataset: value}, and `datasets`."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

MODES = ("bm25", "knn", "hybrid", "auto")


READ = ROOT / "bench" / "luma_read_judgments.csv"


def _rows(name: str) -> tuple[list[dict[str, Any]], list[tuple[str, str, float]]]:
    base = name.removesuffix("_titles")
    if base == "bundled":
        from indexing.evaluate import load_judgments

        rows = [json.loads(x) for x in (ROOT / "data" / "sample_catalog.jsonl").read_text(encoding="utf-8").splitlines()
                if x.strip()]
        return rows, [(q, s, g) for q, j in load_judgments(ROOT / "data" / "judgments.csv").items() for s, g in j.items()]
    if base == "hardware":
        return _bench_module("hardware").catalog()
    luma, luma_judgments = _bench_module("luma"), _bench_module("luma_judgments")
    if not luma.available():
        raise SystemExit(f"{luma.LUMA} is missing: run with --datasets bundled,hardware")
    rows = luma.products()
    if base == "luma_read":  # read by people, not made from the fields (bench/luma_read_judgments.csv)
        from indexing.evaluate import load_judgments

        return rows, [(q, s, g) for q, j in load_judgments(READ).items() for s, g in j.items()]
    return rows, luma_judgments.judgments(rows)


def _dataset(name: str, tmp: Path) -> tuple[Path, Path]:
    rows, judged = _rows(name)
    if name.endswith("_titles"):  # like the real query sets' catalogs: a title and nothing else
        rows = [{"sku": r["sku"], "title": r["title"]} for r in rows]
    cat, judg = tmp / f"{name}.jsonl", tmp / f"{name}_judgments.csv"
    cat.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with judg.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["query", "sku", "grade"])
        w.writerows(judged)
    return cat, judg


def _metrics(rank: dict[str, list[str]], judgments: dict[str, dict[str, float]]) -> dict[str, float]:
    from indexing.evaluate import ndcg_at, recall_at, reciprocal_rank

    qs = [q for q in judgments if any(g > 0 for g in judgments[q].values())]
    return {"ndcg": round(float(np.mean([ndcg_at(rank[q], judgments[q], 10) for q in qs])), 4),
            "recall": round(float(np.mean([recall_at(rank[q], judgments[q], 100) for q in qs])), 4),
            "mrr": round(float(np.mean([reciprocal_rank(rank[q], judgments[q]) for q in qs])), 4)}


def _timed(fn, queries: list[str]) -> float:
    t = time.perf_counter()
    for q in queries:
        fn(q)
    return round(len(queries) / (time.perf_counter() - t), 1)


def _cv_rankings(names: list[str], table, lists, judgments, base, folds: int) -> dict[str, list[str]]:
    """Each query ranked by the candidate chosen on the other folds (tune-search's choosing, out of sample)."""
    from indexing import tune

    by = {c.name: c for c in tune.candidates()}
    qs = list(table["bm25"])
    out = {}
    for f in range(folds):
        held = [q for q in qs if tune.fold_of(q, folds) == f]
        pick = tune.best(table, names, [q for q in qs if q not in set(held)])
        out.update({q: tune.ranking(by[pick], *lists[q], 100, base) for q in held})
    return out


def _ltr(es, name: str, judgments, enc, s, folds: int, table, cands) -> dict[str, Any]:
    """ltr two ways: out of sample on every query (each fold ranked by a model trained, its grid chosen,
    on the other folds) and on tune-search's held-out queries (trained on the tuning ones), against the
    hybrid tuned on the same tuning queries. Candidates: the untuned hybrid's top search.ltr_candidates."""
    from indexing import ltr, tune
    from shopgen.ranker import train
    from shopgen.ranker.recipe import groups_for

    t = time.perf_counter()
    groups = groups_for(es, name, judgments, enc, s.search.ltr_candidates, s)
    features_s = time.perf_counter() - t
    ranks: dict[str, list[str]] = {}
    for f in range(folds):
        held = [g for g in groups if tune.fold_of(g.query, folds) == f]
        fit_on = [g for g in groups if tune.fold_of(g.query, folds) != f and any(v > 0 for v in g.labels)]
        params = train.cross_validate(fit_on, judgments, ltr.FEATURES, folds)["best"]
        model = train.fit(fit_on, params, ltr.FEATURES)
        ranks.update({g.query: train.ranked(g, train.predict(model, g, ltr.FEATURES)) for g in held})
    tune_qs, held_qs = tune.split_queries(judgments, s.search.heldout_fraction, s.search.split_seed)
    t = time.perf_counter()
    fit_on = [g for g in groups if g.query in tune_qs and any(v > 0 for v in g.labels)]
    params = train.cross_validate(fit_on, judgments, ltr.FEATURES, folds)["best"]
    model = train.fit(fit_on, params, ltr.FEATURES)
    train_s = time.perf_counter() - t
    got = train.ndcgs([g for g in groups if g.query in held_qs], judgments, model, ltr.FEATURES)
    chosen = tune.choose(table, cands, list(tune_qs), list(held_qs), folds)
    return {"ranks": ranks, "ranker": ltr.Ranker(model.booster, list(ltr.FEATURES), s.search.ltr_candidates,
                                                mean=model.mean, scale=model.scale),
            "heldout": {"ltr": tune.mean(got, list(got)), "hybrid": chosen["heldout"]["hybrid"],
                        "bm25": chosen["heldout"]["bm25"], "queries": len(got)},
            "train_seconds": round(train_s, 2), "features_ms_per_query": round(1000 * features_s / len(groups), 1),
            "params": params}


def run(name: str, folds: int, tmp: Path, settings_kw: dict[str, Any]) -> dict[str, Any]:
    from elasticsearch import Elasticsearch

    from indexing import tune
    from indexing.client import make_client
    from indexing.evaluate import load_judgments
    from indexing.lifecycle import config_profile, profile_for
    from indexing.search import SearchProfile, fuse, rrf, search
    from indexing.tune_run import fetch_lists
    from shopgen.adapters import models
    from shopgen.adapters.encoder import encode_documents, load_encoder, query_encoder
    from shopgen.catalog.load import load_catalog
    from shopgen.core.config import load_settings
    from shopgen.index.stage import run_index_build

    catalog, jpath = _dataset(name, tmp)
    s = load_settings(home=tmp / f"home-{name}", **settings_kw)
    run_index_build(str(catalog), tmp / f"work-{name}", s, alias=name)
    es: Elasticsearch = make_client(s)
    judgments = load_judgments(jpath)
    queries = list(judgments)
    model = load_encoder(models.materialize(models.resolve(s.models.embedder, s), s).path)
    enc = query_encoder(model, s.embedding)
    base = profile_for(es, name, s)  # the defaults plus the index's informative fields (nothing tuned)
    lists = fetch_lists(es, name, queries, enc, base)
    cands = tune.candidates()
    table = tune.score_table(cands, lists, judgments, base)
    hybrids = [c.name for c in cands if c.mode == "hybrid"]
    ranks = {"bm25": {q: [h["_id"] for h in lists[q][0]] for q in queries},
             "knn": {q: [h["_id"] for h in lists[q][1]] for q in queries},
             "hybrid": _cv_rankings(hybrids, table, lists, judgments, base, folds),
             "auto": _cv_rankings([c.name for c in cands], table, lists, judgments, base, folds),
             "hybrid_untuned": {q: [h["_id"] for h in fuse(*lists[q], 100, base)] for q in queries}}
    # Baselines: a plain title match, a plain title embedding, unweighted RRF of the two.
    from elasticsearch import helpers

    products, _ = load_catalog(str(catalog))
    skus = [p.sku for p in products]
    tvecs = encode_documents(model, [p.title for p in products], s.embedding)

    # The plain title match runs on its own index: the title alone, Elasticsearch's english analyzer.
    plain = f"{name}-plain-title"
    es.indices.create(index=plain, mappings={"properties": {"title": {"type": "text", "analyzer": "english"}}})
    helpers.bulk(es, ({"_index": plain, "_id": p.sku, "title": p.title} for p in products), refresh=True)

    def title_match(q: str, k: int = 100) -> list[dict[str, Any]]:
        return es.search(index=plain, query={"match": {"title": q}}, size=k, source=False)["hits"]["hits"]

    def title_emb(q: str, k: int = 100) -> list[dict[str, Any]]:
        sims = tvecs @ enc(q)
        top = np.argsort(-sims)[:k]
        return [{"_id": skus[i], "_score": float(sims[i])} for i in top]

    # knn_exact: an exact cosine over the very vectors the index holds (what shopgen's knn must equal).
    stored = [(h["_id"], h["_source"]["embedding"]) for h in helpers.scan(
        es, index=name, query={"query": {"match_all": {}}}, _source=["embedding"])]
    sids = [i for i, _ in stored]
    smat = np.asarray([v for _, v in stored], dtype=np.float32)
    smat /= np.linalg.norm(smat, axis=1, keepdims=True)

    def exact_knn(q: str, k: int = 100) -> list[str]:
        sims = smat @ enc(q)
        return [sids[i] for i in sorted(np.argsort(-sims)[:k], key=lambda i: (-sims[i], sids[i]))]

    bl = {q: (title_match(q), title_emb(q)) for q in queries}
    branks = {"bm25": {q: [h["_id"] for h in bl[q][0]] for q in queries},
              "knn": {q: [h["_id"] for h in bl[q][1]] for q in queries},
              "hybrid": {q: [h["_id"] for h in rrf(list(bl[q]), 100)] for q in queries}}
    branks["auto"] = branks["bm25"]
    branks["knn_exact"] = {q: exact_knn(q) for q in queries}
    learned = _ltr(es, name, judgments, enc, s, folds, table, cands)
    ranks["ltr"] = learned["ranks"]
    tuned = tune.choose(table, cands, queries, [], folds)
    tuned_p = tune.Candidate("hybrid").profile(base) if tuned["hybrid"] is None else tuned["hybrid"].profile(base)
    auto_p = SearchProfile.from_meta({"mode": tuned["mode"]}, tuned_p)
    qps = {m: _timed(lambda q, m=m: search(es, name, q, m, 10, enc, profile=auto_p, ranker=learned["ranker"]),
                     queries) for m in ("bm25", "knn", "hybrid", "auto", "ltr")}
    bqps = {"bm25": _timed(lambda q: title_match(q, 10), queries), "knn": _timed(lambda q: title_emb(q, 10), queries),
            "hybrid": _timed(lambda q: rrf([title_match(q), title_emb(q)], 10), queries)}
    bqps["auto"] = bqps["ltr"] = bqps["bm25"]
    bqps["knn_exact"] = _timed(lambda q: exact_knn(q, 10), queries)
    out = {"products": len(products), "queries": len(table["bm25"]), "tuned_on_all": tuned["chosen"],
           "default_profile": {k: v for k, v in config_profile(s).to_meta().items() if k != "field_weights"}}
    for m in (*MODES, "ltr", "hybrid_untuned"):
        out[m] = _metrics(ranks[m], judgments)
    out["heldout"] = learned["heldout"]
    out["ltr_train_seconds"], out["ltr_params"] = learned["train_seconds"], learned["params"]
    out["ltr_features_ms_per_query"] = learned["features_ms_per_query"]
    for m in (*MODES, "knn_exact"):
        out[f"baseline_{m}"] = _metrics(branks[m], judgments)
    out["qps"], out["baseline_qps"] = qps, bqps
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=None, help="bundled,luma,luma_titles (default: all three when ../shared "
                                                     "has luma; luma_titles keeps only the products' titles)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    luma = _bench_module("luma")
    from rich.console import Console
    from rich.table import Table

    from shopgen.adapters import devstack

    names = a.datasets.split(",") if a.datasets else ["bundled", "bundled_titles", "hardware"] + (
        ["luma", "luma_titles", "luma_read", "luma_read_titles"] if luma.available() else [])
    kw = {"models": {"cache_dir": ROOT / ".shopgen" / "models"}}
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for n in names:
                res[n] = run(n, a.folds, Path(tmp), kw)
        finally:
            for n in names:
                devstack.down(Path(tmp) / f"home-{n}")
    con = Console(stderr=a.json)
    for n, r in res.items():
        t = Table(title=f"{n}: {r['products']} products, {r['queries']} judged queries (hybrid/auto: {a.folds}-fold CV)")
        for c in ("mode", "NDCG@10", "baseline", "ratio", "recall@100", "base recall", "MRR", "base MRR", "qps",
                  "base qps"):
            t.add_column(c)
        for m in MODES:
            b = r[f"baseline_{m}"]
            t.add_row(m, f"{r[m]['ndcg']:.4f}", f"{b['ndcg']:.4f}", f"{r[m]['ndcg'] / b['ndcg']:.3f}",
                      f"{r[m]['recall']:.4f}", f"{b['recall']:.4f}", f"{r[m]['mrr']:.4f}", f"{b['mrr']:.4f}",
                      f"{r['qps'][m]}", f"{r['baseline_qps'][m]}")
        con.print(t)
        con.print(f"untuned hybrid (RRF of shopgen's bm25 and knn): NDCG@10 {r['hybrid_untuned']['ndcg']:.4f}; "
                  f"tuned on every query: {r['tuned_on_all']}")
        h = r["heldout"]
        con.print(f"ltr {r['ltr']['ndcg']:.4f} ({a.folds}-fold CV) vs tuned hybrid {r['hybrid']['ndcg']:.4f}; on "
                  f"tune-search's {h['queries']} held-out queries: ltr {h['ltr']} vs hybrid {h['hybrid']} "
                  f"(bm25 {h['bm25']}); trained in {r['ltr_train_seconds']} s, {r['qps']['ltr']} qps")
        con.print(f"knn {r['knn']['ndcg']:.4f} vs an exact cosine over the index's own vectors (knn_exact) "
                  f"{r['baseline_knn_exact']['ndcg']:.4f}: difference {r['knn']['ndcg'] - r['baseline_knn_exact']['ndcg']:+.4f}")
    if a.json:
        flat: dict[str, Any] = {"datasets": names, "detail": res}
        for m in MODES:
            flat[f"ndcg.{m}"] = {n: r[m]["ndcg"] for n, r in res.items()}
            flat[f"baseline.{m}"] = {n: r[f"baseline_{m}"]["ndcg"] for n, r in res.items()}
            flat[f"ratio.{m}"] = {n: round(r[m]["ndcg"] / r[f"baseline_{m}"]["ndcg"], 4) for n, r in res.items()}
            flat[f"recall.{m}"] = {n: r[m]["recall"] for n, r in res.items()}
            flat[f"mrr.{m}"] = {n: r[m]["mrr"] for n, r in res.items()}
            flat[f"qps.{m}"] = {n: r["qps"][m] for n, r in res.items()}
            flat[f"baseline_qps.{m}"] = {n: r["baseline_qps"][m] for n, r in res.items()}
            flat[f"ms_per_query.{m}"] = {n: round(1000.0 / r["qps"][m], 2) for n, r in res.items()}
        flat["baseline.knn_exact"] = {n: r["baseline_knn_exact"]["ndcg"] for n, r in res.items()}
        flat["ndcg.ltr"] = {n: r["ltr"]["ndcg"] for n, r in res.items()}
        flat["ratio.ltr_vs_hybrid"] = {n: round(r["ltr"]["ndcg"] / r["hybrid"]["ndcg"], 4) for n, r in res.items()}
        flat["ms_per_query.ltr"] = {n: round(1000.0 / r["qps"]["ltr"], 2) for n, r in res.items()}
        flat["qps.ltr"] = {n: r["qps"]["ltr"] for n, r in res.items()}
        for key in ("ltr", "hybrid", "bm25", "queries"):
            flat[f"heldout.{key}"] = {n: r["heldout"][key] for n, r in res.items()}
        flat["ltr_minus_hybrid_heldout"] = {n: round((r["heldout"]["ltr"] or 0) - (r["heldout"]["hybrid"] or 0), 4)
                                            for n, r in res.items()}
        flat["ltr_train_seconds"] = {n: r["ltr_train_seconds"] for n, r in res.items()}
        flat["knn_minus_exact"] = {n: round(r["knn"]["ndcg"] - r["baseline_knn_exact"]["ndcg"], 4) for n, r in res.items()}
        print(json.dumps(flat))


if __name__ == "__main__":
    main()
