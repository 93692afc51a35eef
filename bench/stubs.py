"""Fixed-output stand-ins for the generator and the embedder, for bench/nightly.py --scale only:
they keep the driver's work (read, plan, commit, embed split, related, index, state) and drop the
model cost, so the figures show how the driver scales with catalog size. Never used by a real run."""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
import pyarrow as pa


class FixedGenerator:
    """Accepts VLLMGenerator's arguments; every requested type gets a short fixed text that passes."""

    def __init__(self, model: Any, settings: Any, content: Sequence[str], gate: Any = None, spec: Any = None,
                 stage_started: float | None = None):
        from shopgen.adapters.raysupport import engine_id

        self.content, self.version, self.engine = list(content), model.version, engine_id()

    def __call__(self, batch: pa.Table) -> pa.Table:
        from shopgen.core.content import CONTENT_TYPES
        from shopgen.generate.engine import GENERATED_SCHEMA, Outcome, generated_row

        out = []
        for r in batch.to_pylist():
            types = list(r.get("gen_types") or self.content)
            outputs = {t: CONTENT_TYPES[t].schema(**{"seo_title": r["title"][:55]}) for t in types if t == "seo_title"}
            o = Outcome(outputs=outputs, checks={t: [] for t in types}, attempts=1, tokens=12 * len(types))
            out.append({**generated_row(r, o, types, self.version), "gen_engine": self.engine})
        return pa.Table.from_pylist(out, schema=GENERATED_SCHEMA)


class FixedEmbedder:
    """Accepts Embedder's arguments; a deterministic unit vector per embedding text (384 dims)."""

    def __init__(self, model: Any, settings: Any, encode_batch_size: Any = "auto", cache: str | None = None):
        self.version = model.version

    def __call__(self, batch: pa.Table) -> pa.Table:
        from shopgen.adapters.encoder import embedding_key, embedding_text

        keys = [embedding_key(embedding_text(r)) for r in batch.to_pylist()]
        vecs = np.stack([np.random.default_rng(int(hashlib.sha256(k.encode()).hexdigest()[:8], 16))
                         .standard_normal(384).astype("float32") for k in keys]) if keys else np.zeros((0, 384), "float32")
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-9
        emb = pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 384).cast(pa.list_(pa.float32()))
        n = batch.num_rows
        return (batch.append_column("embedding", emb).append_column("embedding_hash", pa.array(keys, pa.string()))
                .append_column("embedding_cached", pa.array([False] * n))
                .append_column("embedding_model", pa.array([self.version] * n, pa.string())))
