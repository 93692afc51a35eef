"""Related products: the top-K most similar SKUs by embedding, within a locale, never the product
itself or its own variants. Exact cosine kNN (shopgen/related/knn.py) in batches of query rows on Ray
Data; each batch streams the candidates' vectors from the files that hold them (the state's vector
files, or an embedded folder), so neither the driver nor a task ever holds the catalog's matrix."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from rich.console import Console

from shopgen.adapters.raysupport import collect, local_parquet, on_driver_node
from shopgen.adapters.storage import is_s3, resolve
from shopgen.core.config import S3Config, Settings
from shopgen.core.run import Report
from shopgen.related.knn import TopK, keys64, matrix, top_related, variant_group

__all__ = ["INDEX_COLUMNS", "Pool", "folder_pool", "make_pool", "relate", "related_stage", "top_related",
           "variant_group", "with_related"]

INDEX_COLUMNS = ["sku", "locale", "attributes", "embedding"]
META_COLUMNS = ["sku", "locale", "attributes"]


@dataclass(frozen=True)
class Pool:
    """The candidates: their SKUs in sorted order (a candidate's position is its id, so ties go to the
    smaller SKU), locale and variant-group keys, and each vector file with the positions it serves.
    About 100 bytes a product: the vectors themselves stay in their files."""

    skus: pa.Array
    locales: np.ndarray
    groups: np.ndarray
    files: tuple[tuple[str, np.ndarray], ...]
    s3: S3Config | None = None

    def __len__(self) -> int:
        return len(self.skus)

    def chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(vectors, positions) of at most `rows` candidates at a time, a file's rows that are not
        its products' current vectors (a later night re-embedded them) left out."""
        for uri, pos in self.files:
            fs, path = resolve(uri, self.s3)
            own = self.skus.take(pa.array(pos))
            with fs.open_input_file(path) as f:
                for b in pq.ParquetFile(f).iter_batches(batch_size=rows, columns=["sku", "embedding"]):
                    j = pc.index_in(b.column(0), value_set=own)
                    keep = pc.is_valid(j)
                    if not pc.any(keep).as_py():
                        continue
                    yield matrix(b.column(1).filter(keep)), pos[j.filter(keep).to_numpy()]


def make_pool(meta: pa.Table, where: Mapping[str, str], variant_keys: list[str], s3: S3Config | None = None) -> Pool:
    """meta: `sku`, `locale`, `attributes` of every candidate; where: sku -> the file (a local path or
    an s3:// URI) holding its vector. A SKU without a file is not a candidate."""
    meta = meta.filter(pc.is_in(meta["sku"], pa.array(list(where), pa.string())))
    meta = meta.take(pc.sort_indices(meta["sku"]))
    skus = meta["sku"].to_pylist()
    locales = keys64([x or "" for x in meta["locale"].to_pylist()])
    groups = keys64([variant_group(s, a, variant_keys) for s, a in zip(skus, meta["attributes"].to_pylist())])
    by_file: dict[str, list[int]] = {}
    for i, s in enumerate(skus):
        by_file.setdefault(where[s], []).append(i)
    files = tuple((uri, np.array(p, dtype=np.int64)) for uri, p in sorted(by_file.items()))
    return Pool(meta["sku"].combine_chunks(), locales, groups, files, s3)


def folder_pool(folder: Path, variant_keys: list[str]) -> Pool:
    """Every row of a folder of Parquet files with INDEX_COLUMNS as a candidate."""
    parts, where = [], {}
    for f in sorted(folder.glob("*.parquet")):
        t = pq.read_table(f, columns=META_COLUMNS)
        where.update(dict.fromkeys(t["sku"].to_pylist(), str(f.resolve())))
        parts.append(t)
    meta = pa.concat_tables(parts) if parts else pa.table({c: pa.array([], pa.string()) for c in META_COLUMNS})
    return make_pool(meta, where, variant_keys)


def with_related(batch: pa.Table, pool: Pool, k: int, variant_keys: list[str], chunk_rows: int = 4096) -> pa.Table:
    """Appends `related_skus` to a batch of rows with INDEX_COLUMNS: the pool's candidates streamed
    a chunk at a time into each row's running top k."""
    skus = batch["sku"].to_pylist()
    best = TopK(matrix(batch["embedding"]), keys64([x or "" for x in batch["locale"].to_pylist()]),
                keys64([variant_group(s, a, variant_keys) for s, a in zip(skus, batch["attributes"].to_pylist())]), k)
    for vectors, pos in pool.chunks(chunk_rows):
        best.add(vectors, pool.locales[pos], pool.groups[pos], pos)
    lists = best.lists()
    offsets = pa.array(np.cumsum([0] + [len(x) for x in lists]), pa.int32())
    names = pool.skus.take(pa.array([i for x in lists for i in x], pa.int64()))
    return batch.append_column("related_skus", pa.ListArray.from_arrays(offsets, names))


def add_related(batch: pa.Table, pool: list[Any], k: int, variant_keys: list[str], chunk_rows: int) -> pa.Table:
    """Ray Data batch function; `pool` wraps the Pool's ObjectRef."""
    import ray

    return with_related(batch, ray.get(pool[0]), k, variant_keys, chunk_rows)


def related_stage(in_dir: Path, out_dir: Path, k: int, variant_keys: list[str], batch_size: int = 1024,
                  pool: Pool | None = None, local_max_rows: int = 0, chunk_rows: int = 4096) -> None:
    """Adds related_skus to the rows of in_dir, matched against `pool` (default: the rows themselves);
    an incremental night matches its few changed rows against the whole catalog. Up to
    `local_max_rows` query rows it runs in this process (a Ray Data pipeline costs seconds of fixed
    overhead); memory is then one batch and one chunk of candidates, as in a Ray task."""
    import ray

    if pool is None:
        pool = folder_pool(in_dir, variant_keys)
    files = sorted(str(f.resolve()) for f in in_dir.glob("*.parquet"))
    if not files:
        out_dir.mkdir(parents=True, exist_ok=True)
        return
    if sum(pq.ParquetFile(f).metadata.num_rows for f in files) <= local_max_rows:
        out_dir.mkdir(parents=True, exist_ok=True)
        for i, b in enumerate(pads.dataset(files, format="parquet").to_batches(batch_size=batch_size)):
            if b.num_rows:
                pq.write_table(with_related(pa.Table.from_batches([b]), pool, k, variant_keys, chunk_rows),
                               out_dir / f"part-{i:05d}.parquet")
        return
    # Local vector files can only be read on the driver's node; s3:// ones anywhere.
    here = {} if all(is_s3(uri) for uri, _ in pool.files) else on_driver_node()
    rows = local_parquet(files, pq.read_schema(files[0]), rows=batch_size)
    collect(rows.map_batches(add_related, batch_format="pyarrow", batch_size=batch_size, num_cpus=1, **here,
                             fn_kwargs=dict(pool=[ray.put(pool)], k=k, variant_keys=variant_keys,
                                            chunk_rows=chunk_rows)), out_dir)


def relate(embedded: Path, enriched: Path, pool: Pool | None, settings: Settings, rep: Report,
           console: Console) -> Path:
    """Adds related_skus (top-K similar products among `pool`, default the embedded rows) to every
    embedded row; returns the enriched folder."""
    cfg = settings.related
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in embedded.glob("*.parquet"))
    if cfg.k == 0 or not rows or (pool is not None and not len(pool)):
        embedded.rename(enriched)
        return enriched
    with rep.stage("related", console) as st:
        pool = pool if pool is not None else folder_pool(embedded, cfg.variant_keys)
        related_stage(embedded, enriched, cfg.k, cfg.variant_keys, batch_size=cfg.batch_size, pool=pool,
                      local_max_rows=cfg.local_max_rows, chunk_rows=cfg.chunk_rows)
        st.update(k=cfg.k, docs=len(pool), vector_files=len(pool.files))
    return enriched
