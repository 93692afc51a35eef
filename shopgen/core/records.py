"""Typed records that flow through the stages: Product (input), GeneratedCopy (LLM output),
Quarantined (a row that was set aside, with its reason). Pure data, no I/O."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timezone
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Scalar = Union[str, int, float, bool]
AttrValue = Union[Scalar, list[Scalar]]

# Fields of the canonical record; anything else in an input row is folded into `attributes`.
PRODUCT_FIELDS = ("sku", "title", "category", "brand", "attributes", "price", "currency", "locale", "description", "updated_at")

# A well-formed BCP 47 language tag, in the subset shop catalogs use: language (2-3 letters),
# optional script (4 letters), optional region (2 letters or 3 digits), optional variants.
# e.g. en, en-US, zh-CN, zh-Hans-CN, es-419, de-CH-1996. Case is kept as given.
LOCALE_RE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*")
LOCALE_MAX_CHARS = 35


def _show(v: Any, n: int = 40) -> str:
    """repr of a value for a reason, cut to about n characters (a long value says how long it was)."""
    r = repr(v)
    if len(r) <= n:
        return r
    size = f" ({len(v)} chars)" if isinstance(v, str) else ""
    return r[: n - 3] + "..." + size


def parse_updated_at(s: str) -> datetime:
    """The timestamp of an updated_at string, parsed exactly as indexing turns it into an external
    version (indexing.lifecycle.epoch_ms): ISO 8601 via datetime.fromisoformat, 'Z' meaning UTC, a
    value without an offset read as UTC. Raises ValueError for anything else."""
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    t.timestamp()  # the version is derived from this; it must not fail later
    return t


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: Annotated[str, StringConstraints(min_length=1)]
    title: Annotated[str, StringConstraints(min_length=1)]
    category: str | None = None
    brand: str | None = None
    attributes: dict[str, AttrValue] = Field(default_factory=dict)
    price: float | None = Field(default=None, ge=0)
    currency: str | None = None
    locale: str = "en-US"
    description: str | None = None
    updated_at: str | None = None

    @field_validator("locale", mode="before")
    @classmethod
    def _check_locale(cls, v: Any) -> Any:
        """Empty means en-US. Otherwise a well-formed language tag of at most LOCALE_MAX_CHARS;
        the underscore form common in shop exports (zh_CN) is rewritten with hyphens (zh-CN)."""
        if isinstance(v, str):
            v = v.strip()
        if v is None or v == "":
            return "en-US"
        if isinstance(v, str):
            tag = v.replace("_", "-")
            if len(tag) <= LOCALE_MAX_CHARS and LOCALE_RE.fullmatch(tag):
                return tag
        raise ValueError(f"{_show(v)} is not a well-formed language tag (e.g. en-US, zh-CN)")

    @field_validator("updated_at", mode="before")
    @classmethod
    def _check_updated_at(cls, v: Any) -> Any:
        """ISO 8601 date or datetime (it becomes the document's external version in incremental
        indexing). A string is kept as given; a date/datetime (e.g. a Parquet timestamp column) is
        written in ISO form; anything else (an epoch number, 'yesterday', 2026-13-45) is rejected."""
        if isinstance(v, str):
            v = v.strip()
            if not v:
                return None
        elif isinstance(v, (datetime, date)):
            v = v.isoformat()
        elif v is None:
            return None
        if isinstance(v, str):
            try:
                parse_updated_at(v)
                return v
            except (ValueError, OverflowError, OSError):
                pass
        raise ValueError(f"{_show(v)} is not an ISO 8601 date or datetime (e.g. 2026-11-30 or 2026-11-30T10:00:00Z)")

    @field_validator("category", "brand", "currency", "description", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v


def content_hash(p: Product) -> str:
    """Stable hash of everything that shapes generated copy (not updated_at), for incremental runs."""
    body = p.model_dump(exclude={"updated_at"})
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class Quarantined(BaseModel):
    """A row set aside with one reason. `raw` keeps the original so nothing is lost."""

    stage: str  # validate | generate | index
    reason: str
    sku: str | None = None
    source: str | None = None
    line: int | None = None
    raw: Any = None
