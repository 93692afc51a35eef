"""The generate stage: the generator's inputs from the config, the Ray Data actor pool, QA
figures of its output, and `shopgen generate` (catalog -> generate and check -> enriched/)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from rich.console import Console

from shopgen.adapters import models
from shopgen.adapters.raysupport import build_processor, collect, ray_session
from shopgen.catalog.load import load_catalog
from shopgen.checks import near_duplicates
from shopgen.core.config import ModelsConfig, Settings
from shopgen.core.content import CONTENT_TYPES, candidates_for, few_shot_for, parse_content
from shopgen.core.copy import CopyEntry, Entries, check_reasons, entry, public_json
from shopgen.core.records import Product
from shopgen.core.report import Coverage, QASummary
from shopgen.core.run import append_jsonl, append_quarantine, running, start_run
from shopgen.generate.engine import (
    GEN_INPUT_SCHEMA,
    GENERATED_SCHEMA,
    GateSpec,
    PromptSpec,
    VLLMGenerator,
    examples_json,
    product_row,
)
from shopgen.generate.prompts import PROMPT_VERSION

ENRICHED_DROP = ("gen_ok", "gen_errors", "plan")
UNSUPPORTED_LANGUAGE = ModelsConfig.UNSUPPORTED_LANGUAGE


def unsupported_languages(locales: Iterable[tuple[str, str | None]], settings: Settings) -> dict[str, str]:
    """sku -> language of each (sku, locale) whose language the generator does not write
    (models.generator_languages): those products are not sent to the LLM (pure)."""
    m = settings.models
    langs = set(m.languages())
    return {sku: lang for sku, loc in locales if (lang := m.language_of(loc)) not in langs}


def unsupported_copy(types: Iterable[str]) -> Entries:
    """The per-type copy of a product the generator does not write: none, unsupported_language."""
    return {t: CopyEntry(reasons=[UNSUPPORTED_LANGUAGE]) for t in types}


def _blocks(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)] or [table]


def copy_failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (product, content type) whose copy failed tonight: sku, type, reasons and the
    last raw output, for copy_failures.jsonl. The product itself stays searchable."""
    out = []
    for r in rows:
        for t, q in json.loads(r["qa"] or "{}").items():
            if not q["passed"]:
                out.append({"sku": r["sku"], "type": t, "reasons": check_reasons(q["checks"]), "raw": q.get("raw")})
    return out


def copy_of_row(row: dict[str, Any]) -> Entries:
    """Tonight's per-type verdicts of a generated row: fresh or none, with the failure reasons."""
    return {t: CopyEntry(status="fresh" if q["passed"] else "none", reasons=check_reasons(q["checks"]))
            for t, q in json.loads(row.get("qa") or "{}").items()}


def coverage(valid: int, searchable: int, copy: Mapping[str, Mapping[str, CopyEntry]],
             types: tuple[str, ...] | list[str], all_fresh: int = 0) -> Coverage:
    """The report's coverage: the searchable share of valid products, and per content type the
    share of valid products with fresh, kept and no copy (pure). `all_fresh`: products not in
    `copy` whose every type is fresh. `unsupported_language`: products whose copy was not asked
    for because the generator does not write their language."""
    per: dict[str, dict[str, Any]] = {}
    for t in types:
        n = {k: 0 for k in ("fresh", "kept", "none")}
        for entries in copy.values():
            n[entry(entries, t).status] += 1
        n["fresh"] += all_fresh
        n["none"] += max(0, valid - len(copy) - all_fresh)
        per[t] = {**n, **{f"{k}_share": round(v / valid, 4) if valid else None for k, v in n.items()}}
    foreign = sum(1 for entries in copy.values() if any(UNSUPPORTED_LANGUAGE in e.reasons for e in entries.values()))
    return Coverage.model_validate({"valid": valid, "searchable": searchable,
                                    "searchable_share": round(searchable / valid, 4) if valid else None,
                                    "types": per, "unsupported_language": foreign})


# What the driver reads back from generated rows: the report's figures, QA summary and quarantine.
QA_COLUMNS = ["sku", "gen_ok", "gen_errors", "gen_tokens", "gen_attempts", "qa", "description", "seo_title", "bullets"]


def gate_spec(settings: Settings, brands: list[str]) -> GateSpec:
    """The gate's inputs from the config. `brands`: every brand of the catalog, which the
    faithfulness and wrong-product checks may name."""
    return GateSpec(brands=brands, banned=settings.qa.banned_claims, claims=settings.qa.claims,
                    content={t: c.model_dump(exclude_none=True) for t, c in settings.content.items()})


def serving_settings(settings: Settings, model: models.ModelRef) -> Settings:
    """The settings a model is served with: a fine-tuned version's own prompt (its manifest's
    `prompt`, the one it was trained on) replaces generation.prompt."""
    if not model.prompt or model.prompt == settings.generation.prompt:
        return settings
    return settings.model_copy(update={"generation": settings.generation.model_copy(update={"prompt": model.prompt})})


def few_shot(settings: Settings, types: tuple[str, ...] | list[str]) -> dict[str, int]:
    """Worked examples per content type (0 for all with the v2 prompt)."""
    if settings.generation.prompt != "grounded":
        return {t: 0 for t in types}
    return {t: few_shot_for(CONTENT_TYPES[t], settings.generation.few_shot, settings.content.get(t)) for t in types}


def prompt_spec(settings: Settings) -> PromptSpec:
    return PromptSpec(prompt=settings.generation.prompt, feedback=settings.generation.feedback,
                      style={t: c.style for t, c in settings.content.items() if c.style},
                      candidates={t: candidates_for(ct, settings.content.get(t)) for t, ct in CONTENT_TYPES.items()})


def generator_input(products: list[Product], todo: dict[str, list[str]] | None = None,
                    examples: dict[str, dict[str, list[tuple[Product, dict[str, Any]]]]] | None = None,
                    plans: dict[str, str] | None = None) -> pa.Table:
    """The generator's input rows: each product with tonight's content types, examples and plan."""
    rows = [{**product_row(p), "gen_types": (todo or {}).get(p.sku), "examples": examples_json((examples or {}).get(p.sku)),
             "plan": (plans or {}).get(p.sku)} for p in products]
    return pa.Table.from_pylist(rows, schema=GEN_INPUT_SCHEMA)


def generator_dataset(products: list[Product], model: models.ModelRef, settings: Settings, content: tuple[str, ...],
                      brands: list[str], actor: type | None = None, todo: dict[str, list[str]] | None = None,
                      examples: dict[str, dict[str, list[tuple[Product, dict[str, Any]]]]] | None = None,
                      plans: dict[str, str] | None = None, finish: Any = None, **actor_kwargs: Any):
    """The products as a Ray Dataset mapped through the generator's actor pool (GENERATED_SCHEMA
    batches). `todo`: sku -> the content types to generate (default: all of `content`). The actors
    get the model as a reference and fetch it on their own node. `finish`: a batch function each
    actor applies to its own output (the nightly's commit), with `plans` carried per row."""
    import ray

    table = generator_input(products, todo, examples, plans)
    gen = settings.generation
    ds = ray.data.from_arrow(_blocks(table, gen.batch_size))
    return build_processor(ds, gen, actor or VLLMGenerator, dict(model=model, settings=settings, content=content,
                                                gate=gate_spec(settings, brands), spec=prompt_spec(settings),
                                                **actor_kwargs), finish=finish,
                           # A dead engine kills its actor; Ray restarts it and retries the batch a bounded number of times.
                           max_restarts=gen.engine_restarts, max_task_retries=gen.engine_restarts)


def generate_stage(products: list[Product], model: models.ModelRef, settings: Settings, out_dir: Path,
                   content: tuple[str, ...]) -> None:
    from shopgen.generate.fewshot import shop_examples

    brands = sorted({p.brand for p in products if p.brand})
    todo = {p.sku: list(content) for p in products}
    examples = shop_examples(products, products, todo, gate_spec(settings, brands), few_shot(settings, content))
    ds = generator_dataset(products, model, settings, content, brands, examples=examples)
    collect(ds, out_dir)


def qa_summary(rows: list[dict[str, Any]], threshold: float) -> QASummary:
    """Pass rate of each check over every (product, content type) of the last attempt, the accepted
    rate and failure reasons per type, the unsupported-attribute findings, and near-duplicate copy."""
    stats: dict[str, dict[str, int]] = {}
    types: dict[str, dict[str, Any]] = {}
    unsupported = 0
    for r in rows:
        for t, per_type in json.loads(r["qa"] or "{}").items():
            ty = types.setdefault(t, {"attempted": 0, "accepted": 0, "failures": {}, "tokens": 0, "samples": 0})
            ty["attempted"] += 1
            ty["accepted"] += int(per_type["passed"])
            ty["tokens"] += int(per_type.get("tokens") or 0)
            ty["samples"] += int(per_type.get("samples") or 0)
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
        ty["tokens_per_accepted"] = round(ty["tokens"] / ty["accepted"], 1) if ty["accepted"] else None
    texts = [(r["sku"], " ".join(filter(None, [r.get("description"), r.get("seo_title"), *(r.get("bullets") or [])])))
             for r in rows]
    dups = near_duplicates([(s, t) for s, t in texts if t.strip()], threshold)
    return QASummary.model_validate({
        "checks": stats, "types": types, "unsupported_attribute_findings": unsupported,
        "near_duplicates": [{"sku": a, "duplicate_of": b} for a, b in dups.items()],
        "rows_passed": sum(1 for r in rows if r["gen_ok"]), "rows_failed": sum(1 for r in rows if not r["gen_ok"])})


def _read_rows(folder: Path, columns: list[str] | None = None) -> list[dict[str, Any]]:
    if not folder.exists() or not any(folder.glob("*.parquet")):
        return []
    return pads.dataset(str(folder), format="parquet").to_table(columns=columns).to_pylist()


def run_generate(catalog: str, workdir: str | Path, settings: Settings, limit: int | None = None,
                 console: Console | None = None, content: str | list[str] | None = None) -> dict[str, Any]:
    """`shopgen generate`: catalog -> validate -> generate and check; the passed rows, without
    embeddings, go to <workdir>/enriched (the nightly job is shopgen.nightly.recipe)."""
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
            settings = serving_settings(settings, gen_model)
            rep.data.update(model_version=gen_model.version, prompt=settings.generation.prompt)
        if not products:
            raise RuntimeError("no valid products in the catalog; see quarantine.jsonl")
        # Products in a language the generator does not write are not sent to it (still enriched).
        foreign = unsupported_languages(((p.sku, p.locale) for p in products), settings)
        todo = [p for p in products if p.sku not in foreign]
        counts["unsupported_language"] = len(foreign)
        with ray_session(settings):
            with rep.stage("generate", console) as st:
                if todo:
                    generate_stage(todo, gen_model, settings, gen_dir, types)
                rows = _read_rows(gen_dir, QA_COLUMNS)
                failed = [r for r in rows if not r["gen_ok"]]
                append_jsonl(work / "copy_failures.jsonl", copy_failures(rows))
                tokens = sum(r["gen_tokens"] for r in rows)
                st.update(rows=len(rows), ok=len(rows) - len(failed), failed=len(failed), tokens=tokens,
                          attempts=sum(r["gen_attempts"] for r in rows), unsupported_language=len(foreign))
                counts.update(generated=len(rows) - len(failed), generation_failed=len(failed))
            st["tokens_per_s"] = round(tokens / st["seconds"], 2) if st.get("seconds") else None
            rep.data["qa"] = qa_summary(rows, settings.qa.near_duplicate_threshold).to_dict()
            copy = {r["sku"]: copy_of_row(r) for r in rows} | {s: unsupported_copy(types) for s in foreign}
            rep.data["coverage"] = coverage(len(products), len(products), copy, types).to_dict()
        counts["enriched"] = _write_enriched(gen_dir, enriched_dir, [p for p in products if p.sku in foreign], types)
        rep.data["status"] = "succeeded"
    return rep.data


def _write_enriched(gen_dir: Path, enriched_dir: Path, foreign: list[Product], types: tuple[str, ...]) -> int:
    """Every valid product is kept, each with the copy types that passed (enrichment only adds);
    a product the generator does not write, with no copy (unsupported_language). Returns the rows."""
    has_rows = gen_dir.exists() and any(gen_dir.glob("*.parquet"))
    ok = pads.dataset(str(gen_dir), format="parquet").to_table() if has_rows else GENERATED_SCHEMA.empty_table()
    copies = [public_json(copy_of_row(r), max_reasons=None) for r in ok.select(["qa"]).to_pylist()]
    ok = ok.append_column("copy", pa.array(copies, pa.string()))
    if foreign:
        blank = public_json(unsupported_copy(types))
        ok = pa.concat_tables([ok, pa.Table.from_pylist([{**product_row(p), "copy": blank} for p in foreign],
                                                        schema=ok.schema)])
    enriched_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(ok.drop_columns(list(ENRICHED_DROP)), enriched_dir / "part-0.parquet")
    return ok.num_rows
