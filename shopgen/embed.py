"""The embed stage: a pure text builder and a Ray Data actor holding one SentenceTransformer."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa


def _attr_text(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def embedding_text(row: dict[str, Any]) -> str:
    """What a product's vector represents: title, generated copy and attributes."""
    parts = [row.get("title") or ""]
    for k in ("brand", "category"):
        if row.get(k):
            parts.append(str(row[k]))
    if row.get("description"):
        parts.append(row["description"])
    attrs = row.get("attributes")
    attrs = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
    if attrs:
        parts.append("; ".join(f"{k.replace('_', ' ')}: {_attr_text(v)}" for k, v in attrs.items()))
    return "\n".join(p for p in parts if p)


def load_encoder(model_path: str, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path, device=device or "cpu")


def embedding_dims(encoder) -> int:
    get = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    return int(get())


class Embedder:
    """Ray Data callable class: adds an `embedding` column (float32, L2-normalised for cosine)."""

    def __init__(self, model_path: str, batch_size: int = 64):
        import os

        import torch

        if not torch.cuda.is_available():
            torch.set_num_threads(os.cpu_count() or 1)  # Ray pins actors to 1 thread
        self.model = load_encoder(model_path, "cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = [embedding_text(r) for r in batch.to_pylist()]
        vecs = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        col = pa.array(vecs.astype("float32").tolist(), type=pa.list_(pa.float32()))
        return batch.append_column("embedding", col)
