"""Enriched row -> Elasticsearch document (pure)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from shopgen.embed.encoder import attr_text


def es_doc(row: dict[str, Any], indexed_at: str | None = None) -> dict[str, Any]:
    attrs = row.get("attributes")
    attrs = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
    emb = row.get("embedding")
    faq = [dict(q) for q in (row.get("faq") or [])]
    doc = {
        "sku": row["sku"],
        "title": row["title"],
        "description": row.get("description"),
        "source_description": row.get("source_description"),
        "ad_headlines": list(row.get("ad_headlines") or []),
        "ad_descriptions": list(row.get("ad_descriptions") or []),
        "ad_text": " ".join(list(row.get("ad_headlines") or []) + list(row.get("ad_descriptions") or [])) or None,
        "bullets": list(row.get("bullets") or []) or None,
        "seo_title": row.get("seo_title"),
        "faq": faq or None,
        "faq_text": " ".join(f"{q.get('question', '')} {q.get('answer', '')}" for q in faq) or None,
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
