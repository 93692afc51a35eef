"""The nightly workflow (shopgen.nightly.recipe.night) with its three side-effecting edges faked:
no Ray, no vLLM, no search server. The steps between them are the real ones (validation, the plan
against the state, the mode, the state folding, related products in-process), so full,
incremental and resumed nights and a failed index step are checked end to end on a real state
folder. The same nights on the real stack: tests/test_nightly.py, tests/test_e2e.py."""

import hashlib
import json
from contextlib import nullcontext

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from conftest import MODEL_CACHE, SAMPLE

from shopgen.adapters.encoder import document_key, document_text
from shopgen.checks import CheckResult
from shopgen.core.config import load_settings
from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import content_hash
from shopgen.generate.engine import GENERATED_SCHEMA, Outcome, generated_row, product_row
from shopgen.index.stage import IndexRun
from shopgen.nightly import recipe
from shopgen.nightly.steps import EMBEDDED_SCHEMA, Adapters
from shopgen.state import StateStore, load_state


class Killed(RuntimeError):
    pass


class FakeShop(Adapters):
    """A generator that titles every product (or fails those in `fail`), a hash embedder, and an
    in-memory search server: alias -> index -> {sku: doc}."""

    def __init__(self):
        self.indices: dict[str, dict[str, dict]] = {}
        self.alias: str | None = None
        self.generated: list[list[str]] = []  # the SKUs sent to the generator, per night
        self.upserts: list[dict] = []
        self.fail: set[str] = set()
        self.die_after: int | None = None  # batches, then the driver "dies"
        self.refuse_index = False
        self.sessions = 0  # Ray sessions the nightly asked for

    def session(self, settings):
        self.sessions += 1
        return nullcontext()

    def live_index(self, settings, alias, echo):
        return self.alias

    def generate(self, products, model, settings, types, brands, todo, examples, plans, finish):
        self.generated.append([p.sku for p in products])
        for i, p in enumerate(products):
            if self.die_after is not None and i >= self.die_after:
                raise Killed("the driver died")
            ok = p.sku not in self.fail
            o = Outcome(outputs={"seo_title": CONTENT_TYPES["seo_title"].schema(seo_title=f"{p.title} for every day")}
                        if ok else {},
                        checks={"seo_title": [CheckResult("schema", ok, [] if ok else ["too short"])]}, attempts=1)
            row = {**product_row(p), "content_hash": content_hash(p), "plan": plans[p.sku]}
            yield pa.Table.from_pylist([{**generated_row(row, o, todo[p.sku], model.version), "gen_engine": "fake/1",
                                         "gen_engine_start_s": 0.1}], schema=GENERATED_SCHEMA)

    def embed(self, src, model, settings, out):
        t = pads.dataset(str(src), format="parquet").to_table()
        rows = t.to_pylist()
        vec = [[b / 255 for b in hashlib.sha256(r["sku"].encode()).digest()[:8]] for r in rows]
        keys = [document_key(document_text(r, settings.embedding), settings.embedding) for r in rows]
        t = (t.append_column("embedding", pa.array(vec, pa.list_(pa.float32())))
             .append_column("embedding_hash", pa.array(keys, pa.string()))
             .append_column("embedding_cached", pa.array([False] * len(rows)))
             .append_column("embedding_model", pa.array([model.version] * len(rows), pa.string())))
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(t.select(EMBEDDED_SCHEMA.names).cast(EMBEDDED_SCHEMA), out / "part-0.parquet")

    def index(self, n, folder, model, spec):
        if self.refuse_index:
            raise RuntimeError("index gate refused the swap: doc count dropped")
        docs = {r["sku"]: r for r in pads.dataset(str(folder), format="parquet").to_table().to_pylist()}
        if spec is None:
            name = f"{n.alias}-{n.run_id}"
            self.indices[name], self.alias = docs, name
            return IndexRun(name, len(docs), 0, frozenset())
        live = self.indices[self.alias]
        live.update(docs)
        for s in spec.delete or ():
            live.pop(s, None)
        self.upserts.append({"docs": sorted(docs), "deleted": list(spec.delete or ())})
        return IndexRun(self.alias, len(docs), len(spec.delete or ()), frozenset())


def _catalog(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def shop(tmp_path):
    rows = [json.loads(x) for x in SAMPLE.read_text().splitlines() if '"en-US"' in x][:5]
    settings = load_settings(home=tmp_path / "home", models={"cache_dir": MODEL_CACHE},
                             related={"k": 2, "local_max_rows": 1000})
    fake = FakeShop()

    def night(catalog_rows, **kw):
        return recipe.run(_catalog(tmp_path / "catalog.jsonl", catalog_rows), tmp_path / "work", settings,
                          content="seo_title", io=fake, **kw)

    return rows, fake, night, StateStore(str(tmp_path / "work" / "state" / settings.es.alias))


def test_a_full_then_an_incremental_night(shop):
    rows, fake, night, store = shop
    fake.fail = {rows[4]["sku"]}
    r1 = night(rows)
    assert r1["status"] == "succeeded" and r1["mode"] == "full" and r1["rebuild_reason"] == "no live index behind the alias"
    c1 = r1["counts"]
    assert (c1["valid"], c1["new"], c1["regenerated"], c1["indexed"], c1["generated"], c1["generation_failed"]) == (
        5, 5, 5, 5, 4, 1)
    live = fake.indices[fake.alias]
    assert set(live) == {r["sku"] for r in rows}  # a failed copy never costs a product its place
    assert json.loads(live[rows[4]["sku"]]["copy"])["seo_title"] == {"status": "none", "reasons": ["schema: too short"]}
    assert live[rows[0]["sku"]]["seo_title"] == f"{rows[0]['title']} for every day"
    assert r1["coverage"]["searchable"] == 5 and r1["coverage"]["types"]["seo_title"]["fresh"] == 4
    state = load_state(store)
    assert len(state) == 5 and state[rows[0]["sku"]]["fresh"] and not state[rows[4]["sku"]]["fresh"]
    assert "status" not in state.table.column_names and "output_uri" not in state.table.column_names

    # Night 2: one product changed, one left the catalog, the failed one is not due for a retry yet.
    fake.fail = set()
    changed = {**rows[1], "title": rows[1]["title"] + " II"}
    r2 = night([rows[0], changed, rows[2], rows[4]])
    assert r2["status"] == "succeeded" and r2["mode"] == "incremental" and r2["stages"]["plan"]["dirty"] == 1
    assert fake.generated[-1] == [changed["sku"]]
    c2 = r2["counts"]
    assert (c2["changed"], c2["unchanged"], c2["deleted"], c2["regenerated"], c2["embedded"]) == (1, 3, 1, 1, 1)
    assert fake.upserts == [{"docs": [changed["sku"]], "deleted": [rows[3]["sku"]]}]
    live = fake.indices[fake.alias]
    assert rows[3]["sku"] not in live and live[changed["sku"]]["seo_title"] == f"{changed['title']} for every day"
    assert load_state(store)[changed["sku"]]["content_hash"] != state[rows[1]["sku"]]["content_hash"]

    # Night 3: nothing changed: nothing generated, embedded or written.
    r3 = night([rows[0], changed, rows[2], rows[4]])
    assert r3["mode"] == "incremental" and r3["counts"]["regenerated"] == 0 and r3["counts"]["indexed"] == 0
    assert len(fake.generated) == 2 and r3["stages"]["index"]["skipped"] == "no document changed"
    assert fake.sessions == 2 and r3["startup"]["ray_init_s"] is None  # no Ray for a night with nothing to do


def test_a_night_that_dies_is_resumed_from_its_committed_batches(shop):
    rows, fake, night, store = shop
    fake.die_after = 2
    with pytest.raises(Killed):
        night(rows)
    assert len(store.list("journal")) == 2 and not store.exists("skus.parquet")
    fake.die_after = None
    r = night(rows)
    assert r["status"] == "succeeded" and r["counts"]["resumed"] == 2
    assert fake.generated[-1] == [x["sku"] for x in rows[2:]]  # only what no batch holds
    assert set(fake.indices[fake.alias]) == {x["sku"] for x in rows} and store.list("journal") == []
    assert all(load_state(store)[x["sku"]]["fresh"] for x in rows)


def test_a_failed_index_step_leaves_the_state_as_it_was(shop, tmp_path):
    rows, fake, night, store = shop
    night(rows)
    before = store.read_table("skus.parquet")
    fake.refuse_index = True
    with pytest.raises(RuntimeError, match="index gate refused"):
        night(rows[:3] + [{**rows[3], "title": "Changed"}], full=True)
    assert store.read_table("skus.parquet").equals(before)
    rep = json.loads((tmp_path / "work" / "report.json").read_text())
    assert rep["status"] == "failed" and "index gate refused" in rep["errors"][0] and rep.get("coverage") is None
    assert rep["counts"]["regenerated"] == 4 and "indexed" not in rep["counts"]  # each step's record, up to the failure


def _events(path, sessions, day):
    """One view per product of each session (a minute apart), and a purchase where the SKU ends in '!'."""
    lines = []
    for i, skus in enumerate(sessions):
        for j, s in enumerate(skus):
            kind = "purchase" if s.endswith("!") else "view"
            lines.append(json.dumps({"session_id": f"d{day}-s{i}", "user_id": f"shopper{i}@mail", "sku": s.rstrip("!"),
                                     "event": kind, "ts": f"2026-11-{day:02d}T10:{j:02d}:00Z"}))
    path.write_text("\n".join(lines) + "\n")


def test_behaviour_lists_are_indexed_and_only_changed_products_are_rewritten(tmp_path):
    rows = [json.loads(x) for x in SAMPLE.read_text().splitlines() if '"en-US"' in x][:5]
    a, b, c, d, e = (r["sku"] for r in rows)
    events = tmp_path / "events"
    events.mkdir()
    _events(events / "2026-11-20.jsonl", [(a, b)] * 3 + [(a + "!", b + "!")] + [(c, d)] * 2, 20)
    settings = load_settings(home=tmp_path / "home", models={"cache_dir": MODEL_CACHE},
                             related={"k": 2, "local_max_rows": 1000}, recommend={"events": str(events), "k": 3})
    fake = FakeShop()
    store = StateStore(str(tmp_path / "work" / "state" / settings.es.alias))
    night = lambda: recipe.run(_catalog(tmp_path / "catalog.jsonl", rows), tmp_path / "work", settings,  # noqa: E731
                               content="seo_title", io=fake)
    r1 = night()
    st = r1["stages"]["recommend"]
    assert (st["files_read"], st["events"], st["products_with_behaviour"]) == (1, 12, 4) and st["engine"] == "local"
    live = fake.indices[fake.alias]
    assert list(live[a]["also_viewed"]) == [b] and list(live[a]["bought_together"]) == [b]
    assert list(live[c]["also_viewed"]) == [d] and not live[c]["bought_together"]
    assert live[a]["recommended"][0] == b and live[a]["recommended_sources"][0] == "behaviour"
    # nobody has seen e: content-similar products (its related_skus), marked as such
    assert not live[e]["also_viewed"] and list(live[e]["recommended"]) == list(live[e]["related_skus"])
    assert set(live[e]["recommended_sources"]) == {"content"}
    assert load_state(store)[a]["recs_hash"] and load_state(store)[e]["recs_hash"] is None

    # Night 2: a new file; only products whose lists changed are rewritten, only the new file is read.
    _events(events / "2026-11-21.jsonl", [(c, e)] * 2, 21)
    r2 = night()
    st = r2["stages"]["recommend"]
    assert (st["files_read"], st["files_known"], st["events"], st["events_total"]) == (1, 1, 4, 16)
    assert r2["mode"] == "incremental" and set(fake.upserts[-1]["docs"]) == {c, e}
    assert len(fake.generated) == 1  # nothing regenerated: only the documents
    live = fake.indices[fake.alias]
    assert set(live[c]["also_viewed"]) == {d, e} and list(live[e]["also_viewed"]) == [c]
    assert live[e]["recommended_sources"][0] == "behaviour"

    # Night 3: no new file, nothing changes, no document is written and no Ray is started.
    gen2 = json.loads(store.read("recs/meta.json"))["gen"]
    r3 = night()
    assert r3["stages"]["recommend"]["files_read"] == 0 and r3["stages"]["recommend"]["changed"] == 0
    assert r3["stages"]["index"]["skipped"] == "no document changed" and r3["startup"]["ray_init_s"] is None
    gen = json.loads(store.read("recs/meta.json"))["gen"]
    assert gen.startswith(r3["run_id"]) and gen2 != gen and not store.list(f"recs/{gen2}/sums")  # the last generation only
    stored = [store.read(f"recs/{gen}/{sub}/{x}") for sub in ("sums", "open") for x in store.list(f"recs/{gen}/{sub}")]
    assert len(stored) == 2 and not any(b"shopper" in x or b"d21-s" in x for x in stored)  # ids only as keyed hashes
