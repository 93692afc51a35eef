"""The nightly job: catalog -> validate -> generate -> embed -> index (+ alias swap) -> report."""

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
from shopgen.content import parse_content
from shopgen.config import Settings
from shopgen.generate import GENERATED_SCHEMA, PRODUCT_SCHEMA, VLLMGenerator, product_row
from shopgen.embed import Embedder
from shopgen.prompts import PROMPT_VERSION
from shopgen.raysupport import actor_resources, ray_session
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
                          + " ".join(f"{k}={v}" for k, v in st.items() if k != "seconds"))

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.data, indent=2, default=str))


def _append_quarantine(path: Path, rows: list[Quarantined]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for q in rows:
            f.write(q.model_dump_json() + "\n")


def _blocks(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)] or [table]


def generate_stage(products: list[Product], model: models.ModelRef, settings: Settings, out_dir: Path,
                   content: tuple[str, ...]) -> None:
    import ray

    table = pa.Table.from_pylist([product_row(p) for p in products], schema=PRODUCT_SCHEMA)
    gen = settings.generation
    ds = ray.data.from_arrow(_blocks(table, gen.batch_size)).map_batches(
        VLLMGenerator, batch_format="pyarrow", batch_size=gen.batch_size, compute=ray.data.ActorPoolStrategy(size=1),
        fn_constructor_kwargs=dict(model_path=model.path, adapter_path=model.adapter_path,
                                   model_version=model.version, gen=gen.model_dump(), content=content,
                                   brands=sorted({p.brand for p in products if p.brand}),
                                   banned=settings.qa.banned_claims),
        # A dead engine kills its actor; Ray restarts it and retries the batch a bounded number of times.
        max_restarts=gen.engine_restarts, max_task_retries=gen.engine_restarts,
        **actor_resources(gen.accelerator),
    )
    ds.write_parquet(str(out_dir))


def embed_stage(generated_dir: Path, model: models.ModelRef, settings: Settings, out_dir: Path) -> None:
    import ray

    def keep_ok(t: pa.Table) -> pa.Table:
        return t.filter(pc.field("gen_ok")).drop_columns(list(ENRICHED_DROP))

    emb = settings.embedding
    ds = (ray.data.read_parquet(str(generated_dir), schema=GENERATED_SCHEMA)
          .map_batches(keep_ok, batch_format="pyarrow")
          .map_batches(Embedder, batch_format="pyarrow", batch_size=emb.batch_size,
                       compute=ray.data.ActorPoolStrategy(size=1),
                       fn_constructor_kwargs=dict(model_path=model.path, batch_size=emb.batch_size),
                       **actor_resources(emb.accelerator)))
    ds.write_parquet(str(out_dir))


def qa_summary(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Pass rate of each check over every (product, content type) of the last attempt, the
    unsupported-attribute findings, and near-duplicate copy across SKUs."""
    stats: dict[str, dict[str, int]] = {}
    unsupported = 0
    for r in rows:
        for per_type in json.loads(r["qa"] or "{}").values():
            for c in per_type["checks"]:
                st = stats.setdefault(c["check"], {"checked": 0, "passed": 0})
                st["checked"] += 1
                st["passed"] += int(c["passed"])
                if c["check"] == "faithfulness":
                    unsupported += len(c["details"])
    for st in stats.values():
        st["pass_rate"] = round(st["passed"] / st["checked"], 4) if st["checked"] else None
    texts = [(r["sku"], " ".join(filter(None, [r.get("description"), r.get("seo_title"), *(r.get("bullets") or [])])))
             for r in rows if r["gen_ok"]]
    dups = near_duplicates(texts, threshold)
    return {"checks": stats, "unsupported_attribute_findings": unsupported,
            "near_duplicates": [{"sku": a, "duplicate_of": b} for a, b in dups.items()],
            "rows_passed": sum(1 for r in rows if r["gen_ok"]), "rows_failed": sum(1 for r in rows if not r["gen_ok"])}


def _read_rows(folder: Path, columns: list[str] | None = None) -> list[dict[str, Any]]:
    if not folder.exists() or not any(folder.glob("*.parquet")):
        return []
    return pads.dataset(str(folder), format="parquet").to_table(columns=columns).to_pylist()


def index_stage(enriched_dir: Path, dims: int, settings: Settings, alias: str, st: dict[str, Any],
                console: Console) -> list[Quarantined]:
    from indexing.client import make_client
    from indexing.writer import bulk_index, create_index, new_index_name, prune_indices, swap_alias

    es = make_client(settings, echo=console.print)
    dataset = pads.dataset(str(enriched_dir), format="parquet")
    total = dataset.count_rows()
    index = new_index_name(alias)
    create_index(es, index, dims)
    st["index"], st["alias"] = index, alias
    rows = (r for batch in dataset.to_batches() for r in batch.to_pylist())
    with Progress(TextColumn("index"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as prog:
        task = prog.add_task("bulk", total=total)
        res = bulk_index(es, index, rows, settings.es, progress=lambda n: prog.advance(task, n))
    count = es.count(index=index)["count"]
    rate = len(res.errors) / total if total else 0.0
    st.update(docs=res.ok, errors=len(res.errors), doc_count=count)
    # Minimal gate until the full one (#4): every good doc landed, the error rate is within bounds.
    reasons = []
    if count != res.ok:
        reasons.append(f"doc count {count} != bulk successes {res.ok}")
    if rate > settings.es.max_error_rate:
        reasons.append(f"bulk error rate {rate:.2%} > {settings.es.max_error_rate:.2%}")
    if total and count == 0:
        reasons.append("index is empty")
    st["gate"] = {"passed": not reasons, "reasons": reasons}
    if reasons:
        st["swapped"] = False
        console.print(f"[red]alias {alias!r} NOT swapped to {index}:[/] " + "; ".join(reasons))
    else:
        st["previous"] = swap_alias(es, alias, index)
        st["swapped"] = True
        st["pruned"] = prune_indices(es, alias, settings.es.keep_indices)
        console.print(f"alias [bold]{alias}[/] -> {index}")
    return [Quarantined(stage="index", reason=f"bulk {e['status']}: {e['reason']}", sku=e["sku"]) for e in res.errors]


def run_nightly(catalog: str, workdir: str | Path, settings: Settings, limit: int | None = None,
                alias: str | None = None, console: Console | None = None,
                content: str | list[str] | None = None, index: bool = True) -> dict[str, Any]:
    """The whole job; with index=False (shopgen generate) it stops after generation and writes the
    passed rows, without embeddings, as the enriched Parquet."""
    console = console or Console(stderr=True)
    types = parse_content(content or settings.generation.content)
    alias = alias or settings.es.alias
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    gen_dir, enriched_dir = work / "stages" / "generated", work / "enriched"
    for d in (gen_dir, enriched_dir):
        shutil.rmtree(d, ignore_errors=True)
    qpath, rpath = work / "quarantine.jsonl", work / "report.json"
    qpath.write_text("")
    started = datetime.now(timezone.utc)
    rep = Report(run_id=started.strftime("%Y%m%dT%H%M%S%fZ"), job="nightly" if index else "generate",
                 content=list(types), catalog=str(catalog),
                 workdir=str(work.resolve()), started_at=started.isoformat(), alias=alias,
                 prompt_version=PROMPT_VERSION, limit=limit, config=settings.redacted(),
                 outputs={"enriched": str(enriched_dir.resolve()), "quarantine": str(qpath.resolve()),
                          "report": str(rpath.resolve())})
    counts = rep.data["counts"]
    try:
        with rep.stage("validate", console) as st:
            products, bad = load_catalog(catalog, settings.catalog, settings.s3, limit)
            _append_quarantine(qpath, bad)
            counts.update(valid=len(products), invalid=len(bad))
            st.update(valid=len(products), invalid=len(bad))
        with rep.stage("models", console):
            gen_model = models.resolve(settings.models.generator, settings)
            emb_model = models.resolve(settings.models.embedder, settings)
            rep.data.update(model_version=gen_model.version, embedding_model=emb_model.version)
        if not products:
            raise RuntimeError("no valid products in the catalog; see quarantine.jsonl")
        with ray_session(settings):
            with rep.stage("generate", console) as st:
                generate_stage(products, gen_model, settings, gen_dir, types)
                rows = _read_rows(gen_dir, ["sku", "gen_ok", "gen_errors", "gen_tokens", "gen_attempts", "qa",
                                            "description", "seo_title", "bullets"])
                failed = [r for r in rows if not r["gen_ok"]]
                by_sku = {p.sku: p for p in products}
                _append_quarantine(qpath, [Quarantined(
                    stage="generate", sku=r["sku"], reason="; ".join(r["gen_errors"]),
                    raw={**by_sku[r["sku"]].model_dump(),
                         "failed_outputs": {t: q.get("raw") for t, q in json.loads(r["qa"]).items() if not q["passed"]}},
                ) for r in failed])
                tokens = sum(r["gen_tokens"] for r in rows)
                st.update(rows=len(rows), ok=len(rows) - len(failed), failed=len(failed), tokens=tokens,
                          attempts=sum(r["gen_attempts"] for r in rows))
                counts.update(generated=len(rows) - len(failed), generation_failed=len(failed))
            st["tokens_per_s"] = round(tokens / st["seconds"], 2) if st.get("seconds") else None
            rep.data["qa"] = qa_summary(rows, settings.qa.near_duplicate_threshold)
            if not index:
                ok = pads.dataset(str(gen_dir), format="parquet").to_table().filter(pc.field("gen_ok"))
                enriched_dir.mkdir(parents=True, exist_ok=True)
                pq.write_table(ok.drop_columns(list(ENRICHED_DROP)), enriched_dir / "part-0.parquet")
                counts["enriched"] = ok.num_rows
                rep.data["status"] = "succeeded"
                return rep.data
            with rep.stage("embed", console) as st:
                embed_stage(gen_dir, emb_model, settings, enriched_dir)
                n = pads.dataset(str(enriched_dir), format="parquet").count_rows() if counts["generated"] else 0
                st["docs"] = n
                counts["embedded"] = n
            st["docs_per_s"] = round(n / st["seconds"], 2) if st.get("seconds") else None
        if counts["embedded"]:
            dims = len(pads.dataset(str(enriched_dir), format="parquet").head(1)["embedding"][0])
            with rep.stage("index", console) as st:
                q = index_stage(enriched_dir, dims, settings, alias, st, console)
                _append_quarantine(qpath, q)
                counts["indexed"] = st["docs"]
            st["docs_per_s"] = round(st["docs"] / st["seconds"], 2) if st.get("seconds") else None
            if not st["swapped"]:
                raise RuntimeError("index gate refused the alias swap: " + "; ".join(st["gate"]["reasons"]))
        else:
            raise RuntimeError("no product passed generation; alias left unchanged (see quarantine.jsonl)")
        rep.data["status"] = "succeeded"
    except Exception as e:
        rep.data["status"] = "failed"
        rep.data["errors"].append(f"{type(e).__name__}: {e}")
        raise
    finally:
        counts["quarantined"] = sum(1 for _ in qpath.open(encoding="utf-8"))
        rep.data["finished_at"] = datetime.now(timezone.utc).isoformat()
        rep.write(rpath)
        console.print(f"report: {rpath.resolve()}")
    return rep.data
