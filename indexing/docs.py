"""Enriched row -> Elasticsearch document (pure)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from shopgen.core.content import CONTENT_TYPES, texts_of
from shopgen.embed.encoder import attr_text


def copy_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The generated copy's document fields, derived from the content types' output schemas: each
    output field as generated (lists as lists, records as dicts; empty -> None), plus each type's
    `search_text` field joining its text."""
    out: dict[str, Any] = {}
    for ct in CONTENT_TYPES.values():
        fields = {}
        for name in ct.fields():
            v = row.get(name)
            if v is not None and not isinstance(v, str):
                v = [dict(x) if name in ct.records() else x for x in v] or None
            fields[name] = out[name] = v
        if ct.search_text:
            out[ct.search_text] = " ".join(texts_of({k: v for k, v in fields.items() if v})) or None
    return out


def es_doc(row: dict[str, Any], indexed_at: str | None = None) -> dict[str, Any]:
    attrs = row.get("attributes")
    attrs = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
    emb = row.get("embedding")
    doc = {
        "sku": row["sku"],
        "title": row["title"],
        **copy_fields(row),
        "source_description": row.get("source_description"),
        "attributes": attrs,
        "attributes_text": " ; ".join(f"{k.replace('_', ' ')} {attr_text(v)}" for k, v in attrs.items()) or None,
        "brand": row.get("brand"),
        "category": row.get("category"),
        "locale": row.get("locale"),
        "currency": row.get("currency"),
        "price": row.get("price"),
        "model_version": row.get("model_version"),
        "prompt_version": row.get("prompt_version"),
        "embedding_model": row.get("embedding_model"),
        "content_hash": row.get("content_hash"),
        "related_skus": list(row.get("related_skus") or []) or None,
        # Per content type: fresh | kept | none, and why tonight's copy failed.
        "copy": json.loads(c) if isinstance(c := row.get("copy"), str) else c,
        "updated_at": row.get("updated_at"),
        "indexed_at": indexed_at or datetime.now(timezone.utc).isoformat(),
        "embedding": [float(x) for x in emb] if emb is not None else None,
    }
    return {k: v for k, v in doc.items() if v is not None}
