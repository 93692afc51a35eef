"""report.json as a typed model: the pipeline writes it (shopgen.core.run.Report.write), report.html
and `shopgen report` read it (shopgen.report.render).

Every field is optional with a default because a run that fails early writes a partial report.
The key names are a contract users rely on: a dump (`dump_json`) carries exactly the keys that were
set, and every model lets unknown keys through (`extra="allow"`), so a stage's own figures and keys
a workflow adds later are kept as written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

Status = Literal["running", "succeeded", "failed"]
STATUSES: tuple[str, ...] = get_args(Status)


class ReportError(ValueError):
    """report.json cannot be read: not JSON, not a JSON object, or (strict) not a RunReport."""


class _Part(BaseModel):
    # NaN and ±inf are no figure: json.dumps writes them as invalid JSON and nothing can plot them.
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    def to_dict(self) -> dict[str, Any]:
        """The part as plain JSON data, with the keys it was given (report.json's shape)."""
        return self.model_dump(mode="json", exclude_unset=True, fallback=str)


class GateCheck(_Part):
    """One check of the index gate (indexing.gate): {check, passed, detail, **figures}. The relevance
    check (`ndcg@10`) has `new`/`live` scores, plain numbers or per-metric dicts, and the search `mode`."""
    check: str | None = None
    passed: bool | None = None
    detail: str | None = None
    new: float | dict[str, float | None] | None = None
    live: float | dict[str, float | None] | None = None
    mode: str | None = None


class GateReport(_Part):
    passed: bool | None = None
    reasons: list[str] = Field(default_factory=list)
    checks: list[GateCheck] = Field(default_factory=list)


class StageReport(_Part):
    """stages.<name>: `seconds` for every stage, plus the figures report.html reads; any other figure
    of a stage (rows, tokens, docs, server, previous, pruned ...) passes through as written."""
    seconds: float | None = None
    tokens_per_s: float | None = None  # generate
    startup_s: float | None = None  # generate: the LLM engine's start
    docs_per_s: float | None = None  # embed, index
    index: str | None = None  # index: the index built or upserted
    alias: str | None = None  # index
    gate: GateReport | None = None  # index
    swapped: bool | None = None  # index: the alias moved to the new index


class QACheck(_Part):
    checked: int | None = None
    passed: int | None = None
    pass_rate: float | None = None


class QAType(_Part):
    attempted: int | None = None
    accepted: int | None = None
    accepted_rate: float | None = None
    failures: dict[str, int] = Field(default_factory=dict)
    tokens: int | None = None  # generated tokens, every sample and attempt
    samples: int | None = None  # samples drawn (best-of-n candidates x attempts)
    tokens_per_accepted: float | None = None


class QASummary(_Part):
    """shopgen.generate.stage.qa_summary: pass rate per check, acceptance per content type."""
    checks: dict[str, QACheck] = Field(default_factory=dict)
    types: dict[str, QAType] = Field(default_factory=dict)
    unsupported_attribute_findings: int | None = None
    near_duplicates: list[dict[str, Any]] = Field(default_factory=list)
    rows_passed: int | None = None
    rows_failed: int | None = None


class CoverageType(_Part):
    fresh: int | None = None
    kept: int | None = None
    none: int | None = None
    fresh_share: float | None = None
    kept_share: float | None = None
    none_share: float | None = None


class Coverage(_Part):
    """shopgen.generate.stage.coverage: the searchable share of valid products and, per content
    type, the shares with fresh, kept and no copy; `unsupported_language`: products not sent to the
    LLM because the generator does not write their language (models.generator_languages)."""
    valid: int | None = None
    searchable: int | None = None
    searchable_share: float | None = None
    types: dict[str, CoverageType] = Field(default_factory=dict)
    unsupported_language: int | None = None


class Outputs(_Part):
    enriched: str | None = None
    quarantine: str | None = None
    copy_failures: str | None = None
    report: str | None = None
    report_html: str | None = None
    run_prefix: str | None = None
    state: str | None = None
    logs: str | None = None  # library chatter: Ray, Ray Data, vLLM (shopgen.core.logs)


class Startup(_Part):
    ray_init_s: float | None = None
    engine_start_s: float | None = None


class LockTakenOver(_Part):
    run_id: str | None = None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: str | None = None


class ReviewSummary(_Part):
    """The review page's figures at the end of a nightly (shopgen.review.night.review_figures)."""
    approved: int = 0
    rejected: int = 0
    edited: int = 0
    waiting: int = 0  # published texts no approval or edit holds
    audit_decided: int = 0  # decisions on the uniform audit sample of accepted texts
    gate_precision: float | None = None  # approved / decided on that sample
    gate_precision_ci95: list[float | None] | None = None  # Wilson interval
    url: str | None = None  # review.url: report.html links to the queue


class RunReport(_Part):
    """report.json of a nightly, generate or index run (fields in the order a run writes them)."""
    run_id: str | None = None
    job: str | None = None
    workdir: str | None = None
    started_at: str | None = None
    content: list[str] | None = None
    catalog: str | None = None
    input: str | None = None  # index build
    alias: str | None = None
    prompt_version: str | None = None
    limit: int | None = None
    state: str | None = None  # nightly: the state prefix
    full: bool | None = None
    mode: str | None = None  # "full" or "incremental"
    config: dict[str, Any] | None = None  # secrets masked
    outputs: Outputs | None = None
    status: Status | None = None
    # Nightly counts include `retried`, `retry_deferred` (due retries over nightly.copy_retry_budget),
    # `retry_gave_up` (retries used up) and `unsupported_language` (generate too).
    counts: dict[str, int] = Field(default_factory=dict)
    stages: dict[str, StageReport] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    model_version: str | None = None
    embedding_model: str | None = None
    startup: Startup | None = None
    qa: QASummary | None = None
    rebuild_reason: str | None = None
    coverage: Coverage | None = None
    review: ReviewSummary | None = None
    lock_taken_over: LockTakenOver | None = None
    resumed_batches: list[int | str] | int | None = None
    finished_at: str | None = None

    # What `lenient` had to drop to read the report (not part of report.json).
    _dropped: list[str] = PrivateAttr(default_factory=list)

    @field_validator("errors", mode="before")
    @classmethod
    def _error_strings(cls, v: Any) -> Any:
        """One error or a list of them; an error that is not a string is kept as its JSON text."""
        if v is None:
            return []
        return [e if isinstance(e, str) else json.dumps(e, default=str, ensure_ascii=False)
                for e in (v if isinstance(v, list) else [v])]

    @property
    def dropped(self) -> list[str]:
        """The parts of the source `lenient` left out, as 'where: why' (empty when it was valid)."""
        return list(self._dropped)

    def dump_json(self) -> str:
        """report.json's text: every key that was set (None included), none that was not."""
        return self.model_dump_json(indent=2, exclude_unset=True, fallback=str)

    @classmethod
    def lenient(cls, data: Any) -> RunReport:
        """A RunReport from whatever a report holds: the parts that do not fit the model (a count
        that is not a number, a stage that is not an object ...) are left out and listed in
        `dropped`; the rest is read as usual. Never raises on the content; `data` is not changed."""
        data = json.loads(json.dumps(data, default=str)) if isinstance(data, dict) else {}
        dropped: list[str] = []
        for _ in range(50):  # each round drops at least one part, so this ends; 50 is ample
            try:
                rep = cls.model_validate(data)
            except ValidationError as e:
                found: dict[tuple[Any, ...], str] = {}  # the part each error names, once (a union names it twice)
                for err in e.errors(include_url=False):
                    if (path := _reach(data, err["loc"])) and path not in found:
                        found[path] = err["msg"]
                if not found:
                    break
                # Last first: dropping item 3 of a list must not move item 5 that a later error names.
                for path in reversed(found):
                    _delete(data, path)
                dropped += [f"{_where(p)}: {msg}" for p, msg in found.items()]
                continue
            rep._dropped = dropped
            return rep
        rep = cls()
        rep._dropped = [*dropped, "the whole report: it does not fit the RunReport model"]
        return rep

    @classmethod
    def load(cls, source: str | os.PathLike[str] | bytes, strict: bool = False, name: str | None = None) -> RunReport:
        """Read report.json from bytes (read by an adapter, e.g. from s3://; `name` says where from)
        or a local path. Raises ReportError naming the file when it is not a JSON object; with
        strict=True also when it does not fit the model, else the parts that do not fit are dropped
        (see `lenient`): a failed run's report may have been written as it was when it did not validate."""
        name = name or ("report" if isinstance(source, bytes) else os.fspath(source))
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        try:
            data = json.loads(raw)
        except ValueError as e:  # UnicodeDecodeError is one
            raise ReportError(f"{name}: not a JSON report ({e})") from None
        if not isinstance(data, dict):
            raise ReportError(f"{name}: not a JSON object (a {type(data).__name__})")
        if not strict:
            return cls.lenient(data)
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ReportError(f"{name}: not a valid run report: {describe(e)}") from None


def describe(e: ValidationError) -> str:
    """A ValidationError in one line: 'stages.embed.seconds: Input should be a valid number; ...'."""
    return "; ".join(f"{_where(err['loc']) or '(report)'}: {err['msg']}" for err in e.errors(include_url=False))


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _reach(data: dict[str, Any], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The path of the innermost part of `data` that `loc` reaches (() when none)."""
    cur: Any = data
    path: list[Any] = []
    for part in loc:
        if (isinstance(cur, dict) and part in cur) or (
                isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)):
            cur = cur[part]
            path.append(part)
        else:  # a union member's name (loc "…new.float"), or past the data
            break
    return tuple(path)


def _delete(data: dict[str, Any], path: tuple[Any, ...]) -> None:
    parent: Any = data
    try:
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
    except (KeyError, IndexError, TypeError):  # inside a part already dropped
        pass
