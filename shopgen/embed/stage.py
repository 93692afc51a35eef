"""The embed stage: rows -> the embedder's actor pool -> rows with vectors (and the vector cache)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from rich.console import Console

from shopgen.adapters import models
from shopgen.adapters.encoder import Embedder, cache_folder, write_cache
from shopgen.adapters.raysupport import build_processor, collect
from shopgen.core.config import Settings
from shopgen.core.run import Report
from shopgen.related.stage import relate


def embed_stage(src_dir: Path, model: models.ModelRef, settings: Settings, out_dir: Path,
                schema: pa.Schema | None = None) -> None:
    """Rows of src_dir -> the embedder's actor pool -> out_dir. The driver reads and writes the
    local folders; the actors see only the rows, the model reference and the cache's URI."""
    import ray

    emb = settings.embedding
    src = pads.dataset(str(src_dir), format="parquet", schema=schema)
    tables = [pa.Table.from_batches([b]) for b in src.to_batches(batch_size=emb.batch_size) if b.num_rows]
    out_dir.mkdir(parents=True, exist_ok=True)
    if not tables:
        return
    cache = cache_folder(settings.embedding_cache, model.version) if emb.cache else None
    ds = build_processor(ray.data.from_arrow(tables), emb, Embedder,
                         dict(model=model, settings=settings, encode_batch_size=emb.encode_batch_size, cache=cache))
    collect(ds, out_dir)


def embed_then_relate(src_dir: Path, work: Path, emb_model: models.ModelRef, settings: Settings, rep: Report,
                       console: Console) -> Path:
    """embed (with the vector cache) -> related products; returns the enriched folder."""
    embedded, enriched = work / "stages" / "embedded", work / "enriched"
    for d in (embedded, enriched):
        shutil.rmtree(d, ignore_errors=True)
    counts = rep.data["counts"]
    with rep.stage("embed", console) as st:
        embed_stage(src_dir, emb_model, settings, embedded)
        ds = pads.dataset(str(embedded), format="parquet") if any(embedded.glob("*.parquet")) else None
        n = ds.count_rows() if ds is not None else 0
        cached = ds.count_rows(filter=pc.field("embedding_cached")) if n else 0
        added = 0
        if n and settings.embedding.cache:  # only tonight's new vectors, for the cache; related streams them all
            new = ds.to_table(columns=["embedding_hash", "embedding", "embedding_cached"],
                              filter=~pc.field("embedding_cached"))
            added = write_cache(cache_folder(settings.embedding_cache, emb_model.version), new, rep.data["run_id"],
                                settings.s3)
        st.update(docs=n, computed=n - cached, cached=cached, cache_added=added)
        counts.update(embedded=n - cached, embeddings_reused=cached)
    st["docs_per_s"] = round(n / st["seconds"], 2) if st.get("seconds") else None
    if not n:
        return embedded
    return relate(embedded, enriched, None, settings, rep, console)
