"""The run context every workflow shares: its report (stages, counts, errors), the quarantine
and copy-failure sinks, and the guarantee that report.json is written whatever happens."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from shopgen.core.config import Settings
from shopgen.core.logs import quiet
from shopgen.core.records import Quarantined
from shopgen.core.report import RunReport, describe

# The error a report gets when its data does not fit RunReport (it is then written as it was).
INVALID_REPORT = "report.json does not fit the RunReport model (written as it was)"


class Report:
    def __init__(self, **head: Any):
        self.data: dict[str, Any] = {**head, "status": "running", "counts": {}, "stages": {}, "errors": []}

    @contextmanager
    def stage(self, name: str, console: Console):
        if console.is_terminal:  # in a log, the stage's one summary line says it all
            console.rule(f"[bold]{name}")
        t = time.perf_counter()
        st: dict[str, Any] = {}
        self.data["stages"][name] = st
        try:
            yield st
        finally:
            st["seconds"] = round(time.perf_counter() - t, 3)
            console.print(f"[green]{name}[/] done in {st['seconds']:.1f}s "
                          + " ".join(f"{k}={v}" for k, v in st.items()
                                    if k != "seconds" and isinstance(v, (str, int, float, bool))),
                          soft_wrap=True)

    def dumps(self) -> str:
        """report.json's text: the data validated by RunReport (shopgen.core.report), with the keys
        as written. Data that does not fit the model is written as it is, never lost, and the
        validation error is added to its errors."""
        try:
            return RunReport.model_validate(self.data).dump_json()
        except (ValidationError, PydanticSerializationError) as e:
            why = describe(e) if isinstance(e, ValidationError) else str(e)
            note = f"{INVALID_REPORT}: {why}"
            errors = self.data.get("errors")
            if not isinstance(errors, list):
                errors = self.data["errors"] = [] if errors is None else [errors]
            if note not in errors:  # written twice (the workdir, the state store): noted once
                errors.append(note)
            return json.dumps(self.data, indent=2, default=str)

    def write(self, path: Path) -> None:
        path.write_text(self.dumps(), encoding="utf-8")


class StageProgress:
    """One stage's progress. On a terminal: one rich bar (done/total, tokens/s when counted, ETA).
    Elsewhere (a log, CI): a line at most every `every_s` and only after another tenth of the work,
    so a long night's log has at most ten progress lines per stage."""

    def __init__(self, console: Console, name: str, total: int, unit: str = "products", every_s: float = 30.0):
        self.console, self.name, self.total, self.unit, self.every_s = console, name, total, unit, every_s
        self.done = self.tokens = self.shown = 0
        self.t0 = self.last = time.perf_counter()
        self.bar: Progress | None = None

    def __enter__(self) -> StageProgress:
        if self.console.is_terminal:
            self.bar = Progress(TextColumn(self.name), BarColumn(), MofNCompleteColumn(), TextColumn(self.unit),
                                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.name, total=self.total, rate="")
        return self

    def rate(self) -> str:
        s = time.perf_counter() - self.t0
        return f"{self.tokens / s:.1f} tok/s" if self.tokens and s > 0 else ""

    def advance(self, n: int, tokens: int = 0) -> None:
        self.done += n
        self.tokens += tokens
        if self.bar is not None:
            self.bar.update(self.task, advance=n, rate=self.rate())
            return
        now = time.perf_counter()
        if now - self.last >= self.every_s and self.done - self.shown >= self.total / 10 and self.done < self.total:
            self.last, self.shown = now, self.done
            eta = (now - self.t0) / self.done * (self.total - self.done) if self.done else None
            self.console.print(f"{self.name}: {self.done}/{self.total} {self.unit}"
                               + (f", {self.rate()}" if self.tokens else "")
                               + (f", ETA {eta:.0f}s" if eta is not None else ""), highlight=False)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


def append_quarantine(path: Path, rows: list[Quarantined]) -> None:
    """Append the rows set aside and, when `rows` carries them (catalog.load.SetAside), the flags:
    fields of valid products kept as they are, written with `kind` "flag"."""
    with path.open("a", encoding="utf-8") as f:
        for q in [*rows, *getattr(rows, "flags", ())]:
            f.write(q.model_dump_json() + "\n")


def quarantine_counts(path: Path) -> dict[str, int]:
    """`quarantined`: the lines of rows set aside; `flagged` (only when there are any): the flag
    lines, whose products were kept."""
    set_aside = flagged = 0
    for line in path.open(encoding="utf-8"):
        try:
            is_flag = json.loads(line).get("kind") == "flag"
        except (ValueError, AttributeError):
            is_flag = False
        flagged += is_flag
        set_aside += not is_flag
    return {"quarantined": set_aside, **({"flagged": flagged} if flagged else {})}


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")


@contextmanager
def running(rep: Report, qpath: Path, rpath: Path, console: Console):
    """Whatever happens, the report is written with the status, the error and the quarantine count.
    Meanwhile the libraries' own output goes to the run's logs/ folder (shopgen.core.logs)."""
    try:
        with quiet(rpath.parent / "logs", console):
            yield
    except Exception as e:
        rep.data["status"] = "failed"
        rep.data["errors"].append(f"{type(e).__name__}: {e}")
        raise
    finally:
        rep.data["counts"].update(quarantine_counts(qpath))
        rep.data["finished_at"] = datetime.now(timezone.utc).isoformat()
        rep.write(rpath)
        console.print(f"report: {rpath.resolve()}")


def start_run(job: str, work: Path, settings: Settings, **head: Any) -> tuple[Report, Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    qpath, rpath = work / "quarantine.jsonl", work / "report.json"
    qpath.write_text("")
    (work / "copy_failures.jsonl").write_text("")
    started = datetime.now(timezone.utc)
    run_id = head.pop("run_id", None) or started.strftime("%Y%m%dT%H%M%S%fZ")
    rep = Report(run_id=run_id, job=job, workdir=str(work.resolve()),
                 started_at=started.isoformat(), **head, config=settings.redacted(),
                 outputs={"enriched": str((work / "enriched").resolve()), "quarantine": str(qpath.resolve()),
                          "copy_failures": str((work / "copy_failures.jsonl").resolve()),
                          "report": str(rpath.resolve()), "logs": str((work / "logs").resolve())})
    return rep, qpath, rpath
