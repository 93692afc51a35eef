"""A product's copy per content type, as the nightly state keeps it (pure).

One `CopyEntry` per (product, content type): its status (`fresh`: accepted tonight or for the
current key, `kept`: an earlier accepted text kept while the facts are unchanged, `none`), the
generation key of its accepted text and of its last attempt, the batch file holding the text, and
the failure history that drives retries. `ENTRIES` is the one encoding of an entry map (the state's
`copy` column, a generator row's `plan` and `types`, the journal)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

CopyStatus = Literal["fresh", "kept", "none"]
COPY_STATUSES: tuple[str, ...] = get_args(CopyStatus)


class CopyEntry(BaseModel):
    """One content type of one product. Unknown keys from other versions are ignored on reading."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: CopyStatus = "none"
    key: str | None = None  # the generation key its accepted text was made for
    attempt_key: str | None = None  # the key of the last attempt (tonight's when it was generated)
    uri: str | None = None  # the batch file (relative to the state prefix) that holds its text
    accepted_hash: str | None = None  # the content hash its accepted text was checked against
    run_id: str | None = None  # the run that made its accepted text
    reasons: list[str] = Field(default_factory=list)  # why its last attempt failed
    failures: int = 0  # failed nights for attempt_key
    first_failed: str | None = None  # night (YYYY-MM-DD) of the first and the latest failure
    last_failed: str | None = None

    def fresh_for(self, key: str) -> bool:
        return self.status == "fresh" and self.key == key

    @property
    def has_text(self) -> bool:
        return bool(self.uri) and self.status in ("fresh", "kept")


Entries = dict[str, CopyEntry]  # content type -> entry
ENTRIES: TypeAdapter[Entries] = TypeAdapter(Entries)
NO_ENTRY = CopyEntry()


def decode(blob: str | bytes | Mapping[str, Any] | None) -> Entries:
    """An entry map from its JSON (the state's `copy`), a dict of dicts, or nothing."""
    if not blob:
        return {}
    if isinstance(blob, Mapping):
        return ENTRIES.validate_python(blob)
    return ENTRIES.validate_json(blob)


def encode(entries: Mapping[str, CopyEntry]) -> str:
    return ENTRIES.dump_json(dict(entries)).decode()


def entry(entries: Mapping[str, CopyEntry], content: str) -> CopyEntry:
    return entries.get(content) or NO_ENTRY


def check_reasons(checks: Iterable[Mapping[str, Any]]) -> list[str]:
    """The one wording of a failed attempt's reasons: `check: detail` per failed check and detail."""
    return [f"{c['check']}: {d}" for c in checks if not c["passed"] for d in (c.get("details") or ["failed"])]


def typed_reasons(entries: Mapping[str, CopyEntry], types: Iterable[str]) -> list[str]:
    """`type/reason` for every type's failure reasons (the state's `reason` column)."""
    return [f"{t}/{r}" for t in types for r in entry(entries, t).reasons]


def public(entries: Mapping[str, CopyEntry], types: Iterable[str] | None = None,
           max_reasons: int | None = 10) -> dict[str, Any]:
    """What a document shows of its copy per type (all of `entries`' types by default): status and
    why it failed (the enriched rows' and documents' `copy`)."""
    return {t: {"status": entry(entries, t).status, "reasons": entry(entries, t).reasons[:max_reasons]}
            for t in (entries if types is None else types)}


def public_json(entries: Mapping[str, CopyEntry], types: Iterable[str] | None = None,
                max_reasons: int | None = 10) -> str:
    return json.dumps(public(entries, types, max_reasons), ensure_ascii=False)
