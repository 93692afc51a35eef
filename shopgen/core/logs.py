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
from rich.markup import escape

VERBOSE_ENV = "SHOPGEN_VERBOSE"
_RUN: ContextVar[tuple[Path, Console] | None] = ContextVar("shopgen_run_logs", default=None)
# What a worker prints that the console must show: shopgen's own worker warnings (an engine death).
WORKER_WARNING = "shopgen: "
# Ray's per-process files worth keeping from a local session (the rest is Ray's own bookkeeping).
RAY_LOG_GLOBS = ("worker-*.out", "worker-*.err", "ray-data/*.log", "python-core-driver-*.log")
RAY_LOG_MAX_BYTES = 20 * 1024 * 1024


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").lower() not in ("", "0", "false", "no")


def log_folder() -> Path | None:
    """The current run's log folder (set by quiet()), where ray_session copies Ray's logs."""
    run = _RUN.get()
    return run[0] if run else None


@contextmanager
def quiet(folder: Path, console: Console) -> Iterator[Path]:
    """For the duration: file descriptor 2 (Python's sys.stderr and every C library's stderr) goes to
    `folder/console.log`; `console` keeps writing to the terminal. Verbose: nothing is redirected."""
    folder.mkdir(parents=True, exist_ok=True)
    token = _RUN.set((folder, console))
    if verbose():
        try:
            yield folder
        finally:
            _RUN.reset(token)
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
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        try:
            yield folder
        finally:
            sys.stderr.flush()
            sys.stderr = py_stderr
            os.dup2(saved, 2)
            os.close(saved)
            console.file = own
            term.close()
            _RUN.reset(token)


def keep_ray_logs(session_dir: str | None) -> None:
    """Copies a local Ray session's worker and Ray Data logs into the run's log folder (Ray deletes
    old sessions; the run's folder is where people look), and shows the warnings shopgen's own
    workers wrote there (WORKER_WARNING lines) on the run's console."""
    run = _RUN.get()
    if run is None or not session_dir:
        return
    folder, console = run
    src = Path(session_dir) / "logs"
    dst = folder / "ray"
    for pattern in RAY_LOG_GLOBS:
        for f in sorted(src.glob(pattern)):
            if f.is_file() and 0 < f.stat().st_size <= RAY_LOG_MAX_BYTES:
                target = dst / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
                if not verbose() and f.name.startswith("worker-"):  # verbose: already on the console
                    for line in worker_warnings(target):
                        pid = target.stem.rsplit("-", 1)[-1]
                        console.print(f"[yellow]warning (Ray worker {pid}):[/] {escape(line)}", highlight=False)


def worker_warnings(path: Path) -> list[str]:
    """The lines of a worker's log that shopgen's own code wrote as warnings."""
    with path.open(encoding="utf-8", errors="replace") as f:
        return [line.strip()[len(WORKER_WARNING):] for line in f if line.lstrip().startswith(WORKER_WARNING)]
