"""`shopgen answer`, `ask`, `eval-answers` and `serve answers`: shoppers' questions answered from the
catalog (shopgen/answers/). Registered on the main group in shopgen/cli/main.py."""

from __future__ import annotations

import json

import click
from rich.console import Console

from shopgen.cli.output import guard
from shopgen.cli.overrides import given, override

err = Console(stderr=True, highlight=False)
SOURCE_HELP = "Answer from the indexed documents of this alias instead of a catalog file."


def _source(catalog: str | None, alias: str | None) -> None:
    if bool(catalog) == bool(alias):
        raise click.UsageError("give exactly one of --catalog and --alias")


def _settings(ctx: click.Context, policies: str | None = None, model: str | None = None):
    """--model names the drafter itself: not the registry's promoted answerer or generator ('base': the
    configured generator)."""
    upd = given({"answers.policies": policies})
    if model:
        upd["models.use_promoted"] = False
        if model != "base":
            upd["models.generator"] = model
    return override(ctx.obj["settings"], upd)


@click.command()
@click.option("--questions", required=True, help="Questions: .jsonl/.csv/.parquet, a folder or an s3:// prefix "
                                                 "(id, question, sku?, locale?, asked_at?).")
@click.option("--catalog", default=None, help="Catalog the answers come from (.jsonl/.csv/.parquet, local or s3://).")
@click.option("--alias", default=None, help=SOURCE_HELP)
@click.option("--out", required=True, help="Answers file: .jsonl, .csv or .parquet (local or s3://).")
@click.option("--policies", default=None, help="Shop policies, Markdown (default: answers.policies).")
@click.option("--workdir", default=None, help="Folder for report.json and quarantine.jsonl (default: <home>/answers).")
@click.option("--model", default=None, help="Generator to draft with (default: models.generator / the promoted one).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.pass_context
def answer(ctx: click.Context, questions: str, catalog: str | None, alias: str | None, out: str, policies: str | None,
           workdir: str | None, model: str | None, as_json: bool) -> None:
    """Answer shoppers' questions in bulk (a Ray Data job): each row gets id, sku, status, answer, cites.

    Statuses: answered, not_in_catalog, refused, needs_human, unsupported_language."""
    from shopgen.answers.stage import run_answer

    _source(catalog, alias)
    rep = guard(lambda s: run_answer(questions, out, s, catalog=catalog, alias=alias, workdir=workdir, console=err),
                _settings(ctx, policies, model), LookupError)
    if as_json:
        click.echo(json.dumps(rep, default=str))
        return
    c = rep["answers"]
    if c["questions"] <= 20:  # a handful: show them (a file of thousands is read from --out)
        _show(out, ctx.obj["settings"])
    click.echo("answers: " + "  ".join(f"{k}={v}" for k, v in c["by_status"].items())
               + f"  tokens/answered={c['tokens_per_answered']}  -> {out}")


def _show(out: str, settings) -> None:
    from shopgen.adapters.storage import read_bytes

    if not out.endswith(".jsonl"):
        return
    for line in read_bytes(out, settings.s3).decode("utf-8").splitlines():
        r = json.loads(line)
        click.echo(f"Q: {r['question']}  (sku {r['sku'] or '-'})")
        click.echo(f"   [{r['status']}] {r['answer'] or '; '.join(r['reasons'])}"
                   + (f"  cites: {', '.join(r['cites'])}" if r["cites"] else ""))


@click.command("eval-answers")
@click.option("--questions", required=True, help="Labelled questions: rows add `expected` {answerable, values}.")
@click.option("--catalog", default=None, help="Catalog the answers come from.")
@click.option("--alias", default=None, help=SOURCE_HELP)
@click.option("--policies", default=None, help="Shop policies, Markdown (default: answers.policies).")
@click.option("--out", default=None, help="Also write the answers here (.jsonl/.csv/.parquet).")
@click.option("--workdir", default=None, help="Folder for report.json (default: <home>/eval-answers).")
@click.option("--model", default=None, help="Generator to draft with (default: models.generator / the promoted one).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: correct_rate, wrong_rate, refusal_rate, n, and by_status/by_locale/by_kind.")
@click.pass_context
def eval_answers(ctx: click.Context, questions: str, catalog: str | None, alias: str | None, policies: str | None,
                 out: str | None, workdir: str | None, model: str | None, as_json: bool) -> None:
    """Score answers on labelled questions: correct, wrong and refusal rates."""
    from shopgen.answers.stage import run_eval_answers

    _source(catalog, alias)
    rep = guard(lambda s: run_eval_answers(questions, s, catalog=catalog, alias=alias, out=out, workdir=workdir,
                                           console=err), _settings(ctx, policies, model), LookupError)
    ev = rep["eval"]
    if as_json:
        click.echo(json.dumps({**ev, "report": rep["outputs"]["report"]}, default=str))
        return
    click.echo(f"n={ev['n']}  correct_rate={ev['correct_rate']}  wrong_rate={ev['wrong_rate']}  "
               f"refusal_rate={ev['refusal_rate']}")
    for k, v in ev["by_kind"].items():
        click.echo(f"  {k:15s} n={v['n']:4d}  correct={v['correct_rate']}  wrong={v['wrong_rate']}")


@click.command()
@click.argument("question")
@click.option("--sku", default=None, help="The product page the question was asked on.")
@click.option("--locale", default=None, help="The question's locale (default: the product's).")
@click.option("--alias", default=None, help="Index to answer from (default: es.alias).")
@click.option("--url", default=None, help="Ask a running `shopgen serve answers` instead (e.g. http://127.0.0.1:8000).")
@click.option("--policies", default=None, help="Shop policies, Markdown (default: answers.policies).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ask(ctx: click.Context, question: str, sku: str | None, locale: str | None, alias: str | None, url: str | None,
        policies: str | None, as_json: bool) -> None:
    """Answer one question against the live index (same statuses and gate as `shopgen answer`)."""
    body = {"id": "ask", "question": question, **({"sku": sku} if sku else {}), **({"locale": locale} if locale else {})}
    if url:
        from shopgen.answers.serve import post

        try:
            code, out = post(url, body)
        except (OSError, ValueError) as e:
            raise click.ClickException(f"{url}: {e}") from None
        if code >= 400:
            raise click.ClickException(f"{url}: HTTP {code}: {out.get('error', out)}")
    else:
        from shopgen.answers.ondemand import OnDemand
        from shopgen.core.questions import Question

        try:
            q = Question.model_validate(body)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        out = guard(lambda s: OnDemand(s, alias or s.es.alias).answer([q])[0].model_dump(), _settings(ctx, policies),
                    LookupError)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"[{out['status']}] {out['answer'] or '; '.join(out.get('reasons') or [])}"
               + (f"  (cites: {', '.join(out['cites'])})" if out.get("cites") else "")
               + (f"  candidates: {', '.join(out['candidates'])}" if out.get("candidates") else ""))


@click.group()
def serve() -> None:
    """Long-running services (Ray Serve)."""


@serve.command("answers")
@click.option("--alias", default=None, help="Index to answer from (default: es.alias).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--policies", default=None, help="Shop policies, Markdown (default: answers.policies).")
@click.pass_context
def serve_answers(ctx: click.Context, alias: str | None, host: str, port: int, policies: str | None) -> None:
    """Answer questions over HTTP: POST /answer {"question", "sku"?, "locale"?} -> the same fields as
    `shopgen answer`. The engine stays warm; concurrent requests are batched; a burst beyond
    answers.serve_max_queued gets a 503."""
    from shopgen.adapters.raysupport import ray_session
    from shopgen.answers import serve as service

    s = _settings(ctx, policies)

    def go(s):
        with ray_session(s):
            service.run(s, alias or s.es.alias, host, port, ready=lambda u: err.print(f"serving answers on {u}/answer"))

    try:
        guard(go, s, LookupError)
    except KeyboardInterrupt:
        pass
