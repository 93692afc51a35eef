"""The nightly recipe: validate -> plan against the state -> mode (new index or upsert) -> load ->
generate what changed (committed in batches) -> embed what changed -> related -> index (full build +
gate + swap, or upsert + delete) -> fold the state -> report.

`night` chains the steps of shopgen.nightly.steps, each returning a frozen record the next takes;
`record` writes each record's figures into the report as it arrives (nothing is read back).

One run at a time per state prefix and alias (shopgen.state.Lock). A run that dies is resumed by
running it again: every committed batch is reused (shopgen.state.load_journal)."""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from functools import singledispatch
from pathlib import Path
from typing import Any

from rich.console import Console

from shopgen import state as st8
from shopgen.core.config import Settings
from shopgen.core.content import parse_content
from shopgen.core.run import Report, running, start_run
from shopgen.generate.prompts import PROMPT_VERSION
from shopgen.generate.stage import coverage
from shopgen.nightly import steps
from shopgen.nightly.steps import (
    Adapters,
    Catalog,
    Embedded,
    Generated,
    Indexed,
    Mode,
    Night,
    Planned,
    Saved,
)
from shopgen.review.night import review_figures


def night(n: Night, io: Adapters) -> Saved:
    """One night, top to bottom. `io` is Ray, vLLM and Elasticsearch (fakes under test)."""
    cat = record(steps.validate(n), n)
    planned = record(steps.plan(n, cat), n)
    live = io.live_index(planned.settings, n.alias, n.console.print)
    n.rep.data["startup"] = {"ray_init_s": None}
    with ExitStack() as stack:
        def start_ray() -> None:
            # Ray starts once, when a step needs it: a night with nothing to generate, embed or fold
            # on Ray Data (an unchanged catalog, deletions only) starts none.
            if n.rep.data["startup"]["ray_init_s"] is None:
                t_ray = time.perf_counter()
                stack.enter_context(io.session(planned.settings))
                n.rep.data["startup"]["ray_init_s"] = round(time.perf_counter() - t_ray, 3)

        recs = record(steps.recommend(n, planned, io, start_ray), n)
        answered = steps.answer(n, planned, io, start_ray)
        mode = record(steps.mode(n, planned, live, recs, answered), n)
        loaded = steps.load(n, planned, mode)
        if loaded.products:
            start_ray()
        gen = record(steps.generate(n, planned, loaded, io), n)
        emb = record(steps.embed(n, planned, mode, loaded, gen, io, recs, answered), n)
    idx = record(steps.index(n, planned, mode, emb, io), n)
    saved = record(steps.save(n, planned, mode, gen, emb, idx, answered), n)
    n.rep.data["coverage"] = coverage(len(planned.hashes), saved.searchable,
                                      {s: es for s, es in gen.entries.items() if s not in planned.plan.settled},
                                      n.types, all_fresh=len(planned.plan.settled)).to_dict()
    published = sum(v["fresh"] + v["kept"] for v in gen.status.values())
    n.rep.data["review"] = {**review_figures(planned.review, published), "url": planned.settings.review.url}
    n.rep.data["status"] = "succeeded"
    return saved


# ---- the report, from the step records --------------------------------------------------------------

@singledispatch
def record(rec: Any, n: Night) -> Any:
    """Writes a step's record into the report (counts and top-level figures); returns the record."""
    return rec


@record.register
def _(rec: Catalog, n: Night) -> Catalog:
    n.rep.data["counts"].update(valid=len(rec.hashes), invalid=rec.invalid)
    return rec


@record.register
def _(rec: Planned, n: Night) -> Planned:
    n.rep.data.update(model_version=rec.gen_model.version, embedding_model=rec.emb_model.version,
                      prompt=rec.settings.generation.prompt)
    n.rep.data["counts"].update(rec.plan.counts())
    return rec


@record.register
def _(rec: Mode, n: Night) -> Mode:
    n.rep.data["mode"] = "full" if rec.reason else "incremental"
    if rec.reason:
        n.rep.data["rebuild_reason"] = rec.reason
    else:
        n.rep.data["stages"]["plan"]["dirty"] = len(rec.dirty or ())
    return rec


@record.register
def _(rec: Generated, n: Night) -> Generated:
    if rec.qa_rows:
        n.rep.data["startup"]["engine_start_s"] = rec.engine_start_s
    if (qa := steps.qa_report(n, rec)) is not None:
        n.rep.data["qa"] = qa.to_dict()
    n.rep.data["counts"].update(generated=rec.generated, generation_failed=rec.failed,
                                **{f"copy_{k}": sum(v[k] for v in rec.status.values()) for k in st8.COPY_STATUSES})
    return rec


@record.register
def _(rec: Embedded, n: Night) -> Embedded:
    n.rep.data["counts"].update(embedded=rec.computed, embeddings_reused=rec.reused)
    return rec


@record.register
def _(rec: Indexed, n: Night) -> Indexed:
    n.rep.data["counts"].update(indexed=rec.docs)
    return rec


# ---- the run: lock, workdir, report ------------------------------------------------------------------

def state_prefix(settings: Settings, workdir: Path, state: str | None, alias: str) -> str:
    root = state or settings.nightly.state or str((workdir / "state").absolute())
    return f"{root.rstrip('/')}/{alias}"


def run(catalog: str, workdir: str | Path, settings: Settings, *, state: str | None = None, alias: str | None = None,
        full: bool = False, limit: int | None = None, content: str | list[str] | None = None,
        force_unlock: bool = False, console: Console | None = None, io: Adapters | None = None) -> dict[str, Any]:
    """`shopgen nightly`. io: the Ray/vLLM/Elasticsearch edges (default: the real ones)."""
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
        return _run_locked(catalog, work, settings, store, lock, run_id, alias, full, limit, types, console, taken,
                           io or Adapters())
    finally:
        lock.release()


def _run_locked(catalog: str, work: Path, settings: Settings, store: st8.StateStore, lock: st8.Lock, run_id: str,
                alias: str, full: bool, limit: int | None, types: tuple[str, ...], console: Console,
                taken: dict[str, Any] | None, io: Adapters) -> dict[str, Any]:
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
            night(Night(str(catalog), work, settings, store, lock, rep, qpath, alias, full, limit, types, console,
                        run_id), io)
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
