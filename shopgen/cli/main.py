"""The `shopgen` launcher."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from shopgen.cli.output import echo_training, fmt, guard
from shopgen.cli.overrides import SET_HELP, given, override, parse_set, set_values
from shopgen.core.config import Settings, load_settings

err = Console(stderr=True, soft_wrap=True)  # a log line stays one line, whatever its length


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="SHOPGEN_CONFIG",
              help="YAML config file (default: built-in local defaults; env SHOPGEN_CONFIG).")
@click.option("--set", "set_pairs", multiple=True, metavar="KEY=VALUE", callback=lambda c, p, v: parse_set(v),
              help=SET_HELP)
@click.option("--verbose", is_flag=True,
              help="Also show Ray's and vLLM's own logs on the console (they always go to <run folder>/logs/).")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, set_pairs: dict[str, str], verbose: bool) -> None:
    """shopgen: generate, check, embed and index product copy for a whole catalog."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if verbose:  # in the environment, so child processes and Ray workers see it too
        os.environ["SHOPGEN_VERBOSE"] = "1"
    from pydantic import ValidationError

    try:
        s = load_settings(config_file)
    except ValidationError as e:  # never echo the offending value: it may be a misplaced secret
        msgs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors(include_input=False))
        raise click.ClickException(f"invalid configuration: {msgs}") from None
    except Exception as e:  # a bad config file or env var is a user error, not a traceback
        raise click.ClickException(f"invalid configuration: {type(e).__name__}: {e}") from None
    s = override(s, set_values(set_pairs), given_as="--set", texts=set_pairs)
    ctx.obj = {"settings": s, "set": set_pairs, "verbose": verbose}


# ---- dev: the embedded local stack ----------------------------------------------------------

@main.group()
def dev() -> None:
    """Start, stop and inspect the embedded Elasticsearch-API server (noida-db)."""


@dev.command("up")
@click.pass_context
def dev_up(ctx: click.Context) -> None:
    """Start the embedded server on 127.0.0.1 (a free port, recorded under the home folder)."""
    from shopgen.adapters import devstack

    st = devstack.up(_settings(ctx).home)
    click.echo(f"running at {st['url']} (pid {st['pid']}, data {st['data_dir']})")


@dev.command("down")
@click.pass_context
def dev_down(ctx: click.Context) -> None:
    """Stop the embedded server by its pid."""
    from shopgen.adapters import devstack

    click.echo("stopped" if devstack.down(_settings(ctx).home) else "not running")


@dev.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def dev_status(ctx: click.Context, as_json: bool) -> None:
    """Report whether the embedded server runs and where."""
    from shopgen.adapters import devstack

    st = devstack.status(_settings(ctx).home)
    if as_json:
        click.echo(json.dumps(st))
    elif st["running"]:
        click.echo(f"running at {st['url']} (pid {st['pid']}, reachable={st['reachable']}, data {st['data_dir']})")
    else:
        click.echo("not running")


# ---- models ---------------------------------------------------------------------------------

REGISTRY_OPTION = click.option("--registry", default=None,
                               help="Model registry: a folder or s3:// prefix (default: models.registry, "
                                    "i.e. <home>/registry).")


@main.group()
@REGISTRY_OPTION
@click.pass_context
def models(ctx: click.Context, registry: str | None) -> None:
    """Prepare models; list, show and promote fine-tuned versions in the registry."""
    ctx.obj["registry"] = registry


def _with_registry(s: Settings, registry: str | None) -> Settings:
    return override(s, given({"models.registry": registry}), given_as="--registry")


@models.command("prepare")
@click.pass_context
def models_prepare(ctx: click.Context) -> None:
    """Convert/download the configured generator and embedder into the model cache (once)."""
    from shopgen.adapters import models as m

    for name, local in m.prepare_all(_settings(ctx)).items():
        click.echo(f"{name}: {local.path}" + (f" + adapter {local.adapter_path}" if local.adapter_path else "")
                   + f"  [{local.version}]")


def _registry(ctx: click.Context, registry: str | None):
    from shopgen.adapters.registry import Registry

    s = _with_registry(_settings(ctx), registry or ctx.obj.get("registry"))
    return Registry(s.registry_uri, s.s3)


@models.command("list")
@REGISTRY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list: version, status, base, metrics, ...")
@click.pass_context
def models_list(ctx: click.Context, registry: str | None, as_json: bool) -> None:
    """List the registry's fine-tuned versions, oldest first, with base vs fine-tuned test metrics."""
    rows = _registry(ctx, registry).versions()
    if as_json:
        click.echo(json.dumps([{k: r.get(k) for k in ("version", "kind", "status", "base", "method", "created_at",
                                                      "data_hash", "run", "metrics", "gate")} for r in rows]))
        return
    if not rows:
        click.echo("no versions registered")
        return
    t = Table("version", "kind", "status", "base", "method", "quality base→ft", "unsupported base→ft", "gate")
    for r in rows:
        b, f = (r.get("metrics") or {}).get("base") or {}, (r.get("metrics") or {}).get("finetuned") or {}
        # A generator's quality is test ROUGE-L; an embedder's, held-out NDCG@10.
        # (and a generator evaluated through the serving path: its accepted rate).
        key = "ndcg@10" if r.get("kind") == "embedder" else \
            "accepted_rate" if (r.get("metrics") or {}).get("eval") == "serving" else "rouge_l"
        t.add_row(r["version"], r.get("kind") or "generator", r["status"], r["base"], r.get("method") or "-",
                  f"{key} {fmt(b.get(key))} → {fmt(f.get(key))}",
                  f"{fmt(b.get('unsupported_rate'))} → {fmt(f.get('unsupported_rate'))}",
                  "pass" if (r.get("gate") or {}).get("passed") else "fail")
    # Piped output has no terminal width; keep version ids whole instead of folding them at 80.
    Console(width=None if sys.stdout.isatty() else 160).print(t)


@models.command("show")
@click.argument("version")
@REGISTRY_OPTION
@click.pass_context
def models_show(ctx: click.Context, version: str, registry: str | None) -> None:
    """Print one version's manifest (base, data hash, config, metrics, created_at) as JSON."""
    try:
        click.echo(json.dumps(_registry(ctx, registry).get(version), indent=2))
    except KeyError as e:
        raise click.ClickException(e.args[0]) from None


@models.command("promote")
@click.argument("version")
@REGISTRY_OPTION
@click.option("--force", is_flag=True, help="Promote even when the gate refuses (recorded in promoted.json).")
@click.pass_context
def models_promote(ctx: click.Context, version: str, registry: str | None, force: bool) -> None:
    """Make VERSION the default for generate/nightly (a generator) or for embedding and search (an
    embedder). The gate: a generator's serving-path accepted rate must be above the base's on every
    trained type, with no check failing more often; an embedder must beat the base's held-out NDCG@10."""
    try:
        ok, reasons = _registry(ctx, registry).promote(version, force=force)
    except KeyError as e:
        raise click.ClickException(e.args[0]) from None
    if not ok:
        raise click.ClickException(f"gate refused {version}: " + "; ".join(reasons) + " (--force overrides)")
    click.echo(f"promoted {version}" + (f" despite the gate: {'; '.join(reasons)}" if reasons else ""))


@main.command()
@click.option("--catalog", required=True, help="Catalog with human-written copy: .jsonl/.csv/.parquet, local or s3://.")
@click.option("--base", default="base", show_default=True,
              help="Model to fine-tune: 'base' (models.generator), a built-in, an HF folder or s3:// prefix.")
@click.option("--method", type=click.Choice(["lora", "full"]), default=None, help="Default: finetune.method (lora).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Ray Train workers (DDP).")
@click.option("--gpu", is_flag=True, default=None, help="One GPU per worker, bf16.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Optimizer steps (overrides epochs).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (default: finetune.epochs).")
@click.option("--registry", "--out", "registry", default=None,
              help="Registry to register the result in: a folder or s3:// prefix (default: models.registry).")
@click.option("--name", default=None, help="Run name; re-running with the same name resumes its checkpoints "
                                           "(default: derived from the data and config hashes).")
@click.option("--storage", default=None, help="Ray Train storage for checkpoints: folder or s3:// "
                                              "(default: finetune.storage_path, i.e. <home>/finetune).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Take only the first N valid products.")
@click.option("--from-accepted", "from_accepted", default=None, metavar="STATE",
              help="Also train on the copy the gate accepted in earlier nightly runs, read from this nightly state "
                   "prefix (folder or s3://, e.g. <workdir>/state/<alias>): adds 'accepted' to finetune.sources.")
@click.option("--from-review", "from_review", default=None, metavar="PATH",
              help="Also train on the texts people approved or edited: a `shopgen review export --train` file "
                   "(finetune.reviewed).")
@click.option("--promote", is_flag=True, default=None, help="Promote the new version if it passes the gate.")
@click.option("--task", type=click.Choice(["copy", "answers"]), default="copy", show_default=True,
              help="copy: the shop's product copy; answers: the answer drafter, on the support log (--data).")
@click.option("--data", default=None, help="--task answers: the support log (question, answer, sku?, resolved?; "
                                           ".jsonl/.csv/.parquet, a folder or s3://).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.pass_context
def finetune(ctx: click.Context, catalog: str, base: str, method: str | None, workers: int | None, gpu: bool | None,
             max_steps: int | None, epochs: int | None, registry: str | None, name: str | None, storage: str | None,
             limit: int | None, from_accepted: str | None, from_review: str | None, promote: bool | None, task: str,
             data: str | None, as_json: bool) -> None:
    """Fine-tune the generator with Ray Train on the shop's own copy that passes the gate (and, with
    --from-accepted, on copy the gate accepted in earlier nightly runs); evaluate the candidate and the
    base through the serving path (vLLM, grammar, best-of-n, gate) on held-out products; register
    a candidate version."""
    from shopgen.finetune.recipe import run_finetune

    if max_steps and epochs:
        raise click.UsageError("give --max-steps or --epochs, not both")
    s = _settings(ctx)
    upd = given({"models.registry": registry, "finetune.method": method, "finetune.workers": workers,
                 "finetune.gpu": gpu, "finetune.max_steps": max_steps, "finetune.epochs": epochs,
                 "finetune.storage_path": storage, "finetune.accepted_state": from_accepted,
                 "finetune.reviewed": from_review})
    if epochs:  # max_steps would override them
        upd["finetune.max_steps"] = None
    if from_accepted:
        upd["finetune.sources"] = [*dict.fromkeys([*s.finetune.sources, "accepted"])]
    s = override(s, upd)
    if task == "answers" and not data:
        raise click.UsageError("--task answers needs --data LOG (the support log)")
    try:
        if task == "answers":
            from shopgen.finetune.answers import run_answer_finetune

            rep = run_answer_finetune(data, catalog, s, base=base, name=name, promote=promote, console=err)
        else:
            rep = run_finetune(catalog, s, base=base, name=name, limit=limit, promote=promote, console=err)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(rep))
        return
    if task == "answers":
        for who in ("base", "finetuned"):
            f = rep["metrics"].get(who) or {}
            click.echo(f"held-out {who:9s}: " + "  ".join(f"{k}={fmt(f.get(k))}" for k in (
                "n", "correct_rate", "wrong_rate", "refusal_rate")) + f"  drafted_by={f.get('drafted_by')}"
                       + f"  llm_only={f.get('llm_only')}")
        g = rep["gate"]
        click.echo("gate: " + ("pass" if g["passed"] else "fail: " + "; ".join(g["reasons"])))
        click.echo(f"answerer {rep['version']} ({'promoted' if rep.get('promoted') else 'candidate'}) in {rep['registry']}")
        return
    echo_training(rep, "test")


# ---- pipeline -------------------------------------------------------------------------------

CONTENT_OPTION = click.option(
    "--content", default=None,
    help="Comma-separated content types: description, bullets, seo_title, ad_copy, faq "
         "(default: generation.content, i.e. description,ad_copy,bullets).")
MODEL_OPTION = click.option(
    "--model", default=None, help="Model reference: 'base', a registry version, a built-in name, an HF or "
                                  "adapter folder, or an s3:// prefix (default: the registry's promoted "
                                  "version, else models.generator).")

@main.command()
@click.option("--catalog", required=True, help="Catalog file: .jsonl, .csv or .parquet; local path or s3:// URI.")
@click.option("--workdir", default=None, help="Local folder for stage outputs, report.json and report.html "
                                              "(default: <home>/work).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Take only the first N valid products (they are the catalog: later SKUs count as deleted).")
@click.option("--alias", default=None, help="Elasticsearch alias to build or update (default: es.alias, 'products').")
@click.option("--state", "state", default=None,
              help="State prefix, a folder or s3:// URI: per-SKU hashes, committed outputs, run reports, the lock "
                   "(default: nightly.state, else <workdir>/state). One sub-prefix per alias.")
@click.option("--full", is_flag=True, help="Regenerate and re-embed every product and build a new index (gate + swap).")
@click.option("--force-unlock", is_flag=True, help="Clear the run lock first (only when its holder is known dead).")
@click.option("--events", default=None, metavar="PATH",
              help="Shopper behaviour log (.jsonl/.csv/.parquet, a folder or s3:// prefix; default: recommend.events): "
                   "files not read on an earlier night are folded into also_viewed, bought_together and recommended.")
@CONTENT_OPTION
@MODEL_OPTION
@REGISTRY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print report.json's content instead of a summary line.")
@click.pass_context
def nightly(ctx: click.Context, catalog: str, workdir: str | None, limit: int | None, alias: str | None,
            state: str | None, full: bool, force_unlock: bool, events: str | None, content: str | None,
            model: str | None, registry: str | None, as_json: bool) -> None:
    """Incremental nightly run: regenerate, re-embed and re-index only new and changed products.

    Unchanged products reuse their stored outputs, deleted SKUs leave the index, and a run that died
    is resumed from its committed batches. One run per alias and state at a time (a lock in the state
    store). The first run, --full, or a large change builds a new index behind the alias (gate + swap)."""
    from shopgen.nightly import recipe as job
    from shopgen.state import LockedError

    rep = _guard(lambda s: job.run(catalog, workdir or s.home / "work", s, state=state, alias=alias, full=full,
                                   limit=limit, content=_content(content), force_unlock=force_unlock, console=err),
                 override(_model_settings(ctx, model, registry), given({"recommend.events": events})), LockedError)
    if as_json:
        click.echo(json.dumps(rep, default=str))
        return
    c = rep["counts"]
    click.echo(f"{rep.get('mode', '?')} run {rep['run_id']}: new {c.get('new', 0)}, changed {c.get('changed', 0)}, "
               f"unchanged {c.get('unchanged', 0)}, deleted {c.get('deleted', 0)}, quarantined "
               f"{c.get('quarantined', 0)}; regenerated {c.get('regenerated', 0)}; indexed {c.get('indexed', 0)} "
               f"into alias {rep['alias']!r}; report {rep['outputs']['report']}")
    cov = rep.get("coverage") or {}
    if cov:
        per = "; ".join(f"{t}: {v['fresh']} fresh, {v['kept']} kept, {v['none']} none"
                        for t, v in cov.get("types", {}).items())
        click.echo(f"coverage: {cov['searchable']} of {cov['valid']} valid products searchable; {per}")


@main.command("report")
@click.argument("run", default="latest")
@click.option("--state", "state", default=None, help="State prefix the run used (default: nightly.state, else "
                                                     "<home>/work/state).")
@click.option("--alias", default=None, help="Alias whose runs to look in (default: es.alias).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report.json.")
@click.pass_context
def report(ctx: click.Context, run: str, state: str | None, alias: str | None, as_json: bool) -> None:
    """Summarise a run: RUN is a run id, 'latest', a run folder, or a report.json path or s3:// URI."""
    from shopgen.nightly.recipe import state_prefix
    from shopgen.report.render import load_report, summary

    s = _settings(ctx)
    prefix = state_prefix(s, s.home / "work", state, alias or s.es.alias)
    try:  # RunReport.load: a report that is not a JSON object is an error naming the file
        rep = load_report(run, [prefix], s.s3)
    except (OSError, ValueError) as e:  # FileNotFoundError, ReportError
        raise click.ClickException(str(e)) from None
    if as_json and rep.dropped:  # the summary lists them itself
        err.print(f"left out of the report (not readable): {'; '.join(rep.dropped)}", style="yellow", markup=False)
    click.echo(rep.dump_json() if as_json else summary(rep))


@main.command()
@click.option("--catalog", required=True, help="Catalog file: .jsonl, .csv or .parquet; local path or s3:// URI.")
@click.option("--out", "out", default=None, help="Output folder: enriched/, quarantine.jsonl, report.json "
                                                 "(default: <home>/generate).")
@CONTENT_OPTION
@MODEL_OPTION
@REGISTRY_OPTION
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Take only the first N valid products.")
@click.pass_context
def generate(ctx: click.Context, catalog: str, out: str | None, content: str | None, model: str | None,
             registry: str | None, limit: int | None) -> None:
    """Generate and check copy without indexing (same outputs as nightly, minus embeddings)."""
    rep = _run(ctx, catalog, out, limit, content, model, registry=registry)
    c = rep["counts"]
    click.echo(f"generated {c.get('enriched', 0)} products; quarantined {c.get('quarantined', 0)}; "
               f"report {rep['outputs']['report']}")


def _model_settings(ctx: click.Context, model: str | None, registry: str | None) -> Settings:
    s = _with_registry(_settings(ctx), registry)
    if model:  # an explicit model wins over the registry's promoted version; 'base' is models.generator
        # The promoted embedder stays: --model names the generator only.
        from shopgen.adapters.models import embedding_ref

        upd = {"models.use_promoted": False, "models.embedder": embedding_ref(s)}
        s = override(s, upd | ({} if model == "base" else {"models.generator": model}), given_as="--model")
    return s


def _content(content: str | None):
    from shopgen.core.content import parse_content

    try:
        return parse_content(content) if content else None
    except ValueError as e:
        raise click.ClickException(str(e)) from None


_guard = guard


def _run(ctx: click.Context, catalog: str, workdir: str | None, limit: int | None, content: str | None,
         model: str | None, registry: str | None = None) -> dict:
    from shopgen.generate.stage import run_generate

    return _guard(lambda s: run_generate(catalog, workdir or s.home / "generate", s, limit=limit, console=err,
                                         content=_content(content)),
                  _model_settings(ctx, model, registry))


MODE_OPTION = click.option(
    "--mode", type=click.Choice(["auto", "bm25", "knn", "hybrid", "ltr"]), default="auto", show_default=True,
    help="auto: the mode tune-search chose for the index, else bm25. hybrid fuses bm25 and knn with the "
         "index's tuned weights (else search.fusion / search.*_weight). ltr reranks the top "
         "search.ltr_candidates hybrid hits with the alias's ranker (shopgen train-ranker).")
RANKER_OPTION = click.option("--ranker", "ranker_version", default=None,
                             help="ltr: this ranker version from the registry instead of the alias's.")


@main.command()
@click.argument("query")
@MODE_OPTION
@RANKER_OPTION
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True, help="Number of hits.")
@click.option("--alias", default=None, help="Alias to query (default: es.alias).")
@click.option("--category", default=None, help="Filter: exact category.")
@click.option("--brand", default=None, help="Filter: exact brand.")
@click.option("--locale", default=None, help="Filter: locale, e.g. en-US.")
@click.option("--min-price", type=float, default=None, help="Filter: lowest price.")
@click.option("--max-price", type=float, default=None, help="Filter: highest price.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
@click.pass_context
def search(ctx: click.Context, query: str, mode: str, ranker_version: str | None, k: int, alias: str | None,
           category: str | None, brand: str | None, locale: str | None, min_price: float | None,
           max_price: float | None, as_json: bool) -> None:
    """Search the catalog through the alias: bm25, knn, hybrid (weighted RRF or linear fusion) or ltr.

    hybrid fuses with Elasticsearch's retrievers when the cluster allows them (es.hybrid=auto),
    else the same computation client-side."""
    from indexing.lifecycle import profile_for
    from indexing.search import Filters
    from indexing.search import search as run_search
    from shopgen.adapters.encoder import query_encoder
    from shopgen.index.ranker import loader

    s = _settings(ctx)
    es = _client(s)
    target = alias or s.es.alias
    try:
        profile = profile_for(es, target, s)
        used = profile.mode if mode == "auto" else mode
        encoder = query_encoder(_encoder(s, es, target), s.embedding) if used != "bm25" else None
        ranker = loader(s, es, target, ranker_version)() if used == "ltr" else None
        hits = run_search(es, target, query, used, k, encoder, Filters(category, brand, locale, min_price, max_price),
                          profile, ranker=ranker)
    except (LookupError, FileNotFoundError, ValueError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(hits, ensure_ascii=False))
        return
    wide = not sys.stdout.isatty()  # in a log: one line per hit (a description is cut at 140 characters)
    t = Table(title=f"{used}: {query}", show_lines=False)
    for col in ("#", "sku", "score", "title", "description"):
        t.add_column(col, overflow="fold", max_width=(141 if wide else 70) if col == "description" else None)
    for i, h in enumerate(hits, 1):
        desc = (h.get("description") or "")
        t.add_row(str(i), h["sku"], f"{h['score']:.4f}", h.get("title") or "", desc[:140] + ("…" if len(desc) > 140 else ""))
    Console(width=260 if wide else None).print(t)


def _client(s: Settings):
    from indexing.client import make_client

    try:
        return make_client(s, echo=err.print)
    except ValueError as e:  # e.g. an unreadable secret file
        raise click.ClickException(str(e)) from None


def _encoder(s: Settings, es=None, target: str | None = None):
    """The query encoder: the model that embedded the target index (its _meta.embedding_ref), else
    the one a build would use now; a mismatch with the index's vectors is reported."""
    from shopgen.adapters import models as m
    from shopgen.adapters.encoder import load_encoder

    meta = {}
    if es is not None and target:
        from indexing.lifecycle import index_meta
        from indexing.writer import alias_targets

        names = alias_targets(es, target) or [target]
        meta = index_meta(es, names[0]) if es.indices.exists(index=names[0]) else {}
    ref = m.resolve(meta.get("embedding_ref") or m.embedding_ref(s), s)
    if meta.get("embedding_model") and meta["embedding_model"] != ref.version:
        err.print(f"[yellow]WARNING[/]: {target} was embedded by {meta['embedding_model']}, but queries are "
                  f"encoded by {ref.version}; rebuild the index (`shopgen nightly` does after a new embedder)")
    return load_encoder(m.materialize(ref, s).path)


# ---- index: lifecycle of the Elasticsearch side ---------------------------------------------

@main.group()
def index() -> None:
    """Build, list and roll back the versioned indices behind an alias."""


ALIAS_OPTION = click.option("--alias", default=None, help="Elasticsearch alias (default: es.alias, 'products').")


@index.command("build")
@click.option("--input", "source", required=True,
              help="A raw catalog (.jsonl/.csv/.parquet) or `shopgen generate` output (its enriched/ folder or "
                   "a .parquet file); local path or s3:// URI.")
@ALIAS_OPTION
@click.option("--workdir", default=None, help="Where stage outputs and report.json go (default: <home>/index-build).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Take only the first N valid products.")
@click.option("--incremental", is_flag=True,
              help="Upsert into the live index (external versions) and delete SKUs missing from the input, "
                   "instead of building a new index.")
@click.option("--version-from", type=click.Choice(["updated_at", "run"]), default="updated_at", show_default=True,
              help="--incremental: the external version of a doc is its updated_at (else the run's epoch), or "
                   "always the run's epoch.")
@click.option("--keep-missing", is_flag=True, help="--incremental: do not delete SKUs missing from the input.")
@click.pass_context
def index_build(ctx: click.Context, source: str, alias: str | None, workdir: str | None, limit: int | None,
                incremental: bool, version_from: str, keep_missing: bool) -> None:
    """Embed and index a catalog, run the gate, then swap the alias (or upsert with --incremental)."""
    import time

    from elasticsearch import ApiError, TransportError

    from shopgen.index.stage import IncrementalSpec, run_index_build

    s = _settings(ctx)
    if incremental and limit and not keep_missing:
        raise click.UsageError("--incremental with --limit would delete every live SKU past the limit; "
                               "add --keep-missing")
    inc = (IncrementalSpec(run_epoch=int(time.time() * 1000), version_from=version_from,
                           delete_missing=not keep_missing) if incremental else None)
    try:
        rep = run_index_build(source, workdir or s.home / "index-build", s, alias=alias, limit=limit, console=err,
                              incremental=inc)
    except (FileNotFoundError, ValueError, RuntimeError, LookupError) as e:
        raise click.ClickException(str(e)) from None
    except (ApiError, TransportError) as e:
        raise click.ClickException(f"Elasticsearch: {e}") from None
    st, c = rep["stages"]["index"], rep["counts"]
    if incremental:
        click.echo(f"upserted {st['upserted']} (unchanged {st['unchanged']}), deleted {st.get('deleted', 0)} in "
                   f"{st['index']} behind alias {rep['alias']!r}; report {rep['outputs']['report']}")
    else:
        click.echo(f"indexed {c.get('indexed', 0)} products into {st['index']}; alias {rep['alias']!r} -> "
                   f"{st['index']}; quarantined {c.get('quarantined', 0)}; report {rep['outputs']['report']}")


@index.command("list")
@ALIAS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def index_list(ctx: click.Context, alias: str | None, as_json: bool) -> None:
    """Show the alias's indices (newest first), which one is live, doc counts and model versions."""
    from indexing.lifecycle import list_indices

    s = _settings(ctx)
    rows = list_indices(_client(s), alias or s.es.alias)
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"alias {alias or s.es.alias!r} has no indices yet")
    for r in rows:  # one line per index, readable at any terminal width
        click.echo(f"{r['index']}  {'LIVE' if r['live'] else '    '}  gate={r['gate']}  docs={r['docs']}  "
                   f"model={r['model_version'] or '-'}  embedder={r['embedding_model'] or '-'}  "
                   f"created={(r['created_at'] or '-')[:19]}")


@index.command("rollback")
@ALIAS_OPTION
@click.option("--to", "to", default=None, help="The index to point the alias at (default: the previous one).")
@click.pass_context
def index_rollback(ctx: click.Context, alias: str | None, to: str | None) -> None:
    """Swap the alias back to the previous index, atomically."""
    from indexing.lifecycle import rollback

    s = _settings(ctx)
    try:
        old, new = rollback(_client(s), alias or s.es.alias, to)
    except LookupError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"alias {alias or s.es.alias!r}: {', '.join(old) or '(none)'} -> {new}")


@index.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the check as JSON.")
@click.pass_context
def index_check(ctx: click.Context, as_json: bool) -> None:
    """Startup check: server version, Chinese analyzer plugins, whether the RRF retriever is licensed."""
    from indexing.client import server_check

    s = _settings(ctx)
    info = server_check(_client(s), s.es)
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"server: {info['distribution']} {info['version']} (cluster {info['cluster']})")
    click.echo(f"chinese analyzer: {info['chinese_analyzer']} (plugins: {', '.join(info['chinese_plugins']) or 'none'})")
    click.echo(f"RRF retriever: {info['rrf_detail']}; hybrid search fuses on the {info['hybrid']} side")


JUDGMENTS_HELP = ("CSV with columns query,sku,grade (grade >= 0; 0 = irrelevant), or a click log "
                  "query,sku,clicks[,impressions] (turned into grades; see the README).")


@main.command("eval-search")
@click.option("--judgments", required=True, type=click.Path(dir_okay=False), help=JUDGMENTS_HELP)
@click.option("--mode", type=click.Choice(["auto", "bm25", "knn", "hybrid", "ltr"]), default="hybrid",
              show_default=True, help="auto: the mode tune-search chose; hybrid uses the tuned weights when there "
                                      "are some; ltr the alias's ranker (or --ranker).")
@RANKER_OPTION
@click.option("-k", "k", type=click.IntRange(1, 100), default=10, show_default=True, help="NDCG cut-off.")
@click.option("--held-out", "held_out", is_flag=True,
              help="Only the queries tune-search held out (by query hash; search.heldout_fraction otherwise).")
@ALIAS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: ndcg@10, recall@100, mrr, queries.")
@click.pass_context
def eval_search(ctx: click.Context, judgments: str, mode: str, ranker_version: str | None, k: int, held_out: bool,
                alias: str | None, as_json: bool) -> None:
    """Measure ranking quality on judged queries: NDCG@10, recall@100, MRR."""
    from indexing.evaluate import load_judgments
    from indexing.lifecycle import evaluate_target, search_meta
    from indexing.tune import split_queries
    from shopgen.index.ranker import loader

    s = _settings(ctx)
    target = alias or s.es.alias
    try:
        j = load_judgments(judgments)
        es = _client(s)
        if held_out:
            t = search_meta(es, target).get("tuning") or {}
            _, j = split_queries(j, t.get("heldout_fraction", s.search.heldout_fraction),
                                 t.get("split_seed", s.search.split_seed))
        res = evaluate_target(es, target, j, mode, s, lambda: _encoder(s, es, target), k=k,
                              ranker=loader(s, es, target, ranker_version))
    except (FileNotFoundError, ValueError, LookupError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    res.pop("per_query", None)
    res = {"mode": res.pop("mode"), "alias": target, "held_out": held_out, **res}
    if as_json:
        click.echo(json.dumps(res))
        return
    for key, v in res.items():
        click.echo(f"{key:>12}: {v}")


@main.command("tune-search")
@click.option("--judgments", required=True, type=click.Path(dir_okay=False), help=JUDGMENTS_HELP)
@ALIAS_OPTION
@click.option("--workdir", default=None, help="Where report.json goes (default: <home>/tune-search).")
@click.option("--dry-run", is_flag=True, help="Measure and choose, but store nothing with the index.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def tune_search(ctx: click.Context, judgments: str, alias: str | None, workdir: str | None, dry_run: bool,
                as_json: bool) -> None:
    """Pick the search mode and the hybrid fusion weights on judged queries.

    Queries are split by hash into tuning and held-out ones (search.heldout_fraction); the choice is
    made on the tuning queries (with cross-validation figures) and measured on the held-out ones,
    then stored in the index's _meta (search, eval-search and the nightly gate use it) and in report.json."""
    from indexing.tune_run import run_tune
    from shopgen.index.ranker import loader

    s = _settings(ctx)
    es, target = _client(s), alias or s.es.alias
    try:
        rep = run_tune(es, target, judgments, s, Path(workdir) if workdir else s.home / "tune-search",
                       lambda: _encoder(s, es, target), store=not dry_run, console=err,
                       ranker=loader(s, es, target))
    except (FileNotFoundError, ValueError, LookupError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(rep))
        return
    t = rep["stages"]["tune"]
    h = t["heldout"]
    click.echo(f"chosen: {t['mode']} (hybrid = {t['hybrid']}); held-out NDCG@10 over {t['queries']['heldout']} "
               f"queries: bm25 {h['bm25']}, knn {h['knn']}, hybrid {h['hybrid']}, chosen {h['chosen']}; "
               + (f"ltr {'chosen' if t['ltr']['chosen'] else 'refused'}: {t['ltr']['reason']}; " if t.get("ltr") else "")
               + f"{'stored in ' + ', '.join(t['stored_in']) if t['stored_in'] else 'not stored (--dry-run)'}; "
               f"report {rep['outputs']['report']}")


@main.command("train-ranker")
@click.option("--judgments", required=True,
              help="CSV: query,sku,grade, or a click log query,sku,clicks[,impressions] (as eval-search reads).")
@click.option("--alias", default=None, help="Alias whose index computes the features and keeps the ranker "
                                            "(default: es.alias).")
@click.option("--workdir", default=None, help="Where report.json goes (default: <home>/train-ranker).")
@click.option("--registry", default=None, help="Registry to register the ranker in (default: models.registry).")
@click.option("--dry-run", is_flag=True, help="Train and register, but do not store the ranker with the alias.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.pass_context
def train_ranker(ctx: click.Context, judgments: str, alias: str | None, workdir: str | None, registry: str | None,
                 dry_run: bool, as_json: bool) -> None:
    """Learn to rank the hybrid candidates from judged queries (LambdaMART, XGBoost rank:ndcg).

    Features per (query, product) come from the alias's index: BM25 per field, title phrase and term
    coverage, fuzzy title terms, number-and-unit agreement and the kNN cosine. The model is chosen by
    cross-validation over the tuning queries, scored on tune-search's held-out queries against the hybrid
    order, registered (kind ranker) and stored with the alias; `search --mode ltr` serves it."""
    from shopgen.ranker.recipe import run_train_ranker

    s = override(ctx.obj["settings"], given({"models.registry": registry}))
    es, target = _client(s), alias or s.es.alias
    try:
        rep = run_train_ranker(es, target, judgments, s, Path(workdir) if workdir else s.home / "train-ranker",
                               lambda: _encoder(s, es, target), store=not dry_run, console=err)
    except (FileNotFoundError, ValueError, LookupError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(rep))
        return
    t, r = rep["stages"]["train"], rep["stages"]["register"]
    click.echo(f"ranker {r['version']}: held-out NDCG@10 {t['heldout_ltr']} vs hybrid {t['heldout_hybrid']} over "
               f"{t['heldout_queries']} queries (cv {t['cv_ltr']} vs {t['cv_hybrid']}); "
               f"{'stored with ' + ', '.join(r['stored_in']) if r['stored_in'] else 'not stored (--dry-run)'}; "
               f"report {rep['outputs']['report']}")


@main.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective config as JSON, secrets masked."""
    click.echo(json.dumps(_settings(ctx).redacted(), indent=2))


from shopgen.cli.answers import answer, ask, eval_answers, serve
from shopgen.cli.jobs import jobs, submit
from shopgen.cli.recs import eval_recs, recommend
from shopgen.cli.review import review
from shopgen.cli.searchtune import finetune_search

main.add_command(submit)
main.add_command(jobs)
main.add_command(finetune_search)
main.add_command(eval_recs)
main.add_command(recommend)
main.add_command(answer)
main.add_command(review)
main.add_command(ask)
main.add_command(eval_answers)
main.add_command(serve)


if __name__ == "__main__":
    sys.exit(main())
