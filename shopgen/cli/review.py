"""`shopgen review`: the review page, and `review decide` / `review export` for scripts. Registered
on the main group in shopgen/cli/main.py."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import click
from rich.console import Console

from shopgen.cli.output import guard

err = Console(stderr=True, highlight=False)
STATE_HELP = "State prefix the nightly used (default: nightly.state, else <home>/work/state)."


def _desk(ctx: click.Context, alias: str | None, state: str | None):
    from shopgen.nightly.recipe import state_prefix
    from shopgen.review.decide import open_desk

    s = ctx.obj["settings"]
    alias = alias or s.es.alias
    desk = guard(lambda s: open_desk(s, alias, state_prefix(s, s.home / "work", state, alias), err.print), s)
    return s, desk


@click.group(invoke_without_command=True)
@click.option("--alias", default=None, help="Alias whose published copy to review (default: es.alias).")
@click.option("--state", "state", default=None, help=STATE_HELP)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Beyond loopback a sign-in is required: review.users, else a token printed once.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.pass_context
def review(ctx: click.Context, alias: str | None, state: str | None, host: str, port: int) -> None:
    """The review page: a queue of published copy ordered by risk, where people approve, reject or
    edit each text. Approved and edited texts are locked against the nightly; a rejected text leaves
    the index at once and is generated again once on the next night."""
    if ctx.invoked_subcommand is not None:
        return
    from shopgen.review.web import LOOPBACK, Auth, make_app, serve

    s, desk = _desk(ctx, alias, state)
    desk.queue.sync()
    users = {k: v.get_secret_value() for k, v in s.review.users.items()}
    auth = Auth(users=users, reviewer=s.review.reviewer)
    if host not in LOOPBACK and not users:
        auth.token = secrets.token_urlsafe(24)
        # Printed once, to the terminal only: never written to a log or a report.
        click.echo(f"sign-in token (shown once): {auth.token}", err=True)
    # Beyond loopback a sign-in guards every page; on loopback only loopback names are served.
    app = make_app(desk, desk.queue.store, auth, None if host in LOOPBACK else ["*"])
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"review queue for alias {desk.alias!r}: http://{shown}:{port}/  (Ctrl-C stops it)", err=True)
    serve(app, host, port, s.home / "logs" / "review.log")


@review.command("decide")
@click.option("--alias", default=None, help="Alias (default: es.alias).")
@click.option("--state", "state", default=None, help=STATE_HELP)
@click.option("--sku", required=True)
@click.option("--type", "type_", required=True, help="Content type (description, bullets, seo_title, ad_copy, faq).")
@click.option("--approve", is_flag=True, help="Approve the published text: locked until the product's facts change.")
@click.option("--reject", "reject", default=None, metavar="REASON",
              help="Reject it for REASON (invented_fact, wrong_role_or_unit, not_fluent, wrong_kind, unsafe, "
                   "other, ...): it leaves the index now and is generated again once on the next night.")
@click.option("--edit-file", "edit_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Publish this text instead: the type's output as JSON ({\"seo_title\": \"...\"}), or plain text "
                   "for a one-field type. It must pass the gate's hard checks.")
@click.option("--note", default=None, help="A note kept with the decision.")
@click.option("--reviewer", default=None, help="Who decides (default: review.reviewer).")
@click.option("--json", "as_json", is_flag=True, help="Print the stored decision as JSON.")
@click.pass_context
def decide(ctx: click.Context, alias: str | None, state: str | None, sku: str, type_: str, approve: bool,
           reject: str | None, edit_file: str | None, note: str | None, reviewer: str | None, as_json: bool) -> None:
    """Make one decision from a script (the page's approve, reject and edit)."""
    from shopgen.core.content import CONTENT_TYPES
    from shopgen.review.decide import Refused, Unpublished
    from shopgen.review.store import Conflict

    if sum(map(bool, (approve, reject, edit_file))) != 1:
        raise click.UsageError("give exactly one of --approve, --reject REASON and --edit-file PATH")
    if type_ not in CONTENT_TYPES:
        raise click.UsageError(f"unknown --type {type_!r}; one of {', '.join(CONTENT_TYPES)}")
    s, desk = _desk(ctx, alias, state)
    desk.queue.sync()
    try:
        edit = _edit(type_, Path(edit_file)) if edit_file else None
        d = desk.decide(sku, type_, "approve" if approve else "reject" if reject else "edit",
                        reviewer=reviewer or s.review.reviewer, reason=reject, note=note, edit=edit)
    except (Refused, Conflict, Unpublished) as e:
        raise click.ClickException(str(e)) from None
    click.echo(d.model_dump_json() if as_json else f"{d.action} {d.sku}/{d.type} (entry {d.seq}) by {d.reviewer}")


def _edit(type_: str, path: Path) -> dict:
    from shopgen.core.content import CONTENT_TYPES
    from shopgen.review.decide import Refused, edit_as_text, parse_edit

    raw = path.read_text(encoding="utf-8")
    try:
        fields = json.loads(raw)
    except json.JSONDecodeError:
        names = CONTENT_TYPES[type_].fields()
        if len(names) != 1:
            raise Refused(f"{type_} has several fields ({', '.join(names)}): give them as a JSON object") from None
        return parse_edit(type_, {names[0]: raw})
    if not isinstance(fields, dict):
        raise Refused("the edit file must hold a JSON object of the type's fields")
    return parse_edit(type_, edit_as_text(type_, fields))


@review.command("export")
@click.option("--alias", default=None, help="Alias (default: es.alias).")
@click.option("--state", "state", default=None, help=STATE_HELP)
@click.option("--audit", "audit", default=None, metavar="PATH",
              help="Write decisions as copy audit records (docs/COPY_AUDIT.md), JSONL.")
@click.option("--train", "train", default=None, metavar="PATH",
              help="Write approved and edited texts as fine-tuning examples (rejected ones as flagged negatives), "
                   "JSONL.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.pass_context
def export(ctx: click.Context, alias: str | None, state: str | None, audit: str | None, train: str | None,
           as_json: bool) -> None:
    """Write what people decided: audit records (and the gate's precision on the audit sample,
    with a 95% interval) or training pairs."""
    from shopgen.finetune.reviewed import train_rows
    from shopgen.review.export import audit_precision, audit_records

    if not (audit or train):
        raise click.UsageError("give --audit PATH and/or --train PATH")
    s, desk = _desk(ctx, alias, state)
    desk.queue.sync()
    decisions = desk.decisions.all()
    out: dict = {}
    if audit:
        recs = audit_records(decisions, desk.alias, desk.queue.brands())
        _write(audit, recs, s.s3)
        out.update(audit_precision(recs), audit=audit)
    if train:
        rows = train_rows(decisions, s.generation.prompt)
        _write(train, rows, s.s3)
        out.update(train=train, train_examples=sum(r["source"] == "reviewed" for r in rows),
                   train_negatives=sum(r["source"] == "rejected" for r in rows))
    if as_json:
        click.echo(json.dumps(out))
        return
    for k, v in out.items():
        click.echo(f"{k}: {v}")


def _write(path: str, rows: list[dict], s3) -> None:
    """JSONL to a local path or an s3:// URI."""
    from shopgen.adapters.storage import write_bytes

    write_bytes(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"), s3)


@review.command("hash-password")
def hash_password() -> None:
    """Print a review.users password hash (the password is asked for, never echoed)."""
    from shopgen.review.web import hash_password as h

    pw = click.prompt("password", hide_input=True, confirmation_prompt=True)
    click.echo(h(pw))
