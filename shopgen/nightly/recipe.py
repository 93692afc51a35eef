"""The nightly recipe: catalog -> plan against the state -> generate what changed (committed in
batches) -> embed what changed -> related -> index (full build + gate + swap, or upsert + delete)
-> fold the state -> report.

One run at a time per state prefix and alias (shopgen.nightly.state.Lock). A run that dies is resumed by
running it again: every committed batch is reused (shopgen.nightly.state.load_journal)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from indexing.stage import IncrementalSpec, run_index
from shopgen.adapters import models
from shopgen.adapters.raysupport import ray_session
from shopgen.adapters.storage import is_s3
from shopgen.catalog.load import iter_catalog
from shopgen.core.config import Settings
from shopgen.core.content import CONTENT_TYPES, candidates_for, few_shot_for, parse_content
from shopgen.core.records import Product, content_hash
from shopgen.core.run import Report, append_jsonl, append_quarantine, running, start_run
from shopgen.embed.encoder import document_key, document_text
from shopgen.embed.stage import embed_stage
from shopgen.generate.engine import GENERATED_FIELDS, GENERATED_SCHEMA, PRODUCT_SCHEMA, TYPE_FIELDS, product_row
from shopgen.generate.prompts import PROMPT_VERSION, prompt_version
from shopgen.generate.stage import (
    QA_COLUMNS,
    copy_failures,
    copy_of_row,
    coverage,
    few_shot,
    gate_spec,
    generator_dataset,
    qa_summary,
    serving_settings,
    unsupported_languages,
)
from shopgen.nightly import state as st8
from shopgen.nightly.commit import BatchCommitter, row_plan
from shopgen.related.stage import INDEX_COLUMNS, relate

# A product's row as the index sees it: its source fields, the accepted copy of each type, and the
# per-type status (JSON: type -> {status, reasons}).
ROW_SCHEMA = pa.schema([*PRODUCT_SCHEMA, *(f for f in GENERATED_SCHEMA if f.name in GENERATED_FIELDS),
                        ("copy", pa.string()), ("model_version", pa.string()), ("prompt_version", pa.string())])
EMBEDDED_SCHEMA = pa.schema(list(ROW_SCHEMA) + [
    ("embedding", pa.list_(pa.float32())), ("embedding_hash", pa.string()), ("embedding_cached", pa.bool_()),
    ("embedding_model", pa.string())])


def state_prefix(settings: Settings, workdir: Path, state: str | None, alias: str) -> str:
    root = state or settings.nightly.state or str((workdir / "state").absolute())
    return f"{root.rstrip('/')}/{alias}"


def doc_hash(row: dict[str, Any]) -> str:
    """Fingerprint of the document a row becomes (indexed_at excluded), to upsert only what changed."""
    from indexing.docs import es_doc

    doc = es_doc(row, indexed_at="-")
    doc.pop("indexed_at", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def generate_committed(products: list[Product], model: models.ModelRef, settings: Settings, types: tuple[str, ...],
                       store: st8.StateStore, run_id: str, pl: st8.Plan, keys: dict[str, dict[str, str]],
                       lock: st8.Lock, console: Console, brands: list[str],
                       examples: dict[str, Any]) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, Any]]:
    """Streams the products through the generator's actors. Each output batch is committed to the
    state (Parquet, then its manifest with each type's settled entry) by the actor that made it when
    the state is on an object store, else by the driver as it arrives (shopgen.nightly.commit).
    Returns sku -> type -> the settled entry of each generated type, and figures."""
    plans = {s: row_plan(keys[s], pl.previous.get(s) or {}, todo) for s, todo in pl.regenerate.items()}
    committer = BatchCommitter(store.prefix, settings.s3, run_id)
    on_actors = is_s3(store.prefix)
    ds = generator_dataset(products, model, settings, types, brands, todo=pl.regenerate, examples=examples,
                           plans=plans, finish=committer if on_actors else None, stage_started=time.time())
    settled: dict[str, dict[str, dict[str, Any]]] = {}
    fig: dict[str, Any] = {"batches": 0, "tokens": 0, "attempts": 0, "engine_start_s": None, "qa_rows": [],
                           "engines": {}, "committed_by": "actors" if on_actors else "driver"}
    t0 = time.perf_counter()
    with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as prog:
        task = prog.add_task("rows", total=len(products))
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0):
            if not batch.num_rows:
                continue
            lock.check()
            if not on_actors:
                batch = committer(batch.cast(GENERATED_SCHEMA))
            if fig["batches"] == 0:
                fig["first_batch_s"] = round(time.perf_counter() - t0, 3)
            _tally(fig, batch, settled)
            prog.advance(task, batch.num_rows)
    fig["seconds"] = time.perf_counter() - t0
    return settled, fig


def _tally(fig: dict[str, Any], batch: pa.Table, settled: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Folds one committed batch (COMMITTED_COLUMNS) into the stage's figures and settled entries."""
    starts = [x for x in batch["gen_engine_start_s"].to_pylist() if x is not None]
    if starts and fig["engine_start_s"] is None:
        fig["engine_start_s"] = starts[0]
    for e in set(batch["gen_engine"].to_pylist()):
        fig["engines"][e] = fig["engines"].get(e, 0) + 1
    recs = batch.select(QA_COLUMNS).to_pylist()
    settled.update(zip(batch["sku"].to_pylist(), map(json.loads, batch["types"].to_pylist())))
    fig["batches"] += 1
    fig["tokens"] += sum(r["gen_tokens"] for r in recs)
    fig["attempts"] += sum(r["gen_attempts"] for r in recs)
    fig["qa_rows"].extend(recs)


def public_copy(entries: dict[str, dict[str, Any]], types: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """What a document shows of its copy per type: status (fresh, kept, none) and why it failed."""
    return {t: {"status": (entries.get(t) or {}).get("status") or "none",
                "reasons": list((entries.get(t) or {}).get("reasons") or [])[:10]} for t in types}


def write_current(products: list[Product], entries_of: Callable[[list[Product]], dict[str, dict[str, dict[str, Any]]]],
                  types: tuple[str, ...], store: st8.StateStore, model_version: str, prompt: str, out: Path,
                  chunk: int = 2000) -> None:
    """Every valid product as an index row: its source fields from tonight's catalog, plus the
    accepted copy of each type read from the batch file that holds it (enrichment only adds).
    entries_of(part): sku -> type -> entry, asked a chunk at a time."""
    out.mkdir(parents=True, exist_ok=True)
    fields = {t: [n for n, _ in TYPE_FIELDS[t]] for t in types}
    pv = ",".join(prompt_version(CONTENT_TYPES[t], prompt) for t in types)
    for i in range(0, len(products), chunk):
        part = products[i:i + chunk]
        entries = entries_of(part)
        texts = st8.read_copy(store, entries, fields)
        rows = [{**product_row(p), **texts.get(p.sku, {}), "model_version": model_version, "prompt_version": pv,
                 "copy": json.dumps(public_copy(entries.get(p.sku, {}), types), ensure_ascii=False)} for p in part]
        pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), out / f"part-{i // chunk:05d}.parquet")


def _split_for_embedding(src: Path, to_embed: Path, reused: Path, previous: Mapping[str, dict[str, Any]],
                         emb_version: str, store: st8.StateStore, text_cfg: Any,
                         ) -> tuple[dict[str, str], dict[str, str]]:
    """Rows whose embedding text and model match the last run keep their stored vector (written to
    `reused` with it); the others go to `to_embed`. Returns sku -> embedding hash of every row, and
    sku -> the file of each reused vector."""
    hashes: dict[str, str] = {}
    keep: dict[str, str] = {}
    for d in (to_embed, reused):
        d.mkdir(parents=True, exist_ok=True)
    ds = pads.dataset(str(src), format="parquet")
    ph, pm, pu = (st8.column(previous, c) for c in ("embedding_hash", "embedding_model", "embedding_uri"))
    todo: list[pa.Table] = []
    kept: list[pa.Table] = []
    for b in ds.to_batches():
        t = pa.Table.from_batches([b])
        if not t.num_rows:
            continue
        hs = [document_key(document_text(r, text_cfg), text_cfg) for r in t.to_pylist()]
        mask = []
        for sku, h in zip(t["sku"].to_pylist(), hs):
            hashes[sku] = h
            ok = ph.get(sku) == h and pm.get(sku) == emb_version and pu.get(sku)
            mask.append(bool(ok))
            if ok:
                keep[sku] = pu[sku]
        m = pa.array(mask)
        todo.append(t.filter(pc.invert(m)))
        kept.append(t.filter(m))
    if todo and sum(x.num_rows for x in todo):
        pq.write_table(pa.concat_tables(todo), to_embed / "part-0.parquet")
    if keep:
        vec: dict[str, list[float]] = {}
        for t in st8.read_rows(store, keep, columns=["sku", "embedding"]):
            vec.update(zip(t["sku"].to_pylist(), t["embedding"].to_pylist()))
        k = pa.concat_tables(kept)
        skus = k["sku"].to_pylist()
        k = (k.append_column("embedding", pa.array([vec[s] for s in skus], pa.list_(pa.float32())))
             .append_column("embedding_hash", pa.array([hashes[s] for s in skus], pa.string()))
             .append_column("embedding_cached", pa.array([True] * len(skus)))
             .append_column("embedding_model", pa.array([emb_version] * len(skus), pa.string())))
        pq.write_table(k.cast(EMBEDDED_SCHEMA), reused / "part-reused.parquet")
    return hashes, keep


def rebuild_reason(full: bool, live: str | None, previous: Mapping[str, dict[str, Any]], was_indexed: set[str],
                   embedding_model: str, regenerated: int, total: int, fraction: float) -> str | None:
    """Why tonight needs a new index (gate + swap) instead of an in-place update; None when it does not."""
    if full:
        return "--full"
    if live is None:
        return "no live index behind the alias"
    if not previous:
        return "no previous state"
    if not was_indexed:
        return f"the live index {live} is not the one this state last wrote"
    if set(st8.column(previous, "embedding_model").values()) - {None, embedding_model}:
        return "a new embedding model"
    if regenerated > fraction * total:
        return f"{regenerated} of {total} products regenerated (> nightly.rebuild_fraction {fraction})"
    return None


def _live_index(settings: Settings, alias: str) -> str | None:
    from indexing.client import make_client
    from indexing.writer import alias_targets

    targets = alias_targets(make_client(settings), alias)
    return targets[0] if len(targets) == 1 else None


def run(catalog: str, workdir: str | Path, settings: Settings, *, state: str | None = None, alias: str | None = None,
        full: bool = False, limit: int | None = None, content: str | list[str] | None = None,
        force_unlock: bool = False, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    types = parse_content(content or settings.generation.content)
    alias = alias or settings.es.alias
    work = Path(workdir)
    store = st8.StateStore(state_prefix(settings, work, state, alias), settings.s3)
    if force_unlock:
        held = st8.force_unlock(store)
        console.print(f"--force-unlock: removed the lock of run {held.get('run_id')} on {held.get('host')} "
                      f"pid {held.get('pid')}" if held else "--force-unlock: there was no lock")
    # The lock comes before anything touches the workdir, which a running run may be using.
    lock = st8.Lock(store, {"catalog": str(catalog), "alias": alias}, settings.nightly.lock_ttl_s, console.print)
    lock.owner["run_id"] = run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    taken = lock.acquire()
    try:
        return _run_locked(catalog, work, settings, store, lock, run_id, alias, full, limit, types, console, taken)
    finally:
        lock.release()


def _run_locked(catalog: str, work: Path, settings: Settings, store: st8.StateStore, lock: st8.Lock, run_id: str,
                alias: str, full: bool, limit: int | None, types: tuple[str, ...], console: Console,
                taken: dict[str, Any] | None) -> dict[str, Any]:
    stages = work / "stages"
    shutil.rmtree(stages, ignore_errors=True)
    shutil.rmtree(work / "enriched", ignore_errors=True)
    rep, qpath, rpath = start_run("nightly", work, settings, content=list(types), catalog=str(catalog), alias=alias,
                               prompt_version=PROMPT_VERSION, limit=limit, state=store.prefix, full=full,
                               run_id=run_id)
    run_prefix = store.uri(f"runs/{run_id}")
    rep.data["outputs"].update(report_html=str((work / "report.html").resolve()), run_prefix=run_prefix,
                               state=store.prefix)
    if taken:
        rep.data["lock_taken_over"] = {k: taken.get(k) for k in ("run_id", "host", "pid", "heartbeat_at")}
    try:
        with running(rep, qpath, rpath, console):
            _body(Night(str(catalog), work, settings, store, lock, rep, qpath, alias, full, limit, types, console))
    finally:
        _publish(rep, work, store, run_prefix, qpath, console)
    return rep.data


def _publish(rep: Report, work: Path, store: st8.StateStore, run_prefix: str, qpath: Path, console: Console) -> None:
    """report.html next to report.json, and all three under the run's prefix in the state store."""
    from shopgen.report.render import render_html

    try:
        html = render_html(rep.data)
        (work / "report.html").write_text(html, encoding="utf-8")
        rel = run_prefix[len(store.prefix) + 1:]
        store.write(f"{rel}/report.json", rep.dumps().encode())
        store.write(f"{rel}/report.html", html.encode())
        store.write(f"{rel}/quarantine.jsonl", qpath.read_bytes())
        failures = work / "copy_failures.jsonl"
        if failures.exists():
            store.write(f"{rel}/copy_failures.jsonl", failures.read_bytes())
        console.print(f"run report: {run_prefix}/report.html")
    except Exception as e:  # the run's own outcome matters more than its copy
        console.print(f"[red]could not publish the report to {run_prefix}: {type(e).__name__}: {e}")


def type_versions(settings: Settings, types: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Per content type: its prompt version and the hash of every setting that shapes its output
    or verdict. A change to one type's prompt or limits regenerates that type only."""
    gen = settings.generation
    out = {}
    for t in types:
        ct = CONTENT_TYPES[t]
        over = settings.content.get(t)
        extra = {"type": ct.effective(over), "claims": settings.qa.claims, "prompt": gen.prompt, "top_p": gen.top_p,
                 "few_shot": few_shot_for(ct, gen.few_shot, over), "candidates": candidates_for(ct, over),
                 "constrain": [gen.constrain, gen.block_banned_words, gen.lexicon, sorted(gen.lexicon_words)]}
        out[t] = (prompt_version(ct, gen.prompt), st8.settings_hash([t], gen.model_dump(), settings.qa.banned_claims, extra))
    return out


@dataclass
class Night:
    """One nightly run's context: where it reads and writes, its lock and report, and the sinks."""

    catalog: str
    work: Path
    settings: Settings
    store: st8.StateStore
    lock: st8.Lock
    rep: Report
    qpath: Path
    alias: str
    full: bool
    limit: int | None
    types: tuple[str, ...]
    console: Console

    @property
    def counts(self) -> dict[str, Any]:
        return self.rep.data["counts"]

    @property
    def run_id(self) -> str:
        return self.rep.data["run_id"]


@dataclass
class Catalog:
    """What the driver keeps of tonight's catalog after one streaming pass (catalog.load.iter_catalog):
    per valid SKU its content hash, the columns related products need (sku, locale, attributes,
    category) as Arrow, the brands, and the SKUs of rows that failed validation. No Product."""

    hashes: dict[str, str]
    index: pa.Table
    brands: set[str]
    bad_skus: set[str]


CATALOG_INDEX = pa.schema([("sku", pa.string()), ("locale", pa.string()), ("attributes", pa.string()),
                           ("category", pa.string())])


@dataclass
class Tonight:
    """What the plan decided: the catalog, keys, the previous state; and, loaded by _load after
    _mode, the products tonight works on (and the few-shot candidate pools)."""

    catalog: Catalog
    gen_model: models.ModelRef
    emb_model: models.ModelRef
    versions: dict[str, tuple[str, str]]
    hashes: dict[str, str]
    keys: dict[str, dict[str, str]]
    previous: st8.StateRows
    invalid: list[str]
    plan: st8.Plan
    entries: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Set by _mode: why tonight builds a new index (None: an upsert of the live one), that live
    # index, the SKUs this state last wrote to it, and on an upsert the SKUs whose document may change
    # (None: every product). Everything else costs a hash comparison and a state row.
    reason: str | None = None
    live: str | None = None
    was_indexed: set[str] = field(default_factory=set)
    dirty: set[str] | None = None
    # Set by _load: tonight's products (regenerated or dirty; every one on a full build) and pools.
    products: list[Product] = field(default_factory=list)
    pools: dict[str, Any] = field(default_factory=dict)


@dataclass
class Embedded:
    """The embed stage's result: the enriched folder and, per SKU, its vector's hash and file."""

    enriched: Path
    hashes: dict[str, str]
    uris: dict[str, str]


@dataclass
class Indexed:
    """The index stage's result: why it rebuilt (None: an upsert), the index written, the doc hashes."""

    reason: str | None
    index: str | None
    doc_hashes: dict[str, str]


def _body(n: Night) -> None:
    """validate -> models -> plan -> (generate -> embed -> related) -> index -> state -> coverage."""
    t = _plan(n, _validate(n))
    _mode(n, t)
    _load(n, t)
    t_ray = time.perf_counter()
    with ray_session(n.settings):
        n.rep.data["startup"] = {"ray_init_s": round(time.perf_counter() - t_ray, 3)}
        _generate(n, t)
        emb = _embed(n, t)
    idx = _index(n, t, emb)
    searchable = _save_state(n, t, emb, idx)
    settled = t.plan.settled
    n.rep.data["coverage"] = coverage(len(t.hashes), searchable, {s: public_copy(t.entries.get(s, {}), n.types)
                                                                   for s in t.hashes if s not in settled},
                                      n.types, all_fresh=len(settled))
    n.rep.data["status"] = "succeeded"


def _validate(n: Night) -> Catalog:
    """One streaming pass over the catalog: quarantine the bad rows, keep a hash and the related
    columns of each valid product (never the products themselves)."""
    hashes: dict[str, str] = {}
    brands: set[str] = set()
    bad_skus: set[str] = set()
    parts: list[pa.Table] = []
    invalid = 0
    with n.rep.stage("validate", n.console) as st:
        for good, bad in iter_catalog(n.catalog, n.settings.catalog, n.settings.s3, n.limit):
            append_quarantine(n.qpath, bad)
            invalid += len(bad)
            bad_skus.update(q.sku for q in bad if q.sku)
            hashes.update((p.sku, content_hash(p)) for p in good)
            brands.update(p.brand for p in good if p.brand)
            parts.append(pa.Table.from_pylist([
                {"sku": p.sku, "locale": p.locale, "category": p.category,
                 "attributes": json.dumps(p.attributes, ensure_ascii=False, sort_keys=True)} for p in good],
                schema=CATALOG_INDEX))
        n.counts.update(valid=len(hashes), invalid=invalid)
        st.update(valid=len(hashes), invalid=invalid)
    if not hashes:
        raise RuntimeError("no valid products in the catalog; see quarantine.jsonl")
    return Catalog(hashes, pa.concat_tables(parts), brands, bad_skus)


def _plan(n: Night, cat: Catalog) -> Tonight:
    settings = n.settings
    with n.rep.stage("models", n.console):
        gen_model = models.resolve(models.generation_ref(settings), settings)
        emb_model = models.resolve(models.embedding_ref(settings), settings)
        # A fine-tuned version is served with the prompt it was trained on (every later stage reads n.settings).
        n.settings = settings = serving_settings(settings, gen_model)
        n.rep.data.update(model_version=gen_model.version, embedding_model=emb_model.version,
                          prompt=settings.generation.prompt)
    with n.rep.stage("plan", n.console) as st:
        versions = type_versions(settings, n.types)
        hashes = cat.hashes
        # Products in a language the generator does not write: never sent to the LLM, with keys of
        # their own (a config that lifts the limit changes them, so they are generated then).
        foreign = unsupported_languages(zip(cat.index["sku"].to_pylist(), cat.index["locale"].to_pylist()), settings)
        keys = {s: {t: st8.generation_key(h, pv, gen_model.version, sh, foreign.get(s))
                    for t, (pv, sh) in versions.items()} for s, h in hashes.items()}
        previous = st8.load_state(n.store)
        journal, jnames = st8.load_journal(n.store)
        # SKUs whose row failed validation tonight: not deleted, they keep their last state and doc.
        invalid = sorted({s for s in cat.bad_skus if s in previous and s not in keys})
        nb = settings.nightly
        policy = st8.CopyPolicy(attempts=nb.copy_retry_attempts, nights=nb.copy_retry_nights,
                                budget=nb.copy_retry_budget, always=nb.retry_quarantined)
        pl = st8.plan(keys, hashes, previous, journal, n.run_id, n.full, present=invalid, policy=policy,
                      unsupported=foreign)
        n.counts.update(pl.counts())
        st.update(pl.counts(), previous_skus=len(previous), journal_batches=len(jnames),
                  prompt_versions={t: v[0] for t, v in versions.items()}, retry_slots=pl.retry_slots,
                  generator_languages=list(settings.models.languages()))
    if pl.resumed:
        n.console.print(f"resuming: {len(pl.resumed)} products come from committed batches of an unfinished run")
    return Tonight(cat, gen_model, emb_model, versions, hashes, keys, previous, invalid, pl,
                   {s: dict(c) for s, c in pl.carried.items()})


def _load(n: Night, t: Tonight) -> None:
    """A second streaming pass: the products tonight works on (regenerated or dirty; all of them on
    a full build), and when examples are shown, a bounded pool of candidates from their groups."""
    from shopgen.generate.fewshot import CandidatePool, wanted_types
    from shopgen.generate.prompts import locale_key

    need = set(t.plan.regenerate) | (set(t.hashes) if t.dirty is None else t.dirty)
    pool = None
    wanted = wanted_types(t.plan.regenerate, few_shot(n.settings, n.types)) if t.plan.regenerate else []
    if wanted:
        idx = t.catalog.index.filter(pc.is_in(t.catalog.index["sku"], pa.array(sorted(t.plan.regenerate))))
        pool = CandidatePool(wanted, {(c, locale_key(lo)) for c, lo in zip(idx["category"].to_pylist(),
                                                                           idx["locale"].to_pylist()) if c})
    for good, _ in iter_catalog(n.catalog, n.settings.catalog, n.settings.s3, n.limit):
        for p in good:
            if p.sku in need:
                if content_hash(p) != t.hashes.get(p.sku):
                    raise RuntimeError(f"the catalog changed during the run (product {p.sku}); run again")
                t.products.append(p)
            if pool is not None:
                pool.add(p)
    t.pools = pool.pools() if pool is not None else {}


def _mode(n: Night, t: Tonight) -> None:
    """A new index (gate + swap) when rebuild_reason says so; else an upsert, for which only the
    products that are new, changed, regenerated or not yet in the live index are dirty."""
    previous, pl = t.previous, t.plan
    t.live = _live_index(n.settings, n.alias)
    t.was_indexed = {s for s, v in st8.column(previous, "indexed_version").items() if v and v == t.live}
    t.reason = rebuild_reason(n.full, t.live, previous, t.was_indexed, t.emb_model.version, len(pl.regenerate),
                              len(t.keys), n.settings.nightly.rebuild_fraction)
    if t.reason is None and previous.table["copy"].null_count == len(previous):
        t.reason = "the state predates per-type copy (a one-time full build)"
    n.rep.data["mode"] = "full" if t.reason else "incremental"
    if t.reason is None:
        ch, doc, emb = (st8.column(previous, c) for c in ("content_hash", "doc_hash", "embedding_uri"))
        t.dirty = {s for s, h in t.hashes.items()
                   if s in pl.regenerate or s not in t.was_indexed or ch.get(s) != h or not doc.get(s)
                   or not emb.get(s) or (s not in pl.settled and t.entries.get(s) != pl.previous.get(s))}
        n.rep.data["stages"]["plan"]["dirty"] = len(t.dirty)


def _generate(n: Night, t: Tonight) -> list[dict[str, Any]]:
    """Generates tonight's (product, type) pairs into t.entries; returns the QA rows."""
    from shopgen.generate.fewshot import shop_examples

    settings, pl = n.settings, t.plan
    qa_rows: list[dict[str, Any]] = []
    with n.rep.stage("generate", n.console) as st:
        if pl.regenerate:
            by_sku = {p.sku: p for p in t.products}
            todo = [by_sku[s] for s in pl.regenerate]
            brands = sorted(t.catalog.brands)
            examples = shop_examples(todo, t.pools, pl.regenerate, gate_spec(settings, brands),
                                     few_shot(settings, n.types))
            settled, fig = generate_committed(todo, t.gen_model, settings, n.types, n.store, n.run_id, pl, t.keys,
                                              n.lock, n.console, brands, examples)
            for s, es in settled.items():
                t.entries[s].update(es)
            qa_rows = fig.pop("qa_rows")
            append_jsonl(n.work / "copy_failures.jsonl", copy_failures(qa_rows))
            failed = sum(1 for r in qa_rows if not r["gen_ok"])
            st.update(rows=len(qa_rows), ok=len(qa_rows) - failed, failed=failed, tokens=fig["tokens"],
                      attempts=fig["attempts"], batches=fig["batches"], startup_s=fig["engine_start_s"],
                      first_batch_s=fig.get("first_batch_s"), with_examples=len(examples), engines=fig["engines"],
                      committed_by=fig["committed_by"])
            n.rep.data["startup"]["engine_start_s"] = fig["engine_start_s"]
        else:
            st.update(rows=0, skipped="nothing new or changed")
    if qa_rows:
        st["tokens_per_s"] = round(st["tokens"] / st["seconds"], 2) if st.get("seconds") else None
        n.rep.data["qa"] = qa_summary(qa_rows, settings.qa.near_duplicate_threshold)
    status = {ty: {k: 0 for k in st8.COPY_STATUSES} for ty in n.types}
    for es in t.entries.values():
        for ty in n.types:
            status[ty][(es.get(ty) or {}).get("status") or "none"] += 1
    for ty in n.types:  # settled products: every type fresh, as stored
        status[ty]["fresh"] += len(pl.settled)
    n.counts.update(generated=sum(1 for r in qa_rows if r["gen_ok"]),
                    generation_failed=sum(1 for r in qa_rows if not r["gen_ok"]),
                    **{f"copy_{k}": sum(v[k] for v in status.values()) for k in st8.COPY_STATUSES})
    return qa_rows


def _embed(n: Night, t: Tonight) -> Embedded:
    """Each dirty product's row (accepted copy included) -> reused or new vectors -> related, matched
    against every product's vector (the stored ones for the rest)."""
    stages, settings = n.work / "stages", n.settings
    current = stages / "current"
    rows = t.products if t.dirty is None else [p for p in t.products if p.sku in t.dirty]
    write_current(rows, lambda part: _entries_for(t, [p.sku for p in part]), n.types, n.store, t.gen_model.version,
                  settings.generation.prompt, current)
    to_embed, embedded = stages / "to_embed", stages / "embedded"
    ehash, emb_kept = _split_for_embedding(current, to_embed, embedded, {} if n.full else t.previous,
                                           t.emb_model.version, n.store, settings.embedding)
    with n.rep.stage("embed", n.console) as st:
        n_new = pads.dataset(str(to_embed), format="parquet").count_rows() if any(to_embed.glob("*.parquet")) else 0
        uris = dict(emb_kept)
        if n_new:
            tmp = stages / "embedded_new"
            embed_stage(to_embed, t.emb_model, settings, tmp, schema=ROW_SCHEMA)
            new = pads.dataset(str(tmp), format="parquet").to_table()
            new = new.select(EMBEDDED_SCHEMA.names).cast(EMBEDDED_SCHEMA)
            uri = n.store.write_table(f"outputs/emb/{n.run_id}.parquet", new.select(["sku", "embedding_hash", "embedding"]),
                                      row_group_size=4096)
            uris.update(dict.fromkeys(new["sku"].to_pylist(), uri))
            pq.write_table(new, embedded / "part-new.parquet")
        st.update(docs=len(t.hashes), computed=n_new, reused=len(t.hashes) - n_new)
        n.counts.update(embedded=n_new, embeddings_reused=len(t.hashes) - n_new)
    if st.get("seconds") and n_new:
        st["docs_per_s"] = round(n_new / st["seconds"], 2)
    table = _related_pool(n, t, embedded)
    return Embedded(relate(embedded, n.work / "enriched", table, settings, n.rep, n.console), ehash, uris)


def _related_pool(n: Night, t: Tonight, embedded: Path) -> pa.Table:
    """What related products are chosen from: tonight's embedded rows plus, on an upsert, every
    other product with its stored vector (one read per vector file)."""
    table = pads.dataset(str(embedded), format="parquet", schema=EMBEDDED_SCHEMA).to_table(columns=INDEX_COLUMNS)
    if t.dirty is None or not table.num_rows:  # a full build, or nothing to match tonight
        return table
    index = t.catalog.index
    pos = dict(zip(index["sku"].to_pylist(), range(index.num_rows)))
    uris = st8.column(t.previous, "embedding_uri")
    rest = {s: uris[s] for s in t.hashes if s not in t.dirty}
    parts = [table]
    for tb in st8.read_rows(n.store, rest, columns=["sku", "embedding"]):
        meta = index.take(pa.array([pos[s] for s in tb["sku"].to_pylist()], pa.int64()))
        parts.append(pa.table({"sku": tb["sku"], "locale": meta["locale"], "attributes": meta["attributes"],
                               "embedding": tb["embedding"].cast(pa.list_(pa.float32()))}))
    return pa.concat_tables([x.select(INDEX_COLUMNS).cast(parts[0].schema) for x in parts])


def _index(n: Night, t: Tonight, emb: Embedded) -> Indexed:
    """A new index (gate + swap), or an upsert of only the dirty docs whose doc_hash changed plus the
    deletion of SKUs that left the catalog (named from the state: the live index is not scanned)."""
    settings, previous = n.settings, t.previous
    enriched_ds = pads.dataset(str(emb.enriched), format="parquet")
    dhash = {r["sku"]: doc_hash(r) for b in enriched_ds.to_batches() for r in b.to_pylist()}
    n.lock.check()
    if t.reason:
        n.console.print(f"full index build: {t.reason}")
        n.rep.data["rebuild_reason"] = t.reason
        run_index(n.rep, emb.enriched, settings, n.alias, n.console, n.qpath, t.emb_model, n.catalog)
        n.counts["deleted"] = len(t.plan.deleted)
        return Indexed(t.reason, n.rep.data["stages"]["index"]["index"], dhash)
    upsert = n.work / "stages" / "upsert"
    upsert.mkdir(parents=True)
    docs = st8.column(previous, "doc_hash")
    changed = [s for s, h in dhash.items() if s not in t.was_indexed or docs.get(s) != h]
    removed = sorted(t.was_indexed - set(t.hashes) - set(t.invalid))
    if changed:
        pq.write_table(enriched_ds.to_table(filter=pc.field("sku").isin(changed)), upsert / "part-0.parquet")
    if changed or removed:
        spec = IncrementalSpec(run_epoch=int(time.time() * 1000), version_from="run", delete_missing=True,
                               keep=tuple(t.invalid), delete=tuple(removed))
        run_index(n.rep, upsert, settings, n.alias, n.console, n.qpath, t.emb_model, n.catalog, spec)
    else:
        with n.rep.stage("index", n.console) as st:
            st.update(index=t.live, docs=0, skipped="no document changed")
        n.counts["indexed"] = 0
    n.counts["deleted"] = len(t.plan.deleted)
    return Indexed(None, t.live, dhash)


def _entries_for(t: Tonight, part: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """sku -> type -> entry for these SKUs: tonight's, or as stored for settled ones."""
    settled = [s for s in part if s in t.plan.settled]
    stored = t.previous.take(settled) if settled else None
    got = dict(zip(stored["sku"].to_pylist(), map(json.loads, stored["copy"].to_pylist()))) if stored is not None else {}
    return {s: got[s] if s in got else t.entries.get(s, {}) for s in part}


def _save_state(n: Night, t: Tonight, emb: Embedded, idx: Indexed) -> int:
    """Folds tonight into the state: one row per valid product, plus invalid ones carried over.
    Settled products whose document did not change keep their stored row as it is (in Arrow).
    Returns how many valid products are searchable."""
    errors = {q["sku"] for q in map(json.loads, n.qpath.read_text().splitlines()) if q.get("stage") == "index"}
    n.lock.check()
    with n.rep.stage("state", n.console) as st:
        # Invalid tonight: the last good state carries over (in the index only if it was kept there).
        new_rows = [{**t.previous[s], "doc_hash": None, "indexed_version": None} if idx.reason else t.previous[s]
                    for s in t.invalid]
        as_stored = set() if t.dirty is None else t.plan.settled - t.dirty
        pv = ",".join(v[0] for v in t.versions.values())
        searchable = len(as_stored)  # not dirty: in the live index as last night
        todo = [s for s in t.hashes if s not in as_stored]
        for i in range(0, len(todo), 2000):
            part = todo[i:i + 2000]
            searchable += _fold(n, t, emb, idx, errors, pv, part, _entries_for(t, part), new_rows)
        _, names = st8.load_journal(n.store)
        st.update(st8.save_state(n.store, new_rows, names, carry=t.previous.take(as_stored) if as_stored else None))
    return searchable


def _fold(n: Night, t: Tonight, emb: Embedded, idx: Indexed, errors: set[str], pv: str, part: list[str],
          entries: dict[str, dict[str, dict[str, Any]]], new_rows: list[dict[str, Any]]) -> int:
    """Appends the state rows of these SKUs; returns how many of them are searchable."""
    searchable = 0
    for sku in part:
        es = entries[sku]
        fresh = st8.all_fresh(es, t.keys[sku])
        if t.dirty is not None and sku not in t.dirty:  # its document and vector are as last night
            new_rows.append({**t.previous[sku], "key": st8.combined_key(t.keys[sku]),
                             "copy": json.dumps(es, ensure_ascii=False), "fresh": fresh})
            searchable += 1
            continue
        reasons = [f"{ty}/{r}" for ty in n.types for r in (es.get(ty) or {}).get("reasons") or []]
        indexed = sku not in errors
        searchable += int(indexed and idx.index is not None)
        new_rows.append({
            "sku": sku, "key": st8.combined_key(t.keys[sku]), "content_hash": t.hashes[sku], "prompt_version": pv,
            "model_version": t.gen_model.version, "status": "ok", "reason": "; ".join(reasons)[:2000] or None,
            "output_uri": None, "run_id": n.run_id, "copy": json.dumps(es, ensure_ascii=False), "fresh": fresh,
            "embedding_hash": emb.hashes.get(sku), "embedding_uri": emb.uris.get(sku),
            "embedding_model": t.emb_model.version,
            "doc_hash": idx.doc_hashes.get(sku) if indexed else None,
            "indexed_version": idx.index if indexed else None,
        })
    return searchable
