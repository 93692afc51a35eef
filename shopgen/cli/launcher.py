"""Thin adapter over Ray's Job Submission SDK: ship this project to a cluster as the job's working_dir,
run one of its jobs/ entrypoints there, and watch, list or stop the jobs.

Everything the user can get wrong raises LauncherError with a message fit to show as is; the CLI
turns it into a ClickException. Config text and env var values are never put in a message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shopgen.core.config import CONFIG_TEXT_ENV

JOBS = ("finetune", "generate", "embed_index", "nightly", "tune_search", "finetune_search")
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# Local state and build litter never travel; Ray also honours .gitignore, this is the explicit floor.
EXCLUDES = [".venv", ".shopgen", ".git", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", "*.egg-info"]
# The driver's defaults match the CLI's (it sets HF_HUB_OFFLINE); unbuffered so tailed logs keep pace.
DEFAULT_ENV = {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
HINT = "start one with `ray start --head` or `ray up cluster.yaml`"
_CHATTY = ("ray._private.runtime_env.packaging", "ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class LauncherError(Exception):
    pass


# ---- pure helpers -----------------------------------------------------------------------------

def project_root() -> Path:
    """The folder holding pyproject.toml and jobs/: the checkout this package runs from, else the
    current folder or one above it."""
    here = Path(__file__).resolve().parents[1]
    for d in (here, *[Path.cwd(), *Path.cwd().parents]):
        if (d / "pyproject.toml").is_file() and (d / "jobs").is_dir():
            return d
    raise LauncherError("cannot find the shopgen project (a folder with pyproject.toml and jobs/) to ship; "
                        "run from a checkout")


def resolve_address(address: str | None) -> str:
    """--address, else RAY_ADDRESS when it is the job API's http(s) URL, else the local default."""
    if not address:
        env = os.environ.get("RAY_ADDRESS", "")
        address = env if env.startswith(("http://", "https://")) else DEFAULT_ADDRESS
    if "://" not in address:
        address = f"http://{address}"
    if not address.startswith(("http://", "https://")):
        raise LauncherError(f"--address must be the Ray job API's http(s) URL, e.g. {DEFAULT_ADDRESS}")
    return address.rstrip("/")


def is_loopback(address: str) -> bool:
    host = urlsplit(address).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    """KEY=VALUE pairs; a message names at most the key, never the value."""
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not _ENV_KEY.fullmatch(key):
            shown = key if sep and len(key) <= 64 else "…"
            raise LauncherError(f"--env expects KEY=VALUE with KEY a variable name (got key {shown!r})"
                                if sep else "--env expects KEY=VALUE (an argument without '=' was given)")
        out[key] = value
    return out


def runtime_env(project_root: Path, config_text: str | None = None,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """The job's runtime_env: the project as working_dir, and env vars (the shipped config among them)."""
    env_vars = {**DEFAULT_ENV, **(env or {})}
    if config_text is not None:
        env_vars[CONFIG_TEXT_ENV] = config_text
    return {"working_dir": str(project_root), "excludes": list(EXCLUDES), "env_vars": env_vars}


def job_name(job: str) -> str:
    name = job.replace("-", "_")
    if name not in JOBS:
        raise LauncherError(f"unknown job {job!r}; choose one of: {', '.join(JOBS)}")
    return name


def entrypoint(job: str, config_given: bool, extra_args: Sequence[str] = (),
               root: Path | None = None, python: str = "python") -> str:
    """`<python> jobs/<job>.py [extra args]`, shell-quoted. A --config given to submit travels as text in
    the environment, so the entrypoint gets none; a --config after `--` names a file on the cluster."""
    name = job_name(job)
    if root is not None and not (root / "jobs" / f"{name}.py").is_file():
        raise LauncherError(f"jobs/{name}.py is missing from {root}")
    if config_given and any(a == "--config" or a.startswith("--config=") for a in extra_args):
        raise LauncherError("give --config to submit (shipped with the job) or after `--` (a path on the "
                            "cluster), not both")
    return shlex.join([python, f"jobs/{name}.py", *extra_args])


def job_python(address: str, python: str | None = None) -> str:
    """The interpreter that runs a job: the one asked for; on a head at this machine's loopback, the
    one submitting (a `ray start` from a shell without the venv would otherwise run the system
    python); elsewhere the cluster's `python`, where cluster.yaml installs shopgen."""
    if python:
        return python
    return sys.executable if is_loopback(address) else "python"


def fmt_time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def job_dict(info: Any) -> dict[str, Any]:
    """The public fields of a JobDetails. runtime_env is left out: its env_vars hold the shipped config."""
    status = info.status
    return {"submission_id": info.submission_id, "job_id": info.job_id, "status": getattr(status, "value", status),
            "entrypoint": info.entrypoint, "message": info.message, "error_type": info.error_type,
            "start_time": info.start_time, "end_time": info.end_time,
            "driver_exit_code": getattr(info, "driver_exit_code", None),
            "shopgen_job": (info.metadata or {}).get("shopgen_job")}


# ---- the client -------------------------------------------------------------------------------

@contextlib.contextmanager
def _without_env(*names: str) -> Iterator[None]:
    # The SDK lets RAY_ADDRESS / RAY_API_SERVER_ADDRESS override the address it is given.
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def connect(address: str, timeout: float = 10.0):
    """A JobSubmissionClient for the job API at address (an http(s) URL)."""
    from ray.job_submission import JobSubmissionClient

    u = urlsplit(address)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:  # the SDK's own check has no timeout: a dead host would hang for minutes
        socket.create_connection((u.hostname, port), timeout=timeout).close()
    except OSError as e:
        raise LauncherError(f"cannot reach the Ray job API at {address}: {e} ({HINT})") from None
    try:
        with _without_env("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
            return JobSubmissionClient(address, headers=_local_token_header(address))
    except Exception as e:
        if "Authentication" in str(e):  # Ray's own message says where the token goes
            raise LauncherError(f"the Ray job API at {address} refused the request: {e}") from None
        raise LauncherError(f"cannot reach the Ray job API at {address}: {e} ({HINT})") from None


def _local_token_header(address: str) -> dict[str, str] | None:
    """`ray start --head` turns token auth on when ~/.ray/auth_token exists, but the SDK sends the token
    only under RAY_AUTH_MODE=token. For a cluster on this machine, send it; elsewhere the SDK's own
    settings (RAY_AUTH_MODE, RAY_AUTH_TOKEN[_PATH]) decide, so a local token never leaves the machine."""
    if os.environ.get("RAY_AUTH_MODE") or not is_loopback(address):
        return None
    try:
        from ray._raylet import AuthenticationTokenLoader  # noqa: PLC2701 (no public API reads the local token)

        loader = AuthenticationTokenLoader.instance()
        if loader.has_token(ignore_auth_mode=True):
            return {"authorization": "Bearer " + loader.get_raw_token(ignore_auth_mode=True)}
    except (ImportError, AttributeError, RuntimeError, TypeError):  # a Ray without token auth
        pass
    return None


@contextlib.contextmanager
def _job_errors(job_id: str) -> Iterator[None]:
    try:
        yield
    except RuntimeError as e:
        if "status code 404" in str(e) or "does not exist" in str(e):
            raise LauncherError(f"no job {job_id!r} on this cluster (see `shopgen jobs list`)") from None
        raise LauncherError(f"Ray job API: {e}") from None
    except ConnectionError as e:
        raise LauncherError(f"lost the Ray job API: {e}") from None


def submit(client, job: str, *, config_text: str | None = None, env: dict[str, str] | None = None,
           extra_args: Sequence[str] = (), submission_id: str | None = None, root: Path | None = None,
           python: str = "python") -> str:
    root = root or project_root()
    ep = entrypoint(job, config_text is not None, extra_args, root, python)
    renv = runtime_env(root, config_text, env)
    for name in _CHATTY:  # a line per ignored file otherwise; warnings still show
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return client.submit_job(entrypoint=ep, runtime_env=renv, submission_id=submission_id,
                                 metadata={"shopgen_job": job_name(job)})
    except (RuntimeError, ValueError) as e:  # e.g. a submission id already used, or an upload failure
        raise LauncherError(f"submit failed: {e}") from None


def info(client, job_id: str) -> dict[str, Any]:
    with _job_errors(job_id):
        return job_dict(client.get_job_info(job_id))


def list_jobs(client) -> list[dict[str, Any]]:
    with _job_errors("*"):
        rows = [job_dict(j) for j in client.list_jobs()]
    return sorted(rows, key=lambda r: r["start_time"] or 0)


def logs(client, job_id: str) -> str:
    with _job_errors(job_id):
        return client.get_job_logs(job_id)


def stop(client, job_id: str) -> bool:
    """True when the job was running and is being stopped."""
    with _job_errors(job_id):
        return client.stop_job(job_id)


def follow(client, job_id: str, write: Callable[[str], None], poll: float = 1.0) -> None:
    """Write the job's logs as they come until the job ends: the SDK's websocket tail, else polling."""
    info(client, job_id)  # an unknown id fails here, not inside the tail
    seen = 0

    async def tail() -> None:
        nonlocal seen
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)
            seen += len(chunk)

    try:
        asyncio.run(tail())
        return
    except Exception:  # a proxy without websockets, or a dropped connection: poll the full log instead
        pass
    while True:
        text = logs(client, job_id)
        if len(text) > seen:
            write(text[seen:])
            seen = len(text)
        if _terminal(info(client, job_id)["status"]):
            text = logs(client, job_id)
            if len(text) > seen:
                write(text[seen:])
            return
        time.sleep(poll)


def _terminal(status: str) -> bool:
    return status in ("SUCCEEDED", "FAILED", "STOPPED")


def wait(client, job_id: str, write: Callable[[str], None] | None = None, poll: float = 1.0) -> dict[str, Any]:
    """Block until the job ends, streaming its logs to write (default: stderr); returns its info."""
    follow(client, job_id, write or _stderr, poll)
    while not _terminal((i := info(client, job_id))["status"]):  # the tail can end a moment early
        time.sleep(poll)
    return i


def _stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()
