"""Index settings and mappings (pure): text per locale, keywords for filters, price, and a
dense_vector whose dims come from the embedding model."""

from __future__ import annotations

from typing import Any

TEXT_FIELDS = ("title", "description", "ad_text", "attributes_text", "source_description")


def index_body(dims: int, shards: int = 1, replicas: int = 0, hnsw_m: int = 16, ef_construction: int = 100) -> dict[str, Any]:
    text = {"type": "text", "analyzer": "english"}
    keyword = {"type": "keyword"}
    return {
        "settings": {"number_of_shards": shards, "number_of_replicas": replicas},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "sku": keyword,
                "title": {**text, "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
                "description": text,
                "source_description": text,
                "ad_headlines": text,
                "ad_descriptions": text,
                "ad_text": text,
                "attributes_text": text,
                "attributes": {"type": "object", "enabled": False},
                "brand": keyword,
                "category": keyword,
                "locale": keyword,
                "currency": keyword,
                "price": {"type": "double"},
                "model_version": keyword,
                "prompt_version": keyword,
                "content_hash": keyword,
                "updated_at": {"type": "date", "ignore_malformed": True},
                "indexed_at": {"type": "date"},
                "embedding": {
                    "type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine",
                    "index_options": {"type": "int8_hnsw", "m": hnsw_m, "ef_construction": ef_construction},
                },
            },
        },
    }
