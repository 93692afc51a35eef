"""Recommendations, run: read and validate the behaviour log, the catalog's products (locale,
category, variant group) and their content-similar products, then `shopgen eval-recs`."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from shopgen.catalog.load import load_catalog
from shopgen.core.config import Settings
from shopgen.core.records import Product, Quarantined
from shopgen.recommend.blend import Item
from shopgen.recommend.evaluate import METHODS, evaluate
from shopgen.recommend.events import Event, read_events
from shopgen.related.stage import build_index, top_related, variant_group


def catalog_items(products: Iterable[Product], variant_keys: list[str]) -> dict[str, Item]:
    return {p.sku: Item(p.locale, p.category or "", variant_group(p.sku, p.attributes, variant_keys))
            for p in products}


def content_neighbours(products: list[Product], settings: Settings, k: int) -> dict[str, list[str]]:
    """Each product's k most similar products by embedding (same locale, not its variants): the
    related-products kNN, computed in this process from the embedder's vectors."""
    from shopgen.adapters import models
    from shopgen.adapters.encoder import document_text, encode_documents, load_encoder
    from shopgen.generate.engine import product_row

    if not products:
        return {}
    local = models.materialize(models.resolve(settings.models.embedder, settings), settings)
    enc = load_encoder(local.path)
    rows = [product_row(p) for p in products]
    vecs = encode_documents(enc, [document_text(r, settings.embedding) for r in rows], settings.embedding, 64)
    table = pa.table({"sku": [p.sku for p in products], "locale": [p.locale for p in products],
                      "attributes": [json.dumps(p.attributes) for p in products],
                      "embedding": pa.array(list(vecs.astype(np.float32)), pa.list_(pa.float32()))})
    out: dict[str, list[str]] = {}
    for matrix, skus, groups in build_index(table, settings.related.variant_keys).values():
        for lo in range(0, len(skus), 512):
            lists = top_related(matrix[lo:lo + 512], groups[lo:lo + 512], matrix, skus, groups, k)
            out.update(zip(skus[lo:lo + 512], lists))
    return out


def split_events(events: Iterable[Event | Quarantined], split_at: float | None,
                 quarantine: list[Quarantined]) -> tuple[list[Event], list[Event], float]:
    """Train (before the split) and test events; without a split, the time by which 80% of the
    events had happened."""
    good: list[Event] = []
    for e in events:
        (good if isinstance(e, Event) else quarantine).append(e)
    if not good:
        raise ValueError("no valid events to evaluate")
    if split_at is None:
        ts = sorted(e.ts for e in good)
        split_at = ts[min(len(ts) - 1, math.floor(0.8 * len(ts)))]
    train = [e for e in good if e.ts < split_at]
    test = [e for e in good if e.ts >= split_at]
    if not train or not test:
        raise ValueError(f"the split leaves no {'training' if not train else 'test'} events")
    return train, test, split_at


def run_eval_recs(events_uri: str, settings: Settings, split_at: float | None = None,
                  catalog_uri: str | None = None, k: int = 20, workdir: Path | None = None) -> dict[str, Any]:
    """Figures per method, flattened to `recall@K.<method>` keys; report.json and the bad rows
    (quarantine.jsonl, ids hashed) go to the workdir."""
    quarantine: list[Quarantined] = []
    catalog = content = None
    n_products = None
    if catalog_uri:
        products, _ = load_catalog(catalog_uri, settings.catalog, settings.s3)
        catalog = catalog_items(products, settings.related.variant_keys)
        content = content_neighbours(products, settings, max(k, 20))
        n_products = len(products)
    train, test, cut = split_events(read_events(events_uri, settings), split_at, quarantine)
    figures = evaluate(train, test, settings.recommend, k, catalog, content)
    cases = figures.pop("_cases")
    flat: dict[str, Any] = {}
    for metric in ("recall", "mrr", "ndcg", "coverage"):
        for m in METHODS:
            if m in figures:
                flat[f"{metric}@{k}.{m}" if metric != "coverage" else f"coverage.{m}"] = figures[m][metric]
    report = {**flat, "split_at": cut, "cases": cases["n"], "train_events": cases["train_events"],
              "test_events": len(test), "quarantined": len(quarantine), "products": n_products,
              "similarity": settings.recommend.similarity, "k": k}
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "report.json").write_text(json.dumps(report, indent=2))
        with (workdir / "quarantine.jsonl").open("w", encoding="utf-8") as f:
            for q in _rows(quarantine):
                f.write(q + "\n")
    return report


def _rows(qs: list[Quarantined]) -> Iterator[str]:
    for q in qs:
        yield q.model_dump_json()
