"""The related-products kNN, pure: exact cosine top-k (vectors are L2-normalised) folded over the
candidates one chunk at a time, so no caller ever needs the whole catalog's matrix in memory."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def variant_group(sku: str, attributes: str | dict | None, keys: list[str]) -> str:
    """Products sharing a group are variants of one another. The group is the parent's SKU (or the
    group id) a variant names, else the product's own SKU, so a parent and its variants match."""
    attrs = json.loads(attributes) if isinstance(attributes, str) else (attributes or {})
    for k in keys:
        if attrs.get(k) not in (None, ""):
            return str(attrs[k])
    return sku


def key64(text: str) -> int:
    """A stable 64-bit id for a locale or a variant group (Python's hash() differs per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def keys64(values: list[str]) -> np.ndarray:
    return np.fromiter((key64(v) for v in values), dtype=np.int64, count=len(values))


def matrix(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """list<float> column -> (n, dims) float32 without a Python float per element."""
    n = len(col)
    flat = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype("float32", copy=False)
    return flat.reshape(n, -1) if n else np.zeros((0, 0), dtype="float32")


class TopK:
    """Each query's k best candidates so far, as (score, candidate id) with ties broken by the smaller
    id: merging chunks in any order gives the same lists as one exact pass over all of them."""

    def __init__(self, queries: np.ndarray, locales: np.ndarray, groups: np.ndarray, k: int):
        self.q, self.loc, self.grp, self.k = queries, locales, groups, k
        self.score = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.id = np.zeros((len(queries), 0), dtype=np.int64)

    def add(self, vectors: np.ndarray, locales: np.ndarray, groups: np.ndarray, ids: np.ndarray) -> None:
        """Folds in a chunk of candidates: only the same locale, never the query's own variant group."""
        if self.k <= 0 or not len(ids) or not len(self.q):
            return
        sims = self.q @ vectors.T
        sims[(self.loc[:, None] != locales[None, :]) | (self.grp[:, None] == groups[None, :])] = -np.inf
        kk = min(self.k, len(ids))
        # Every candidate tied with the kk-th best is kept, so the tie-break by id stays exact.
        kth = -np.partition(-sims, kk - 1, axis=1)[:, kk - 1:kk]
        rows, cols = np.nonzero((sims >= kth) & np.isfinite(sims))
        width = np.bincount(rows, minlength=len(self.q)).max(initial=0)
        score = np.full((len(self.q), width), -np.inf, dtype=np.float32)
        cid = np.full((len(self.q), width), np.iinfo(np.int64).max, dtype=np.int64)
        slot = np.arange(len(rows)) - np.searchsorted(rows, rows)
        score[rows, slot], cid[rows, slot] = sims[rows, cols], ids[cols]
        self._merge(score, cid)

    def _merge(self, score: np.ndarray, cid: np.ndarray) -> None:
        s = np.concatenate([self.score, score], axis=1)
        i = np.concatenate([self.id, cid], axis=1)
        order = np.lexsort((i, -s), axis=1)[:, :self.k]
        self.score, self.id = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)

    def lists(self) -> list[list[int]]:
        """Per query, the ids of its best candidates, best first."""
        return [[int(c) for c, s in zip(ids, sc) if np.isfinite(s)] for ids, sc in zip(self.id, self.score)]


def _sku_ids(skus: list[str]) -> tuple[list[int], np.ndarray]:
    """Each row's id is its SKU's rank, so ties go to the smaller SKU; `order[id]` is its row."""
    order = sorted(range(len(skus)), key=skus.__getitem__)
    ids = np.empty(len(skus), dtype=np.int64)
    ids[order] = np.arange(len(skus))
    return order, ids


def neighbours(skus: list[str], locales: list[str], groups: list[str], vectors: np.ndarray, k: int,
               batch: int = 512) -> dict[str, list[str]]:
    """Every row's k most similar rows of the same locale outside its own group, all in memory (a
    small catalog: eval-recs' content baseline, a unit test)."""
    order, ids = _sku_ids(skus)
    loc, grp = keys64(locales), keys64(groups)
    out: dict[str, list[str]] = {}
    for lo in range(0, len(skus), batch):
        best = TopK(vectors[lo:lo + batch], loc[lo:lo + batch], grp[lo:lo + batch], k)
        best.add(vectors, loc, grp, ids)
        out.update(zip(skus[lo:lo + batch], ([skus[order[c]] for c in row] for row in best.lists())))
    return out


def top_related(queries: np.ndarray, query_groups: list[str], vectors: np.ndarray, skus: list[str],
                groups: list[str], k: int) -> list[list[str]]:
    """For each query vector (one locale), the k most similar rows of `vectors` outside its own group."""
    order, ids = _sku_ids(skus)
    best = TopK(queries, np.zeros(len(queries), np.int64), keys64(query_groups), k)
    best.add(vectors, np.zeros(len(skus), np.int64), keys64(groups), ids)
    return [[skus[order[c]] for c in row] for row in best.lists()]
