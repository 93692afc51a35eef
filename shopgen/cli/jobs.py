"""`shopgen submit` and `shopgen jobs`: run the jobs/ entrypoints on a Ray cluster through its job API.

Registered on the main group in shopgen/cli/main.py (main.add_command(submit); main.add_command(jobs))."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from shopgen.cli import launcher
from shopgen.cli.launcher import LauncherError

err = Console(stderr=True, highlight=False)

ADDRESS_OPTION = click.option(
    "--address", default=None, metavar="URL",
    help=f"Ray job API (dashboard) URL, e.g. http://HEAD:8265 (default: RAY_ADDRESS when it is an http(s) URL, "
         f"else {launcher.DEFAULT_ADDRESS}).")


def _client(address: str | None):
    addr = launcher.resolve_address(address)
    return launcher.connect(addr)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except LauncherError as e:
        raise click.ClickException(str(e)) from None


def _read_config(path: str) -> tuple[str, Path]:
    """The config's text, checked here so a typo fails before the upload; messages never quote it."""
    p = Path(path)
    if not p.is_file():
        raise click.ClickException(f"config file not found: {path}")
    from pydantic import ValidationError

    from shopgen.core.config import load_settings

    try:
        text = p.read_text(encoding="utf-8")
        home = load_settings(p).home
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors(include_input=False))
        raise click.ClickException(f"invalid configuration in {path}: {msgs}") from None
    except Exception as e:
        raise click.ClickException(f"invalid configuration in {path}: {type(e).__name__}") from None
    return text, home


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               short_help="Run a job (nightly, generate, embed_index, finetune, tune_search, finetune_search) on a Ray cluster.")
@click.argument("job", metavar="JOB")
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- JOB_ARGS...]")
@ADDRESS_OPTION
@click.option("--config", "config_file", default=None, metavar="FILE",
              help="YAML config for the job. Its text travels with the job (env SHOPGEN_CONFIG_YAML), so the "
                   "file need not exist on the cluster (default: the job's built-in defaults, as locally).")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE",
              help="Environment variable for the job, e.g. SHOPGEN_HOME=/data/shopgen (repeatable).")
@click.option("--submission-id", "--job-id", "submission_id", default=None,
              help="Submission id to use (default: one Ray makes up).")
@click.option("--python", "python", default=None, metavar="PATH",
              help="Interpreter that runs the job on the cluster (default: this one for a head on 127.0.0.1, "
                   "else `python`, where cluster.yaml installs shopgen).")
@click.option("--wait", is_flag=True,
              help="Stream the job's logs to stderr until it ends; print its final status last; exit non-zero "
                   "unless it SUCCEEDED.")
@click.pass_context
def submit(ctx: click.Context, job: str, job_args: tuple[str, ...], address: str | None, config_file: str | None,
           env_pairs: tuple[str, ...], submission_id: str | None, python: str | None, wait: bool) -> None:
    """Submit JOB (nightly, generate, embed_index, finetune, tune_search, finetune_search) to a Ray cluster.

    Ships this project as the job's working_dir (code only: models come from s3:// or the nodes' own
    install) and runs `python jobs/JOB.py JOB_ARGS` there, which runs `shopgen JOB` with the same
    options. On a head at 127.0.0.1 `python` is this interpreter (see --python). Prints
    the submission id. Arguments after `--` go to the job, e.g.

      shopgen submit nightly --wait -- --limit 4 --content seo_title

    On a cluster at 127.0.0.1 the job shares this machine's shopgen home (model cache, embedded
    search server) unless --env SHOPGEN_HOME=... says otherwise."""
    if (ctx.obj or {}).get("set"):  # the job's shopgen loads its own config; it never sees this one's --set
        raise click.UsageError("--set does not travel with a job; put those keys in the YAML given to "
                               "`shopgen submit --config FILE`", ctx=ctx)
    try:
        name = launcher.job_name(job)
        env = launcher.parse_env(env_pairs)
    except LauncherError as e:
        raise click.ClickException(str(e)) from None
    if (ctx.obj or {}).get("verbose"):
        env.setdefault("SHOPGEN_VERBOSE", "1")
    config_text, home = None, None
    if config_file:
        config_text, home = _read_config(config_file)
    else:  # the main group's settings: what a local run would use
        settings = (ctx.obj or {}).get("settings")
        if settings is None:
            from shopgen.core.config import load_settings

            settings = load_settings()
        home = settings.home
    addr = _run(launcher.resolve_address, address)
    client = _run(launcher.connect, addr)
    if "SHOPGEN_HOME" not in env:
        if launcher.is_loopback(addr):
            env["SHOPGEN_HOME"] = str(Path(home).resolve())
            err.print(f"local cluster: the job uses shopgen home {env['SHOPGEN_HOME']}", markup=False)
        elif not Path(home).is_absolute():
            err.print("note: the job's shopgen home (model cache, embedded search server) is relative to its "
                      "working dir on the cluster; set it with --env SHOPGEN_HOME=/path or `home:` in --config",
                      markup=False)
    sid = _run(launcher.submit, client, name, config_text=config_text, env=env, extra_args=job_args,
               submission_id=submission_id, python=launcher.job_python(addr, python))
    click.echo(sid)
    if not wait:
        err.print(f"submitted {name} to {addr}; follow it with `shopgen jobs logs {sid} --follow"
                  + ("" if address is None else f" --address {addr}") + "`", markup=False)
        return
    try:
        info = _run(launcher.wait, client, sid)
    except KeyboardInterrupt:
        err.print(f"\nstopped waiting; the job keeps running (`shopgen jobs stop {sid}` stops it)", markup=False)
        ctx.exit(130)
    click.echo(info["status"])
    if info["status"] != "SUCCEEDED":
        err.print(f"job {sid} {info['status']}: {info.get('message') or ''}", markup=False)
        ctx.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             short_help="List, inspect, follow and stop jobs on a Ray cluster.")
def jobs() -> None:
    """List, inspect, follow and stop jobs on a Ray cluster (see `shopgen submit`)."""


@jobs.command("list")
@ADDRESS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list: submission_id, status, entrypoint, ...")
def jobs_list(address: str | None, as_json: bool) -> None:
    """All jobs the cluster knows, oldest first."""
    rows = _run(launcher.list_jobs, _run(_client, address))
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no jobs")
        return
    t = Table("submission_id", "status", "entrypoint", "start", "end")
    for r in rows:
        t.add_row(r["submission_id"] or r["job_id"] or "-", r["status"], r["entrypoint"],
                  launcher.fmt_time(r["start_time"]), launcher.fmt_time(r["end_time"]))
    # Piped output has no terminal width; keep ids whole instead of folding them at 80.
    Console(width=None if sys.stdout.isatty() else 200, highlight=False).print(t, markup=False)


@jobs.command("status")
@click.argument("job_id", metavar="ID")
@ADDRESS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the job's status and details as JSON.")
def jobs_status(job_id: str, address: str | None, as_json: bool) -> None:
    """Print a job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED), then its message and times."""
    i = _run(launcher.info, _run(_client, address), job_id)
    if as_json:
        click.echo(json.dumps(i))
        return
    click.echo(i["status"])
    for k, v in (("message", i["message"]), ("entrypoint", i["entrypoint"]),
                 ("started", launcher.fmt_time(i["start_time"])), ("ended", launcher.fmt_time(i["end_time"]))):
        click.echo(f"  {k + ':':11s} {v or '-'}")


@jobs.command("logs")
@click.argument("job_id", metavar="ID")
@ADDRESS_OPTION
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output until the job ends.")
def jobs_logs(job_id: str, address: str | None, follow: bool) -> None:
    """Print a job's driver output (stdout and stderr)."""
    client = _run(_client, address)
    if follow:
        def out(text: str) -> None:
            click.echo(text, nl=False)
            sys.stdout.flush()

        _run(launcher.follow, client, job_id, out)
    else:
        click.echo(_run(launcher.logs, client, job_id), nl=False)


@jobs.command("stop")
@click.argument("job_id", metavar="ID")
@ADDRESS_OPTION
def jobs_stop(job_id: str, address: str | None) -> None:
    """Stop a running job (its driver and the Ray tasks and actors it started)."""
    client = _run(_client, address)
    if _run(launcher.stop, client, job_id):
        click.echo(f"stopping {job_id}")
    else:
        click.echo(f"{job_id} is not running ({_run(launcher.info, client, job_id)['status']})")
