"""Recommendations, run: read and validate the behaviour log, the catalog's products (locale,
category, variant group) and their content-similar products, then `shopgen eval-recs`."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from shopgen.catalog.load import load_catalog, read_catalog
from shopgen.core.config import RecommendConfig, Settings
from shopgen.core.records import Product, Quarantined
from shopgen.core.run import append_quarantine
from shopgen.recommend.blend import Item
from shopgen.recommend.evaluate import METHODS, evaluate
from shopgen.recommend.events import Event, read_events
from shopgen.related.knn import neighbours as content_knn
from shopgen.related.knn import variant_group


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
    vk = settings.related.variant_keys
    return content_knn([p.sku for p in products], [p.locale or "" for p in products],
                      [variant_group(p.sku, p.attributes, vk) for p in products], vecs.astype(np.float32), k)


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
        (workdir / "quarantine.jsonl").write_text("")
        append_quarantine(workdir / "quarantine.jsonl", quarantine)
    return report


# ---- the nightly's recommend step ---------------------------------------------------------------

LIST_COLUMNS = ("also_viewed", "bought_together", "recommended", "recommended_sources")
FOLD_KEYS = ("weights", "half_life_days", "session_gap_minutes", "max_session_items")


@dataclass(frozen=True)
class Recs:
    """Tonight's behaviour lists: the neighbour table (a folder in the workdir), each product's list
    hash (with its popularity bucket), the catalog SKUs whose lists or bucket changed since the state's,
    the popular products per (locale, category), and each catalog product's popularity bucket.
    `folder` None: no behaviour log is configured."""

    folder: Path | None
    hashes: dict[str, str]
    changed: frozenset[str]
    popular: dict[tuple[str, str], list[tuple[str, float]]]
    figures: dict[str, Any]
    popularity: dict[str, float] = field(default_factory=dict)


NO_RECS = Recs(None, {}, frozenset(), {}, {})


def popularity_buckets(catalog_skus: Iterable[str], items: dict[str, float]) -> dict[str, float]:
    """A product's decayed behaviour weight as round(log2(1 + weight)): the ranker's popularity, coarse
    on purpose, so a document changes when its popularity doubles or halves, not every night."""
    return {s: float(round(math.log2(1.0 + items[s]))) for s in catalog_skus if items.get(s, 0) > 0}


def with_popularity(hashes: dict[str, str], buckets: dict[str, float]) -> dict[str, str]:
    """List hashes with each product's popularity bucket, so a new bucket re-indexes the product."""
    out = {s: f"{h}|p{buckets[s]:g}" if s in buckets else h for s, h in hashes.items()}
    out.update({s: f"|p{b:g}" for s, b in buckets.items() if s not in hashes})
    return out


def fold_key(cfg: RecommendConfig) -> str:
    """The settings the stored aggregates depend on: a change refolds the whole log."""
    import hashlib

    blob = json.dumps({k: getattr(cfg, k) for k in FOLD_KEYS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _sync_down(store: Any, rel: str, dest: Path) -> bool:
    names = [x for x in store.list(rel) if x.endswith(".parquet")]
    for x in names:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / x).write_bytes(store.read(f"{rel}/{x}"))
    return bool(names)


def _sync_up(src: Path, store: Any, rel: str) -> None:
    for f in sorted(src.glob("*.parquet")):
        store.write(f"{rel}/{f.name}", f.read_bytes())


def _drop(store: Any, gen: str, subs: tuple[str, ...] = ("sums", "open", "neighbours")) -> None:
    for sub in subs:
        for old in store.list(f"recs/{gen}/{sub}"):
            store.delete(f"recs/{gen}/{sub}/{old}")


def _new_files(uri: str, settings: Settings, known: dict[str, int]) -> tuple[list[str], dict[str, int], list[str],
                                                                           list[str]]:
    """The log's files, their sizes, those not read yet, and those read before that have grown since."""
    from shopgen.adapters.storage import resolve
    from shopgen.recommend.events import event_files

    files = event_files(uri, settings.s3)
    fs, _ = resolve(files[0], settings.s3)
    sizes = {f: fs.get_file_info(resolve(f, settings.s3)[1]).size for f in files}
    new = [f for f in files if f not in known]
    return files, sizes, new, sorted(f for f in files if f in known and sizes[f] != known[f])


def _popular(catalog_index: pa.Table, items: dict[str, float], keep: int) -> dict[tuple[str, str], list[tuple[str, float]]]:
    """The most popular products (decayed weight) per (locale, category) of the catalog."""
    popular: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for s, lo, c in zip(catalog_index["sku"].to_pylist(), catalog_index["locale"].to_pylist(),
                        catalog_index["category"].to_pylist()):
        if items.get(s):
            popular.setdefault((lo or "", c or ""), []).append((s, items[s]))
    return {g: sorted(v, key=lambda x: (-x[1], x[0]))[:keep] for g, v in popular.items()}


def _validated(files: list[str], settings: Settings, key: bytes) -> Iterator[Event | Quarantined]:
    """Every row of the event files, in order, validated (ids hashed) or set aside with a reason."""
    from shopgen.recommend.events import validate_events

    for f in files:
        yield from validate_events(read_catalog(f, settings.s3), settings.recommend, key)


def _holdout(files: list[str], settings: Settings, key: bytes, store: Any, gen: str, prev: Path,
             catalog_index: pa.Table) -> dict[str, Any]:
    """gate.recs_min_ratio: last night's table (generation `gen`, its sums in `prev`) on a sample of
    tonight's sessions (recommend/holdout.py)."""
    from shopgen.recommend.distributed import stored_neighbours
    from shopgen.recommend.holdout import check, sample_sessions

    cfg = settings.recommend
    events = sample_sessions(_validated(files, settings, key), settings.gate.recs_holdout_events)
    sums = pads.dataset(str(prev / "sums"), format="parquet").to_table(columns=["a", "v"],
                                                                       filter=pads.field("tag") == "items")
    weights = dict(zip(sums["a"].to_pylist(), sums["v"].to_pylist()))
    out = check(events, stored_neighbours(store, gen, {e.sku for e in events}), weights,
                _popular(catalog_index, weights, max(cfg.k * 3, 20)),
                catalog_items_of(catalog_index, settings.related.variant_keys), cfg, settings.gate)
    return {**out, "generation": gen, "sampled_events": len(events)}


def _gate(new: list[str], settings: Settings, key: bytes, store: Any, old_gen: str | None, prev: Path,
          catalog_index: pa.Table, meta: dict[str, Any], has_prev: bool) -> dict[str, Any]:
    """The recs gate's verdict for tonight. A night the check cannot judge (no new events, too few
    predictions) keeps the last verdict: lists the gate held back are not published by a quiet night."""
    if not has_prev:
        return {"passed": True, "skipped": "no earlier table"}
    if new and settings.gate.recs_min_ratio > 0:
        check = _holdout(new, settings, key, store, old_gen, prev, catalog_index)
    else:
        check = {"passed": True, "skipped": "off, or no new events"}
    if "skipped" in check and settings.gate.recs_min_ratio > 0 and meta.get("last_check") is False:
        check["passed"] = False
        check["held"] = "the last check failed and none has passed since"
    elif "skipped" not in check:
        meta["last_check"] = check["passed"]
    return check


def _list_hashes(table: Path) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for f in sorted(table.glob("*.parquet")) if table.is_dir() else []:
        t = pads.dataset(str(f), format="parquet").to_table(columns=["sku", "recs_hash"])
        hashes.update(zip(t["sku"].to_pylist(), t["recs_hash"].to_pylist()))
    return hashes


def _publish(store: Any, meta: dict[str, Any], old_gen: str | None, gen: str, passed: bool, table: Path,
             stages: Path) -> Path:
    """Records tonight's generation and, when the check passed, publishes it; drops what no generation
    needs any more. Returns the neighbour table tonight's documents take their lists from."""
    published = meta.get("published") or old_gen
    meta["gen"], meta["published"] = gen, gen if passed or not published else published
    store.write("recs/meta.json", json.dumps(meta).encode())
    if old_gen and old_gen != gen:
        _drop(store, old_gen, ("sums", "open") if old_gen == meta["published"] else ("sums", "open", "neighbours"))
    if published and published not in (old_gen, gen, meta["published"]):
        _drop(store, published, ("neighbours",))
    if meta["published"] == gen:
        return table
    kept = stages / "recs_published"
    _sync_down(store, f"recs/{meta['published']}/neighbours", kept)
    kept.mkdir(parents=True, exist_ok=True)
    return kept


def recommend_night(uri: str, settings: Settings, store: Any, work: Path, previous_hashes: dict[str, str | None],
                    catalog_index: pa.Table, bad: Any, engine: Any, gen: str) -> Recs:
    """Reads the event files not folded yet (the state's recs/meta.json lists those that were), folds
    them into the stored aggregates (`fold`: Ray Data, or in this process when `local`), stores the new
    aggregates, and computes each product's neighbour lists. Settings the aggregates depend on changed:
    every file is read again. Each night writes its own generation (recs/<gen>/) and then meta.json,
    which names it and the files it holds: a night that dies before that leaves the last one whole
    (and a folder nothing points at)."""
    from shopgen.recommend.distributed import event_chunks
    from shopgen.recommend.events import salt_key

    cfg = settings.recommend
    # Never the folder of a night that died after writing part of it (a rerun may share its run id).
    gen = f"{gen}-{uuid.uuid4().hex[:6]}"
    meta = json.loads(store.read("recs/meta.json") or b"{}")
    refold = bool(meta) and meta.get("fold_key") != fold_key(cfg)
    # A refold starts over: what the old fold's generations hold is dropped once tonight's is written.
    stale = {meta.get("gen"), meta.get("published")} - {None} if refold else set()
    if refold or not meta:
        meta = {"fold_key": fold_key(cfg), "ref": 0.0, "events": 0, "files": {}}
    files, sizes, new, grown = _new_files(uri, settings, meta["files"])
    fold, neighbours, local = engine(sum(sizes[f] or 0 for f in new))
    stages = work / "stages"
    prev = stages / "recs_previous"
    old_gen = meta.get("gen")
    has_prev = bool(meta["files"]) and bool(old_gen) and _sync_down(store, f"recs/{old_gen}/sums", prev / "sums")
    if has_prev:
        _sync_down(store, f"recs/{old_gen}/open", prev / "open")
    key = salt_key(settings)
    check = _gate(new, settings, key, store, old_gen, prev, catalog_index, meta, has_prev)
    latest = [meta["ref"]]
    counts = {"bad": 0}

    def seen(e: Event) -> None:
        latest[0] = max(latest[0], e.ts)

    def set_aside(q: Quarantined) -> None:
        counts["bad"] += 1
        bad(q)

    folded_dir = stages / "recs_folded"
    if local or not new:
        source, ref = event_chunks(_validated(new, settings, key), 50_000, set_aside, seen), lambda: latest[0]
    else:  # parsed and validated by Ray tasks: the driver streams only the bad rows
        from shopgen.recommend.distributed import read_files, split_rows

        source, ref = split_rows(read_files(new, settings, key, datetime.now(timezone.utc).timestamp()), set_aside)
    folded = fold(source, prev if has_prev else None, meta["ref"], cfg, folded_dir, ref)
    table = stages / "recs_neighbours"
    tot = neighbours(folded_dir, cfg, table)
    table.mkdir(parents=True, exist_ok=True)
    for sub, src in (("sums", folded_dir / "sums"), ("open", folded_dir / "open"), ("neighbours", table)):
        _sync_up(src, store, f"recs/{gen}/{sub}")  # neighbours: what `shopgen recommend --session` ranks from
    meta.update(ref=folded.ref, events=meta["events"] + folded.events, files={**meta["files"], **{f: sizes[f] for f in new}})
    table = _publish(store, meta, old_gen, gen, check["passed"], table, stages)
    for g in stale:
        _drop(store, g)
    pop = popularity_buckets(catalog_index["sku"].to_pylist(), tot.items)
    hashes = with_popularity(_list_hashes(table), pop)
    changed = frozenset(s for s in catalog_index["sku"].to_pylist() if hashes.get(s) != previous_hashes.get(s))
    popular = _popular(catalog_index, tot.items, max(cfg.k * 3, 20))
    figures = {"files_read": len(new), "files_known": len(files) - len(new), "events": folded.events,
               "events_total": meta["events"], "quarantined": counts["bad"], "products_with_behaviour": len(hashes),
               "changed": len(changed), "refold": refold, "engine": "local" if local else "ray_data",
               "gate": check, "published": meta["published"] == gen}
    if grown:
        figures["files_changed_after_reading"] = grown[:20]
    return Recs(table, hashes, changed, popular, figures, pop)


def add_lists(enriched: Path, recs: Recs, catalog_index: pa.Table, settings: Settings) -> int:
    """Adds also_viewed, bought_together, recommended and recommended_sources to every enriched row,
    a file at a time: behaviour (the neighbour table), then the row's related_skus, then popular."""
    import pyarrow.parquet as pq

    from shopgen.recommend.blend import allowed, product_lists
    from shopgen.recommend.distributed import read_neighbours

    items = catalog_items_of(catalog_index, settings.related.variant_keys)
    k, n = settings.recommend.k, 0
    lst = pa.list_(pa.string())
    for f in sorted(enriched.glob("*.parquet")):
        t = pq.read_table(f)
        skus = t["sku"].to_pylist()
        nb = read_neighbours(recs.folder, skus) if recs.folder is not None else {}
        related = t["related_skus"].to_pylist() if "related_skus" in t.column_names else [None] * len(skus)
        cols: dict[str, list[Any]] = {c: [] for c in LIST_COLUMNS}
        for sku, rel in zip(skus, related):
            it = items.get(sku)
            x = nb.get(sku, {})
            ok = allowed(items, [sku])
            pop = recs.popular.get((it.locale, it.category), []) if it else []
            out = product_lists(sku, x.get("similar", []), x.get("together", []), x.get("next", []), rel or [],
                                pop, ok, k)
            cols["also_viewed"].append([s.sku for s in out["also_viewed"]])
            cols["bought_together"].append([s.sku for s in out["bought_together"]])
            cols["recommended"].append([s.sku for s in out["recommended"]])
            cols["recommended_sources"].append([s.source for s in out["recommended"]])
            n += 1
        for c in LIST_COLUMNS:
            if c in t.column_names:
                t = t.drop_columns([c])
            t = t.append_column(c, pa.array(cols[c], lst))
        if "popularity" in t.column_names:
            t = t.drop_columns(["popularity"])
        t = t.append_column("popularity", pa.array([recs.popularity.get(s) for s in skus], pa.float64()))
        pq.write_table(t, f)
    return n


def catalog_items_of(index: pa.Table, variant_keys: list[str]) -> dict[str, Item]:
    return {s: Item(lo or "", c or "", variant_group(s, a, variant_keys)) for s, lo, c, a in zip(
        index["sku"].to_pylist(), index["locale"].to_pylist(), index["category"].to_pylist(),
        index["attributes"].to_pylist())}

