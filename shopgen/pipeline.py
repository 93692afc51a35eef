"""Pipeline stages shared by the jobs (generate, embed, related, index), `shopgen generate` and
`shopgen index build`; the nightly recipe built on them is shopgen.nightly."""

from __future__ import annotations

import json
import shutil
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shopgen import models
from shopgen.catalog import load_catalog
from shopgen.checks import near_duplicates
from shopgen.content import CONTENT_TYPES, few_shot_for, parse_content
from shopgen.config import Settings
from shopgen.generate import (GEN_INPUT_SCHEMA, PRODUCT_SCHEMA, GateSpec, PromptSpec, VLLMGenerator, examples_json,
                              product_row)
from shopgen.embed import Embedder, cache_folder, write_cache
from shopgen.prompts import PROMPT_VERSION
from shopgen.raysupport import build_processor, collect, ray_session
from shopgen.records import Product, Quarantined

ENRICHED_DROP = ("gen_ok", "gen_errors")


class Report:
    def __init__(self, **head: Any):
        self.data: dict[str, Any] = {**head, "status": "running", "counts": {}, "stages": {}, "errors": []}

    @contextmanager
    def stage(self, name: str, console: Console):
        console.rule(f"[bold]{name}")
        t = time.perf_counter()
        st: dict[str, Any] = {}
        self.data["stages"][name] = st
        try:
            yield st
        finally:
            st["seconds"] = round(time.perf_counter() - t, 3)
            console.print(f"[green]{name}[/] done in {st['seconds']:.1f}s "
                          + " ".join(f"{k}={v}" for k, v in st.items()
                                    if k != "seconds" and isinstance(v, (str, int, float, bool))))

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.data, indent=2, default=str))


def append_quarantine(path: Path, rows: list[Quarantined]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for q in rows:
            f.write(q.model_dump_json() + "\n")


def _blocks(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)] or [table]


def copy_failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (product, content type) whose copy failed tonight: sku, type, reasons and the
    last raw output, for copy_failures.jsonl. The product itself stays searchable."""
    out = []
    for r in rows:
        for t, q in json.loads(r["qa"] or "{}").items():
            if not q["passed"]:
                out.append({"sku": r["sku"], "type": t,
                             "reasons": [f"{c['check']}: {d}" for c in q["checks"] if not c["passed"]
                                         for d in (c["details"] or ["failed"])],
                             "raw": q.get("raw")})
    return out


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")


def copy_of_row(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tonight's per-type verdicts of a generated row: fresh or none, with the failure reasons."""
    return {t: {"status": "fresh" if q["passed"] else "none",
                "reasons": [f"{c['check']}: {d}" for c in q["checks"] if not c["passed"] for d in (c["details"] or ["failed"])]}
            for t, q in json.loads(row.get("qa") or "{}").items()}


def coverage(valid: int, searchable: int, copy: dict[str, dict[str, dict[str, Any]]],
             types: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The report's coverage: the searchable share of valid products, and per content type the
    share of valid products with fresh, kept and no copy (pure)."""
    per: dict[str, dict[str, Any]] = {}
    for t in types:
        n = {k: 0 for k in ("fresh", "kept", "none")}
        for entries in copy.values():
            n[(entries.get(t) or {}).get("status") or "none"] += 1
        n["none"] += max(0, valid - len(copy))
        per[t] = {**n, **{f"{k}_share": round(v / valid, 4) if valid else None for k, v in n.items()}}
    return {"valid": valid, "searchable": searchable,
            "searchable_share": round(searchable / valid, 4) if valid else None, "types": per}


# What the driver reads back from generated rows: the report's figures, QA summary and quarantine.
QA_COLUMNS = ["sku", "gen_ok", "gen_errors", "gen_tokens", "gen_attempts", "qa", "description", "seo_title", "bullets"]


def gate_spec(settings: Settings, brands: list[str]) -> GateSpec:
    """The gate's inputs from the config. `brands`: every brand of the catalog, which the
    faithfulness and wrong-product checks may name."""
    return GateSpec(brands=brands, banned=settings.qa.banned_claims, claims=settings.qa.claims,
                    content={t: c.model_dump(exclude_none=True) for t, c in settings.content.items()})


def few_shot(settings: Settings, types: tuple[str, ...] | list[str]) -> dict[str, int]:
    """Worked examples per content type (0 for all with the v2 prompt)."""
    if settings.generation.prompt != "grounded":
        return {t: 0 for t in types}
    return {t: few_shot_for(CONTENT_TYPES[t], settings.generation.few_shot, settings.content.get(t)) for t in types}


def prompt_spec(settings: Settings) -> PromptSpec:
    return PromptSpec(prompt=settings.generation.prompt, feedback=settings.generation.feedback,
                      style={t: c.style for t, c in settings.content.items() if c.style})


def generator_input(products: list[Product], todo: dict[str, list[str]] | None = None,
                    examples: dict[str, dict[str, list[tuple[Product, dict[str, Any]]]]] | None = None) -> pa.Table:
    """The generator's input rows: each product with tonight's content types and examples."""
    rows = [{**product_row(p), "gen_types": (todo or {}).get(p.sku), "examples": examples_json((examples or {}).get(p.sku))}
            for p in products]
    return pa.Table.from_pylist(rows, schema=GEN_INPUT_SCHEMA)


def generator_dataset(products: list[Product], model: models.ModelRef, settings: Settings, content: tuple[str, ...],
                      brands: list[str], actor: type = VLLMGenerator, todo: dict[str, list[str]] | None = None,
                      examples: dict[str, dict[str, list[tuple[Product, dict[str, Any]]]]] | None = None,
                      **actor_kwargs: Any):
    """The products as a Ray Dataset mapped through the generator's actor pool (GENERATED_SCHEMA
    batches). `todo`: sku -> the content types to generate (default: all of `content`). The actors
    get the model as a reference and fetch it on their own node."""
    import ray

    table = generator_input(products, todo, examples)
    gen = settings.generation
    ds = ray.data.from_arrow(_blocks(table, gen.batch_size))
    return build_processor(ds, gen, actor, dict(model=model, settings=settings, content=content,
                                                gate=gate_spec(settings, brands), spec=prompt_spec(settings),
                                                **actor_kwargs),
                           # A dead engine kills its actor; Ray restarts it and retries the batch a bounded number of times.
                           max_restarts=gen.engine_restarts, max_task_retries=gen.engine_restarts)


def generate_stage(products: list[Product], model: models.ModelRef, settings: Settings, out_dir: Path,
                   content: tuple[str, ...]) -> None:
    from shopgen.fewshot import shop_examples

    brands = sorted({p.brand for p in products if p.brand})
    todo = {p.sku: list(content) for p in products}
    examples = shop_examples(products, products, todo, gate_spec(settings, brands), few_shot(settings, content))
    ds = generator_dataset(products, model, settings, content, brands, examples=examples)
    collect(ds, out_dir)


def embed_stage(src_dir: Path, model: models.ModelRef, settings: Settings, out_dir: Path,
                schema: pa.Schema | None = None) -> None:
    """Rows of src_dir -> the embedder's actor pool -> out_dir. The driver reads and writes the
    local folders; the actors see only the rows, the model reference and the cache's URI."""
    import ray

    emb = settings.embedding
    src = pads.dataset(str(src_dir), format="parquet", schema=schema)
    tables = [pa.Table.from_batches([b]) for b in src.to_batches(batch_size=emb.batch_size) if b.num_rows]
    out_dir.mkdir(parents=True, exist_ok=True)
    if not tables:
        return
    cache = cache_folder(settings.embedding_cache, model.version) if emb.cache else None
    ds = build_processor(ray.data.from_arrow(tables), emb, Embedder,
                         dict(model=model, settings=settings, encode_batch_size=emb.encode_batch_size, cache=cache))
    collect(ds, out_dir)


def _embed_then_relate(src_dir: Path, work: Path, emb_model: models.ModelRef, settings: Settings, rep: Report,
                       console: Console) -> Path:
    """embed (with the vector cache) -> related products; returns the enriched folder."""
    from shopgen.related import INDEX_COLUMNS

    embedded, enriched = work / "stages" / "embedded", work / "enriched"
    for d in (embedded, enriched):
        shutil.rmtree(d, ignore_errors=True)
    counts = rep.data["counts"]
    with rep.stage("embed", console) as st:
        embed_stage(src_dir, emb_model, settings, embedded)
        # Read once: the cache takes the new vectors, the related stage all of them.
        t = pads.dataset(str(embedded), format="parquet").to_table(
            columns=[*INDEX_COLUMNS, "embedding_hash", "embedding_cached"]) if any(embedded.glob("*.parquet")) else None
        n = t.num_rows if t is not None else 0
        cached = sum(t["embedding_cached"].to_pylist()) if n else 0
        added = write_cache(cache_folder(settings.embedding_cache, emb_model.version), t, rep.data["run_id"],
                            settings.s3) \
            if n and settings.embedding.cache else 0
        st.update(docs=n, computed=n - cached, cached=cached, cache_added=added)
        counts.update(embedded=n, embeddings_reused=cached)
    st["docs_per_s"] = round(n / st["seconds"], 2) if st.get("seconds") else None
    if not n:
        return embedded
    return relate(embedded, enriched, t.select(INDEX_COLUMNS), settings, rep, console)


def relate(embedded: Path, enriched: Path, table: pa.Table, settings: Settings, rep: Report,
           console: Console) -> Path:
    """Adds related_skus (top-K similar products) to every embedded row; returns the enriched folder."""
    from shopgen.related import related_stage

    k = settings.related.k
    if k == 0:
        embedded.rename(enriched)
        return enriched
    with rep.stage("related", console) as st:
        related_stage(embedded, enriched, k, settings.related.variant_keys, table=table,
                      local_max_rows=settings.related.local_max_rows)
        st.update(k=k, docs=table.num_rows)
    return enriched


def _smoke_samples(table: pa.Table, n: int) -> list[tuple[str, str]]:
    if not n or not table.num_rows:
        return []
    step = max(1, table.num_rows // n)
    skus, titles = table["sku"].to_pylist(), table["title"].to_pylist()
    return [(skus[i], titles[i]) for i in range(0, table.num_rows, step)][:n]


def qa_summary(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Pass rate of each check over every (product, content type) of the last attempt, the accepted
    rate and failure reasons per type, the unsupported-attribute findings, and near-duplicate copy."""
    stats: dict[str, dict[str, int]] = {}
    types: dict[str, dict[str, Any]] = {}
    unsupported = 0
    for r in rows:
        for t, per_type in json.loads(r["qa"] or "{}").items():
            ty = types.setdefault(t, {"attempted": 0, "accepted": 0, "failures": {}})
            ty["attempted"] += 1
            ty["accepted"] += int(per_type["passed"])
            for c in per_type["checks"]:
                st = stats.setdefault(c["check"], {"checked": 0, "passed": 0})
                st["checked"] += 1
                st["passed"] += int(c["passed"])
                if not c["passed"]:
                    ty["failures"][c["check"]] = ty["failures"].get(c["check"], 0) + 1
                if c["check"] == "faithfulness":
                    unsupported += len(c["details"])
    for st in stats.values():
        st["pass_rate"] = round(st["passed"] / st["checked"], 4) if st["checked"] else None
    for ty in types.values():
        ty["accepted_rate"] = round(ty["accepted"] / ty["attempted"], 4) if ty["attempted"] else None
    texts = [(r["sku"], " ".join(filter(None, [r.get("description"), r.get("seo_title"), *(r.get("bullets") or [])])))
             for r in rows]
    dups = near_duplicates([(s, t) for s, t in texts if t.strip()], threshold)
    return {"checks": stats, "types": types, "unsupported_attribute_findings": unsupported,
            "near_duplicates": [{"sku": a, "duplicate_of": b} for a, b in dups.items()],
            "rows_passed": sum(1 for r in rows if r["gen_ok"]), "rows_failed": sum(1 for r in rows if not r["gen_ok"])}


def _read_rows(folder: Path, columns: list[str] | None = None) -> list[dict[str, Any]]:
    if not folder.exists() or not any(folder.glob("*.parquet")):
        return []
    return pads.dataset(str(folder), format="parquet").to_table(columns=columns).to_pylist()


def index_stage(enriched_dir: Path, settings: Settings, alias: str, st: dict[str, Any], console: Console,
                meta: dict[str, Any], emb_model: models.ModelRef, incremental: dict[str, Any] | None = None,
                ) -> list[Quarantined]:
    """A full build (new index, gate, swap) or, with `incremental`, an upsert into the live index."""
    from indexing import gate, lifecycle
    from indexing.client import make_client, server_check
    from indexing.docs import es_doc

    es = make_client(settings, echo=console.print)
    server = server_check(es, settings.es)
    st["server"] = {k: server[k] for k in ("version", "chinese_analyzer", "rrf_retriever", "hybrid")}
    console.print(f"Elasticsearch {server['version']}: chinese analyzer {server['chinese_analyzer']}, "
                  f"RRF retriever {'yes' if server['rrf_retriever'] else 'no'}")
    dataset = pads.dataset(str(enriched_dir), format="parquet")
    total = dataset.count_rows()
    dims = len(dataset.head(1, columns=["embedding"])["embedding"][0]) if total else None
    now = datetime.now(timezone.utc).isoformat()
    docs = (es_doc(r, now) for batch in dataset.to_batches() for r in batch.to_pylist())
    encoder = _encoder_factory(emb_model, settings)
    with Progress(TextColumn("index"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as prog:
        task = prog.add_task("bulk", total=total)
        advance = lambda n: prog.advance(task, n)  # noqa: E731
        if incremental is not None:
            # The caller may upsert only the docs that changed while `skus` names every doc to keep.
            incremental = dict(incremental)
            skus = incremental.pop("skus", None)
            if skus is None:
                skus = dataset.to_table(columns=["sku"])["sku"].to_pylist() if total else []
            res = lifecycle.incremental(es, alias, docs, settings, progress=advance, dims=dims,
                                        embedding_model=emb_model.version, skus=skus, **incremental)
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
                                        expected=total, samples=samples, progress=advance, encoder=encoder)
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
            from shopgen.embed import load_encoder

            cache.append(load_encoder(models.materialize(model, settings).path))
        return cache[0]

    return get


def _index_meta(rep: Report, emb_model: models.ModelRef, source: str) -> dict[str, Any]:
    return {"managed_by": "shopgen", "run_id": rep.data["run_id"], "created_at": datetime.now(timezone.utc).isoformat(),
            "model_version": rep.data.get("model_version"), "embedding_model": emb_model.version, "input": source}


def run_index(rep: Report, enriched: Path, settings: Settings, alias: str, console: Console, qpath: Path,
               emb_model: models.ModelRef, source: str, incremental: dict[str, Any] | None = None) -> None:
    counts = rep.data["counts"]
    with rep.stage("index", console) as st:
        q = index_stage(enriched, settings, alias, st, console, _index_meta(rep, emb_model, source), emb_model,
                        incremental)
        append_quarantine(qpath, q)
        counts["indexed"] = st["docs"]
        if incremental is not None:
            counts["deleted"] = st.get("deleted", 0)
    st["docs_per_s"] = round(st["docs"] / st["seconds"], 2) if st.get("seconds") else None
    if not st["gate"]["passed"]:
        what = "incremental update" if incremental is not None else "index gate refused the swap"
        raise RuntimeError(f"{what}: " + "; ".join(st["gate"]["reasons"]))


def run_generate(catalog: str, workdir: str | Path, settings: Settings, limit: int | None = None,
                 console: Console | None = None, content: str | list[str] | None = None) -> dict[str, Any]:
    """`shopgen generate`: catalog -> validate -> generate and check; the passed rows, without
    embeddings, go to <workdir>/enriched (the nightly job is shopgen.nightly)."""
    console = console or Console(stderr=True)
    types = parse_content(content or settings.generation.content)
    work = Path(workdir)
    gen_dir, enriched_dir = work / "stages" / "generated", work / "enriched"
    for d in (gen_dir, enriched_dir):
        shutil.rmtree(d, ignore_errors=True)
    rep, qpath, rpath = start_run("generate", work, settings, content=list(types), catalog=str(catalog),
                               prompt_version=PROMPT_VERSION, limit=limit)
    counts = rep.data["counts"]
    with running(rep, qpath, rpath, console):
        with rep.stage("validate", console) as st:
            products, bad = load_catalog(catalog, settings.catalog, settings.s3, limit)
            append_quarantine(qpath, bad)
            counts.update(valid=len(products), invalid=len(bad))
            st.update(valid=len(products), invalid=len(bad))
        with rep.stage("models", console):
            gen_model = models.resolve(models.generation_ref(settings), settings)
            rep.data.update(model_version=gen_model.version)
        if not products:
            raise RuntimeError("no valid products in the catalog; see quarantine.jsonl")
        with ray_session(settings):
            with rep.stage("generate", console) as st:
                generate_stage(products, gen_model, settings, gen_dir, types)
                rows = _read_rows(gen_dir, QA_COLUMNS)
                failed = [r for r in rows if not r["gen_ok"]]
                append_jsonl(work / "copy_failures.jsonl", copy_failures(rows))
                tokens = sum(r["gen_tokens"] for r in rows)
                st.update(rows=len(rows), ok=len(rows) - len(failed), failed=len(failed), tokens=tokens,
                          attempts=sum(r["gen_attempts"] for r in rows))
                counts.update(generated=len(rows) - len(failed), generation_failed=len(failed))
            st["tokens_per_s"] = round(tokens / st["seconds"], 2) if st.get("seconds") else None
            rep.data["qa"] = qa_summary(rows, settings.qa.near_duplicate_threshold)
            rep.data["coverage"] = coverage(len(products), len(products),
                                            {r["sku"]: copy_of_row(r) for r in rows}, types)
        # Every valid product is kept, each with the copy types that passed (enrichment only adds).
        ok = pads.dataset(str(gen_dir), format="parquet").to_table()
        copies = [json.dumps(copy_of_row(r), ensure_ascii=False) for r in ok.select(["qa"]).to_pylist()]
        ok = ok.append_column("copy", pa.array(copies, pa.string()))
        enriched_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(ok.drop_columns(list(ENRICHED_DROP)), enriched_dir / "part-0.parquet")
        counts["enriched"] = ok.num_rows
        rep.data["status"] = "succeeded"
    return rep.data


@contextmanager
def running(rep: Report, qpath: Path, rpath: Path, console: Console):
    """Whatever happens, the report is written with the status, the error and the quarantine count."""
    try:
        yield
    except Exception as e:
        rep.data["status"] = "failed"
        rep.data["errors"].append(f"{type(e).__name__}: {e}")
        raise
    finally:
        rep.data["counts"]["quarantined"] = sum(1 for _ in qpath.open(encoding="utf-8"))
        rep.data["finished_at"] = datetime.now(timezone.utc).isoformat()
        rep.write(rpath)
        console.print(f"report: {rpath.resolve()}")


def start_run(job: str, work: Path, settings: Settings, **head: Any) -> tuple[Report, Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    qpath, rpath = work / "quarantine.jsonl", work / "report.json"
    qpath.write_text("")
    (work / "copy_failures.jsonl").write_text("")
    started = datetime.now(timezone.utc)
    run_id = head.pop("run_id", None) or started.strftime("%Y%m%dT%H%M%S%fZ")
    rep = Report(run_id=run_id, job=job, workdir=str(work.resolve()),
                 started_at=started.isoformat(), **head, config=settings.redacted(),
                 outputs={"enriched": str((work / "enriched").resolve()), "quarantine": str(qpath.resolve()),
                          "copy_failures": str((work / "copy_failures.jsonl").resolve()),
                          "report": str(rpath.resolve())})
    return rep, qpath, rpath


def is_enriched(uri: str, settings: Settings) -> bool:
    """Output of `shopgen generate` (Parquet with generated columns), as opposed to a raw catalog."""
    from shopgen.storage import resolve

    import pyarrow.fs as pafs

    fs, path = resolve(uri, settings.s3)
    if not (uri.endswith(".parquet") or fs.get_file_info(path).type == pafs.FileType.Directory):
        return False
    names = pads.dataset(path, format="parquet", filesystem=fs).schema.names
    return "model_version" in names and "prompt_version" in names


def run_index_build(source: str, workdir: str | Path, settings: Settings, alias: str | None = None,
                    limit: int | None = None, console: Console | None = None,
                    incremental: dict[str, Any] | None = None) -> dict[str, Any]:
    """`shopgen index build`: a raw catalog or `shopgen generate` output -> embed -> related -> index
    (gate, swap), or with `incremental` an upsert of the live index plus deletion of missing SKUs."""
    from shopgen.storage import resolve

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
            emb_model = models.resolve(settings.models.embedder, settings)
            rep.data["embedding_model"] = emb_model.version
        with ray_session(settings):
            enriched = _embed_then_relate(in_dir, work, emb_model, settings, rep, console)
        if incremental is not None:
            # A product quarantined tonight keeps its last good doc instead of disappearing.
            incremental = {**incremental, "keep": [q.sku for q in bad if q.sku]}
        run_index(rep, enriched, settings, alias, console, qpath, emb_model, str(source), incremental)
        rep.data["status"] = "succeeded"
    return rep.data
