"""The index stage (a full build with gate and swap, or an upsert into the live index) and
`shopgen index build` (catalog or enriched rows -> embed -> related -> index)."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from rich.console import Console

from shopgen.adapters import models
from shopgen.adapters.raysupport import ray_session
from shopgen.catalog.load import load_catalog
from shopgen.core.config import Settings
from shopgen.core.records import Quarantined
from shopgen.core.run import Report, StageProgress, append_quarantine, running, start_run
from shopgen.embed.stage import embed_then_relate
from shopgen.generate.engine import PRODUCT_SCHEMA, product_row
from shopgen.generate.stage import ENRICHED_DROP
from shopgen.index import ranker


def _smoke_samples(table: pa.Table, n: int) -> list[tuple[str, str]]:
    if not n or not table.num_rows:
        return []
    step = max(1, table.num_rows // n)
    skus, titles = table["sku"].to_pylist(), table["title"].to_pylist()
    return [(skus[i], titles[i]) for i in range(0, table.num_rows, step)][:n]


@dataclass(frozen=True)
class IncrementalSpec:
    """An upsert into the live index instead of a new one: external versions from each doc's
    updated_at or the run's epoch (ms); SKUs missing from `skus` (default: the input's) are deleted
    when delete_missing, except those in `keep` (e.g. products quarantined tonight)."""

    run_epoch: int
    version_from: Literal["updated_at", "run"] = "updated_at"
    delete_missing: bool = True
    skus: list[str] | None = None
    keep: tuple[str, ...] = ()
    # Given: the input holds only changed docs and these SKUs go; the live index is not scanned.
    delete: tuple[str, ...] | None = None


def index_stage(enriched_dir: Path, settings: Settings, alias: str, st: dict[str, Any], console: Console,
                meta: dict[str, Any], emb_model: models.ModelRef, incremental: IncrementalSpec | None = None,
                ) -> list[Quarantined]:
    """A full build (new index, gate, swap) or, with `incremental`, an upsert into the live index."""
    from indexing import gate, lifecycle
    from indexing.client import make_client, server_check
    from indexing.docs import es_doc

    es = make_client(settings, echo=console.print)
    if incremental is None:  # analyzers and the RRF probe shape a new index; an upsert needs neither
        server = server_check(es, settings.es)
        st["server"] = {k: server[k] for k in ("version", "chinese_analyzer", "rrf_retriever", "hybrid")}
        console.print(f"Elasticsearch {server['version']}: chinese analyzer {server['chinese_analyzer']}, "
                      f"RRF retriever {'yes' if server['rrf_retriever'] else 'no'}")
    else:
        st["server"] = {"version": es.info()["version"]["number"]}
    dataset = pads.dataset(str(enriched_dir), format="parquet")
    total = dataset.count_rows()
    dims = len(dataset.head(1, columns=["embedding"])["embedding"][0]) if total else None
    now = datetime.now(timezone.utc).isoformat()
    docs = (es_doc(r, now, settings.search.units) for batch in dataset.to_batches() for r in batch.to_pylist())
    encoder = _encoder_factory(emb_model, settings)
    with StageProgress(console, "index", total, unit="docs") as prog:
        advance = prog.advance
        if incremental is not None:
            # The caller may upsert only the docs that changed while `skus` names every doc to keep.
            skus = incremental.skus
            if skus is None and incremental.delete is None:
                skus = dataset.to_table(columns=["sku"])["sku"].to_pylist() if total else []
            res = lifecycle.incremental(es, alias, docs, settings, run_epoch=incremental.run_epoch,
                                        version_from=incremental.version_from,
                                        delete_missing=incremental.delete_missing, keep=incremental.keep,
                                        delete=incremental.delete,
                                        progress=advance, dims=dims, embedding_model=emb_model.version, skus=skus)
            errors = res.pop("bulk_errors")
            st.update(res)
            st["docs"] = res["upserted"]
            # The live index was written either way: this verdict fails the run, it cannot undo it.
            verdict = gate.decide([gate.error_rate(len(errors), total, settings.es.max_error_rate)])
            verdict["reasons"] = [f"applied to the live index, but {r}; see quarantine.jsonl" for r in verdict["reasons"]]
            st["gate"] = verdict
            st["swapped"] = False
        else:
            samples = _smoke_samples(dataset.to_table(columns=["sku", "title"]), settings.gate.smoke_samples)
            rec, bulk = lifecycle.build(es, alias, docs, total, dims, settings, server["chinese_analyzer"], meta,
                                        expected=total, samples=samples, progress=advance, encoder=encoder,
                                        ranker=ranker.loader(settings, es, alias))
            st.update(rec)
            errors = bulk.errors
    if st["gate"]["passed"] and incremental is None:
        console.print(f"alias [bold]{alias}[/] -> {st['index']}")
    elif not st["gate"]["passed"]:
        what = "incremental update of" if incremental is not None else "gate refused"
        console.print(f"[red]{what} {st['index']}:[/] " + "; ".join(st["gate"]["reasons"]))
    return [Quarantined(stage="index", reason=f"bulk {e['op']} {e['status']}: {e['reason']}", sku=e["sku"])
            for e in errors]


def _encoder_factory(model: models.ModelRef, settings: Settings):
    """The query encoder the gate's relevance check uses, loaded on the driver when first needed."""
    cache: list[Any] = []

    def get():
        if not cache:
            from shopgen.adapters.encoder import load_encoder

            cache.append(load_encoder(models.materialize(model, settings).path))
        return cache[0]

    return get


def _index_meta(rep: Report, emb_model: models.ModelRef, source: str) -> dict[str, Any]:
    return {"managed_by": "shopgen", "run_id": rep.data["run_id"], "created_at": datetime.now(timezone.utc).isoformat(),
            "model_version": rep.data.get("model_version"), "embedding_model": emb_model.version,
            # What search resolves to encode queries with the index's own embedder.
            "embedding_ref": _portable(emb_model.ref), "input": source}


def _portable(ref: str) -> str:
    """A local folder reference as an absolute path, so search resolves it from any directory."""
    return str(Path(ref).resolve()) if "://" not in ref and Path(ref).exists() else ref


@dataclass(frozen=True)
class IndexRun:
    """What the index step did: the index written (the new one, or the live one on an upsert),
    the documents written and deleted, and the SKUs whose document failed (quarantined)."""

    index: str | None
    docs: int
    deleted: int
    failed: frozenset[str]


def run_index(rep: Report, enriched: Path, settings: Settings, alias: str, console: Console, qpath: Path,
              emb_model: models.ModelRef, source: str, incremental: IncrementalSpec | None = None) -> IndexRun:
    """Index stage: its figures go to the report's `index` stage, its failed documents to the
    quarantine; a refused gate (new index) or a failed upsert raises."""
    with rep.stage("index", console) as st:
        q = index_stage(enriched, settings, alias, st, console, _index_meta(rep, emb_model, source), emb_model,
                        incremental)
        append_quarantine(qpath, q)
    st["docs_per_s"] = round(st["docs"] / st["seconds"], 2) if st.get("seconds") else None
    if not st["gate"]["passed"]:
        what = "incremental update" if incremental is not None else "index gate refused the swap"
        raise RuntimeError(f"{what}: " + "; ".join(st["gate"]["reasons"]))
    return IndexRun(st.get("index"), st["docs"], st.get("deleted", 0) if incremental is not None else 0,
                    frozenset(x.sku for x in q if x.sku))


def is_enriched(uri: str, settings: Settings) -> bool:
    """Output of `shopgen generate` (Parquet with generated columns), as opposed to a raw catalog."""
    import pyarrow.fs as pafs

    from shopgen.adapters.storage import resolve

    fs, path = resolve(uri, settings.s3)
    if not (uri.endswith(".parquet") or fs.get_file_info(path).type == pafs.FileType.Directory):
        return False
    names = pads.dataset(path, format="parquet", filesystem=fs).schema.names
    return "model_version" in names and "prompt_version" in names


def run_index_build(source: str, workdir: str | Path, settings: Settings, alias: str | None = None,
                    limit: int | None = None, console: Console | None = None,
                    incremental: IncrementalSpec | None = None) -> dict[str, Any]:
    """`shopgen index build`: a raw catalog or `shopgen generate` output -> embed -> related -> index
    (gate, swap), or with `incremental` an upsert of the live index plus deletion of missing SKUs."""
    from shopgen.adapters.storage import resolve

    console = console or Console(stderr=True)
    alias = alias or settings.es.alias
    work = Path(workdir)
    in_dir = work / "stages" / "input"
    shutil.rmtree(in_dir, ignore_errors=True)
    in_dir.mkdir(parents=True)
    rep, qpath, rpath = start_run("index", work, settings, input=str(source), alias=alias, limit=limit,
                               mode="incremental" if incremental is not None else "full")
    counts = rep.data["counts"]
    with running(rep, qpath, rpath, console):
        with rep.stage("validate", console) as st:
            if is_enriched(str(source), settings):
                fs, path = resolve(str(source), settings.s3)
                table = pads.dataset(path, format="parquet", filesystem=fs).to_table()
                drop = [c for c in ("embedding", "embedding_hash", "embedding_cached", "embedding_model",
                                    "related_skus", *ENRICHED_DROP) if c in table.column_names]
                table = table.drop_columns(drop)
                table = table.slice(0, limit) if limit else table
                st["kind"] = "enriched"
                rep.data["model_version"] = (table["model_version"][0].as_py() if table.num_rows else None)
                bad: list[Quarantined] = []
            else:
                products, bad = load_catalog(str(source), settings.catalog, settings.s3, limit)
                table = pa.Table.from_pylist([product_row(p) for p in products], schema=PRODUCT_SCHEMA)
                st["kind"] = "catalog"
            append_quarantine(qpath, bad)
            counts.update(valid=table.num_rows, invalid=len(bad))
            st.update(valid=table.num_rows, invalid=len(bad))
        if not table.num_rows:
            raise RuntimeError("no valid products in the input; see quarantine.jsonl")
        pq.write_table(table, in_dir / "part-0.parquet")
        with rep.stage("models", console):
            emb_model = models.resolve(models.embedding_ref(settings), settings)
            rep.data["embedding_model"] = emb_model.version
        with ray_session(settings):
            enriched = embed_then_relate(in_dir, work, emb_model, settings, rep, console)
        if incremental is not None:
            # A product quarantined tonight keeps its last good doc instead of disappearing.
            incremental = dataclasses.replace(incremental, keep=tuple(q.sku for q in bad if q.sku))
        done = run_index(rep, enriched, settings, alias, console, qpath, emb_model, str(source), incremental)
        counts["indexed"] = done.docs
        if incremental is not None:
            counts["deleted"] = done.deleted
        rep.data["status"] = "succeeded"
    return rep.data
