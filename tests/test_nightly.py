"""Incremental nightly runs against the real stack: change and delete propagation, resume after the
driver is killed (on S3, moto server), the run lock, and the pure planning core."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SAMPLE

# seo_title is the cheapest content type to generate, which keeps these runs short.
CONTENT = "seo_title"


def _products(n: int, step: int = 7) -> list[dict]:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return [json.loads(lines[i * step]) for i in range(n)]


def _write(path: Path, products: list[dict]) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in products), encoding="utf-8")
    return path


def _nightly(shopgen_bin: str, env: dict, catalog: str, work: Path, state: str, *extra: str,
             ok: bool = True) -> tuple[subprocess.CompletedProcess, dict]:
    p = subprocess.run([shopgen_bin, "nightly", "--catalog", catalog, "--workdir", str(work), "--state", state,
                        "--content", CONTENT, *extra], env=env, capture_output=True, text=True, timeout=900)
    if ok:
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-6000:]
    rep = json.loads((work / "report.json").read_text()) if (work / "report.json").exists() else {}
    return p, rep


def _docs(settings, alias: str) -> list[dict]:
    from elasticsearch import helpers

    from indexing.client import make_client

    es = make_client(settings)
    es.indices.refresh(index=alias)
    return [h["_source"] for h in helpers.scan(es, index=alias, query={"query": {"match_all": {}}},
                                               _source_includes=["sku", "price", "seo_title", "copy", "also_viewed", "indexed_at",
                                                                 "related_skus", "embedding", "locale", "attributes", "popularity"])]


def _exact_related(docs: dict[str, dict], sku: str, k: int = 8) -> list[str]:
    """The related products of `sku` by an exact cosine over the indexed vectors (same locale, not its variants)."""
    import numpy as np

    from shopgen.related.knn import variant_group

    keys = ["parent_sku", "variant_of", "group_id"]
    me = docs[sku]
    group = variant_group(sku, me.get("attributes"), keys)
    cands = [s for s, d in docs.items() if d.get("locale") == me.get("locale")
             and variant_group(s, d.get("attributes"), keys) != group]
    sims = {s: float(np.dot(me["embedding"], docs[s]["embedding"])) for s in cands}
    return sorted(cands, key=lambda s: (-sims[s], s))[:k]


def _state(prefix: str, settings=None) -> dict[str, dict]:
    from shopgen.state import StateStore, load_state

    return load_state(StateStore(prefix, settings.s3 if settings else None))


def _nights_pass(prefix: str, nights: int = 1) -> None:
    """As if `nights` had passed for every failed attempt of a local state (a test's runs all happen on one)."""
    from shopgen.state import StateStore, pass_nights

    pass_nights(StateStore(prefix), nights)


# ---- pure core --------------------------------------------------------------------------------

def _entries(**types):
    return json.dumps(types)


def test_plan_is_per_content_type_and_retries_failed_copy_within_bounds():
    """Per-type planning; the retry schedule and budget in detail: tests/test_retry_budget.py."""
    from shopgen.state import CopyPolicy, plan

    fresh = lambda k: {"key": k, "attempt_key": k, "status": "fresh", "uri": "f1", "accepted_hash": "h"}  # noqa: E731
    prev = {"a": {"content_hash": "h", "copy": _entries(description=fresh("d1"), ad_copy=fresh("a1"))},
            # b: its ad copy failed once for tonight's key, last night; c: it failed 4 nights (3 retries)
            "b": {"content_hash": "h", "copy": _entries(description=fresh("d1"), ad_copy={
                "attempt_key": "a1", "status": "none", "failures": 1, "first_failed": "2026-12-01",
                "last_failed": "2026-12-01"})},
            "c": {"content_hash": "h", "copy": _entries(description=fresh("d1"), ad_copy={
                "attempt_key": "a1", "status": "none", "failures": 4, "first_failed": "2026-11-24",
                "last_failed": "2026-12-01"})},
            "d": {"content_hash": "old", "copy": _entries(description=fresh("d0"), ad_copy=fresh("a0"))},
            "gone": {"content_hash": "h", "copy": "{}"}, "bad_now": {"content_hash": "h", "copy": "{}"}}
    keys = {s: {"description": "d1", "ad_copy": "a1"} for s in "abc"}
    keys["d"] = {"description": "d2", "ad_copy": "a2"}
    keys["e"] = {"description": "d1", "ad_copy": "a1"}
    hashes = {s: "h" for s in "abce"} | {"d": "new"}
    journal = {"e": {"types": {"description": {"attempt_key": "d1", "status": "fresh", "uri": "j1"}}}}
    p = plan(keys, hashes, prev, journal, "20261202T010000000000Z", present=["bad_now"])
    assert (p.new, p.changed, p.unchanged, p.deleted) == (["e"], ["d"], ["a", "b", "c"], ["gone"])
    # a: nothing to do; b: only its failed type, retried; c: retries used up; d: changed, all types;
    # e: its description resumes from a committed batch, its ad copy is generated
    assert p.regenerate == {"b": ["ad_copy"], "d": ["description", "ad_copy"], "e": ["ad_copy"]}
    assert p.reuse == ["a", "c"] and p.retried == ["b"] and p.resumed == ["e"]
    assert p.retry_gave_up == ["c"] and p.retry_deferred == [] and p.retry_slots == 1  # ceil(5% of 5)
    assert p.carried["c"]["ad_copy"].status == "none" and p.carried["e"]["description"].uri == "j1"
    assert p.counts()["retried"] == 1 and p.counts()["retry_gave_up"] == 1 and p.counts()["retry_deferred"] == 0
    # a bumped prompt version of one type changes only that type's key: only it is regenerated
    bumped = {s: {**k, "description": k["description"] + "-v3"} for s, k in keys.items() if s in "ac"}
    p2 = plan(bumped, {"a": "h", "c": "h"}, prev, {}, "20261202T010000000000Z")
    assert p2.regenerate == {"a": ["description"], "c": ["description"]}
    # no window closes on a due retry: b is still retried a week later (and not twice the same night)
    late = plan({"b": keys["b"]}, {"b": "h"}, prev, {}, "20261208T010000000000Z")
    assert late.regenerate == {"b": ["ad_copy"]} and late.retried == ["b"]
    same = plan({"b": keys["b"]}, {"b": "h"}, prev, {}, "20261201T230000000000Z")
    assert same.regenerate == {} and same.reuse == ["b"] and same.retried == []
    # nightly.retry_quarantined: every night, whatever the bounds say
    assert plan({"c": keys["c"]}, {"c": "h"}, prev, {}, "20261202T0100Z",
                policy=CopyPolicy(always=True)).regenerate == {"c": ["ad_copy"]}
    full = plan(keys, hashes, prev, {}, "20261202T010000000000Z", full=True)
    assert full.regenerate["a"] == ["description", "ad_copy"] and full.regenerate["e"] == ["description", "ad_copy"]
    assert set(full.regenerate) == set(keys)


def test_settled_products_are_carried_as_stored_without_parsing_their_copy():
    """An unchanged product whose every type is fresh for tonight's key (the state's `fresh`) is
    settled: no parsed entries, no work. A state written before `fresh` existed is planned as before."""
    import pyarrow as pa

    from shopgen.state import STATE_SCHEMA, StateRows, combined_key, plan

    keys = {s: {"description": "d1"} for s in ("a", "b", "c", "old")}
    e = json.dumps({"description": {"key": "d1", "attempt_key": "d1", "status": "fresh", "uri": "f"}})
    rows = [{"sku": "a", "content_hash": "h", "key": combined_key(keys["a"]), "copy": "not json: never parsed",
             "fresh": True},
            {"sku": "b", "content_hash": "h", "key": "another key", "copy": e, "fresh": True},  # a new key
            {"sku": "c", "content_hash": "h", "key": combined_key(keys["c"]), "copy": e, "fresh": False},
            {"sku": "gone", "content_hash": "h", "key": "k", "copy": e, "fresh": True}]
    state = StateRows(pa.Table.from_pylist(rows, schema=STATE_SCHEMA))
    old = StateRows(pa.table({"sku": ["old"], "content_hash": ["h"], "copy": [e]}))  # no `fresh` column
    assert old["old"]["fresh"] is None and list(old) == ["old"] and "old" in old
    p = plan(keys, {s: "h" for s in keys}, state, {}, "20261202T010000000000Z")
    assert p.settled == {"a"} and "a" not in p.previous and "a" not in p.carried
    assert p.unchanged == ["a", "b", "c"] and p.new == ["old"] and p.deleted == ["gone"]
    assert p.reuse == ["b", "c", "a"] and p.regenerate == {"old": ["description"]}  # b, c: carried after parsing
    valid = StateRows(pa.Table.from_pylist([{**rows[0], "copy": e}], schema=STATE_SCHEMA))
    a = {"a": keys["a"]}
    assert plan(a, {"a": "h"}, valid, {}, "20261202T010000000000Z", full=True).regenerate == {"a": ["description"]}
    assert plan(a, {"a": "h2"}, valid, {}, "20261202T010000000000Z").changed == ["a"]
    q = plan({"old": keys["old"]}, {"old": "h"}, old, {}, "20261202T010000000000Z")
    assert not q.settled and q.carried["old"]["description"].status == "fresh"


def test_settle_keeps_accepted_copy_only_while_the_facts_are_unchanged():
    from shopgen.core.copy import CopyEntry, decode, encode
    from shopgen.state import settle

    accepted = CopyEntry(key="k1", attempt_key="k1", status="fresh", uri="f1", accepted_hash="h1", run_id="r1")
    ok = settle(accepted, "k2", "h1", "20261202T01Z", True, "f2", [])
    assert ok.status == "fresh" and ok.uri == "f2" and ok.failures == 0
    kept = settle(accepted, "k2", "h1", "20261202T01Z", False, "f2", ["placeholder: '[Company Name]'"])
    assert kept.status == "kept" and kept.uri == "f1" and kept.key == "k1" and kept.attempt_key == "k2"
    assert kept.reasons == ["placeholder: '[Company Name]'"] and kept.failures == 1
    again = settle(kept, "k2", "h1", "20261203T01Z", False, None, ["x"])
    assert again.status == "kept" and again.failures == 2 and again.first_failed == "2026-12-02"
    assert again.last_failed == "2026-12-03" and kept.last_failed == "2026-12-02"
    dropped = settle(accepted, "k3", "h2", "20261202T01Z", False, None, ["x"])  # the price changed
    assert dropped.status == "none" and dropped.uri is None
    # One encoding: what the state stores reads back as the same entries; a state written by an
    # older version (fewer keys, or unknown ones) still reads.
    assert decode(encode({"description": again})) == {"description": again}
    assert decode('{"seo_title": {"status": "fresh", "key": "k", "legacy": 1}}')["seo_title"].fresh_for("k")
    with pytest.raises(ValueError):
        decode('{"seo_title": {"status": "published"}}')  # not a status: refused, never guessed


def test_rebuild_reason_decides_full_or_in_place():
    from shopgen.nightly.steps import rebuild_reason

    prev = {"a": {"embedding_model": "m1"}, "b": {"embedding_model": None}}
    args = dict(live="p-1", previous=prev, was_indexed={"a"}, embedding_model="m1", regenerated=1, total=4,
                fraction=0.5)
    assert rebuild_reason(False, **args) is None
    assert rebuild_reason(True, **args) == "--full"
    assert rebuild_reason(False, **{**args, "live": None}) == "no live index behind the alias"
    assert rebuild_reason(False, **{**args, "previous": {}}) == "no previous state"
    assert "not the one this state last wrote" in rebuild_reason(False, **{**args, "was_indexed": set()})
    assert rebuild_reason(False, **{**args, "embedding_model": "m2"}) == "a new embedding model"
    assert "3 of 4 products regenerated" in rebuild_reason(False, **{**args, "regenerated": 3})
    assert rebuild_reason(False, **{**args, "regenerated": 2}) is None  # exactly the fraction: in place


def test_state_survives_a_moved_prefix_and_gc_spares_pending_batches(tmp_path):
    import pyarrow as pa

    from shopgen.core.copy import CopyEntry, encode
    from shopgen.state import StateStore, commit_batch, load_journal, load_state, read_rows, save_state

    store = StateStore(str(tmp_path / "a"))
    t = pa.table({"sku": ["x", "y"], "v": [1, 2]})
    rel = commit_batch(store, "r1", 0, t, [{"sku": "x", "key": "k", "types": {}}, {"sku": "y", "key": "k", "types": {}}])
    stale = store.write_table("outputs/gen/old.parquet", t)
    journal, names = load_journal(store)
    # The state row names its batch file through its copy entries (the only reference kept).
    row_x = {"sku": "x", "key": "k", "copy": encode({"seo_title": CopyEntry(status="fresh", key="k", uri=rel)})}
    save_state(store, [row_x], names)
    assert not store.exists(stale) and store.exists(rel)  # unreferenced output removed
    pending = commit_batch(store, "r2", 0, t, [{"sku": "y", "key": "k2", "types": {}}])
    save_state(store, [row_x], [])  # a GC with a manifest still pending
    assert store.exists(pending)
    (tmp_path / "a").rename(tmp_path / "b")
    moved = StateStore(str(tmp_path / "b"))
    uri = load_state(moved).table["copy"].to_pylist()[0]
    assert [r.to_pylist() for r in read_rows(moved, {"x": rel})] == [[{"sku": "x", "v": 1}]] and rel in uri
    # A state written before the `status` and `output_uri` columns were dropped still reads.
    old = pa.table({"sku": ["x"], "status": ["ok"], "output_uri": [rel], "copy": [row_x["copy"]]})
    moved.write_table("skus.parquet", old)
    assert load_state(moved)["x"]["copy"] == row_x["copy"] and "status" not in load_state(moved)["x"]


def test_a_batch_is_committed_by_whoever_made_it_from_the_plan_each_row_carries(tmp_path):
    """The committer settles each row from its own plan, writes the batch then its manifest, and
    returns only entries and QA columns. It is pickled as an actor would get it."""
    import pickle

    import pyarrow as pa

    from shopgen.checks import CheckResult
    from shopgen.core.content import CONTENT_TYPES
    from shopgen.core.copy import CopyEntry, decode
    from shopgen.core.records import Product, content_hash
    from shopgen.generate.engine import GENERATED_SCHEMA, Outcome, generated_row, product_row
    from shopgen.nightly.commit import COMMITTED_COLUMNS, BatchCommitter, row_plan
    from shopgen.state import StateStore, combined_key, load_journal, settle

    p = Product(sku="A1", title="Trail Jacket", category="Jackets", price=99.0, currency="USD", locale="en-US")
    h = content_hash(p)
    keys = {"seo_title": "k-seo", "description": "k-desc"}
    kept = settle(CopyEntry(), "old-desc", h, "r0", True, "outputs/gen/r0-000000.parquet", [])  # last night's text
    o = Outcome(outputs={"seo_title": CONTENT_TYPES["seo_title"].schema(seo_title="Trail Jacket, waterproof")},
                checks={"seo_title": [], "description": [CheckResult("schema", False, ["too short"])]}, attempts=2)
    row = {**product_row(p), "plan": row_plan(keys, {"description": kept}, ["seo_title", "description"])}
    batch = pa.Table.from_pylist([generated_row(row, o, ["seo_title", "description"], "m1")], schema=GENERATED_SCHEMA)
    store = StateStore(str(tmp_path / "state"))
    commit = pickle.loads(pickle.dumps(BatchCommitter(store.prefix, store.s3cfg, "r1")))
    out = commit(batch)
    assert out.column_names == COMMITTED_COLUMNS and out.num_rows == 1
    types = json.loads(out["types"][0].as_py())
    uri = out["batch"][0].as_py()
    assert types["seo_title"]["status"] == "fresh" and types["seo_title"]["uri"] == uri
    assert types["description"]["status"] == "kept" and types["description"]["uri"] == kept.uri
    assert types["description"]["reasons"] == ["schema: too short"]
    journal, names = load_journal(store)
    assert len(names) == 1 and journal["A1"]["types"] == decode(types) and journal["A1"]["key"] == combined_key(keys)
    stored = store.read_table(uri)
    assert "plan" not in stored.column_names and stored["seo_title"].to_pylist() == ["Trail Jacket, waterproof"]


def test_generation_key_depends_on_prompt_model_and_settings():
    from shopgen.core.config import load_settings
    from shopgen.nightly.steps import type_versions
    from shopgen.state import generation_key, settings_hash

    sh = settings_hash(["seo_title"], {"temperature": 0.3, "max_tokens": 10}, {})
    base = generation_key("c", "p1", "m1", sh)
    assert base == generation_key("c", "p1", "m1", sh)
    assert len({base, generation_key("c2", "p1", "m1", sh), generation_key("c", "p2", "m1", sh),
                generation_key("c", "p1", "m2", sh),
                generation_key("c", "p1", "m1", settings_hash(["bullets"], {"temperature": 0.3}, {}))}) == 5
    # Per type: a type's own prompt version and limits change only its own key.
    s = load_settings()
    v = type_versions(s, ("description", "bullets"))
    assert v["description"][0].endswith("/description-v2") and v["bullets"][0].endswith("/bullets-v2")
    s2 = load_settings(content={"description": {"min_words": 40}})
    v2 = type_versions(s2, ("description", "bullets"))
    assert v2["description"] != v["description"] and v2["bullets"] == v["bullets"]


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    from shopgen.state import Lock, LockedError, StateStore, force_unlock

    store = StateStore(str(tmp_path / "state"))
    a = Lock(store, {"run_id": "A", "catalog": "c", "alias": "x"}, ttl_s=60)
    assert a.acquire() is None
    b = Lock(store, {"run_id": "B", "catalog": "c", "alias": "x"}, ttl_s=60)
    with pytest.raises(LockedError, match="run A"):
        b.acquire()
    a.release()
    assert b.acquire() is None
    # B's process "dies": its pid is gone on this host, so the next run takes the lock over
    held = json.loads(store.read("lock.json"))
    store.write("lock.json", json.dumps({**held, "pid": 2 ** 22 + 12345}).encode())
    b._stop.set()
    c = Lock(store, {"run_id": "C"}, ttl_s=60)
    assert c.acquire()["run_id"] == "B"
    # an expired TTL on another host is stale too; --force-unlock clears a live one
    c.release()
    store.write("lock.json", json.dumps({"run_id": "D", "host": "elsewhere", "pid": 1,
                                         "expires_at_epoch": time.time() - 1}).encode())
    assert Lock(store, {"run_id": "E"}, ttl_s=60).acquire()["run_id"] == "D"
    assert force_unlock(store)["run_id"] == "E" and not store.exists("lock.json")


def test_second_concurrent_run_is_refused(tmp_path, env, shopgen_bin):
    """A run holding the lock (another host, fresh heartbeat) makes a second run exit before any work."""
    state = tmp_path / "state"
    (state / "products").mkdir(parents=True)
    (state / "products" / "lock.json").write_text(json.dumps(
        {"run_id": "20261129T010000000000Z", "catalog": "cat.jsonl", "alias": "products", "host": "other-host",
         "pid": 4242, "acquired_at": "2026-11-29T01:00:00+00:00", "heartbeat_at": "now",
         "expires_at_epoch": time.time() + 600}))
    work = tmp_path / "work"
    p = subprocess.run([shopgen_bin, "nightly", "--catalog", str(SAMPLE), "--workdir", str(work), "--state",
                        str(state)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "another nightly run holds the lock" in p.stderr and "20261129T010000000000Z" in p.stderr
    assert "--force-unlock" in p.stderr
    assert not work.exists()  # refused before touching anything
    assert json.loads((state / "products" / "lock.json").read_text())["host"] == "other-host"


# ---- real stack -------------------------------------------------------------------------------

@pytest.mark.slow
def test_incremental_run_regenerates_only_the_changed_product_and_deletes(tmp_path, env, shopgen_bin, settings):
    products = _products(5)
    # No retries of failed copy: an unchanged product is then not retried, which keeps the counts exact.
    env = {**env, "SHOPGEN_GATE__MAX_DOC_DROP": "0.5", "SHOPGEN_NIGHTLY__COPY_RETRY_ATTEMPTS": "0"}
    state, work = str(tmp_path / "state"), tmp_path / "work"
    catalog = tmp_path / "catalog.jsonl"

    # Shoppers saw products 2 and 3 together on the first night, 3 and 4 on the second.
    events = tmp_path / "events"
    events.mkdir()
    sku = [p["sku"] for p in products]
    _events(events / "day1.jsonl", [(sku[2], sku[3])] * 2, "2026-11-20")
    # local_max_mb 0: the folds run on Ray Data here (tests/test_e2e.py runs them in the driver's process);
    # local_max_rows 0: so does the related-products kNN, its batches reading the state's vector files.
    env = {**env, "SHOPGEN_RECOMMEND__EVENTS": str(events), "SHOPGEN_RECOMMEND__LOCAL_MAX_MB": "0",
           "SHOPGEN_RELATED__LOCAL_MAX_ROWS": "0"}

    _, r1 = _nightly(shopgen_bin, env, str(_write(catalog, products)), work, state)
    c1 = r1["counts"]
    assert r1["mode"] == "full" and (c1["new"], c1["regenerated"], c1["deleted"]) == (5, 5, 0)
    s1 = _state(f"{state}/products")
    # Every valid product is indexed, with or without accepted copy.
    assert {d["sku"] for d in _docs(settings, "products")} == set(s1) == {p["sku"] for p in products}
    docs1 = {d["sku"]: d for d in _docs(settings, "products")}
    assert docs1[sku[2]]["also_viewed"] == [sku[3]] and docs1[sku[3]]["also_viewed"] == [sku[2]]
    # Popularity for the ranker: round(log2(1 + weight)), two sessions of views each; none without behaviour.
    assert docs1[sku[2]]["popularity"] == docs1[sku[3]]["popularity"] == 2.0 and "popularity" not in docs1[sku[0]]
    assert all(d["related_skus"] == _exact_related(docs1, s) for s, d in docs1.items())
    assert (work / "report.html").read_text().startswith("<!DOCTYPE html>")

    # one product changes (its price), one disappears from the feed
    changed, deleted = products[0], products[1]
    products2 = [({**p, "price": round(p["price"] + 1.5, 2)} if p is changed else p) for p in products
                 if p is not deleted]
    _events(events / "day2.jsonl", [(sku[3], sku[4])] * 2, "2026-11-21")
    p2, r2 = _nightly(shopgen_bin, env, str(_write(catalog, products2)), work, state)
    c2 = r2["counts"]
    assert (c2["new"], c2["changed"], c2["unchanged"], c2["deleted"]) == (0, 1, 3, 1)
    assert c2["regenerated"] == 1 and c2["reused"] == 3 and r2["mode"] == "incremental"
    assert r2["stages"]["generate"]["rows"] == 1
    # Only the changed product's document is rebuilt, and the two whose behaviour lists changed (3 and 4:
    # 2's list is still [3]), with their stored vectors; the deletion is named by the state (no scan).
    assert r2["stages"]["recommend"]["files_read"] == 1 and r2["stages"]["recommend"]["changed"] == 2
    assert r2["stages"]["recommend"]["engine"] == "ray_data"
    assert r2["stages"]["plan"]["dirty"] == 3 and r2["stages"]["embed"]["computed"] <= 1
    assert r2["stages"]["index"]["deleted"] == 1 and r2["counts"]["indexed"] == 3
    docs2 = {d["sku"]: d for d in _docs(settings, "products")}
    assert docs2[sku[3]]["also_viewed"] in ([sku[2], sku[4]], [sku[4], sku[2]]) and docs2[sku[4]]["also_viewed"] == [sku[3]]
    assert docs2[sku[2]]["indexed_at"] == docs1[sku[2]]["indexed_at"]  # not rewritten
    # The changed product was matched against every product's stored vector, the deleted one gone.
    assert docs2[changed["sku"]]["related_skus"] == _exact_related(docs2, changed["sku"])
    assert deleted["sku"] not in docs2[changed["sku"]]["related_skus"] and r2["stages"]["related"]["docs"] == 4
    s2 = _state(f"{state}/products")
    assert deleted["sku"] not in s2 and set(s2) == {p["sku"] for p in products2}
    docs = {d["sku"]: d for d in _docs(settings, "products")}
    assert deleted["sku"] not in docs and set(docs) == set(s2)
    assert docs[changed["sku"]]["price"] == pytest.approx(changed["price"] + 1.5)
    # unchanged products keep the copy (and batch file) of the first run
    for p in products2:
        if p["sku"] != changed["sku"]:
            assert json.loads(s2[p["sku"]]["copy"]) == json.loads(s1[p["sku"]]["copy"])
    assert "incremental run" in p2.stdout and "regenerated 1" in p2.stdout

    # nothing changed: nothing goes to the LLM and no document is rewritten
    _, r3 = _nightly(shopgen_bin, env, str(catalog), work, state)
    c3 = r3["counts"]
    assert (c3["regenerated"], c3["changed"], c3["new"], c3["deleted"], c3["unchanged"]) == (0, 0, 0, 0, 4)
    assert r3["stages"]["index"].get("skipped") and r3["stages"]["embed"]["computed"] == 0
    assert r3["stages"]["plan"]["dirty"] == 0

    rep = subprocess.run([shopgen_bin, "report", "latest", "--state", state], env=env, capture_output=True,
                         text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert r3["run_id"] in rep.stdout and "regenerated" in rep.stdout


def _events(path: Path, sessions: list[tuple[str, ...]], day: str) -> None:
    path.write_text("".join(json.dumps({"session_id": f"{day}-{i}", "sku": s, "event": "view",
                                        "ts": f"{day}T10:{j:02d}:00Z"}) + "\n"
                            for i, skus in enumerate(sessions) for j, s in enumerate(skus)))


def _search_json(shopgen_bin, env, query):
    p = subprocess.run([shopgen_bin, "search", query, "-k", "5", "--json"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


@pytest.mark.slow
def test_failed_copy_never_costs_a_product_its_place_in_search(tmp_path, env, shopgen_bin, settings):
    """Copy failures are forced through the shop's own per-type settings (token budgets too small for the
    JSON to close), so each step is deterministic on the real model:
    1. every description fails: all products are indexed and found by title, copy.description.status = none,
       and an ad-copy-like type (seo_title) that passed is published on the same doc;
    2. the next night, unchanged, the failed descriptions are retried (and only they go to the model);
    3. a new seo_title setting changes that type's key only: only seo_title is regenerated; it fails, and
       each product keeps its last accepted title (kept) while its facts are unchanged; a product whose
       price changed the same night loses its stale title (none); the descriptions' one retry is used up.
    A zh-CN product (SmolLM2 writes English only) is never sent to the model, is indexed and found,
    and carries unsupported_language on every type, unchanged from night to night."""
    products = _products(3, step=13)
    zh = next(json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()
              if json.loads(line)["locale"] == "zh-CN")
    # A 16-token budget cannot hold a 150-word description: its JSON is always cut off (schema).
    env = {**env, "SHOPGEN_CONTENT__DESCRIPTION__MIN_WORDS": "150", "SHOPGEN_CONTENT__DESCRIPTION__MAX_WORDS": "150",
           "SHOPGEN_CONTENT__DESCRIPTION__MAX_TOKENS": "16", "SHOPGEN_NIGHTLY__COPY_RETRY_ATTEMPTS": "1",
           "SHOPGEN_NIGHTLY__COPY_RETRY_BUDGET": "1.0", "SHOPGEN_GENERATION__MAX_ATTEMPTS": "2"}
    state, work = str(tmp_path / "state"), tmp_path / "work"
    catalog = _write(tmp_path / "catalog.jsonl", products + [zh])
    run = lambda e: _nightly(shopgen_bin, e, str(catalog), work, state, "--content", "seo_title,description")  # noqa: E731
    unsupported = {t: {"status": "none", "reasons": ["unsupported_language"]} for t in ("seo_title", "description")}

    _, r1 = run(env)
    assert r1["counts"]["indexed"] == 4 and r1["coverage"]["searchable"] == 4
    assert r1["coverage"]["types"]["description"]["none"] == 4 and r1["coverage"]["unsupported_language"] == 1
    assert r1["counts"]["unsupported_language"] == 1 and r1["counts"]["copy_requests"] == 2 * 3
    assert r1["stages"]["generate"]["rows"] == 3
    zh_hit = next(h for h in _search_json(shopgen_bin, env, zh["title"]) if h["sku"] == zh["sku"])
    assert zh_hit["copy"] == unsupported
    for p in products:
        hits = _search_json(shopgen_bin, env, p["title"])
        hit = next(h for h in hits if h["sku"] == p["sku"])
        assert hit["copy"]["description"]["status"] == "none" and hit["copy"]["description"]["reasons"]
        assert "description" not in hit or hit["description"] is None
    s1 = _state(f"{state}/products")
    titled = {s for s, r in s1.items() if json.loads(r["copy"])["seo_title"]["status"] == "fresh"}
    docs1 = {d["sku"]: d for d in _docs(settings, "products")}
    # one failed type no longer sinks the row: the accepted titles are published beside no description
    assert titled, "no SEO title passed for any of the 3 products"
    assert all(docs1[s].get("seo_title") and docs1[s]["copy"]["seo_title"]["status"] == "fresh" for s in titled)
    failures = [json.loads(l) for l in (work / "copy_failures.jsonl").read_text().splitlines()]
    assert {(f["sku"], f["type"]) for f in failures} >= {(p["sku"], "description") for p in products}
    assert zh["sku"] not in {f["sku"] for f in failures}

    _nights_pass(f"{state}/products")  # the first retry is due the night after the failure
    _, r2 = run(env)
    c2 = r2["counts"]
    # the 3 descriptions and the titles that failed are retried; accepted titles are not regenerated
    assert c2["unchanged"] == 4 and c2["retried"] == 3 and c2["copy_requests"] == 3 + (3 - len(titled))
    assert c2["retry_deferred"] == 0 and c2["unsupported_language"] == 1
    s2 = _state(f"{state}/products")
    assert json.loads(s2[zh["sku"]]["copy"]) == json.loads(s1[zh["sku"]]["copy"])  # settled for its key
    for sku in titled:
        assert json.loads(s2[sku]["copy"])["seo_title"] == json.loads(s1[sku]["copy"])["seo_title"]
    titled = {s for s, r in s2.items() if json.loads(r["copy"])["seo_title"]["status"] == "fresh"}
    docs1 = {d["sku"]: d for d in _docs(settings, "products")}

    # 3: a new seo_title setting re-keys that type only; one titled product's price changes the same night
    env3 = {**env, "SHOPGEN_CONTENT__SEO_TITLE__MAX_TOKENS": "3"}  # a cut-off title: always fails
    changed = next(iter(sorted(titled)), products[0]["sku"])
    _write(catalog, [({**p, "price": round(p["price"] + 2, 2)} if p["sku"] == changed else p) for p in products]
           + [zh])
    _nights_pass(f"{state}/products", 7)  # no backoff wait left: only the attempt limit holds retries back
    _, r3 = run(env3)
    c3 = r3["counts"]
    # descriptions used their one retry; only seo_title goes to the model (plus the changed product's description)
    assert c3["changed"] == 1 and c3["copy_requests"] == 3 + 1 and c3["retried"] == 0
    assert c3["retry_gave_up"] == 2 and c3["unsupported_language"] == 1
    s3 = _state(f"{state}/products")
    docs3 = {d["sku"]: d for d in _docs(settings, "products")}
    assert set(docs3) == {p["sku"] for p in products} | {zh["sku"]}
    assert docs3[zh["sku"]]["copy"] == unsupported
    for sku, r in s3.items():
        seo = json.loads(r["copy"])["seo_title"]
        assert seo["reasons"]
        if sku in titled and sku != changed:  # facts unchanged: the last accepted title stays
            assert seo["status"] == "kept" and docs3[sku].get("seo_title") == docs1[sku].get("seo_title")
        else:  # no accepted title, or its facts changed: the stale title is dropped
            assert seo["status"] == "none" and not docs3[sku].get("seo_title")
    assert r3["coverage"]["types"]["seo_title"]["kept"] == len(titled - {changed})


@pytest.mark.slow
def test_resume_after_the_driver_is_killed_on_s3(tmp_path, env, shopgen_bin, settings, s3_server):
    """Catalog, state, outputs and reports on S3 (moto). The driver dies mid-generation; the rerun
    reuses every committed batch and the index ends with each valid SKU exactly once."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server)
    for b in ("shop-in", "shop-state"):
        s3.create_bucket(Bucket=b)
    products = _products(6, step=11)
    s3.put_object(Bucket="shop-in", Key="feeds/catalog.jsonl",
                  Body="".join(json.dumps(p) + "\n" for p in products).encode())
    env = {**env, "SHOPGEN_S3__ENDPOINT_URL": s3_server, "SHOPGEN_GENERATION__BATCH_SIZE": "2",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    catalog, state, alias = "s3://shop-in/feeds/catalog.jsonl", "s3://shop-state/nightly", "resume"
    work = tmp_path / "work"
    cmd = [shopgen_bin, "nightly", "--catalog", catalog, "--workdir", str(work), "--state", state,
           "--content", CONTENT, "--alias", alias]

    def journal() -> list[str]:
        r = s3.list_objects_v2(Bucket="shop-state", Prefix=f"nightly/{alias}/journal/")
        return [o["Key"] for o in r.get("Contents", []) if o["Key"].endswith(".json")]

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 600
    while not journal() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert journal(), f"no batch was committed (rc {proc.poll()})"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait(timeout=60)
    committed = len(journal())
    assert committed < 3, "the run finished before it could be killed"
    assert s3.get_object(Bucket="shop-state", Key=f"nightly/{alias}/lock.json")  # left behind by the dead run

    p, rep = _nightly(shopgen_bin, env, catalog, work, state, "--alias", alias)
    c = rep["counts"]
    assert c["new"] == 6 and c["resumed"] >= 2 * committed - 1 and c["resumed"] >= 2
    assert c["regenerated"] == 6 - c["resumed"]
    assert rep["lock_taken_over"]["pid"] and "taking over the lock" in p.stderr
    st = _state(f"{state}/{alias}", settings.model_copy(update={"s3": settings.s3.model_copy(
        update={"endpoint_url": s3_server})}))
    ok = {s for s, r in st.items() if r["indexed_version"]}  # in the live index, as the state records it
    docs = [d["sku"] for d in _docs(settings, alias)]
    assert sorted(docs) == sorted(ok) and len(docs) == len(set(docs)) == c["indexed"]
    assert not journal()  # folded into the state
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="shop-state", Prefix=f"nightly/{alias}/runs/")["Contents"]}
    for name in ("report.json", "report.html", "quarantine.jsonl"):
        assert f"nightly/{alias}/runs/{rep['run_id']}/{name}" in keys
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket="shop-state", Key=f"nightly/{alias}/lock.json")  # released


@pytest.mark.slow
def test_related_products_are_the_same_in_process_and_on_ray_data(tmp_path, settings):
    """Small catalogs skip the Ray Data pipeline for related products; both paths agree."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    from shopgen.adapters.raysupport import ray_session
    from shopgen.related.stage import related_stage

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(12, 8)).astype("float32")
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    table = pa.table({"sku": [f"S{i}" for i in range(12)], "locale": ["en-US"] * 8 + ["zh-CN"] * 4,
                      "attributes": [json.dumps({"parent_sku": "P1"} if i < 2 else {}) for i in range(12)],
                      "embedding": pa.array(vecs.tolist(), pa.list_(pa.float32()))})
    (tmp_path / "in").mkdir()
    pq.write_table(table, tmp_path / "in" / "part-0.parquet")
    out = {}
    with ray_session(settings):
        for name, local in (("ray", 0), ("local", 100)):
            related_stage(tmp_path / "in", tmp_path / name, 3, ["parent_sku"], batch_size=5, local_max_rows=local)
            rows = pads.dataset(str(tmp_path / name), format="parquet").to_table().to_pylist()
            out[name] = {r["sku"]: r["related_skus"] for r in rows}
    assert out["ray"] == out["local"] and len(out["local"]) == 12
    assert "S1" not in out["local"]["S0"] and "S0" not in out["local"]["S1"]  # same variant group
    assert set(out["local"]["S9"]) <= {"S8", "S10", "S11"}  # the same locale only


def test_pass_nights_moves_only_failed_attempts_back(tmp_path):
    import pyarrow as pa

    from shopgen.state import StateStore, pass_nights

    store = StateStore(str(tmp_path / "s"))
    assert pass_nights(store) == 0  # no state yet
    failed = {"description": {"status": "none", "failures": 1, "first_failed": "2026-12-05", "last_failed": "2026-12-05"},
              "seo_title": {"status": "fresh", "failures": 0, "first_failed": None, "last_failed": None}}
    store.write_table("skus.parquet", pa.table({"sku": ["A", "B"], "copy": [json.dumps(failed), None]}))
    assert pass_nights(store, 2) == 1
    rows = store.read_table("skus.parquet").to_pylist()
    moved = json.loads(rows[0]["copy"])
    assert moved["description"]["last_failed"] == moved["description"]["first_failed"] == "2026-12-03"
    assert moved["seo_title"]["status"] == "fresh" and moved["seo_title"]["last_failed"] is None
    assert rows[1]["copy"] is None
