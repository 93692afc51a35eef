"""Where library chatter goes. Ray's, Ray Data's, vLLM's and the C++ cores' own output (INFO lines,
deprecation and platform warnings, worker stdout) is written to `<run folder>/logs/`, so the console
shows shopgen's stage lines, progress and the warnings that matter. `shopgen --verbose`
(SHOPGEN_VERBOSE=1) also shows it on the console."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from rich.console import Console

VERBOSE_ENV = "SHOPGEN_VERBOSE"
_FOLDER: ContextVar[Path | None] = ContextVar("shopgen_log_folder", default=None)
# Ray's per-process files worth keeping from a local session (the rest is Ray's own bookkeeping).
RAY_LOG_GLOBS = ("worker-*.out", "worker-*.err", "ray-data/*.log", "python-core-driver-*.log")
RAY_LOG_MAX_BYTES = 20 * 1024 * 1024


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").lower() not in ("", "0", "false", "no")


def log_folder() -> Path | None:
    """The current run's log folder (set by quiet()), where ray_session copies Ray's logs."""
    return _FOLDER.get()


@contextmanager
def quiet(folder: Path, console: Console) -> Iterator[Path]:
    """For the duration: file descriptor 2 (Python's sys.stderr and every C library's stderr) goes to
    `folder/console.log`; `console` keeps writing to the terminal. Verbose: nothing is redirected."""
    folder.mkdir(parents=True, exist_ok=True)
    token = _FOLDER.set(folder)
    if verbose():
        try:
            yield folder
        finally:
            _FOLDER.reset(token)
        return
    sys.stderr.flush()
    saved = os.dup(2)
    term = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    own = vars(console).get("_file")
    console.file = term
    py_stderr = sys.stderr
    with open(folder / "console.log", "ab") as log:
        os.dup2(log.fileno(), 2)
        # Python-level writes too (warnings, print to stderr), whatever sys.stderr was wrapped in.
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        try:
            yield folder
        finally:
            sys.stderr.flush()
            sys.stderr = py_stderr
            os.dup2(saved, 2)
            os.close(saved)
            console.file = own
            term.close()
            _FOLDER.reset(token)


def keep_ray_logs(session_dir: str | None) -> None:
    """Copies a local Ray session's worker and Ray Data logs into the run's log folder (Ray deletes
    old sessions; the run's folder is where people look)."""
    folder = log_folder()
    if folder is None or not session_dir:
        return
    src = Path(session_dir) / "logs"
    dst = folder / "ray"
    for pattern in RAY_LOG_GLOBS:
        for f in src.glob(pattern):
            if f.is_file() and 0 < f.stat().st_size <= RAY_LOG_MAX_BYTES:
                target = dst / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
