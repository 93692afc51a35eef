"""The Elasticsearch side against the real embedded ES-API server (noida-db): index build from the
sample catalog (real embeddings), related products, the gate, rollback, retention, incremental
upsert/delete, throttling and outages (through a fault-injecting proxy), hybrid RRF and eval-search."""

import json
import subprocess
from collections import Counter
from datetime import datetime, timezone

import pyarrow.dataset as pads
import pytest
from conftest import SAMPLE
from elasticsearch import Elasticsearch
from esproxy import FaultProxy

from indexing import lifecycle
from indexing.docs import es_doc
from indexing.evaluate import load_judgments
from indexing.search import Filters, SearchProfile, hybrid_hits
from indexing.tune import split_queries
from indexing.writer import alias_targets, versioned_indices

pytestmark = pytest.mark.slow
JUDGMENTS = SAMPLE.parent / "judgments.csv"


@pytest.fixture(scope="module")
def built(home, settings, tmp_path_factory):
    """`index build` of the whole raw sample catalog: real Ray Data embedding, related, gate, swap."""
    from shopgen.index.stage import run_index_build

    work = tmp_path_factory.mktemp("build")
    rep = run_index_build(str(SAMPLE), work, settings)
    rows = pads.dataset(str(work / "enriched"), format="parquet").to_table().to_pylist()
    return {"report": rep, "rows": rows, "work": work}


@pytest.fixture(scope="module")
def es(built, settings):
    from indexing.client import make_client

    return make_client(settings)


def _with(settings, **es_kw):
    return settings.model_copy(update={"es": settings.es.model_copy(update=es_kw)})


def _build(es, settings, docs, alias, expected=None, **kw):
    return lifecycle.build(es, alias, iter(docs), len(docs), 384, settings, "cjk", {"run_id": "test"},
                           expected=len(docs) if expected is None else expected, samples=kw.pop("samples", []), **kw)


def _docs(built):
    now = datetime.now(timezone.utc).isoformat()
    return [es_doc(r, now) for r in built["rows"]]


def test_index_build_end_to_end(built, es, settings, env, shopgen_bin):
    rep, rows = built["report"], built["rows"]
    st = rep["stages"]["index"]
    assert rep["status"] == "succeeded" and st["swapped"] and st["gate"]["passed"]
    assert rep["counts"]["indexed"] == 324 == es.count(index="products")["count"]
    assert alias_targets(es, "products") == [st["index"]]
    assert {c["check"] for c in st["gate"]["checks"]} >= {"doc_count", "doc_drop", "bulk_error_rate", "smoke_queries"}
    mapping = es.indices.get_mapping(index=st["index"])[st["index"]]["mappings"]
    assert mapping["_meta"]["embedding_model"].startswith("all-minilm-l6-v2@")
    assert mapping["properties"]["embedding"]["index_options"]["type"] == "int8_hnsw"
    assert es.indices.get_settings(index=st["index"])[st["index"]]["settings"]["index"]["refresh_interval"] == "1s"
    assert all(len(r["related_skus"]) == 8 for r in rows)
    out = subprocess.run([shopgen_bin, "index", "list", "--json"], env=env, capture_output=True, text=True, check=True)
    listed = json.loads(out.stdout)
    assert listed[0]["index"] == st["index"] and listed[0]["live"] and listed[0]["docs"] == 324
    chk = json.loads(subprocess.run([shopgen_bin, "index", "check", "--json"], env=env, capture_output=True,
                                    text=True, check=True).stdout)
    assert chk["version"] and chk["chinese_analyzer"] == "cjk" and chk["rrf_retriever"] is True


def test_embeddings_are_cached_by_text_and_model(built, settings, tmp_path):
    """A second build of the same catalog computes no vector."""
    from shopgen.index.stage import run_index_build

    rep = run_index_build(str(SAMPLE), tmp_path, settings, alias="cached", limit=40)
    assert rep["stages"]["embed"]["cached"] == 40 and rep["stages"]["embed"]["computed"] == 0


def test_embedding_cache_on_s3_is_shared_by_builds(built, settings, tmp_path, s3_server):
    """embedding.cache_dir as an s3:// prefix (moto): the first build fills it from the embedder
    actor, a second build in another workdir computes no vector."""
    import boto3

    from shopgen.index.stage import run_index_build

    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="vectors")
    s = settings.model_copy(update={
        "s3": settings.s3.model_copy(update={"endpoint_url": s3_server, "region": "us-east-1"}),
        "embedding": settings.embedding.model_copy(update={"cache_dir": "s3://vectors/cache"})})
    first = run_index_build(str(SAMPLE), tmp_path / "a", s, alias="s3cache", limit=12)
    assert first["stages"]["embed"]["computed"] == 12 and first["stages"]["embed"]["cache_added"] == 12
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_server).list_objects_v2(
        Bucket="vectors", Prefix="cache/")["Contents"]]
    assert keys and all(k.endswith(".parquet") for k in keys)
    again = run_index_build(str(SAMPLE), tmp_path / "b", s, alias="s3cache", limit=12)
    assert again["stages"]["embed"]["cached"] == 12 and again["stages"]["embed"]["computed"] == 0


def test_related_products_share_a_category_more_than_chance(built):
    rows = built["rows"]
    by_sku = {r["sku"]: r for r in rows}
    pairs = [(r, by_sku[s]) for r in rows for s in r["related_skus"]]
    assert all(a["sku"] != b["sku"] and a["locale"] == b["locale"] for a, b in pairs)
    same = sum(a["category"] == b["category"] for a, b in pairs) / len(pairs)
    sizes = Counter(r["category"] for r in rows)
    chance = sum((n / len(rows)) ** 2 for n in sizes.values())
    assert same > 3 * chance, (same, chance)


def test_gate_refuses_a_big_drop_and_keeps_the_alias(built, es, settings):
    live = alias_targets(es, "products")
    docs = _docs(built)
    st, res = _build(es, settings, docs[:200], "products")
    assert not st["swapped"] and not st["gate"]["passed"]
    assert any(r.startswith("doc_drop") for r in st["gate"]["reasons"]), st["gate"]["reasons"]
    assert alias_targets(es, "products") == live and es.count(index="products")["count"] == 324


def test_gate_refuses_a_worse_ranking_by_ndcg(built, es, settings):
    """Same doc count, but the titles and copy are gone: NDCG@10 drops and the gate says so."""
    s = settings.model_copy(update={"gate": settings.gate.model_copy(
        update={"judgments": str(JUDGMENTS), "judgments_mode": "bm25"})})
    live = alias_targets(es, "products")
    worse = [{**d, "title": d["sku"], "description": None, "source_description": None, "attributes_text": None,
              "category": "x", "brand": "x"} for d in _docs(built)]
    st, _ = _build(es, s, [{k: v for k, v in d.items() if v is not None} for d in worse], "products")
    ndcg = next(c for c in st["gate"]["checks"] if c["check"] == "ndcg@10")
    assert not ndcg["passed"] and ndcg["new"] < ndcg["live"] - 0.02, ndcg
    assert alias_targets(es, "products") == live


def test_rollback_and_retention(built, es, settings, env, shopgen_bin):
    s = _with(settings, keep_indices=2)
    docs = _docs(built)[:50]
    names = [_build(es, s, docs, "shop-rb")[0]["index"] for _ in range(3)]
    assert alias_targets(es, "shop-rb") == [names[2]]
    assert versioned_indices(es, "shop-rb") == [names[2], names[1]]  # the oldest was pruned
    refused = _build(es, s, docs[:10], "shop-rb")[0]
    assert not refused["swapped"] and lifecycle.index_meta(es, refused["index"])["gate"] == "refused"
    listed = {r["index"]: r for r in lifecycle.list_indices(es, "shop-rb")}
    assert listed[refused["index"]]["gate"] == "refused" and listed[names[2]]["live"]
    out = subprocess.run([shopgen_bin, "index", "rollback", "--alias", "shop-rb"], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert alias_targets(es, "shop-rb") == [names[1]]
    again = subprocess.run([shopgen_bin, "index", "rollback", "--alias", "shop-rb"], env=env, capture_output=True,
                           text=True)
    assert again.returncode != 0 and "no index older" in again.stderr
    # An alias whose name is a prefix of another's never touches the other's indices.
    assert all(n.startswith("shop-rb-") for n in versioned_indices(es, "shop-rb"))


@pytest.fixture
def proxy(es):
    """A fault-injecting proxy in front of the real server, closed after the test."""
    p = FaultProxy(es.transport.node_pool.get().base_url)
    yield p
    p.close()


def test_429s_and_503s_are_retried_with_backoff(built, es, settings, proxy):
    proxy.bulk_statuses = [429, 429, 503, 429, 502]
    s = _with(settings, bulk_chunk_docs=40, bulk_initial_backoff=0.05, bulk_max_retries=6)
    docs = _docs(built)
    st, res = _build(Elasticsearch(proxy.url), s, docs, "shop-429")
    assert proxy.injected == 5 and res.retries >= 5
    assert st["swapped"] and res.ok == len(docs) and not res.errors
    assert es.count(index="shop-429")["count"] == len(docs)


def test_outage_mid_bulk_loses_nothing(built, es, settings, proxy):
    proxy.drop_bulk_after, proxy.drop_for = 2, 1.0
    s = _with(settings, bulk_chunk_docs=25, bulk_initial_backoff=0.1, bulk_max_retries=8)
    docs = _docs(built)
    st, res = _build(Elasticsearch(proxy.url, max_retries=1), s, docs, "shop-outage")
    assert proxy.injected > 0 and res.retries > 0
    assert st["swapped"] and not res.errors
    assert es.count(index="shop-outage")["count"] == len(docs)


def test_failed_bulk_never_swaps_and_accounts_for_every_doc(built, es, settings, proxy):
    from elasticsearch import helpers

    _build(es, settings, _docs(built)[:30], "shop-down")
    live = alias_targets(es, "shop-down")
    proxy.drop_bulk_after = 3  # and never back
    s = _with(settings, bulk_chunk_docs=25, bulk_initial_backoff=0.01, bulk_max_retries=2)
    docs = _docs(built)
    st, res = _build(Elasticsearch(proxy.url, max_retries=0), s, docs, "shop-down")
    assert not st["swapped"] and alias_targets(es, "shop-down") == live
    assert any(r.startswith("bulk_error_rate") for r in st["gate"]["reasons"])
    failed = {e["sku"] for e in res.errors}
    assert all("gave up after 2 retries" in e["reason"] for e in res.errors)
    landed = {h["_id"] for h in helpers.scan(es, index=st["index"], _source=False)}
    assert landed | failed == {d["sku"] for d in docs} and not landed & failed


def test_incremental_upserts_newer_skips_older_and_deletes_missing(built, es, settings):
    docs = _docs(built)[:60]
    for d in docs:
        d["updated_at"] = "2026-01-01T00:00:00Z"
    _build(es, settings, docs, "shop-inc")
    changed = {**docs[0], "title": "Renamed Trail Tent", "updated_at": "2026-06-01T00:00:00Z"}
    stale = {**docs[1], "title": "An older write", "updated_at": "2025-01-01T00:00:00Z"}
    new_input = [changed, stale] + docs[2:50]  # docs[50:] were removed from the catalog
    with pytest.raises(RuntimeError, match="refused before any write: it would delete 10 of 60"):
        lifecycle.incremental(es, "shop-inc", iter(new_input), settings, run_epoch=1_800_000_000_000, dims=384)
    assert es.count(index="shop-inc")["count"] == 60
    s = settings.model_copy(update={"gate": settings.gate.model_copy(update={"max_doc_drop": 0.2})})
    st = lifecycle.incremental(es, "shop-inc", iter(new_input), s, run_epoch=1_800_000_000_000, dims=384,
                               keep=[docs[59]["sku"]])
    assert st["upserted"] == 1 and st["unchanged"] == 49 and st["deleted"] == 9 and not st["bulk_errors"]
    assert es.count(index="shop-inc")["count"] == 51
    assert es.get(index="shop-inc", id=docs[0]["sku"])["_source"]["title"] == "Renamed Trail Tent"
    assert es.get(index="shop-inc", id=docs[1]["sku"])["_source"]["title"] == docs[1]["title"]
    assert not es.exists(index="shop-inc", id=docs[55]["sku"]) and es.exists(index="shop-inc", id=docs[59]["sku"])
    # New generated copy under an unchanged updated_at still lands: the content fingerprint moved.
    recopied = [{**d, "description": "Fresh copy from a new model."} for d in docs[2:50]]
    st = lifecycle.incremental(es, "shop-inc", iter(recopied), s, run_epoch=1_800_000_000_001, dims=384,
                               keep=[docs[0]["sku"], docs[1]["sku"], docs[59]["sku"]])
    assert st["upserted"] == 48 and st["unchanged"] == 0
    assert es.get(index="shop-inc", id=docs[2]["sku"])["_source"]["description"] == "Fresh copy from a new model."


def _minilm(settings):
    from shopgen.adapters import models
    from shopgen.adapters.encoder import load_encoder

    return load_encoder(models.materialize(models.resolve(settings.models.embedder, settings), settings).path)


def test_hybrid_server_rrf_matches_client_fusion(built, es, settings):
    """The same fusion of the same lists. kNN rescoring is off on both sides: this server cannot rescore
    (no rescore_vector), so its retriever fuses the approximate kNN list; `auto` fuses client-side for that."""
    enc = _minilm(settings)
    for q, f in [("waterproof tent", Filters()), ("warm sleeping bag", Filters(max_price=300)),
                 ("cast iron pan", Filters(locale="en-US")), ("睡袋", Filters())]:
        vec = enc.encode([q], normalize_embeddings=True)[0]
        server, how_s = hybrid_hits(es, "products", q, vec, 10, f, SearchProfile(where="server", knn_rescore="off"))
        client, how_c = hybrid_hits(es, "products", q, vec, 10, f, SearchProfile(where="client", knn_rescore="off"))
        assert (how_s, how_c) == ("server", "client")
        assert [round(h["_score"], 6) for h in server] == [round(h["_score"], 6) for h in client], q
        # Equal scores may come in another order from the server (its own tie-break).
        assert ({(h["_id"], round(h["_score"], 6)) for h in server} ==
                {(h["_id"], round(h["_score"], 6)) for h in client}), q


def test_eval_search_cli(built, env, shopgen_bin):
    res = {}
    for mode in ("bm25", "knn", "hybrid"):
        out = subprocess.run([shopgen_bin, "eval-search", "--judgments", str(JUDGMENTS), "--mode", mode, "--json"],
                             env=env, capture_output=True, text=True, check=True)
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        assert {"ndcg@10", "recall@100", "mrr", "queries"} <= res[mode].keys() and res[mode]["queries"] == 43
        assert 0.3 < res[mode]["ndcg@10"] <= 1
    bad = subprocess.run([shopgen_bin, "eval-search", "--judgments", str(SAMPLE), "--mode", "bm25"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and ("query,sku,grade" in bad.stderr or "column" in bad.stderr), bad.stderr


def test_hybrid_finds_an_attribute_only_in_the_generated_description(built, env, shopgen_bin, tmp_path):
    """`index build` of `shopgen generate`-style output: a term only the generated copy has is found."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shopgen.generate.engine import GENERATED_SCHEMA

    rows = [{k: r.get(k) for k in GENERATED_SCHEMA.names} for r in built["rows"][:40]]
    for r in rows:
        r.update(model_version="m@1", prompt_version="p", qa_status="passed", gen_ok=True, gen_errors=[])
    target = rows[7]
    target["description"] = ("Seams are sealed with a thermoplastic polyurethane tape, so the fabric "
                             "stays dry on long wet days.")
    assert "thermoplastic" not in (target["title"] + target["attributes"]).lower()
    pq.write_table(pa.Table.from_pylist(rows, schema=GENERATED_SCHEMA), tmp_path / "enriched.parquet")
    out = subprocess.run([shopgen_bin, "index", "build", "--input", str(tmp_path / "enriched.parquet"),
                          "--alias", "shop-gen", "--workdir", str(tmp_path / "w")], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    hits = json.loads(subprocess.run([shopgen_bin, "search", "thermoplastic polyurethane seam tape", "--mode",
                                      "hybrid", "--alias", "shop-gen", "-k", "5", "--json"], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    assert target["sku"] in [h["sku"] for h in hits]


def test_incremental_index_build_of_an_unchanged_catalog_writes_nothing(built, es, env, shopgen_bin, tmp_path):
    refused = subprocess.run([shopgen_bin, "index", "build", "--input", str(SAMPLE), "--incremental", "--limit", "5"],
                             env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "--keep-missing" in refused.stderr
    live = alias_targets(es, "products")
    out = subprocess.run([shopgen_bin, "index", "build", "--input", str(SAMPLE), "--incremental",
                          "--workdir", str(tmp_path)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    st = json.loads((tmp_path / "report.json").read_text())["stages"]["index"]
    assert (st["upserted"], st["unchanged"], st["deleted"], st["errors"]) == (0, 324, 0, 0)
    assert alias_targets(es, "products") == live and es.count(index="products")["count"] == 324


def _cli_json(shopgen_bin, env, *args):
    out = subprocess.run([shopgen_bin, *args, "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tune_search_stores_its_choice_and_eval_search_uses_it(built, es, env, shopgen_bin):
    live = alias_targets(es, "products")
    rep = _cli_json(shopgen_bin, env, "tune-search", "--judgments", str(JUDGMENTS))
    t = rep["stages"]["tune"]
    assert rep["status"] == "succeeded" and t["stored_in"] == live
    assert t["queries"]["tuning"] + t["queries"]["heldout"] == 43 and t["queries"]["heldout"] > 0
    meta = lifecycle.search_meta(es, "products")
    assert meta["tuned"] == t["tuned"] and meta["tuning"]["heldout_fraction"] == 0.3
    assert "category.text" in meta["informative"] and "category.text" not in meta["uninformative"]
    # On the tuning queries the tuned hybrid cannot lose to either side (its grid holds both).
    assert t["tuning"]["hybrid"] >= max(t["tuning"]["bm25"], t["tuning"]["knn"])
    held = {m: _cli_json(shopgen_bin, env, "eval-search", "--judgments", str(JUDGMENTS), "--mode", m, "--held-out")
            for m in ("bm25", "hybrid", "auto")}
    assert held["hybrid"]["queries"] == t["queries"]["heldout"]
    assert held["hybrid"]["ndcg@10"] == t["heldout"]["hybrid"] >= held["bm25"]["ndcg@10"], (held, t)
    assert held["auto"]["mode"] == t["mode"]
    hits = _cli_json(shopgen_bin, env, "search", "waterproof tent", "--mode", "auto")
    assert hits and hits[0]["sku"]


def test_gate_refuses_a_chosen_mode_that_loses_to_bm25(built, es, settings):
    """The tuned mode (knn here) is carried to the new index; its vectors are noise, so on the
    held-out queries it loses to bm25 and the swap is refused."""
    import numpy as np

    live = alias_targets(es, "products")
    lifecycle.update_meta(es, live[0], search={**lifecycle.search_meta(es, "products"), "tuned": {"mode": "knn"},
                                               "tuning": {"heldout_fraction": 0.5, "split_seed": 0}})
    s = settings.model_copy(update={"gate": settings.gate.model_copy(update={"judgments": str(JUDGMENTS),
                                                                             "ndcg_tolerance": 1.0})})
    rng = np.random.default_rng(0)
    noise = [{**d, "embedding": (v / np.linalg.norm(v)).tolist()} for d in _docs(built)
             for v in [rng.normal(size=384)]]
    st, _ = _build(es, s, noise, "products", encoder=lambda: _minilm(settings))
    chk = next(c for c in st["gate"]["checks"] if c["check"] == "mode_vs_bm25")
    assert chk["mode"] == "knn" and not chk["passed"] and chk["chosen"] < chk["bm25"], chk
    assert not st["swapped"] and alias_targets(es, "products") == live
    assert st["search"]["tuned"]["mode"] == "knn"  # the live index's choice travelled with the build


# ---- numbers and units, learning to rank (indexing/ltr.py, shopgen train-ranker) ----------------

def test_the_unit_normaliser_makes_half_inch_find_half_inch_titles(built, es, settings):
    import numpy as np

    rng = np.random.default_rng(1)
    titles = {"P-1": "1/2-inch Copper Pipe, 10 ft.", "P-2": "3/4 in. Copper Pipe 10-Foot", "P-3": 'PVC Elbow 1/2"',
              "P-4": "60W Equivalent LED Bulb", "P-5": "25-Foot Outdoor Extension Cord", "P-6": "Copper Pipe Cutter"}
    docs = [es_doc({"sku": s, "title": t, "updated_at": "2026-01-01T00:00:00Z",
                    "embedding": (v / np.linalg.norm(v)).tolist()}) for (s, t), v in
            zip(titles.items(), rng.normal(size=(len(titles), 384)))]
    st, _ = _build(es, settings, docs, "units")
    assert st["swapped"], st["gate"]
    tokens = {t: [x["token"] for x in es.indices.analyze(index=st["index"], field="title", text=t)["tokens"]]
              for t in ("1/2 in.", "1/2-inch", '1/2"', "1/2 inches")}
    assert len(set(map(tuple, tokens.values()))) == 1 and tokens["1/2 in."] == ["1", "2", "inch"], tokens
    from indexing.search import search

    for q in ("1/2 in. copper pipe", '1/2" copper pipe', "copper pipe 1/2 inch 10 feet"):
        assert search(es, "units", q, "bm25", 3)[0]["sku"] == "P-1", q
    assert search(es, "units", "60 watt led bulb", "bm25", 1)[0]["sku"] == "P-4"
    assert search(es, "units", "25 ft extension cord", "bm25", 1)[0]["sku"] == "P-5"
    # Typo tolerance as a fallback: a misspelling that matches nothing exactly still finds its product.
    assert [h["sku"] for h in search(es, "units", "cordd", "bm25", 3)] == ["P-5"]
    assert search(es, "units", "cordd", "bm25", 3, profile=SearchProfile(fuzzy="off")) == []
    doc = es.get(index="units", id="P-1")["_source"]
    assert (doc["quantities"], doc["quantity_units"]) == ("0.5_inch 10_feet", "inch feet")


def _inverted(path, out):
    rows = [r.split(",") for r in path.read_text().splitlines()[1:]]
    out.write_text("query,sku,grade\n" + "".join(f"{q},{s},{3 - float(g):g}\n" for q, s, g in rows))
    return out


def test_train_ranker_registers_it_and_search_ltr_serves_its_order(built, es, settings, env, shopgen_bin, tmp_path):
    from indexing import ltr
    from indexing.lifecycle import profile_for
    from shopgen.adapters.encoder import query_encoder
    from shopgen.adapters.registry import Registry
    from shopgen.index.ranker import load

    _build(es, settings, _docs(built), "ltr")
    reg = tmp_path / "registry"
    env = {**env, "SHOPGEN_SEARCH__LTR_CANDIDATES": "30"}  # fewer candidates: a quicker test, the same code
    rep = _cli_json(shopgen_bin, env, "train-ranker", "--judgments", str(JUDGMENTS), "--alias", "ltr",
                    "--registry", str(reg), "--workdir", str(tmp_path / "work"))
    assert rep["status"] == "succeeded", rep["errors"]
    r, t = rep["ranker"], rep["stages"]["train"]
    assert r["ltr"]["n"] == r["hybrid"]["n"] == t["heldout_queries"] > 0 and 0 < r["ltr"]["ndcg@10"] <= 1
    m = Registry(str(reg)).get(r["version"])
    assert m["kind"] == "ranker" and m["metrics"]["ltr"] == r["ltr"] and m["features"] == list(ltr.FEATURES)
    assert m["candidates"] == 30
    assert lifecycle.search_meta(es, "ltr")["ranker"]["version"] == r["version"]
    hits = _cli_json(shopgen_bin, env, "search", "warm sleeping bag for winter", "--mode", "ltr", "--alias", "ltr")
    # The same order, computed here: the hybrid candidates, their features, the ranker's scores.
    model = load(settings, r["version"], str(reg))
    enc = query_encoder(_minilm(settings), settings.embedding)
    p = profile_for(es, "ltr", settings)
    cands, _ = hybrid_hits(es, "ltr", "warm sleeping bag for winter", enc("warm sleeping bag for winter"),
                           model.candidates, Filters(), p)
    rows = ltr.features(es, "ltr", "warm sleeping bag for winter", enc("warm sleeping bag for winter"), cands)
    want = [h["_id"] for h in ltr.rerank(cands, model.scores(model.columns(rows)), 10)]
    assert [h["sku"] for h in hits] == want and want != [h["_id"] for h in cands[:10]]
    no = subprocess.run([shopgen_bin, "search", "tent", "--mode", "ltr", "--alias", "units"], env=env,
                        capture_output=True, text=True)
    assert no.returncode != 0 and "has no ranker" in no.stderr and "Traceback" not in no.stderr


def test_tune_search_serves_ltr_only_when_it_beats_hybrid(built, es, settings, env, shopgen_bin, tmp_path):
    """A ranker trained on inverted grades is refused; the alias keeps its hybrid. A ranker trained on
    the real grades is chosen exactly when it beats the tuned hybrid on the held-out queries."""
    _build(es, settings, _docs(built), "ltrbad")
    bad = _inverted(JUDGMENTS, tmp_path / "inverted.csv")
    env = {**env, "SHOPGEN_SEARCH__LTR_CANDIDATES": "30"}
    reg = str(tmp_path / "registry")
    assert _cli_json(shopgen_bin, env, "train-ranker", "--judgments", str(bad), "--alias", "ltrbad",
                     "--registry", reg)["status"] == "succeeded"
    t = _cli_json(shopgen_bin, env, "tune-search", "--judgments", str(JUDGMENTS), "--alias", "ltrbad")["stages"]["tune"]
    assert t["ltr"] and not t["ltr"]["chosen"] and "does not beat" in t["ltr"]["reason"], t["ltr"]
    assert t["ltr"]["heldout"] < t["ltr"]["hybrid_heldout"] and t["mode"] != "ltr"
    assert lifecycle.search_meta(es, "ltrbad")["tuned"]["mode"] != "ltr"
    # In process (the same run_tune the CLI calls, with the loader it passes), to spare a second start-up.
    from indexing.tune_run import run_tune
    from shopgen.index.ranker import loader

    model = _minilm(settings)
    good = run_tune(es, "ltr", str(JUDGMENTS), settings, tmp_path / "tune", lambda: model,
                    ranker=loader(settings, es, "ltr"))["stages"]["tune"]
    assert good["ltr"]["chosen"] == (round(good["ltr"]["heldout"], 4) > round(good["ltr"]["hybrid_heldout"], 4))
    assert (good["mode"] == "ltr") == good["ltr"]["chosen"]
    _, held = split_queries(load_judgments(JUDGMENTS), 0.3, 0)
    ev = lifecycle.evaluate_target(es, "ltr", held, "auto", settings, lambda: model, ranker=loader(settings, es, "ltr"))
    assert ev["mode"] == good["mode"]
    if good["ltr"]["chosen"]:
        assert abs(ev["ndcg@10"] - good["ltr"]["heldout"]) <= 1e-4, (ev["ndcg@10"], good["ltr"])
