"""Related products: the top-K most similar SKUs by embedding, within a locale, never the product
itself or its own variants. Exact cosine kNN (vectors are L2-normalised), in batches on Ray Data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from rich.console import Console

from shopgen.adapters.raysupport import collect
from shopgen.core.config import Settings
from shopgen.core.run import Report


def variant_group(sku: str, attributes: str | dict | None, keys: list[str]) -> str:
    """Products sharing a group are variants of one another. The group is the parent's SKU (or the
    group id) a variant names, else the product's own SKU, so a parent and its variants match."""
    attrs = json.loads(attributes) if isinstance(attributes, str) else (attributes or {})
    for k in keys:
        if attrs.get(k) not in (None, ""):
            return str(attrs[k])
    return sku


def top_related(queries: np.ndarray, query_groups: list[str], matrix: np.ndarray, skus: list[str],
                groups: list[str], k: int) -> list[list[str]]:
    """Pure: for each query vector, the k most similar rows of matrix outside its own group."""
    if k <= 0 or not len(skus):
        return [[] for _ in range(len(queries))]
    sims = queries @ matrix.T
    group_ids = {g: i for i, g in enumerate(sorted(set(groups) | set(query_groups)))}
    row_g = np.array([group_ids[g] for g in groups])
    q_g = np.array([group_ids[g] for g in query_groups])
    sims[q_g[:, None] == row_g[None, :]] = -np.inf
    kk = min(k, len(skus))
    top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    out = []
    for i, cand in enumerate(top):
        cand = cand[np.argsort(-sims[i, cand], kind="stable")]
        out.append([skus[j] for j in cand if np.isfinite(sims[i, j])])
    return out


def build_index(table: pa.Table, variant_keys: list[str]) -> dict[str, tuple[np.ndarray, list[str], list[str]]]:
    """Per locale: (vectors, skus, variant groups)."""
    out: dict[str, tuple[np.ndarray, list[str], list[str]]] = {}
    locales = [x or "" for x in table["locale"].to_pylist()]
    skus = table["sku"].to_pylist()
    attrs = table["attributes"].to_pylist()
    vecs = _matrix(table["embedding"])
    for loc in sorted(set(locales)):
        idx = [i for i, x in enumerate(locales) if x == loc]
        mat = vecs if len(idx) == len(locales) else vecs[idx]  # one locale: no copy of the matrix
        out[loc] = (mat, [skus[i] for i in idx], [variant_group(skus[i], attrs[i], variant_keys) for i in idx])
    return out


def _matrix(col: pa.ChunkedArray) -> np.ndarray:
    """list<float> column -> (n, dims) float32 without a Python float per element."""

    n = len(col)
    flat = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype("float32", copy=False)
    return flat.reshape(n, -1) if n else np.zeros((0, 0), dtype="float32")


def add_related(batch: pa.Table, index: list[Any], k: int, variant_keys: list[str]) -> pa.Table:
    """Ray Data batch function: appends `related_skus`. `index` wraps the ObjectRef of build_index's result."""
    import ray

    return with_related(batch, ray.get(index[0]), k, variant_keys)


def with_related(batch: pa.Table, by_locale: dict[str, tuple[np.ndarray, list[str], list[str]]], k: int,
                 variant_keys: list[str]) -> pa.Table:
    """Appends `related_skus` to a batch (pure)."""
    rows = batch.select(["sku", "locale", "attributes"]).to_pylist()
    vecs = _matrix(batch["embedding"])
    related: list[list[str]] = [[] for _ in rows]
    for loc in {r["locale"] or "" for r in rows}:
        pos = [i for i, r in enumerate(rows) if (r["locale"] or "") == loc]
        matrix, skus, groups = by_locale[loc]
        q = vecs[pos]
        qg = [variant_group(rows[i]["sku"], rows[i]["attributes"], variant_keys) for i in pos]
        for i, rel in zip(pos, top_related(q, qg, matrix, skus, groups, k)):
            related[i] = rel
    return batch.append_column("related_skus", pa.array(related, type=pa.list_(pa.string())))


INDEX_COLUMNS = ["sku", "locale", "attributes", "embedding"]


def related_stage(in_dir: Path, out_dir: Path, k: int, variant_keys: list[str], batch_size: int = 1024,
                  table: pa.Table | None = None, local_max_rows: int = 0) -> None:
    """Adds related_skus to the rows of in_dir. `table` (with INDEX_COLUMNS) is what they are
    matched against (default: the rows themselves); an incremental night matches its few changed
    rows against the whole catalog. Up to `local_max_rows` query rows the driver does it in-process:
    the matrix is in its memory anyway, and a Ray Data pipeline costs seconds of fixed overhead."""
    import ray

    if table is None:
        table = pads.dataset(str(in_dir), format="parquet").to_table(columns=INDEX_COLUMNS)
    index = build_index(table, variant_keys)
    if pads.dataset(str(in_dir), format="parquet").count_rows() <= local_max_rows:
        import pyarrow.parquet as pq

        out_dir.mkdir(parents=True, exist_ok=True)
        for i, b in enumerate(pads.dataset(str(in_dir), format="parquet").to_batches(batch_size=batch_size)):
            pq.write_table(with_related(pa.Table.from_batches([b]), index, k, variant_keys),
                           out_dir / f"part-{i:05d}.parquet")
        return

    ref = ray.put(index)
    blocks = [pa.Table.from_batches([b]) for b in pads.dataset(str(in_dir), format="parquet").to_batches(
        batch_size=batch_size) if b.num_rows]
    collect(ray.data.from_arrow(blocks).map_batches(add_related, batch_format="pyarrow", batch_size=batch_size,
                                                    fn_kwargs=dict(index=[ref], k=k, variant_keys=variant_keys)),
            out_dir)


def relate(embedded: Path, enriched: Path, table: pa.Table, settings: Settings, rep: Report,
           console: Console) -> Path:
    """Adds related_skus (top-K similar products among `table`) to every embedded row; returns the
    enriched folder."""
    k = settings.related.k
    if k == 0 or not table.num_rows:
        embedded.rename(enriched)
        return enriched
    with rep.stage("related", console) as st:
        related_stage(embedded, enriched, k, settings.related.variant_keys, table=table,
                      local_max_rows=settings.related.local_max_rows)
        st.update(k=k, docs=table.num_rows)
    return enriched
