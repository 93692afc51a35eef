"""The nightly's steps. Each takes the records of the steps before it and returns its own frozen
record (Catalog -> Planned -> Mode -> Loaded -> Generated -> Embedded -> Indexed -> Saved); the
workflow (shopgen.nightly.recipe.night) chains them. What touches Ray, vLLM or Elasticsearch goes
through `Adapters`, so the chain runs under test with fakes of those three."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from rich.console import Console

from shopgen import state as st8
from shopgen.adapters import models
from shopgen.adapters.encoder import document_key, document_text
from shopgen.adapters.raysupport import ray_session
from shopgen.adapters.storage import is_s3
from shopgen.answers.night import NO_ANSWERS, Answered, add_qa, answers_night, save_answers
from shopgen.catalog.load import iter_catalog
from shopgen.core.config import Settings
from shopgen.core.content import CONTENT_TYPES, candidates_for, few_shot_for
from shopgen.core.copy import COPY_STATUSES, Entries, decode, encode, entry, public_json, typed_reasons
from shopgen.core.records import Product, content_hash
from shopgen.core.report import QASummary
from shopgen.core.run import Report, StageProgress, append_jsonl, append_quarantine
from shopgen.embed.stage import embed_stage
from shopgen.generate.engine import GENERATED_FIELDS, GENERATED_SCHEMA, PRODUCT_SCHEMA, TYPE_FIELDS, product_row
from shopgen.generate.prompts import prompt_version
from shopgen.generate.stage import (
    QA_COLUMNS,
    copy_failures,
    few_shot,
    gate_spec,
    generator_dataset,
    qa_summary,
    serving_settings,
    unsupported_languages,
)
from shopgen.index.stage import IncrementalSpec, IndexRun, run_index
from shopgen.nightly.commit import BatchCommitter, row_plan
from shopgen.recommend.stage import NO_RECS, Recs, add_lists, recommend_night
from shopgen.related.stage import META_COLUMNS, Pool, make_pool, relate
from shopgen.review.night import NO_REVIEW, Review, apply_to_plan, load_review, note_regenerated, overlay

# A product's row as the index sees it: its source fields, the accepted copy of each type, and the
# per-type status (JSON: type -> {status, reasons}).
ROW_SCHEMA = pa.schema([*PRODUCT_SCHEMA, *(f for f in GENERATED_SCHEMA if f.name in GENERATED_FIELDS),
                        ("copy", pa.string()), ("model_version", pa.string()), ("prompt_version", pa.string())])
EMBEDDED_SCHEMA = pa.schema(list(ROW_SCHEMA) + [
    ("embedding", pa.list_(pa.float32())), ("embedding_hash", pa.string()), ("embedding_cached", pa.bool_()),
    ("embedding_model", pa.string())])
CATALOG_INDEX = pa.schema([("sku", pa.string()), ("locale", pa.string()), ("attributes", pa.string()),
                           ("category", pa.string())])
CHUNK = 2000  # products per slice when rows are written or folded, so no step holds a Python row per SKU


# ---- the run's context and the step records ------------------------------------------------------

@dataclass(frozen=True)
class Night:
    """One nightly run's context: where it reads and writes, its lock, and its report (a sink the
    steps write their stage figures to; nothing is read back from it)."""

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
    run_id: str


@dataclass(frozen=True)
class Catalog:
    """What the driver keeps of tonight's catalog after one streaming pass: per valid SKU its content
    hash, the columns related products need as Arrow, the brands, and the SKUs that failed validation."""

    hashes: dict[str, str]
    index: pa.Table
    brands: frozenset[str]
    bad_skus: frozenset[str]
    invalid: int


@dataclass(frozen=True)
class Planned:
    """The plan: the models and the settings they are served with, each product's keys, the last
    finished run's state and the per-type plan against it."""

    catalog: Catalog
    settings: Settings
    gen_model: models.ModelRef
    emb_model: models.ModelRef
    versions: dict[str, tuple[str, str]]
    keys: dict[str, dict[str, str]]
    previous: st8.StateRows
    invalid: tuple[str, ...]  # in the state, failed validation tonight: kept, not deleted
    plan: st8.Plan
    # What people decided on the review page (shopgen.review.night), and the types they rejected
    # that are generated again tonight.
    review: Review = NO_REVIEW
    rejected: dict[str, list[str]] = field(default_factory=dict)

    @property
    def hashes(self) -> dict[str, str]:
        return self.catalog.hashes


@dataclass(frozen=True)
class Mode:
    """A new index (reason says why) or an upsert of the live one, and the products whose document
    may change tonight (None: every product)."""

    reason: str | None
    live: str | None
    was_indexed: frozenset[str]
    dirty: frozenset[str] | None


@dataclass(frozen=True)
class Loaded:
    """Tonight's products (regenerated or dirty; all of them on a full build), and the few-shot pools."""

    products: tuple[Product, ...]
    pools: dict[str, Any]


@dataclass(frozen=True)
class Generated:
    """Every product's entries that are not settled (carried plus tonight's), the QA rows and figures."""

    entries: dict[str, Entries]
    qa_rows: list[dict[str, Any]]
    status: dict[str, dict[str, int]]  # type -> copy status -> products
    generated: int
    failed: int
    engine_start_s: float | None = None


@dataclass(frozen=True)
class Embedded:
    enriched: Path
    hashes: dict[str, str]  # sku -> embedding hash
    uris: dict[str, str]  # sku -> the file holding its vector
    computed: int
    reused: int
    recs: dict[str, str] = field(default_factory=dict)  # sku -> the hash of its behaviour lists


@dataclass(frozen=True)
class Indexed:
    reason: str | None  # why it rebuilt (None: an upsert)
    index: str | None
    doc_hashes: dict[str, str]
    failed: frozenset[str]  # SKUs whose document the index refused
    docs: int
    deleted: int  # documents deleted from the live index (an upsert)


@dataclass(frozen=True)
class Saved:
    searchable: int
    rows: int


# ---- the side-effecting edges -----------------------------------------------------------------

@dataclass
class Adapters:
    """Ray, the vLLM generator, the embedder and Elasticsearch, as the steps use them. Tests pass a
    subclass with fakes (tests/test_nightly_steps.py)."""

    def session(self, settings: Settings) -> AbstractContextManager[None]:
        return ray_session(settings)

    def live_index(self, settings: Settings, alias: str, echo: Callable[[str], None]) -> str | None:
        """The index behind the alias (None: none, or several); starting the embedded server says so."""
        from indexing.client import make_client
        from indexing.writer import alias_targets

        targets = alias_targets(make_client(settings, echo=echo), alias)
        return targets[0] if len(targets) == 1 else None

    def generate(self, products: list[Product], model: models.ModelRef, settings: Settings, types: tuple[str, ...],
                 brands: list[str], todo: dict[str, list[str]], examples: dict[str, Any], plans: dict[str, str],
                 finish: BatchCommitter | None) -> Iterator[pa.Table]:
        """GENERATED_SCHEMA batches with `plan`; committed by `finish` on the actors when given."""
        ds = generator_dataset(products, model, settings, types, brands, todo=todo, examples=examples, plans=plans,
                               finish=finish, stage_started=time.time())
        yield from ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0)

    def embed(self, src: Path, model: models.ModelRef, settings: Settings, out: Path) -> None:
        embed_stage(src, model, settings, out, schema=ROW_SCHEMA)

    def index(self, n: Night, folder: Path, model: models.ModelRef, spec: IncrementalSpec | None) -> IndexRun:
        return run_index(n.rep, folder, n.settings, n.alias, n.console, n.qpath, model, n.catalog, spec)

    def answer(self, rows: list[dict[str, Any]], settings: Settings, ctx: Any) -> list[Any]:
        """Questions answered on Ray Data (shopgen.answers.stage.answer_all), in the night's Ray session."""
        from shopgen.answers.stage import answer_all

        return answer_all(rows, settings, ctx)

    def recs_engine(self, local: bool, start_ray: Callable[[], None]) -> tuple[Any, Any]:
        """The behaviour fold and neighbour table: in this process for a small log, else on Ray Data."""
        from shopgen.recommend import distributed as d

        if local:
            return d.fold_local, d.neighbours_local
        start_ray()
        return d.fold_night, d.neighbour_table


# ---- validate, plan, mode, load ------------------------------------------------------------------

def validate(n: Night) -> Catalog:
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
        st.update(valid=len(hashes), invalid=invalid)
    if not hashes:
        raise RuntimeError("no valid products in the catalog; see quarantine.jsonl")
    return Catalog(hashes, pa.concat_tables(parts), frozenset(brands), frozenset(bad_skus), invalid)


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


def plan(n: Night, cat: Catalog) -> Planned:
    """The models (a fine-tuned version is served with the prompt it was trained on), each product's
    generation keys, and the per-type plan against the last finished run and any unfinished one."""
    with n.rep.stage("models", n.console):
        gen_model = models.resolve(models.generation_ref(n.settings), n.settings)
        emb_model = models.resolve(models.embedding_ref(n.settings), n.settings)
        settings = serving_settings(n.settings, gen_model)
    with n.rep.stage("plan", n.console) as st:
        versions = type_versions(settings, n.types)
        # Products in a language the generator does not write: never sent to the LLM, with keys of
        # their own (a config that lifts the limit changes them, so they are generated then).
        foreign = unsupported_languages(zip(cat.index["sku"].to_pylist(), cat.index["locale"].to_pylist()), settings)
        keys = {s: {t: st8.generation_key(h, pv, gen_model.version, sh, foreign.get(s))
                    for t, (pv, sh) in versions.items()} for s, h in cat.hashes.items()}
        previous = st8.load_state(n.store)
        journal, jnames = st8.load_journal(n.store)
        invalid = tuple(sorted({s for s in cat.bad_skus if s in previous and s not in keys}))
        nb = settings.nightly
        policy = st8.CopyPolicy(attempts=nb.copy_retry_attempts, nights=nb.copy_retry_nights,
                                budget=nb.copy_retry_budget, always=nb.retry_quarantined)
        pl = st8.plan(keys, cat.hashes, previous, journal, n.run_id, n.full, present=invalid, policy=policy,
                      unsupported=foreign)
        review = load_review(n.store, settings.review.store)
        rejected = apply_to_plan(pl, review, cat.hashes, previous, n.types)
        st.update(pl.counts(), previous_skus=len(previous), journal_batches=len(jnames),
                  prompt_versions={t: v[0] for t, v in versions.items()}, retry_slots=pl.retry_slots,
                  generator_languages=list(settings.models.languages()), review_rejected=len(rejected),
                  review_touched=len(review.touched))
    if pl.resumed:
        n.console.print(f"resuming: {len(pl.resumed)} products come from committed batches of an unfinished run")
    return Planned(cat, settings, gen_model, emb_model, versions, keys, previous, invalid, pl, review, rejected)


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


def recommend(n: Night, p: Planned, io: Adapters, start_ray: Callable[[], None]) -> Recs:
    """Folds the behaviour log's new files into the stored aggregates and lists each product's
    neighbours; the products whose lists changed become dirty (shopgen/recommend/stage.py)."""
    uri = p.settings.recommend.events
    if not uri:
        return NO_RECS
    cfg = p.settings.recommend

    def engine(new_bytes: int) -> tuple[Any, Any, bool]:
        local = new_bytes <= cfg.local_max_mb * 1024 * 1024
        return (*io.recs_engine(local, start_ray), local)

    with n.rep.stage("recommend", n.console) as st:
        recs = recommend_night(uri, p.settings, n.store, n.work, st8.column(p.previous, "recs_hash"), p.catalog.index,
                               lambda q: append_quarantine(n.qpath, [q]), engine, n.run_id)
        st.update(recs.figures)
    g = recs.figures.get("gate") or {}
    if not g.get("passed", True):
        n.console.print(f"recs gate: last night's lists reached {g.get('recall@20.blend')} Recall@20 on tonight's "
                        f"sessions, popularity {g.get('recall@20.popularity')} (gate.recs_min_ratio "
                        f"{g.get('min_ratio')}): the published lists stay")
    return recs


def answer(n: Night, p: Planned, io: Adapters, start_ray: Callable[[], None]) -> Answered:
    """Answers the questions of answers.questions that are new or whose product's facts changed
    (shopgen/answers/night.py); the products whose qa changed become dirty."""
    if not p.settings.answers.questions:
        return NO_ANSWERS

    def run(rows: list[dict[str, Any]], ctx: Any) -> list[Any]:
        start_ray()
        return io.answer(rows, p.settings, ctx)

    with n.rep.stage("answer", n.console) as st:
        out = answers_night(p.settings, n.catalog, n.store, p.hashes, lambda bad: append_quarantine(n.qpath, bad), run)
        st.update(out.figures)
    return out


def mode(n: Night, p: Planned, live: str | None, recs: Recs = NO_RECS, answered: Answered = NO_ANSWERS) -> Mode:
    """A new index (gate + swap) when rebuild_reason says so; else an upsert, for which only the
    products that are new, changed, regenerated or not yet in the live index, or whose behaviour
    lists changed, are dirty."""
    previous, pl = p.previous, p.plan
    was_indexed = frozenset(s for s, v in st8.column(previous, "indexed_version").items() if v and v == live)
    reason = rebuild_reason(n.full, live, previous, was_indexed, p.emb_model.version, len(pl.regenerate),
                            len(p.keys), p.settings.nightly.rebuild_fraction)
    if reason is None and previous.table["copy"].null_count == len(previous):
        reason = "the state predates per-type copy (a one-time full build)"
    if reason is not None:
        return Mode(reason, live, was_indexed, None)
    ch, doc, emb = (st8.column(previous, c) for c in ("content_hash", "doc_hash", "embedding_uri"))
    dirty = frozenset(s for s, h in p.hashes.items()
                      if s in pl.regenerate or s not in was_indexed or ch.get(s) != h or not doc.get(s)
                      or not emb.get(s) or (s not in pl.settled and pl.carried.get(s) != pl.previous.get(s)))
    return Mode(None, live, was_indexed,
                dirty | ((recs.changed | answered.changed | p.review.touched) & p.hashes.keys()))


def load(n: Night, p: Planned, m: Mode) -> Loaded:
    """A second streaming pass: the products tonight works on (regenerated or dirty; all of them on
    a full build), and when examples are shown, a bounded pool of candidates from their groups.
    A product's hash must match the first pass's; without a pool, no other row is validated again."""
    from shopgen.generate.fewshot import CandidatePool, wanted_types
    from shopgen.generate.prompts import locale_key

    need = set(p.plan.regenerate) | (set(p.hashes) if m.dirty is None else m.dirty)
    pool = None
    wanted = wanted_types(p.plan.regenerate, few_shot(p.settings, n.types)) if p.plan.regenerate else []
    if wanted:
        idx = p.catalog.index.filter(pc.is_in(p.catalog.index["sku"], pa.array(sorted(p.plan.regenerate))))
        pool = CandidatePool(wanted, {(c, locale_key(lo)) for c, lo in zip(idx["category"].to_pylist(),
                                                                           idx["locale"].to_pylist()) if c})
    products: list[Product] = []
    # Without a few-shot pool only tonight's products are parsed and validated again.
    only = need if pool is None else None
    for good, _ in iter_catalog(n.catalog, n.settings.catalog, n.settings.s3, n.limit, only=only):
        for prod in good:
            if prod.sku in need:
                if content_hash(prod) != p.hashes.get(prod.sku):
                    raise RuntimeError(f"the catalog changed during the run (product {prod.sku}); run again")
                products.append(prod)
            if pool is not None:
                pool.add(prod)
    return Loaded(tuple(products), pool.pools() if pool is not None else {})


# ---- generate ------------------------------------------------------------------------------------

def generate(n: Night, p: Planned, loaded: Loaded, io: Adapters) -> Generated:
    """Tonight's (product, type) pairs through the generator, each output batch committed to the
    state as it arrives; every other unsettled product keeps its carried entries."""
    from shopgen.generate.fewshot import shop_examples

    settings, pl = p.settings, p.plan
    entries: dict[str, Entries] = {s: dict(c) for s, c in pl.carried.items()}
    qa_rows: list[dict[str, Any]] = []
    engine_start_s = None
    with n.rep.stage("generate", n.console) as st:
        if pl.regenerate:
            by_sku = {x.sku: x for x in loaded.products}
            todo = [by_sku[s] for s in pl.regenerate]
            brands = sorted(p.catalog.brands)
            examples = shop_examples(todo, loaded.pools, pl.regenerate, gate_spec(settings, brands),
                                     few_shot(settings, n.types))
            settled, fig = _generate_committed(n, p, todo, brands, examples, io)
            for s, es in settled.items():
                entries.setdefault(s, {}).update(es)
            qa_rows, engine_start_s = fig.pop("qa_rows"), fig["engine_start_s"]
            append_jsonl(n.work / "copy_failures.jsonl", copy_failures(qa_rows))
            failed = sum(1 for r in qa_rows if not r["gen_ok"])
            st.update(rows=len(qa_rows), ok=len(qa_rows) - failed, failed=failed, tokens=fig["tokens"],
                      attempts=fig["attempts"], batches=fig["batches"], startup_s=fig["engine_start_s"],
                      first_batch_s=fig.get("first_batch_s"), with_examples=len(examples), engines=fig["engines"],
                      committed_by=fig["committed_by"])
        else:
            st.update(rows=0, skipped="nothing new or changed")
    if qa_rows:
        st["tokens_per_s"] = round(st["tokens"] / st["seconds"], 2) if st.get("seconds") else None
        _warn_restarts(n, st.get("engines") or {}, settings.generation.concurrency)
    status = {ty: {k: 0 for k in COPY_STATUSES} for ty in n.types}
    for es in entries.values():
        for ty in n.types:
            status[ty][entry(es, ty).status] += 1
    for ty in n.types:  # settled products: every type fresh, as stored
        status[ty]["fresh"] += len(pl.settled)
    ok = sum(1 for r in qa_rows if r["gen_ok"])
    return Generated(entries, qa_rows, status, ok, len(qa_rows) - ok, engine_start_s)


def _warn_restarts(n: Night, engines: dict[str, int], concurrency: int | tuple[int, int] | list[int]) -> None:
    """More engines than the pool holds means actors died and Ray restarted them: say so."""
    pool = concurrency if isinstance(concurrency, int) else max(concurrency)
    if len(engines) > pool:
        n.console.print(f"[yellow]warning:[/] {len(engines)} generator engines for a pool of {pool}: "
                        f"{len(engines) - pool} engine restart(s); see logs/ray/ and stages.generate.engines")


def _generate_committed(n: Night, p: Planned, products: list[Product], brands: list[str],
                        examples: dict[str, Any], io: Adapters) -> tuple[dict[str, Entries], dict[str, Any]]:
    """Streams the products through the generator. Each output batch is committed to the state
    (Parquet, then its manifest with each type's settled entry) by the actor that made it when the
    state is on an object store, else by the driver as it arrives (shopgen.nightly.commit).
    Returns sku -> type -> the settled entry of each generated type, and figures."""
    pl = p.plan
    plans = {s: row_plan(p.keys[s], pl.previous.get(s) or {}, todo) for s, todo in pl.regenerate.items()}
    committer = BatchCommitter(n.store.prefix, n.settings.s3, n.run_id)
    on_actors = is_s3(n.store.prefix)
    settled: dict[str, Entries] = {}
    fig: dict[str, Any] = {"batches": 0, "tokens": 0, "attempts": 0, "engine_start_s": None, "qa_rows": [],
                           "engines": {}, "committed_by": "actors" if on_actors else "driver"}
    t0 = time.perf_counter()
    with StageProgress(n.console, "generate", len(products)) as prog:
        for batch in io.generate(products, p.gen_model, p.settings, n.types, brands, pl.regenerate, examples, plans,
                                 committer if on_actors else None):
            if not batch.num_rows:
                continue
            n.lock.check()
            if not on_actors:
                batch = committer(batch.cast(GENERATED_SCHEMA))
            if fig["batches"] == 0:
                fig["first_batch_s"] = round(time.perf_counter() - t0, 3)
            tokens = fig["tokens"]
            _tally(fig, batch, settled)
            prog.advance(batch.num_rows, fig["tokens"] - tokens)
    return settled, fig


def _tally(fig: dict[str, Any], batch: pa.Table, settled: dict[str, Entries]) -> None:
    """Folds one committed batch (COMMITTED_COLUMNS) into the stage's figures and settled entries."""
    starts = [x for x in batch["gen_engine_start_s"].to_pylist() if x is not None]
    if starts and fig["engine_start_s"] is None:
        fig["engine_start_s"] = starts[0]
    for e in set(batch["gen_engine"].to_pylist()):
        fig["engines"][e] = fig["engines"].get(e, 0) + 1
    recs = batch.select(QA_COLUMNS).to_pylist()
    settled.update(zip(batch["sku"].to_pylist(), map(decode, batch["types"].to_pylist())))
    fig["batches"] += 1
    fig["tokens"] += sum(r["gen_tokens"] for r in recs)
    fig["attempts"] += sum(r["gen_attempts"] for r in recs)
    fig["qa_rows"].extend(recs)


def qa_report(n: Night, g: Generated) -> QASummary | None:
    return qa_summary(g.qa_rows, n.settings.qa.near_duplicate_threshold) if g.qa_rows else None


# ---- embed ---------------------------------------------------------------------------------------

def entries_for(p: Planned, g: Generated, part: list[str]) -> dict[str, Entries]:
    """sku -> type -> entry for these SKUs: tonight's, or as stored for settled ones."""
    settled = [s for s in part if s in p.plan.settled]
    stored = p.previous.take(settled) if settled else None
    got = dict(zip(stored["sku"].to_pylist(), map(decode, stored["copy"].to_pylist()))) if stored is not None else {}
    return {s: got[s] if s in got else g.entries.get(s, {}) for s in part}


def write_current(products: list[Product], entries_of: Callable[[list[Product]], dict[str, Entries]],
                  types: tuple[str, ...], store: st8.StateStore, model_version: str, prompt: str, out: Path,
                  review: Review = NO_REVIEW) -> None:
    """Every given product as an index row: its source fields from tonight's catalog, plus the
    accepted copy of each type read from the batch file that holds it (enrichment only adds), with
    the review's edits in and its rejected texts out. entries_of(part): sku -> type -> entry, asked
    a chunk at a time."""
    out.mkdir(parents=True, exist_ok=True)
    fields = {t: [name for name, _ in TYPE_FIELDS[t]] for t in types}
    pv = ",".join(prompt_version(CONTENT_TYPES[t], prompt) for t in types)
    for i in range(0, len(products), CHUNK):
        part = products[i:i + CHUNK]
        entries = entries_of(part)
        texts = st8.read_copy(store, entries, fields)
        rows = []
        for x in part:
            base = product_row(x)
            got, status = overlay(x.sku, base["content_hash"], texts.get(x.sku, {}), fields, review)
            copy = public_json(entries.get(x.sku, {}), types)
            if status:
                copy = json.dumps({t: {**v, "status": status.get(t, v["status"])} for t, v in json.loads(copy).items()},
                                  ensure_ascii=False)
            rows.append({**base, **got, "model_version": model_version, "prompt_version": pv, "copy": copy})
        pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), out / f"part-{i // CHUNK:05d}.parquet")


def _unreadable_vectors(uri: str, skus: list[str], e: Exception) -> None:
    logging.getLogger(__name__).warning("stored vectors %s unreadable (%s): embedding its %d products again",
                                        uri, e, len(skus))


def split_for_embedding(src: Path, to_embed: Path, reused: Path, previous: Mapping[str, dict[str, Any]],
                        emb_version: str, store: st8.StateStore, text_cfg: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Rows whose embedding text and model match the last run keep their stored vector (written to
    `reused` with it); the others go to `to_embed`. Returns sku -> embedding hash of every row, and
    sku -> the file of each reused vector."""
    hashes: dict[str, str] = {}
    keep: dict[str, str] = {}
    for d in (to_embed, reused):
        d.mkdir(parents=True, exist_ok=True)
    ph, pm, pu = (st8.column(previous, c) for c in ("embedding_hash", "embedding_model", "embedding_uri"))
    todo: list[pa.Table] = []
    kept: list[pa.Table] = []
    for b in pads.dataset(str(src), format="parquet").to_batches():
        t = pa.Table.from_batches([b])
        if not t.num_rows:
            continue
        mask = []
        for sku, r in zip(t["sku"].to_pylist(), t.to_pylist()):
            hashes[sku] = h = document_key(document_text(r, text_cfg), text_cfg)
            ok = bool(ph.get(sku) == h and pm.get(sku) == emb_version and pu.get(sku))
            mask.append(ok)
            if ok:
                keep[sku] = pu[sku]
        m = pa.array(mask)
        todo.append(t.filter(pc.invert(m)))
        kept.append(t.filter(m))
    found: set[str] = set()
    if keep:  # one part per stored vector file, so the driver holds one file's vectors at a time
        k = pa.concat_tables(kept)
        for i, t in enumerate(st8.read_rows(store, keep, ["sku", "embedding"], on_error=_unreadable_vectors)):
            part = k.filter(pc.is_in(k["sku"], t["sku"]))
            skus = part["sku"].to_pylist()
            found.update(skus)
            at = dict(zip(t["sku"].to_pylist(), range(t.num_rows)))
            part = (part.append_column("embedding", t["embedding"].take(pa.array([at[s] for s in skus], pa.int64())))
                    .append_column("embedding_hash", pa.array([hashes[s] for s in skus], pa.string()))
                    .append_column("embedding_cached", pa.array([True] * len(skus)))
                    .append_column("embedding_model", pa.array([emb_version] * len(skus), pa.string())))
            pq.write_table(part.cast(EMBEDDED_SCHEMA), reused / f"part-reused-{i:05d}.parquet")
        lost = sorted(set(keep) - found)
        if lost:  # a stored vector that is gone (a damaged or removed file) is computed again, never dropped
            todo.append(k.filter(pc.is_in(k["sku"], pa.array(lost, pa.string()))))
            for s in lost:
                del keep[s]
    if todo and sum(x.num_rows for x in todo):
        pq.write_table(pa.concat_tables(todo), to_embed / "part-0.parquet")
    return hashes, keep


def embed(n: Night, p: Planned, m: Mode, loaded: Loaded, g: Generated, io: Adapters, recs: Recs = NO_RECS,
          answered: Answered = NO_ANSWERS) -> Embedded:
    """Each dirty product's row (accepted copy included) -> reused or new vectors -> related, matched
    against every product's vector (the stored ones for the rest)."""
    stages, settings = n.work / "stages", p.settings
    current = stages / "current"
    rows = list(loaded.products) if m.dirty is None else [x for x in loaded.products if x.sku in m.dirty]
    write_current(rows, lambda part: entries_for(p, g, [x.sku for x in part]), n.types, n.store, p.gen_model.version,
                  settings.generation.prompt, current, p.review)
    to_embed, embedded = stages / "to_embed", stages / "embedded"
    ehash, emb_kept = split_for_embedding(current, to_embed, embedded, {} if n.full else p.previous,
                                          p.emb_model.version, n.store, settings.embedding)
    with n.rep.stage("embed", n.console) as st:
        n_new = pads.dataset(str(to_embed), format="parquet").count_rows() if any(to_embed.glob("*.parquet")) else 0
        uris = dict(emb_kept)
        if n_new:
            tmp = stages / "embedded_new"
            io.embed(to_embed, p.emb_model, settings, tmp)
            new = pads.dataset(str(tmp), format="parquet").to_table()
            new = new.select(EMBEDDED_SCHEMA.names).cast(EMBEDDED_SCHEMA)
            uri = n.store.write_table(f"outputs/emb/{n.run_id}.parquet",
                                      new.select(["sku", "embedding_hash", "embedding"]), row_group_size=4096)
            uris.update(dict.fromkeys(new["sku"].to_pylist(), uri))
            pq.write_table(new, embedded / "part-new.parquet")
        st.update(docs=len(p.hashes), computed=n_new, reused=len(p.hashes) - n_new)
    if st.get("seconds") and n_new:
        st["docs_per_s"] = round(n_new / st["seconds"], 2)
    enriched = relate(embedded, n.work / "enriched", _related_pool(n, p, m, uris), settings, n.rep, n.console)
    if recs.folder is not None:
        add_lists(enriched, recs, p.catalog.index, settings)
    if answered.enabled:
        add_qa(enriched, answered)
    return Embedded(enriched, ehash, uris, n_new, len(p.hashes) - n_new, recs.hashes)


def _related_pool(n: Night, p: Planned, m: Mode, uris: dict[str, str]) -> Pool:
    """What related products are chosen from: tonight's embedded rows plus, on an upsert, every
    other valid product, each by the state file that holds its vector (never read here)."""
    where = dict(uris)
    if m.dirty is not None:
        stored = st8.column(p.previous, "embedding_uri")
        where.update({s: stored[s] for s in p.hashes if s not in m.dirty and stored.get(s)})
    return make_pool(p.catalog.index.select(META_COLUMNS), {s: n.store.uri(u) for s, u in where.items()},
                     p.settings.related.variant_keys, p.settings.s3)


# ---- index and state -----------------------------------------------------------------------------

def doc_hash(row: dict[str, Any]) -> str:
    """Fingerprint of the document a row becomes (indexed_at excluded), to upsert only what changed."""
    from indexing.docs import es_doc

    doc = es_doc(row, indexed_at="-")
    doc.pop("indexed_at", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def index(n: Night, p: Planned, m: Mode, emb: Embedded, io: Adapters) -> Indexed:
    """A new index (gate + swap), or an upsert of only the dirty docs whose doc_hash changed plus the
    deletion of SKUs that left the catalog (named from the state: the live index is not scanned)."""
    enriched_ds = pads.dataset(str(emb.enriched), format="parquet")
    dhash = {r["sku"]: doc_hash(r) for b in enriched_ds.to_batches() for r in b.to_pylist()}
    n.lock.check()
    if m.reason:
        n.console.print(f"full index build: {m.reason}")
        done = io.index(n, emb.enriched, p.emb_model, None)
        return Indexed(m.reason, done.index, dhash, done.failed, done.docs, 0)
    upsert = n.work / "stages" / "upsert"
    upsert.mkdir(parents=True)
    docs = st8.column(p.previous, "doc_hash")
    changed = [s for s, h in dhash.items() if s not in m.was_indexed or docs.get(s) != h]
    removed = sorted(m.was_indexed - set(p.hashes) - set(p.invalid))
    if changed:
        pq.write_table(enriched_ds.to_table(filter=pc.field("sku").isin(changed)), upsert / "part-0.parquet")
    if not (changed or removed):
        with n.rep.stage("index", n.console) as st:
            st.update(index=m.live, docs=0, skipped="no document changed")
        return Indexed(None, m.live, dhash, frozenset(), 0, 0)
    spec = IncrementalSpec(run_epoch=int(time.time() * 1000), version_from="run", delete_missing=True,
                           keep=p.invalid, delete=tuple(removed))
    done = io.index(n, upsert, p.emb_model, spec)
    return Indexed(None, m.live, dhash, done.failed, done.docs, done.deleted)


def save(n: Night, p: Planned, m: Mode, g: Generated, emb: Embedded, idx: Indexed,
         answered: Answered = NO_ANSWERS) -> Saved:
    """Folds tonight into the state: one row per valid product, plus invalid ones carried over.
    Settled products whose document did not change keep their stored row as it is (in Arrow)."""
    n.lock.check()
    with n.rep.stage("state", n.console) as st:
        # Invalid tonight: the last good state carries over (in the index only if it was kept there).
        new_rows = [{**p.previous[s], "doc_hash": None, "indexed_version": None} if idx.reason else p.previous[s]
                    for s in p.invalid]
        as_stored = set() if m.dirty is None else p.plan.settled - m.dirty
        pv = ",".join(v[0] for v in p.versions.values())
        searchable = len(as_stored)  # not dirty: in the live index as last night
        todo = [s for s in p.hashes if s not in as_stored]
        for i in range(0, len(todo), CHUNK):
            part = todo[i:i + CHUNK]
            searchable += _fold(n, p, m, emb, idx, pv, part, entries_for(p, g, part), new_rows)
        _, names = st8.load_journal(n.store)
        figures = st8.save_state(n.store, new_rows, names, carry=p.previous.take(as_stored) if as_stored else None)
        save_answers(n.store, answered)
        figures["review_regenerated"] = note_regenerated(p.review, p.rejected, g.entries)
        st.update(figures)
    return Saved(searchable, figures["state_rows"])


def _fold(n: Night, p: Planned, m: Mode, emb: Embedded, idx: Indexed, pv: str, part: list[str],
          entries: dict[str, Entries], new_rows: list[dict[str, Any]]) -> int:
    """Appends the state rows of these SKUs; returns how many of them are searchable."""
    searchable = 0
    for sku in part:
        es = entries[sku]
        fresh = st8.all_fresh(es, p.keys[sku])
        copy = encode(es)
        if m.dirty is not None and sku not in m.dirty:  # its document and vector are as last night
            new_rows.append({**p.previous[sku], "key": st8.combined_key(p.keys[sku]), "copy": copy, "fresh": fresh})
            searchable += 1
            continue
        indexed = sku not in idx.failed
        searchable += int(indexed and idx.index is not None)
        new_rows.append({
            "sku": sku, "key": st8.combined_key(p.keys[sku]), "content_hash": p.hashes[sku], "prompt_version": pv,
            "model_version": p.gen_model.version, "reason": "; ".join(typed_reasons(es, n.types))[:2000] or None,
            "run_id": n.run_id, "copy": copy, "fresh": fresh,
            "embedding_hash": emb.hashes.get(sku), "embedding_uri": emb.uris.get(sku),
            "embedding_model": p.emb_model.version,
            "doc_hash": idx.doc_hashes.get(sku) if indexed else None,
            "indexed_version": idx.index if indexed else None,
            "recs_hash": emb.recs.get(sku),
        })
    return searchable


__all__ = ["CATALOG_INDEX", "EMBEDDED_SCHEMA", "ROW_SCHEMA", "Adapters", "Catalog", "Embedded", "Generated", "Indexed",
           "Loaded", "Mode", "Night", "Planned", "Saved", "doc_hash", "embed", "entries_for", "generate",
           "index", "load", "mode", "plan", "qa_report", "rebuild_reason", "recommend", "save", "split_for_embedding",
           "type_versions", "validate", "write_current"]
