"""Enriched row -> Elasticsearch document (pure)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from shopgen.adapters.encoder import attr_text
from shopgen.core.content import CONTENT_TYPES, texts_of
from shopgen.core.units import quantity_tokens


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


RECS_FIELDS = ("also_viewed", "bought_together", "recommended", "recommended_sources")


def es_doc(row: dict[str, Any], indexed_at: str | None = None,
           units: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """`units`: the shop's (search.units; None: the built-in ones), as the index's analyzer has them."""
    attrs = row.get("attributes")
    attrs = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
    emb = row.get("embedding")
    attributes_text = " ; ".join(f"{k.replace('_', ' ')} {attr_text(v)}" for k, v in attrs.items()) or None
    # The sizes the title and attributes state, as `0.5_inch` tokens and their units (the ranker's
    # number-and-unit agreement).
    amounts, unit_names = quantity_tokens(f"{row['title']} ; {attributes_text or ''}", units)
    doc = {
        "sku": row["sku"],
        "title": row["title"],
        **copy_fields(row),
        "source_description": row.get("source_description"),
        "attributes": attrs,
        "attributes_text": attributes_text,
        "quantities": amounts or None,
        "quantity_units": unit_names or None,
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
        **{f: list(row.get(f) or []) or None for f in RECS_FIELDS},
        # round(log2(1 + decayed behaviour weight)), from the behaviour log (a ranker feature).
        "popularity": row.get("popularity"),
        # Answered shoppers' questions (shopgen/answers), and their text for search.
        "qa": [dict(x) for x in qa] if (qa := row.get("qa")) else None,
        "qa_text": " ; ".join(f"{x['question']} {x['answer']}" for x in qa) if qa else None,
        # Per content type: fresh | kept | none, and why tonight's copy failed.
        "copy": json.loads(c) if isinstance(c := row.get("copy"), str) else c,
        "updated_at": row.get("updated_at"),
        "indexed_at": indexed_at or datetime.now(timezone.utc).isoformat(),
        "embedding": [float(x) for x in emb] if emb is not None else None,
    }
    return {k: v for k, v in doc.items() if v is not None}


class FieldStats:
    """Counts, over the documents an index is built from, which searchable fields can tell products
    apart: a field empty in every doc, or the same in every doc, adds nothing to a score."""

    def __init__(self, fields: Iterable[str]):
        # "category.text" is scored on the document's "category".
        self.fields = {f: f.split(".", 1)[0] for f in fields}
        self.first: dict[str, Any] = {}
        self.varies: set[str] = set()

    def add(self, doc: dict[str, Any]) -> dict[str, Any]:
        for f, src in self.fields.items():
            if f in self.varies:
                continue
            v = doc.get(src)
            v = json.dumps(v, sort_keys=True, ensure_ascii=False) if isinstance(v, (list, dict)) else v
            if f not in self.first:
                self.first[f] = v
            elif self.first[f] != v:
                self.varies.add(f)
        return doc

    def watch(self, docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return (self.add(d) for d in docs)

    def informative(self) -> list[str]:
        return [f for f in self.fields if f in self.varies]

    def uninformative(self) -> list[str]:
        return [f for f in self.fields if f not in self.varies]
