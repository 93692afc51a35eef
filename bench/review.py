"""The review queue at catalog scale: a synthetic state of N products x 3 content types (texts built
from the bundled catalog's products), synced into the queue's cache, then pages of 50 read.

1. sync: the queue's first sync (state read, documents fetched from a dict standing in for the index,
   each item classified: marks, risk, audit draw) in items/s, against raw sqlite3 `executemany` of
   the same number of rows (the storage alone);
2. page: the queue's page of 50 (counts and filter menus cached until the cache changes; the first
   page right after a change is reported apart) (filters decision=pending, status=published; the first, a middle and
   the last page, and with a category filter) in ms, against the same SELECT run on raw sqlite3;
3. a re-sync with nothing changed (what every page request pays).

    .venv/bin/python bench/review.py [--products 20000] [--json]

With --json the last line is one JSON object."""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TYPES = ("description", "bullets", "seo_title")


def _docs(n: int) -> dict[str, dict]:
    base = [json.loads(x) for x in (ROOT / "data" / "sample_catalog.jsonl").read_text(encoding="utf-8").splitlines()]
    out = {}
    for i in range(n):
        p = base[i % len(base)]
        sku = f"B{i:07d}"
        title = p["title"]
        out[sku] = {"sku": sku, "title": title, "brand": p.get("brand"), "category": p.get("category"),
                    "locale": p.get("locale"), "attributes": p.get("attributes") or {}, "price": p.get("price"),
                    "content_hash": f"h{i}", "description": f"The {title} is made for everyday use. Model {i % 97}.",
                    "bullets": [f"{k.replace('_', ' ')}: {v}" for k, v in list((p.get("attributes") or {}).items())[:3]],
                    "seo_title": title, "copy": {t: {"status": "fresh", "reasons": []} for t in TYPES}}
    return out


def _state(root: Path, docs: dict[str, dict]):
    import pyarrow as pa

    from shopgen.core.copy import CopyEntry
    from shopgen.state.store import STATE_SCHEMA, StateStore

    store = StateStore(str(root / "state"))
    e = CopyEntry(status="fresh", key="k", attempt_key="k", uri="outputs/gen/x.parquet", run_id="r1").model_dump()
    copy = json.dumps({t: e for t in TYPES})
    store.write_table("skus.parquet", pa.Table.from_pylist(
        [{"sku": s, "doc_hash": f"d{s}", "content_hash": d["content_hash"], "copy": copy} for s, d in docs.items()],
        schema=STATE_SCHEMA))
    return store


def _ms(fn, repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 3)


def run(n: int) -> dict:
    from shopgen.review.queue import PAGE, Queue
    from shopgen.review.store import SqliteDecisions

    docs = _docs(n)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        store = _state(root, docs)
        q = Queue(str(root / "cache.sqlite"), store, SqliteDecisions(str(root / "state" / "review.sqlite")),
                  lambda skus: {s: docs[s] for s in skus}, 0.05)
        t = time.perf_counter()
        q.sync()
        sync_s = time.perf_counter() - t
        items = n * len(TYPES)
        raw_db = sqlite3.connect(str(root / "raw.sqlite"))
        raw_db.execute("CREATE TABLE t (a TEXT, b TEXT, c TEXT, d REAL, e INTEGER, PRIMARY KEY (a, b))")
        t = time.perf_counter()
        with raw_db:
            raw_db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                               ((s, ty, docs[s]["title"], 0.0, 3) for s in docs for ty in TYPES))
        raw_s = time.perf_counter() - t
        f = {"decision": "pending", "status": "published"}
        pages = max(1, items // PAGE)
        cat = next(iter(docs.values()))["category"]
        cold_ms = _ms(lambda: (q.forget(), q.page(f, 0), q.values("category"), q.counts()), 3)
        page = {"first": _ms(lambda: q.page(f, 0)), "middle": _ms(lambda: q.page(f, pages // 2)),
                "last": _ms(lambda: q.page(f, pages - 1)), "category": _ms(lambda: q.page({**f, "category": cat}, 0))}
        db = sqlite3.connect(q.path)
        sql = ("SELECT * FROM items WHERE decision=? AND status=? ORDER BY bucket, risk DESC, sku, type "
               "LIMIT 50 OFFSET ?")
        raw_page = {"first": _ms(lambda: db.execute(sql, ("pending", "published", 0)).fetchall()),
                    "middle": _ms(lambda: db.execute(sql, ("pending", "published", pages // 2 * PAGE)).fetchall()),
                    "last": _ms(lambda: db.execute(sql, ("pending", "published", (pages - 1) * PAGE)).fetchall())}
        resync = _ms(q.sync, 5)
    return {"products": n, "items": items, "sync_s": round(sync_s, 2), "sync_items_per_s": round(items / sync_s, 1),
            "raw_insert_items_per_s": round(items / raw_s, 1), "sync_ratio_vs_raw_insert": round(raw_s / sync_s, 4),
            "page_ms": page, "raw_page_ms": raw_page,
            "page_ratio_vs_raw": {k: round(page[k] / raw_page[k], 3) for k in raw_page},
            "resync_unchanged_ms": resync,
            # the first page right after the cache changed (counts and filter menus scanned again)
            "first_page_after_change_ms": cold_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=20000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = run(a.products)
    if not a.json:
        print(f"{out['items']} items: sync {out['sync_s']} s ({out['sync_items_per_s']} items/s; raw insert "
              f"{out['raw_insert_items_per_s']}/s); page of 50 {out['page_ms']} ms (raw {out['raw_page_ms']} ms); "
              f"re-sync unchanged {out['resync_unchanged_ms']} ms")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
