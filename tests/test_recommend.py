"""Recommendations from behaviour: event validation and id hashing, the decayed aggregates (a night
at a time equals a rebuild), the blend's sources and filters, and `shopgen eval-recs` on the
synthetic log (data/make_events.py)."""

import json
import random
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from conftest import ROOT, SAMPLE

from shopgen.catalog.load import RawRow, parse_jsonl
from shopgen.core.config import RecommendConfig, load_settings
from shopgen.core.records import Quarantined
from shopgen.recommend.blend import Item, Recommender
from shopgen.recommend.cooc import Aggregates, add_events
from shopgen.recommend.events import Event, hash_id, parse_event, read_events, salt_key, validate_events

KEY = b"test-salt"
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()
CFG = RecommendConfig()
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()


def _row(**kw):
    return {"session_id": "sess-1", "user_id": "alice@example.com", "sku": "A", "event": "view",
            "ts": "2026-11-20T10:00:00Z", **kw}


def test_a_valid_row_becomes_an_event_with_hashed_ids_and_aliases_mapped():
    e = parse_event(_row(event="Add_To_Cart", ts=1763632800000), CFG, KEY, NOW)
    assert isinstance(e, Event) and e.kind == "cart" and e.sku == "A" and e.ts == 1763632800.0  # ms -> s
    assert e.session == hash_id(KEY, "sess-1") and e.user == hash_id(KEY, "alice@example.com")
    assert "alice" not in repr(e) and "sess-1" not in repr(e)
    assert parse_event(_row(user_id=None, ts="2026-11-20 10:00:00"), CFG, KEY, NOW).user is None  # naive = UTC
    assert hash_id(b"other", "sess-1") != e.session  # the salt is the key


@pytest.mark.parametrize("row,reason", [
    (_row(session_id=""), "missing or empty session_id"),
    (_row(sku=None), "missing or empty sku"),
    (_row(sku=["A"]), "wrong type for sku"),
    (_row(event="teleport"), "unknown event 'teleport'"),
    (_row(event=None), "missing or empty event"),
    (_row(ts="yesterday"), "ts is not ISO-8601"),
    (_row(ts=None), "missing ts"),
    (_row(ts="1999-12-31T00:00:00Z"), "ts before 2000"),
    (_row(ts="2030-01-01T00:00:00Z"), "ts in the future"),
    (_row(ts=float("nan")), "finite"),
    (_row(ts=True), "wrong type for ts"),
    (_row(sku="x" * 201), "oversize sku"),
    (_row(session_id="a\x00b"), "control characters in session_id"),
])
def test_bad_rows_get_a_reason(row, reason):
    got = parse_event(row, CFG, KEY, NOW)
    assert isinstance(got, str) and reason in got, got


JUNK = {"sku": [None, "", 3.5, True, [], {}, "\x07", "x" * 300, float("inf")],
        "event": [None, "", 3.5, True, [], "x" * 300, "2030-01-01", "buy now!"],
        "ts": [None, "", 3.5, True, [], {}, "\x07", "x" * 300, "2030-01-01", float("inf"), -5]}


def _fuzz_rows(n: int, rng: random.Random) -> list[bytes]:
    """n malformed lines of many kinds, each with a person's ids in it."""
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            out.append(b'{"session_id": "s-%d", "user_id": "person-%d@mail", "sku": ' % (i, i))  # cut off
        elif kind == 1:
            noise = bytes(rng.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(rng.randrange(1, 40)))
            out.append(b"\xff person-%d@mail " % i + noise)
        elif kind == 2:
            out.append(json.dumps([i, f"person-{i}@mail"]).encode())
        else:
            field = ("sku", "event", "ts")[kind - 3]
            row = _row(session_id=f"s-{i}", user_id=f"person-{i}@mail")
            row[field] = rng.choice(JUNK[field])
            out.append(json.dumps(row).encode())
    return out


def test_a_thousand_bad_rows_are_set_aside_with_reasons_and_no_id_leaks(tmp_path):
    rng = random.Random(3)
    good = [json.dumps(_row(session_id=f"ok-{i}", sku=f"P{i}")).encode() for i in range(20)]
    bad = _fuzz_rows(1000, rng)
    lines = good[:10] + bad + good[10:]
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    s = load_settings(home=tmp_path / "home", recommend={"id_salt": "pepper"})
    out = list(read_events(str(tmp_path / "events.jsonl"), s, now=NOW))
    events = [e for e in out if isinstance(e, Event)]
    quarantined = [q for q in out if isinstance(q, Quarantined)]
    assert len(events) == 20 and {e.sku for e in events} == {f"P{i}" for i in range(20)}
    assert len(quarantined) == 1000 and all(q.reason and q.line for q in quarantined)
    dumped = "\n".join(q.model_dump_json() for q in quarantined)
    assert "person-" not in dumped and '"s-1"' not in dumped  # ids are hashed in the quarantine too
    assert "hash:" + hash_id(b"pepper", "person-3@mail") in dumped


def test_the_salt_is_made_once_and_kept_private(tmp_path):
    s = load_settings(home=tmp_path / "home")
    k1, k2 = salt_key(s), salt_key(s)
    path = tmp_path / "home" / "secrets" / "recommend_id_salt"
    assert k1 == k2 and len(k1) == 64 and path.stat().st_mode & 0o077 == 0
    assert "recommend_id_salt" not in json.dumps(s.redacted())
    s2 = load_settings(home=tmp_path / "home", recommend={"id_salt": "shop-secret"})
    assert salt_key(s2) == b"shop-secret" and "shop-secret" not in json.dumps(s2.redacted())


def test_events_read_from_a_folder_of_mixed_formats(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "ev"
    (d / "day2").mkdir(parents=True)
    (d / "day1.jsonl").write_text(json.dumps(_row(sku="A")) + "\n")
    (d / "day2" / "part.csv").write_text("session_id,user_id,sku,event,ts\ns2,,B,purchase,2026-11-21T10:00:00Z\n")
    pq.write_table(pa.Table.from_pylist([_row(sku="C", event="click")]), d / "day2" / "x.parquet")
    (d / "notes.txt").write_text("ignored")
    s = load_settings(home=tmp_path / "home")
    got = sorted((e.sku, e.kind, e.user is None) for e in read_events(str(d), s, now=NOW))
    assert got == [("A", "view", False), ("B", "purchase", True), ("C", "click", False)]
    with pytest.raises(FileNotFoundError):
        list(read_events(str(tmp_path / "missing"), s))


def _ev(session, sku, kind, minutes, day=0):
    return Event(session, None, sku, kind, T0 + day * 86400 + minutes * 60)


def test_weights_decay_and_sessions_split_at_the_idle_gap():
    cfg = RecommendConfig(half_life_days=1.0)
    agg = add_events(Aggregates(), [_ev("s", "A", "view", 0), _ev("s", "B", "view", 1), _ev("s", "B", "purchase", 2),
                                    _ev("s", "C", "view", 200), _ev("t", "A", "view", 0, day=1)], cfg)
    # s is two sessions (A, B) and (C): C is 199 minutes after B; t, a day later, counts 1, s half.
    assert agg.pairs == pytest.approx({("A", "B"): 0.5})
    assert agg.items["B"] == pytest.approx(0.5 * 5) and agg.items["A"] == pytest.approx(0.5 + 1.0)
    assert agg.trans == pytest.approx({("A", "B"): 0.5})
    assert agg.sessions == pytest.approx(0.5 + 2 ** (-(86400 - 200 * 60) / 86400) + 1.0)


def _log(rng: random.Random, n_sessions: int, days: int) -> list[Event]:
    skus = [f"P{i}" for i in range(30)]
    out = []
    for s in range(n_sessions):
        start = T0 + rng.random() * days * 86400
        t = start
        for _ in range(rng.randrange(1, 8)):
            t += rng.randrange(1, 50) * 60  # sometimes past the 30-minute gap: a new session
            out.append(Event(f"s{s}", None, rng.choice(skus), rng.choice(("view", "view", "click", "cart", "purchase")), t))
    return out


def test_night_by_night_equals_a_rebuild_from_all_events():
    """Sessions that span the cut between nights continue; decayed aggregates match within float noise."""
    rng = random.Random(5)
    events = _log(rng, 400, 6)
    cfg = RecommendConfig(half_life_days=2.0, max_session_items=4)
    full = add_events(Aggregates(), events, cfg)
    inc = Aggregates()
    for night in range(1, 7):
        cut = T0 + night * 86400 + 3 * 3600  # 03:00, while some sessions are open
        add_events(inc, [e for e in events if (cut - 86400 <= e.ts < cut) or (night == 1 and e.ts < cut - 86400)
                         or (night == 6 and e.ts >= cut)], cfg)
    assert inc.events == full.events == len(events)
    for table in ("items", "pairs", "bought", "trans"):
        a, b = getattr(inc, table), getattr(full, table)
        assert set(a) == set(b) and all(a[x] == pytest.approx(b[x], rel=1e-9) for x in b), table
    assert inc.sessions == pytest.approx(full.sessions, rel=1e-9)
    r_full, r_inc = Recommender(full, cfg), Recommender(inc, cfg)
    assert all(r_full.lists(s) == r_inc.lists(s) for s in {e.sku for e in events})


def _catalog():
    return {"A": Item("en-US", "tents", "A"), "A2": Item("en-US", "tents", "A"),  # A2: a variant of A
            "B": Item("en-US", "bags", "B"), "C": Item("en-US", "tents", "C"), "D": Item("en-US", "tents", "D"),
            "Z": Item("zh-CN", "tents", "Z"), "NEW": Item("en-US", "tents", "NEW")}


def test_the_blend_fills_from_behaviour_then_content_then_popularity_within_the_rules():
    sessions = [("A", "B"), ("A", "B"), ("A", "A2"), ("A", "Z"), ("A", "GONE"), ("C", "D"), ("C", "D"), ("C", "B")]
    evs = [_ev(f"s{i}", sku, "view", j) for i, skus in enumerate(sessions) for j, sku in enumerate(skus)]
    evs += [_ev("buy", "A", "purchase", 0), _ev("buy", "B", "purchase", 1)]
    rec = Recommender(add_events(Aggregates(), evs, CFG), CFG, _catalog(), content={"NEW": ["C", "A", "Z"], "A": ["D"]})
    a = rec.lists("A", k=4)
    # never itself, its variant A2, the zh-CN Z or GONE (not in the catalog)
    assert [s.sku for s in a["also_viewed"]] == ["B"] and a["also_viewed"][0].source == "behaviour"
    assert [s.sku for s in a["bought_together"]] == ["B"]
    assert [(s.sku, s.source) for s in a["recommended"]] == [("B", "behaviour"), ("D", "content"), ("C", "popular")]
    cold = rec.lists("NEW", k=3)["recommended"]  # nobody has seen it: content first, then popular in its category
    assert [(s.sku, s.source) for s in cold] == [("C", "content"), ("A", "content"), ("D", "popular")]
    cart = rec.for_session(["C", "B"], k=2)
    # the latest product counts most: B was bought with A
    assert cart[0].sku == "A" and cart[0].source == "behaviour" and "C" not in [s.sku for s in cart]


def test_make_events_is_reproducible_and_valid(tmp_path):
    cmd = [sys.executable, str(ROOT / "data" / "make_events.py"), "--sessions", "200", "--out"]
    subprocess.run([*cmd, str(tmp_path / "a.jsonl")], check=True, capture_output=True)
    subprocess.run([*cmd, str(tmp_path / "b.jsonl")], check=True, capture_output=True)
    a = (tmp_path / "a.jsonl").read_bytes()
    assert a == (tmp_path / "b.jsonl").read_bytes()
    rows = list(parse_jsonl(a, "a"))
    cat = {json.loads(x)["sku"] for x in SAMPLE.read_text().splitlines()}
    key = b"k"
    got = list(validate_events(rows, CFG, key, now=NOW))
    assert all(isinstance(e, Event) and e.sku in cat for e in got)
    kinds = {e.kind for e in got}
    assert kinds == {"view", "click", "cart", "purchase"} and isinstance(rows[0], RawRow)


@pytest.fixture(scope="module")
def synthetic_log(tmp_path_factory):
    out = tmp_path_factory.mktemp("ev") / "events.jsonl"
    subprocess.run([sys.executable, str(ROOT / "data" / "make_events.py"), "--sessions", "1500", "--out", str(out)],
                   check=True, capture_output=True)
    return out


def test_eval_recs_cli_beats_popularity_and_plain_cooccurrence(synthetic_log, env, shopgen_bin, tmp_path):
    p = subprocess.run([shopgen_bin, "eval-recs", "--events", str(synthetic_log), "--catalog", str(SAMPLE), "--json",
                        "--workdir", str(tmp_path / "w")], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    for m in ("blend", "popularity", "cooc", "content"):
        assert {f"recall@20.{m}", f"mrr@20.{m}", f"coverage.{m}"} <= r.keys()
    assert r["recall@20.blend"] >= 1.2 * r["recall@20.popularity"] and r["recall@20.blend"] >= r["recall@20.cooc"]
    assert r["cases"] > 100 and r["quarantined"] == 0
    assert json.loads((tmp_path / "w" / "report.json").read_text())["recall@20.blend"] == r["recall@20.blend"]


def test_eval_recs_errors_are_clear(env, shopgen_bin, tmp_path):
    (tmp_path / "bad.jsonl").write_text("not json\n")
    for args, msg in ((["--events", str(tmp_path / "nope.jsonl")], "not found"),
                      (["--events", str(tmp_path / "bad.jsonl")], "no valid events"),
                      (["--events", str(tmp_path / "bad.jsonl"), "--split-at", "soon"], "ISO-8601")):
        p = subprocess.run([shopgen_bin, "eval-recs", *args, "--workdir", str(tmp_path / "w")], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
        assert "Traceback" not in p.stderr


class _Latest:
    def __init__(self, t: float):
        self.t = t

    def see(self, e: Event) -> None:
        self.t = max(self.t, e.ts)

    def get(self) -> float:
        return self.t


@pytest.mark.slow
def test_ray_data_fold_equals_the_in_process_fold_night_by_night(tmp_path):
    """The nightly's Ray Data fold (one session per group, last night's rows decayed and summed) gives
    the in-process aggregates, open sessions included, holding one chunk of events at a time."""
    import ray

    from shopgen.recommend.distributed import (
        event_chunks,
        fold_night,
        load_aggregates,
        neighbour_table,
        neighbours_local,
        read_neighbours,
    )

    rng = random.Random(11)
    events = _log(rng, 300, 3)
    cfg = RecommendConfig(half_life_days=2.0, max_session_items=5)
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024)
    try:
        inc, previous, prev_ref = Aggregates(), None, 0.0
        cut = T0 + 86400 + 3 * 3600  # 03:00 on the second day
        events += [Event("straddle", None, "P1", "view", cut - 60), Event("straddle", None, "P2", "cart", cut + 60)]
        for night in (1, 2):
            tonight = [e for e in events if (e.ts < cut) == (night == 1)]
            add_events(inc, tonight, cfg)
            assert night == 2 or "straddle" in inc.open  # a session open across the cut
            latest = _Latest(prev_ref)
            chunks = event_chunks(tonight, 50, bad=lambda q: None, seen=latest.see)
            folded = fold_night(chunks, previous, prev_ref, cfg, tmp_path / f"n{night}", latest.get)
            previous, prev_ref = folded.folder, folded.ref
            assert folded.ref == inc.ref and folded.events == len(tonight)
        got = load_aggregates(previous, prev_ref, len(events))
        neighbour_table(previous, cfg, tmp_path / "nb-ray", candidates=5)
    finally:
        ray.shutdown()
    neighbours_local(previous, cfg, tmp_path / "nb-local", candidates=5)
    assert read_neighbours(tmp_path / "nb-ray") == read_neighbours(tmp_path / "nb-local") != {}
    for table in ("items", "pairs", "bought", "trans"):
        a, b = getattr(got, table), getattr(inc, table)
        assert set(a) == set(b) and all(a[x] == pytest.approx(b[x], rel=1e-9) for x in b), table
    assert got.sessions == pytest.approx(inc.sessions, rel=1e-9)
    assert set(got.open) == set(inc.open) and all(got.open[s] == inc.open[s] for s in inc.open)


def test_holdout_check_passes_lists_that_beat_popularity_and_fails_the_others():
    from shopgen.core.config import GateConfig
    from shopgen.recommend.holdout import HOLDOUT_MOD, check, in_sample, sample_sessions

    items = {f"P{i:02d}": Item("en-US", "c", f"P{i:02d}") for i in range(40)}
    # 300 sessions: P00, then P39 a minute later.
    events = [e for i in range(300) for e in (Event(f"{i:016x}", None, "P00", "view", T0 + i * 3600),
                                              Event(f"{i:016x}", None, "P39", "view", T0 + i * 3600 + 60))]
    gate = GateConfig(recs_min_cases=100)
    by_weight = {s: 100.0 - i for i, s in enumerate(items)}  # P39 the least popular: never in a top 20
    good = {"P00": {"similar": [("P39", 1.0)]}}
    r = check(events, good, by_weight, {}, items, CFG, gate)
    assert r["passed"] and r["cases"] == 300 and r["recall@20.blend"] == 1.0 and r["recall@20.popularity"] == 0.0
    # Lists that point elsewhere lose to popularity once P39 is the most popular product.
    bad = {"P00": {"similar": [(f"P{i:02d}", 1.0) for i in range(1, 30)]}}
    r = check(events, bad, {**by_weight, "P39": 1000.0}, {}, items, CFG, gate)
    assert not r["passed"] and r["ratio"] == 0.0 and r["recall@20.popularity"] == 1.0
    assert check(events, bad, by_weight, {}, items, CFG, GateConfig(recs_min_cases=301))["skipped"]
    # The sample: one session in HOLDOUT_MOD by its hashed id, up to the cap (which may cut the last one).
    hashed = [Event(hash_id(KEY, f"s{i}"), None, "P00", "view", T0 + i) for i in range(3200)]
    got = sample_sessions(hashed, 10_000)
    assert 0.5 < len(got) * HOLDOUT_MOD / len(hashed) < 1.5
    assert all(in_sample(e.session) for e in got) and len(sample_sessions(hashed, 7)) == 7


def _catalog_index():
    import pyarrow as pa

    rows = [json.loads(x) for x in SAMPLE.read_text().splitlines() if x.strip()]
    return pa.table({"sku": [r["sku"] for r in rows], "locale": [r.get("locale") for r in rows],
                     "attributes": [json.dumps(r.get("attributes") or {}) for r in rows],
                     "category": [r.get("category") for r in rows]})


def _lists(hashes: dict) -> dict:
    """The list part of each product's recs hash (the popularity bucket, `|p<n>`, left out)."""
    return {s: h.split("|p")[0] for s, h in hashes.items() if h.split("|p")[0]}


def test_recs_gate_holds_back_a_night_whose_lists_lose_and_publishes_the_next(tmp_path):
    """Night 2's check (last night's table on tonight's sessions) fails at an impossible ratio: its
    lists are not published, the documents keep night 1's, and `recommend --session` ranks from them;
    a night without new events keeps that verdict; the next night with events passes at ratio 1 (the
    blend beats popularity on the synthetic log) and publishes."""
    from shopgen.recommend import distributed as d
    from shopgen.recommend.stage import recommend_night
    from shopgen.state import StateStore

    ev, store, index = tmp_path / "events", StateStore(str(tmp_path / "state")), _catalog_index()
    ev.mkdir()
    engine = lambda nbytes: (d.fold_local, d.neighbours_local, True)  # noqa: E731
    hashes: dict = {}
    nights = []
    # Night 2b has no new events: it cannot judge, and the verdict of night 2 stands.
    for night, (end, seed, ratio) in enumerate((("2026-11-10", 1, 1.0), ("2026-11-20", 2, 100.0), (None, None, 1.0),
                                                 ("2026-11-30", 3, 1.0)), start=1):
        if end is not None:
            subprocess.run([sys.executable, str(ROOT / "data" / "make_events.py"), "--sessions", "1500", "--days",
                            "10", "--end", end, "--seed", str(seed), "--out", str(ev / f"n{night}.jsonl")],
                           check=True, capture_output=True)
        s = load_settings(home=str(tmp_path / "home"), recommend={"events": str(ev), "id_salt": "k"},
                          gate={"recs_min_ratio": ratio, "recs_min_cases": 50})
        recs = recommend_night(str(ev), s, store, tmp_path / f"w{night}", hashes, index, lambda q: None, engine,
                               f"run{night}")
        meta = json.loads(store.read("recs/meta.json"))
        nights.append((recs, meta))
        if night == 1:
            assert recs.figures["published"] and recs.figures["gate"]["skipped"] == "no earlier table"
        elif night == 2:
            g = recs.figures["gate"]
            assert not g["passed"] and g["cases"] >= 50 and not recs.figures["published"]
            assert recs.folder.name == "recs_published" and _lists(recs.hashes) == _lists(nights[0][0].hashes)
            # Popularity is counts, not a ranking: the gate holds back the lists, and only a product whose
            # popularity bucket moved is re-indexed (with the published lists).
            assert all(_lists({s: recs.hashes[s]}) == _lists({s: hashes.get(s, "")}) for s in recs.changed)
            assert meta["published"] == nights[0][1]["gen"] != meta["gen"]
            assert store.list(f"recs/{meta['published']}/neighbours") and not store.list(f"recs/{meta['published']}/sums")
        elif night == 3:
            assert recs.figures["gate"]["held"] and not recs.figures["published"] and recs.figures["events"] == 0
            assert meta["published"] == nights[0][1]["gen"] and _lists(recs.hashes) == _lists(nights[0][0].hashes)
            assert recs.hashes == nights[1][0].hashes and not recs.changed  # no new events: nothing moved
        else:
            g = recs.figures["gate"]
            assert g["passed"] and g["recall@20.blend"] >= g["recall@20.popularity"] > 0, g
            assert recs.figures["published"] and meta["published"] == meta["gen"] and recs.changed
            for old in (nights[0][1]["gen"], nights[1][1]["gen"], nights[2][1]["gen"]):  # nothing points at them
                assert not any(store.list(f"recs/{old}/{sub}") for sub in ("sums", "open", "neighbours"))
        hashes = dict(recs.hashes)
    # A new half-life refolds the whole log into a new generation; the old fold's are dropped.
    s = load_settings(home=str(tmp_path / "home"), recommend={"events": str(ev), "id_salt": "k", "half_life_days": 7})
    recs = recommend_night(str(ev), s, store, tmp_path / "w-refold", hashes, index, lambda q: None, engine, "refold")
    meta = json.loads(store.read("recs/meta.json"))
    assert recs.figures["refold"] and recs.figures["events"] == sum(n[0].figures["events"] for n in nights)
    assert not any(store.list(f"recs/{nights[-1][1]['gen']}/{sub}")
                                                           for sub in ("sums", "open", "neighbours"))
    assert store.list(f"recs/{meta['gen']}/neighbours") and meta["published"] == meta["gen"]


def test_popularity_is_a_coarse_bucket_and_a_new_bucket_reindexes_the_product():
    from shopgen.recommend.stage import popularity_buckets, with_popularity

    b = popularity_buckets(["A", "B", "C", "D"], {"A": 2.0, "B": 0.0, "C": 2.3, "D": 63.0, "X": 9.0})
    assert b == {"A": 2.0, "C": 2.0, "D": 6.0}  # not on sale (X) or no weight (B): none
    h = with_popularity({"A": "h1", "B": "h2"}, b)
    assert h == {"A": "h1|p2", "B": "h2", "C": "|p2", "D": "|p6"}
    assert with_popularity({"A": "h1"}, {"A": 3.0})["A"] != h["A"]  # the bucket moved: the product is re-indexed
