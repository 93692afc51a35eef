"""Reading questions, a support log and the shop's policies (JSONL, CSV or Parquet; a file, a folder or
an s3:// prefix), validated like the catalog: a bad row goes to quarantine with its reason, nothing
crashes, and nothing in a row is obeyed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from shopgen.adapters.storage import input_files, read_bytes
from shopgen.catalog.load import RawRow, read_catalog
from shopgen.core.config import S3Config
from shopgen.core.questions import LogRow, Question
from shopgen.core.records import Quarantined

POLICIES_MAX_BYTES = 1 << 20


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(x) for x in e["loc"]) or "row"
        if e["type"] == "missing":
            parts.append(f"missing {field}")
        elif e["type"] == "extra_forbidden":
            parts.append(f"unknown field {field}")
        else:
            msg = (e.get("ctx") or {}).get("error") or e["msg"]
            parts.append(f"wrong type or value for {field}: {str(msg)[:120]}")
    return "; ".join(dict.fromkeys(parts))


def _validated(rows: Iterable[RawRow], model: type[BaseModel], stage: str, keep: tuple[str, ...] = ()
               ) -> Iterator[BaseModel | Quarantined]:
    seen: set[str] = set()
    for r in rows:
        if r.error is not None or not isinstance(r.data, dict):
            yield Quarantined(stage=stage, reason=r.error or "not an object", source=r.source, line=r.line, raw=r.raw)
            continue
        data = {k: v for k, v in r.data.items() if k not in keep or v is not None}
        try:
            item = model.model_validate(data)
        except ValidationError as e:
            sku = r.data.get("sku") if isinstance(r.data.get("sku"), str) else None
            yield Quarantined(stage=stage, reason=_reason(e), sku=sku, source=r.source, line=r.line, raw=r.data)
            continue
        qid = getattr(item, "id", None)
        if qid is not None:
            if qid in seen:
                yield Quarantined(stage=stage, reason=f"duplicate id {qid!r} (the first row is kept)",
                                  source=r.source, line=r.line, raw=r.data)
                continue
            seen.add(qid)
        yield item


def _rows(uri: str, s3: S3Config | None) -> Iterator[RawRow]:
    for f in input_files(uri, s3, what="questions"):
        yield from read_catalog(f, s3)


def read_questions(uri: str, s3: S3Config | None = None, *, with_expected: bool = False
                   ) -> tuple[list[Question], list[Quarantined], dict[str, Any]]:
    """(valid questions, quarantined rows, id -> `expected` label when `with_expected`)."""
    good: list[Question] = []
    bad: list[Quarantined] = []
    expected: dict[str, Any] = {}
    rows = list(_rows(uri, s3))
    labels = {}
    if with_expected:
        for r in rows:
            if isinstance(r.data, dict) and "expected" in r.data:
                labels[(r.source, r.line)] = r.data.pop("expected")
    for r, item in zip(rows, _validated(rows, Question, "questions")):
        if isinstance(item, Question):
            good.append(item)
            if (r.source, r.line) in labels:
                expected[item.id] = labels[(r.source, r.line)]
        else:
            bad.append(item)  # type: ignore[arg-type]
    return good, bad, expected


def read_log(uri: str, s3: S3Config | None = None) -> tuple[list[LogRow], list[Quarantined]]:
    good: list[LogRow] = []
    bad: list[Quarantined] = []
    for item in _validated((r for f in input_files(uri, s3, what="support log") for r in read_catalog(f, s3)),
                           LogRow, "support_log"):
        (good if isinstance(item, LogRow) else bad).append(item)  # type: ignore[arg-type]
    return good, bad


def read_policies(uri: str | None, s3: S3Config | None = None) -> str | None:
    """The policies file's text (UTF-8 Markdown, at most 1 MiB), or None when none is configured."""
    if not uri:
        return None
    data = read_bytes(uri, s3)
    if len(data) > POLICIES_MAX_BYTES:
        raise ValueError(f"answers.policies: {uri} is {len(data)} bytes, over the {POLICIES_MAX_BYTES} limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"answers.policies: {uri} is not UTF-8 text ({e})") from e
