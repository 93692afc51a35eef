"""Typed records that flow through the stages: Product (input), GeneratedCopy (LLM output),
Quarantined (a row that was set aside, with its reason). Pure data, no I/O."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Scalar = Union[str, int, float, bool]
AttrValue = Union[Scalar, list[Scalar]]

# Fields of the canonical record; anything else in an input row is folded into `attributes`.
PRODUCT_FIELDS = ("sku", "title", "category", "brand", "attributes", "price", "currency", "locale", "description", "updated_at")


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
    def _default_locale(cls, v: Any) -> Any:
        return "en-US" if v is None or v == "" else v

    @field_validator("category", "brand", "currency", "description", "updated_at", mode="before")
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
