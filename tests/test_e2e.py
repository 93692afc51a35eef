"""End to end on the real stack: a real local Ray, vLLM (CPU build), the real SmolLM2 and MiniLM
models, and a real Elasticsearch-API server (noida-db) on loopback, driven through the CLI."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from conftest import ROOT, SAMPLE

pytestmark = pytest.mark.slow

N = 14
BAD_ROWS = [
    b'{"sku": "", "title": "Empty sku"}',
    b'{"sku": "SG-BAD-2", "price": 10}',
    b'{"sku": "SG-BAD-3", "title": "Priced in words", "price": "twelve"}',
    b'{"sku": "SG-BAD-4", "title": "Bad bytes \xff\xfe here"}',
    b'{"sku": "SG-BAD-5", "title": "' + b"x" * 700 + b'"}',
    b'{"sku": "SG-BAD-6", "title": 42}',
    b"this is not json",
]


def _pick(lines: list[bytes]) -> list[dict]:
    """N en-US products across categories, so copy and searches differ."""
    rows = [json.loads(l) for l in lines]
    by_cat: dict[str, list[dict]] = {}
    for r in rows:
        if r["locale"] == "en-US":
            by_cat.setdefault(r["category"], []).append(r)
    picked, i = [], 0
    while len(picked) < N:
        for cat in sorted(by_cat):
            if i < len(by_cat[cat]) and len(picked) < N:
                picked.append(by_cat[cat][i])
        i += 1
    return picked


def _distinctive(products: list[dict]) -> list[tuple[str, str]]:
    """(sku, value) where a string attribute value occurs in exactly one of the products."""
    counts = Counter(str(v).lower() for p in products for v in p["attributes"].values() if isinstance(v, str))
    out = []
    for p in products:
        for v in p["attributes"].values():
            if isinstance(v, str) and counts[v.lower()] == 1 and len(v) > 3 and not any(
                    v.lower() in q["title"].lower() for q in products):
                out.append((p["sku"], v))
                break
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, env, shopgen_bin):
    tmp = tmp_path_factory.mktemp("e2e")
    products = _pick(SAMPLE.read_bytes().splitlines())
    duplicate = json.dumps({**products[0], "title": "Duplicate"}).encode()
    catalog = tmp / "catalog.jsonl"
    catalog.write_bytes(b"\n".join([json.dumps(p).encode() for p in products] + BAD_ROWS + [duplicate]) + b"\n")
    work = tmp / "work"
    # A behaviour log for these products (data/make_events.py), without any event for the last one.
    clean = tmp / "products.jsonl"
    clean.write_text("".join(json.dumps(p) + "\n" for p in products))
    subprocess.run([sys.executable, str(ROOT / "data" / "make_events.py"), "--catalog", str(clean), "--sessions", "400",
                    "--out", str(tmp / "all-events.jsonl")], check=True, capture_output=True)
    cold = products[-1]["sku"]
    (tmp / "events").mkdir()
    (tmp / "events" / "day1.jsonl").write_text("".join(
        line + "\n" for line in (tmp / "all-events.jsonl").read_text().splitlines() if json.loads(line)["sku"] != cold))
    # Best-of-3 for descriptions: test_hybrid_finds_a_term_only_the_generated_description_has needs one
    # published, and with one sample 0 to 3 of the 14 passed the gate from run to run.
    proc = subprocess.run([shopgen_bin, "nightly", "--catalog", str(catalog), "--workdir", str(work),
                           "--events", str(tmp / "events")],
                          env={**env, "SHOPGEN_CONTENT__DESCRIPTION__CANDIDATES": "3"}, capture_output=True,
                          text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return {"products": products, "work": work, "proc": proc, "cold": cold}


def _search(shopgen_bin, env, query, mode="bm25", k=3):
    p = subprocess.run([shopgen_bin, "search", query, "--mode", mode, "-k", str(k), "--json"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


def test_report_and_outputs(run):
    work: Path = run["work"]
    report = json.loads((work / "report.json").read_text())
    assert report["status"] == "succeeded"
    c = report["counts"]
    assert c["valid"] == N and c["invalid"] == len(BAD_ROWS) + 1
    # Enrichment only adds: every valid product is indexed, whatever happened to its copy.
    assert c["indexed"] == N and c["quarantined"] == c["invalid"]
    cov = report["coverage"]
    assert cov["valid"] == N and cov["searchable"] == N and cov["searchable_share"] == 1.0
    for t in ("description", "ad_copy", "bullets"):
        per = cov["types"][t]
        assert per["fresh"] + per["kept"] + per["none"] == N and per["kept"] == 0  # a first run keeps nothing
    assert set(report["qa"]["checks"]) >= {"schema", "language", "banned_claims", "faithfulness", "injection",
                                           "placeholder", "unsupported_claims", "degeneration", "invented_entities",
                                           "wrong_product"}
    for stage in ("validate", "generate", "embed", "index"):
        assert report["stages"][stage]["seconds"] > 0 or stage == "validate"
    assert report["stages"]["generate"]["tokens_per_s"] > 0 and report["stages"]["embed"]["docs_per_s"] > 0
    assert report["stages"]["index"]["swapped"] is True

    table = pads.dataset(str(work / "enriched"), format="parquet").to_table()
    for col in ("sku", "title", "description", "ad_headlines", "ad_descriptions", "bullets", "copy",
                "model_version", "content_hash", "embedding", "source_description"):
        assert col in table.column_names
    rows = table.to_pylist()
    assert len(rows) == N
    fresh = 0
    for r in rows:
        assert len(r["embedding"]) == 384 and r["title"]
        assert r["model_version"].startswith("smollm2-135m-instruct@")
        copy = json.loads(r["copy"])
        assert {copy[t]["status"] for t in copy} <= {"fresh", "none"}
        if copy["description"]["status"] == "fresh":
            fresh += 1
            assert 20 <= len(r["description"].split()) <= 150
        else:
            assert r["description"] is None and copy["description"]["reasons"]
        if copy["bullets"]["status"] == "fresh":
            assert 3 <= len(r["bullets"]) <= 6
        if copy["ad_copy"]["status"] == "fresh":
            assert 3 <= len(r["ad_headlines"]) <= 15 and all(len(h) <= 30 for h in r["ad_headlines"])
            assert 2 <= len(r["ad_descriptions"]) and all(len(d) <= 90 for d in r["ad_descriptions"])
    assert fresh == cov["types"]["description"]["fresh"]


def test_every_quarantined_row_has_a_reason(run):
    lines = (run["work"] / "quarantine.jsonl").read_text(encoding="utf-8").splitlines()
    q = [json.loads(l) for l in lines]
    validate = [x for x in q if x["stage"] == "validate"]
    assert len(validate) == len(q) == len(BAD_ROWS) + 1  # generation failures are not quarantined
    assert all(x["reason"] and x["raw"] is not None for x in q)
    failures = [json.loads(l) for l in (run["work"] / "copy_failures.jsonl").read_text(encoding="utf-8").splitlines()]
    for f in failures:
        assert f["type"] in ("description", "ad_copy", "bullets") and f["reasons"] and f["sku"]
    reasons = " | ".join(x["reason"] for x in validate)
    for needle in ("missing or empty sku", "missing or empty title", "price", "invalid UTF-8", "oversize field title",
                   "wrong type or value for title", "invalid JSON", "duplicate sku"):
        assert needle in reasons, (needle, reasons)


def test_search_finds_distinctive_attribute_in_top3(run, env, shopgen_bin):
    indexed = {r["sku"] for r in pads.dataset(str(run["work"] / "enriched")).to_table(columns=["sku"]).to_pylist()}
    # distinctive within what was indexed, so other products can't legitimately outrank it
    cases = _distinctive([p for p in run["products"] if p["sku"] in indexed])
    checked = 0
    for sku, value in cases[:8]:
        hits = _search(shopgen_bin, env, value)
        assert sku in [h["sku"] for h in hits], (value, sku, hits)
        checked += 1
    assert checked >= min(3, len(indexed))


def test_every_valid_product_is_indexed_with_its_copy_status(run, settings):
    from elasticsearch import helpers

    from indexing.client import make_client

    es = make_client(settings)
    docs = [h["_source"] for h in helpers.scan(es, index=settings.es.alias, query={"query": {"match_all": {}}})]
    assert len(docs) == json.loads((run["work"] / "report.json").read_text())["counts"]["valid"] == N
    for d in docs:
        assert d["title"] and len(d["embedding"]) == 384
        for t in ("description", "ad_copy", "bullets"):
            assert d["copy"][t]["status"] in ("fresh", "none")
        if d["copy"]["description"]["status"] == "fresh":
            assert d["description"].strip()
        else:  # the product is still there, with its own fields and why its description is missing
            assert "description" not in d and d["copy"]["description"]["reasons"]


@pytest.mark.parametrize("mode", ["knn", "hybrid"])
def test_semantic_modes_return_hits_with_copy_status(run, env, shopgen_bin, mode):
    hits = _search(shopgen_bin, env, "something to keep me dry in the rain", mode=mode, k=3)
    assert len(hits) == 3
    for h in hits:
        assert {"sku", "score", "title", "description", "copy"} <= h.keys() and h["title"]
        assert bool(h["description"]) == (h["copy"]["description"]["status"] == "fresh")


def test_knn_is_an_exact_cosine_over_the_indexed_vectors(run, env, shopgen_bin, settings):
    """The index's vectors are int8-quantized (es.vector_index_type); the server here has no
    rescore_vector, so shopgen rescores the candidates itself: every hit's score is the exact cosine
    ((1 + cos) / 2) and the order is an exact ranking over all indexed vectors."""
    import numpy as np
    from elasticsearch import helpers

    from indexing.client import make_client
    from shopgen.adapters import models
    from shopgen.adapters.encoder import load_encoder, query_encoder

    query = "something warm for a cold night"
    enc = query_encoder(load_encoder(models.materialize(models.resolve(settings.models.embedder, settings),
                                                        settings).path), settings.embedding)
    q = np.asarray(enc(query), dtype=np.float64)
    q /= np.linalg.norm(q)
    docs = {h["_source"]["sku"]: np.asarray(h["_source"]["embedding"], dtype=np.float64) for h in helpers.scan(
        make_client(settings), index=settings.es.alias, query={"query": {"match_all": {}}}, _source=["sku", "embedding"])}
    exact = {s: (1 + float(v @ q) / float(np.linalg.norm(v))) / 2 for s, v in docs.items()}
    hits = _search(shopgen_bin, env, query, mode="knn", k=5)
    assert [h["sku"] for h in hits] == sorted(exact, key=lambda s: (-exact[s], s))[:5]
    assert all(abs(h["score"] - exact[h["sku"]]) < 1e-5 for h in hits), [(h["score"], exact[h["sku"]]) for h in hits]


def test_hybrid_finds_a_term_only_the_generated_description_has(run, env, shopgen_bin):
    """The rarest word of a generated description that the product's own data lacks (title,
    attributes, brand, category, seller text) still finds the product in hybrid mode."""
    import re

    rows = pads.dataset(str(run["work"] / "enriched")).to_table().to_pylist()
    words = lambda t: set(re.findall(r"[a-z]{6,}", (t or "").lower()))  # noqa: E731
    df = Counter(w for r in rows for w in words(r["description"]) | words(r["title"]) | words(r["attributes"]))
    cases = []
    for r in rows:
        own = words(" ".join(filter(None, [r["title"], r["attributes"], r["brand"], r["category"],
                                           r["source_description"]])))
        only_generated = sorted((w for w in words(r["description"]) - own if df[w] == 1), key=len, reverse=True)
        if only_generated:
            cases.append((r["sku"], only_generated[0]))
    assert cases, "no generated description has a word of its own"
    for sku, word in cases[:3]:
        hits = _search(shopgen_bin, env, word, mode="hybrid", k=10)
        assert sku in [h["sku"] for h in hits], (word, sku, hits)


def test_behaviour_lists_are_indexed_searchable_and_shown(run, env, shopgen_bin, settings):
    """The nightly with --events: also_viewed and bought_together in the index; the product nobody saw
    gets content-similar (or popular) products, marked as such; search and recommend show the lists."""
    from elasticsearch import helpers

    from indexing.client import make_client

    report = json.loads((run["work"] / "report.json").read_text())
    st = report["stages"]["recommend"]
    assert st["files_read"] == 1 and st["events"] > 1000 and st["quarantined"] == 0
    docs = {h["_source"]["sku"]: h["_source"] for h in helpers.scan(make_client(settings), index=settings.es.alias,
                                                                     query={"query": {"match_all": {}}})}
    viewed = [s for s, d in docs.items() if d.get("also_viewed")]
    assert len(viewed) >= N - 2 and any(d.get("bought_together") for d in docs.values())
    for s, d in docs.items():
        assert s not in (d.get("recommended") or []) and set(d.get("also_viewed") or []) <= set(docs)
        assert len(d.get("recommended") or []) == len(d.get("recommended_sources") or [])
    cold = docs[run["cold"]]
    assert not cold.get("also_viewed") and cold["recommended"]
    assert set(cold["recommended_sources"]) <= {"content", "popular"} and cold["recommended_sources"][0] == "content"

    sku = viewed[0]
    hit = next(h for h in _search(shopgen_bin, env, docs[sku]["title"], k=5) if h["sku"] == sku)
    assert hit["also_viewed"] == docs[sku]["also_viewed"]
    p = subprocess.run([shopgen_bin, "recommend", sku, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    shown = json.loads(p.stdout)
    assert [x["sku"] for x in shown["lists"]["also_viewed"]] == docs[sku]["also_viewed"]
    assert [x["source"] for x in shown["lists"]["recommended"]] == docs[sku]["recommended_sources"]
    assert all(x["title"] for x in shown["lists"]["also_viewed"])
    p = subprocess.run([shopgen_bin, "recommend", "--session", f"{viewed[1]},{sku}", "--json", "--state",
                        str(run["work"] / "state")], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    ranked = json.loads(p.stdout)["lists"]["recommended"]
    assert ranked and ranked[0]["source"] == "behaviour" and not {sku, viewed[1]} & {x["sku"] for x in ranked}
    p = subprocess.run([shopgen_bin, "recommend", "NO-SUCH-SKU"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "no product 'NO-SUCH-SKU'" in p.stderr


def test_an_index_from_before_the_behaviour_lists_gets_their_fields(run, settings):
    """A live index built by an earlier version has a strict mapping without the new fields: an upsert
    adds them to it first (indexing.lifecycle.add_new_fields) instead of being refused."""
    from indexing.client import make_client
    from indexing.lifecycle import add_new_fields
    from indexing.mapping import mappings_component

    es = make_client(settings)
    m = mappings_component(384, settings.es, analyzer="english")["mappings"]  # before the unit analyzer
    old = {**m, "properties": {k: v for k, v in m["properties"].items() if k not in
                               ("also_viewed", "bought_together", "recommended", "recommended_sources")}}
    es.indices.create(index="before-recs", mappings=old)
    with pytest.raises(Exception, match="strict|mapping"):
        es.index(index="before-recs", id="A", document={"sku": "A", "also_viewed": ["B"]})
    mapping = es.indices.get_mapping(index="before-recs")["before-recs"]["mappings"]
    assert add_new_fields(es, "before-recs", mapping, 384, settings) == [
        "also_viewed", "bought_together", "recommended", "recommended_sources"]
    es.index(index="before-recs", id="A", document={"sku": "A", "also_viewed": ["B"]}, refresh=True)
    assert es.search(index="before-recs", query={"term": {"also_viewed": "B"}})["hits"]["total"]["value"] == 1
    es.indices.delete(index="before-recs")
