"""`shopgen finetune-search`: fine-tune the embedder on search judgments (shopgen/searchtune/recipe.py).

Registered on the main group in shopgen/cli/main.py (main.add_command(finetune_search))."""

from __future__ import annotations

import json

import click
from rich.console import Console

from shopgen.cli.output import echo_training
from shopgen.cli.overrides import given, override

err = Console(stderr=True, highlight=False)


def _settings(ctx: click.Context, registry: str | None, storage: str | None, **options):
    upd = given({"models.registry": registry, "search_finetune.storage_path": storage}
                | {f"search_finetune.{k}": v for k, v in options.items()})
    if options.get("epochs"):  # max_steps would override them
        upd["search_finetune.max_steps"] = None
    return override(ctx.obj["settings"], upd)


@click.command("finetune-search")
@click.option("--catalog", required=True,
              help="The products the judgments name (.jsonl/.csv/.parquet, local or s3://); need not be the indexed "
                   "catalog.")
@click.option("--judgments", required=True,
              help="CSV: query,sku,grade, or a click log query,sku,clicks[,impressions] (local or s3://).")
@click.option("--base", default="base", show_default=True,
              help="Embedder to fine-tune: 'base' (models.embedder, never the promoted one), an embedder version, "
                   "a built-in, a sentence-transformers folder or s3:// prefix.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Optimizer steps (overrides epochs).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (default: search_finetune.epochs).")
@click.option("--batch-size", type=click.IntRange(min=2), default=None,
              help="Pairs per worker step (default: search_finetune.batch_size).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Ray Train workers (DDP).")
@click.option("--gpu", is_flag=True, default=None, help="One GPU per worker.")
@click.option("--registry", "--out", "registry", default=None,
              help="Registry to register the result in: a folder or s3:// prefix (default: models.registry).")
@click.option("--name", default=None, help="Run name; re-running with the same name resumes its checkpoints "
                                           "(default: derived from the data and config hashes).")
@click.option("--storage", default=None, help="Ray Train storage: folder or s3:// (default: "
                                              "search_finetune.storage_path, i.e. <home>/finetune-search).")
@click.option("--promote", is_flag=True, default=None,
              help="Promote the new embedder if its held-out NDCG@10 beats the base's.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.pass_context
def finetune_search(ctx: click.Context, catalog: str, judgments: str, base: str, max_steps: int | None,
                    epochs: int | None, batch_size: int | None, workers: int | None, gpu: bool | None,
                    registry: str | None, name: str | None, storage: str | None, promote: bool | None,
                    as_json: bool) -> None:
    """Fine-tune the embedder on search judgments with Ray Train; register an embedder version.

    Pairs (query, relevant product) are trained with in-batch and hard negatives (zero grades, lexical
    misses), weighted by grade; base and fine-tuned are scored (NDCG@10) on held-out queries."""
    from shopgen.searchtune.recipe import run_search_finetune

    if max_steps and epochs:
        raise click.UsageError("give --max-steps or --epochs, not both")
    s = _settings(ctx, registry, storage, max_steps=max_steps, epochs=epochs, batch_size=batch_size,
                  workers=workers, gpu=gpu)
    try:
        rep = run_search_finetune(catalog, judgments, s, base=base, name=name, promote=promote, console=err)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(rep))
        return
    echo_training(rep, "held-out", "embedder version")
