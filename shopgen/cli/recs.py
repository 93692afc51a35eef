"""`shopgen eval-recs`: replay the behaviour log and measure the recommendations against baselines
(shopgen/recommend/stage.py). Registered on the main group in shopgen/cli/main.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from shopgen.recommend.evaluate import METHODS


def _when(value: str | None) -> float | None:
    if value is None:
        return None
    from shopgen.recommend.events import parse_ts

    t, why = parse_ts(value, datetime.now(timezone.utc).timestamp())
    if why:
        raise click.BadParameter(why, param_hint="--split-at")
    return t


@click.command("eval-recs")
@click.option("--events", required=True,
              help="Behaviour log: .jsonl/.csv/.parquet, a folder of them, or an s3:// prefix.")
@click.option("--split-at", default=None, metavar="TS",
              help="Learn from events before TS (ISO-8601 or epoch seconds), replay the sessions after it "
                   "(default: the time by which 80% of the events had happened).")
@click.option("--catalog", default=None,
              help="The products on sale: lists stay within them, locale and variant rules apply, and content "
                   "similarity is measured too (default: every product the events name, no content method).")
@click.option("-k", "k", type=click.IntRange(1, 100), default=20, show_default=True, help="List length measured.")
@click.option("--workdir", default=None, help="Where report.json and quarantine.jsonl go (default: <home>/eval-recs).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: recall@20.<method>, mrr@20.<method>, ndcg@20.<method>, coverage.<method>, ...")
@click.pass_context
def eval_recs(ctx: click.Context, events: str, split_at: str | None, catalog: str | None, k: int,
              workdir: str | None, as_json: bool) -> None:
    """Measure recommendations on a time split of the behaviour log: Recall, MRR, NDCG and coverage
    for the blend and for popularity, plain co-occurrence and content similarity."""
    from shopgen.recommend.stage import run_eval_recs

    s = ctx.obj["settings"]
    out = Path(workdir) if workdir else Path(s.home) / "eval-recs"
    try:
        rep = run_eval_recs(events, s, _when(split_at), catalog, k, out)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(rep))
        return
    t = Table(title=f"next-product replay: {rep['cases']} predictions, {rep['train_events']} training events")
    for col in ("method", f"recall@{k}", f"mrr@{k}", f"ndcg@{k}", "coverage"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for m in METHODS:
        if f"recall@{k}.{m}" in rep:
            t.add_row(m, *(f"{rep[f'{x}@{k}.{m}']:.4f}" for x in ("recall", "mrr", "ndcg")), f"{rep[f'coverage.{m}']:.4f}")
    Console().print(t)
    if rep["quarantined"]:
        click.echo(f"{rep['quarantined']} bad event rows set aside: {out / 'quarantine.jsonl'}")


@click.command("recommend")
@click.argument("sku", required=False)
@click.option("--session", default=None, metavar="SKU,SKU,...",
              help="Rank products for an anonymous shopper who saw these (oldest first), from the stored "
                   "item-to-item table, instead of showing one product's lists.")
@click.option("-k", "k", type=click.IntRange(1, 100), default=None,
              help="List length (default: recommend.k; for a product, how many of each list to show).")
@click.option("--alias", default=None, help="Elasticsearch alias (default: es.alias, 'products').")
@click.option("--state", "state", default=None,
              help="State prefix the nightly used (default: nightly.state, else <home>/work/state).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each list's SKUs with the source of each slot.")
@click.pass_context
def recommend(ctx: click.Context, sku: str | None, session: str | None, k: int | None, alias: str | None,
              state: str | None, as_json: bool) -> None:
    """Show a product's also_viewed, bought_together and recommended lists (with each slot's source),
    or rank products for a session or cart with --session."""
    from indexing.client import make_client
    from shopgen.nightly.recipe import state_prefix
    from shopgen.recommend.lookup import product_recs, session_recs

    s = ctx.obj["settings"]
    if bool(sku) == bool(session):
        raise click.UsageError("give a SKU, or --session SKU,SKU,...")
    target = alias or s.es.alias
    err = Console(stderr=True, highlight=False)
    try:
        es = make_client(s, echo=err.print)
        if sku:
            out = product_recs(es, target, sku)
        else:
            skus = [x.strip() for x in session.split(",") if x.strip()]
            if not skus:
                raise click.UsageError("--session needs at least one SKU")
            prefix = state_prefix(s, Path(s.home) / "work", state, target)
            out = session_recs(es, target, prefix, skus, s, k or s.recommend.k)
    except LookupError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(out))
        return
    head = out.get("sku") or " > ".join(out["session"])
    click.echo(f"{head}  {out.get('title') or ''}".rstrip())
    for name, slots in out["lists"].items():
        shown = ", ".join(f"{x['sku']} {_short(x.get('title'))} [{x['source']}]" for x in slots[:k or len(slots)])
        click.echo(f"  {name.replace('_', ' ')}: {shown or '(none)'}")


def _short(title: str | None, n: int = 28) -> str:
    t = (title or "").strip()
    return f"({t[:n - 1]}…)" if len(t) > n else f"({t})" if t else ""
