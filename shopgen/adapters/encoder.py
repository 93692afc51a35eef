"""The embed stage: a pure text builder and a Ray Data actor holding one SentenceTransformer."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def attr_text(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


TEXT_FIELDS = ("title", "brand", "category", "attributes", "description")


def _attrs(row: dict[str, Any]) -> dict[str, Any]:
    a = row.get("attributes")
    return json.loads(a) if isinstance(a, str) else (a or {})


def embedding_text(row: dict[str, Any], fields: Sequence[str] = TEXT_FIELDS,
                   attributes: Sequence[str] | None = None, prefix: str = "") -> str:
    """What a product's vector represents: `fields` in order (title first by default), `attributes`
    (None: all) and an explicit document prefix. The text is also the vector's cache key."""
    parts = []
    for f in fields:
        if f == "attributes":
            attrs = _attrs(row)
            names = attrs if attributes is None else [k for k in attributes if k in attrs]
            if names:
                parts.append("; ".join(f"{k.replace('_', ' ')}: {attr_text(attrs[k])}" for k in names))
        elif f == "description":
            # Generated copy when there is some, else the shop's own (an index built from the raw catalog).
            parts.append(row.get("description") or row.get("source_description") or "")
        elif row.get(f):
            parts.append(str(row[f]))
    text = "\n".join(p for p in parts if p)
    return prefix + text if prefix and prefix != "auto" else text


def document_text(row: dict[str, Any], cfg: Any) -> str:
    """embedding_text as an EmbeddingConfig says."""
    return embedding_text(row, cfg.text_fields, cfg.text_attributes, cfg.document_prefix)


def document_key(text: str, cfg: Any) -> str:
    """The vector cache key of a document_text: an explicit prefix (even "") is part of the key, so
    switching between it and `auto` (a prefix the model adds at encode time) re-embeds."""
    return embedding_key(text if cfg.document_prefix == "auto" else f"{text}\x00prefix={cfg.document_prefix}")


# Families whose retrieval prompts are part of how they were trained: (query, document).
KNOWN_PROMPTS = {"e5": ("query: ", "passage: "),
                 "bge-*-en": ("Represent this sentence for searching relevant passages: ", ""),
                 "nomic-embed": ("search_query: ", "search_document: ")}


def model_prompt(model: Any, kind: str, setting: str = "auto") -> str:
    """The prefix for `kind` (query or document): the setting, else the model's own prompts, else
    its family's, else none."""
    if setting != "auto":
        return setting
    prompts = getattr(model, "prompts", None) or {}
    for name in (("query",) if kind == "query" else ("document", "passage", "corpus")):
        if prompts.get(name):
            return prompts[name]
    try:
        name = str(model[0].auto_model.config._name_or_path).lower()
    except (AttributeError, IndexError, KeyError, TypeError):
        name = ""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    for family, (q, d) in KNOWN_PROMPTS.items():
        if fnmatch.fnmatch(base, f"*{family}*"):
            return q if kind == "query" else d
    return ""


def encode_queries(model: Any, texts: list[str], cfg: Any) -> np.ndarray:
    """Unit vectors of search queries, with the query prefix the model needs."""
    prompt = model_prompt(model, "query", cfg.query_prefix)
    return model.encode([prompt + t for t in texts], normalize_embeddings=True, convert_to_numpy=True)


def encode_documents(model: Any, texts: list[str], cfg: Any, batch_size: int = 32) -> np.ndarray:
    """Unit vectors of product texts (from document_text); an auto prefix is added here, an
    explicit one is already in the text."""
    prompt = model_prompt(model, "document", "auto") if cfg.document_prefix == "auto" else ""
    return model.encode([prompt + t for t in texts], batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True)


def query_encoder(model: Any, cfg: Any):
    """text -> query vector, for `indexing.search.search`."""
    return lambda text: encode_queries(model, [text], cfg)[0]


def load_encoder(model_path: str, device: str | None = None):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from shopgen.core.logs import verbose

    if not verbose():  # a "Loading weights" bar per query is chatter (--verbose shows it)
        hf_logging.disable_progress_bar()
    return SentenceTransformer(model_path, device=device or "cpu")


def embedding_dims(encoder) -> int:
    get = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    return int(get())


def embedding_key(text: str) -> str:
    """Cache key of one vector: the hash of exactly the text embedded (the model is the folder)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_folder(root: str | Path, model_version: str) -> str:
    """The vector cache of one model: a folder or s3:// prefix under embedding.cache_dir."""
    return f"{str(root).rstrip('/')}/{re.sub(r'[^A-Za-z0-9._-]+', '_', model_version)}"


CACHE_SCHEMA = pa.schema([("embedding_hash", pa.string()), ("embedding", pa.list_(pa.float32()))])


def write_cache(folder: str, table: pa.Table, name: str, s3: Any = None) -> int:
    """Adds newly computed vectors to the cache as one more Parquet file (one object on s3://;
    write-then-rename on a local disk, so a reader never sees half a file)."""
    import pyarrow.parquet as pq

    from shopgen.adapters.storage import resolve

    new = table.filter(pc.invert(table["embedding_cached"])).select(["embedding_hash", "embedding"])
    if not new.num_rows:
        return 0
    keys = new["embedding_hash"].to_pylist()
    first = sorted({k: i for i, k in reversed(list(enumerate(keys)))}.values())
    new = new.take(pa.array(first, type=pa.int64())).cast(CACHE_SCHEMA)
    fs, path = resolve(folder, s3)
    if fs.type_name == "local":  # an object store has no folders: markers would only cost requests
        fs.create_dir(path, recursive=True)
        tmp = f"{path}/.{name}.parquet.tmp"
        pq.write_table(new, tmp, filesystem=fs)
        fs.move(tmp, f"{path}/{name}.parquet")
    else:
        pq.write_table(new, f"{path}/{name}.parquet", filesystem=fs)
    return new.num_rows


def open_cache(folder: str | None, s3: Any = None):
    """The cache as a pyarrow dataset, or None when it holds nothing yet (or is switched off)."""
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    from shopgen.adapters.storage import resolve

    if not folder:
        return None
    fs, path = resolve(folder, s3)
    files = [i.path for i in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
             if i.type == pafs.FileType.File and i.path.endswith(".parquet")]
    return pads.dataset(files, format="parquet", schema=CACHE_SCHEMA, filesystem=fs) if files else None


def candidate_batch_sizes(on_gpu: bool) -> list[int]:
    return [32, 64, 128, 256, 512] if on_gpu else [16, 32, 64, 128]


class BatchTuner:
    """Picks the encoder batch size by timing real work: the first slices of the first batches are
    encoded at each candidate size (chars/s, so text length does not skew it); then the fastest wins."""

    def __init__(self, candidates: list[int]):
        self.todo = list(candidates)
        self.seen: dict[int, float] = {}
        self.best: int | None = None if len(candidates) > 1 else candidates[0]

    def next_size(self) -> int:
        return self.best if self.best is not None else self.todo[0]

    def record(self, size: int, chars: int, seconds: float, failed: bool = False) -> None:
        if self.best is not None:
            return
        self.todo.remove(size)
        if failed:  # out of memory: larger sizes will fail too
            self.todo = [s for s in self.todo if s < size]
        else:
            self.seen[size] = chars / max(seconds, 1e-9)
        if not self.todo:
            self.best = max(self.seen, key=self.seen.get) if self.seen else size // 2 or 1


class Embedder:
    """Ray Data callable class: adds `embedding` (float32, L2-normalised for cosine), `embedding_hash`,
    `embedding_cached` and `embedding_model`. Vectors already in the cache are read, not recomputed."""

    def __init__(self, model: Any, settings: Any, encode_batch_size: int | str = "auto", cache: str | None = None):
        """model: a shopgen.adapters.models.ModelRef, fetched here into this node's cache; cache: the vector
        cache's folder or s3:// prefix (None: off)."""
        import os

        import torch

        from shopgen.adapters.models import materialize

        self.on_gpu = torch.cuda.is_available()
        if not self.on_gpu:
            torch.set_num_threads(os.cpu_count() or 1)  # Ray pins actors to 1 thread
        self.local = materialize(model, settings)
        self.model = load_encoder(self.local.path, "cuda" if self.on_gpu else "cpu")
        self.model_version = model.version
        self.text_cfg = settings.embedding
        # An auto prefix depends only on the model, and the vector cache is per model: keys stay the texts.
        self.doc_prompt = model_prompt(self.model, "document") if self.text_cfg.document_prefix == "auto" else ""
        sizes = candidate_batch_sizes(self.on_gpu) if encode_batch_size == "auto" else [int(encode_batch_size)]
        self.tuner = BatchTuner(sizes)
        self.cache = open_cache(cache, settings.s3)
        self.cached_keys: set[str] = set()
        if self.cache is not None:
            self.cached_keys = set(self.cache.to_table(columns=["embedding_hash"])["embedding_hash"].to_pylist())

    def _encode(self, texts: list[str]) -> np.ndarray:
        out, i = [], 0
        while i < len(texts):
            size = self.tuner.next_size()
            if self.tuner.best is not None:
                part = texts[i:]
            else:
                part = texts[i:i + 2 * size]
            t = time.perf_counter()
            try:
                vecs = self.model.encode([self.doc_prompt + x for x in part], batch_size=size,
                                         normalize_embeddings=True, convert_to_numpy=True)
            except RuntimeError as e:  # CUDA OOM while tuning: try smaller sizes
                if "out of memory" not in str(e).lower() or self.tuner.best is not None:
                    raise
                import torch

                torch.cuda.empty_cache()
                self.tuner.record(size, 0, 0, failed=True)
                continue
            self.tuner.record(size, sum(map(len, part)), time.perf_counter() - t)
            out.append(vecs.astype("float32"))
            i += len(part)
        return np.concatenate(out) if out else np.zeros((0, 0), dtype="float32")

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not batch.num_rows:
            return (batch.append_column("embedding", pa.array([], pa.list_(pa.float32())))
                    .append_column("embedding_hash", pa.array([], pa.string()))
                    .append_column("embedding_cached", pa.array([], pa.bool_()))
                    .append_column("embedding_model", pa.array([], pa.string())))
        texts = [document_text(r, self.text_cfg) for r in batch.to_pylist()]
        keys = [document_key(t, self.text_cfg) for t in texts]
        hit = [k in self.cached_keys for k in keys]
        vecs: list[Any] = [None] * len(texts)
        if any(hit):
            found = self.cache.to_table(filter=pc.field("embedding_hash").isin([k for k, h in zip(keys, hit) if h]))
            by_key = dict(zip(found["embedding_hash"].to_pylist(), found["embedding"].to_pylist()))
            for j, k in enumerate(keys):
                vecs[j] = by_key.get(k)
        todo = [j for j, v in enumerate(vecs) if v is None]
        if todo:
            for j, v in zip(todo, self._encode([texts[j] for j in todo])):
                vecs[j] = v
        fresh = set(todo)
        mat = np.asarray(vecs, dtype="float32").reshape(len(texts), -1)
        emb = pa.ListArray.from_arrays(pa.array(np.arange(0, mat.size + 1, max(mat.shape[1], 1), dtype="int32")),
                                       pa.array(mat.ravel()))
        return (batch.append_column("embedding", emb)
                .append_column("embedding_hash", pa.array(keys, type=pa.string()))
                .append_column("embedding_cached", pa.array([j not in fresh for j in range(len(texts))]))
                .append_column("embedding_model", pa.array([self.model_version] * len(texts), type=pa.string())))
