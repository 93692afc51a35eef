"""Indexing throughput: shopgen's bulk path (versioned index from the template, bulk-load settings,
the retrying windowed writer, settings restored and health awaited) vs raw `helpers.streaming_bulk`
into an index with the same mappings, on the same documents, against the same server, in one run.

    .venv/bin/python bench/index.py [--n 20000] [--rounds 2] [--json]

Documents are the sample catalog's, repeated under distinct SKUs, with random unit vectors of the
embedder's size. Each side runs `--rounds` times, alternating; the best round of each counts. The
gate (smoke queries, counts) is timed separately: raw streaming_bulk has nothing like it.
With --json the last line is one JSON object with `ratio_vs_raw` (shopgen docs/s / raw docs/s)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--catalog", default=str(ROOT / "data" / "sample_catalog.jsonl"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from elasticsearch import helpers

    from indexing import lifecycle
    from indexing.client import make_client
    from indexing.docs import es_doc
    from indexing.mapping import mappings_component
    from indexing.writer import BulkResult, bulk_write, index_actions
    from shopgen.adapters import devstack
    from shopgen.catalog.load import load_catalog
    from shopgen.core.config import load_settings
    from shopgen.generate.engine import product_row

    products, _ = load_catalog(a.catalog)
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(a.n, a.dims)).astype("float32")
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    docs = []
    for i in range(a.n):
        r = product_row(products[i % len(products)])
        docs.append(es_doc({**r, "sku": f"B{i}", "embedding": vecs[i].tolist()}, "2026-01-01T00:00:00Z"))

    with tempfile.TemporaryDirectory() as tmp:
        s = load_settings(home=Path(tmp) / "home")
        es = make_client(s)
        try:
            mappings = mappings_component(a.dims, s.es)["mappings"]
            raw_times, sg_times, gate_times = [], [], []
            for rnd in range(a.rounds):
                name = f"raw-{rnd}"
                es.indices.create(index=name, mappings=mappings, settings={"number_of_shards": 1})
                t = time.perf_counter()
                ok = sum(1 for good, _ in helpers.streaming_bulk(
                    es, ({"_index": name, "_id": d["sku"], "_source": d} for d in docs), chunk_size=500,
                    max_chunk_bytes=s.es.bulk_chunk_bytes) if good)
                es.indices.refresh(index=name)
                raw_times.append(time.perf_counter() - t)
                assert ok == a.n, ok
                es.indices.delete(index=name)

                alias = f"bench{rnd}"
                t = time.perf_counter()
                lifecycle.put_templates(es, alias, a.dims, s, "cjk")
                index = lifecycle.create_build_index(es, alias, {"run_id": "bench"})
                res: BulkResult = bulk_write(es, index_actions(index, iter(docs),
                                                               lifecycle.doc_version("updated_at", 0)), s.es)
                lifecycle.finish_build(es, index, s)
                sg_times.append(time.perf_counter() - t)
                assert res.ok == a.n and not res.errors, res.errors[:3]
                t = time.perf_counter()
                verdict = lifecycle.run_gate(es, index, alias, s, a.n, res, [(docs[0]["sku"], docs[0]["title"])])
                gate_times.append(time.perf_counter() - t)
                assert verdict["passed"], verdict["reasons"]
                es.indices.delete(index=index)
        finally:
            devstack.down(s.home)

    raw_s, sg_s = min(raw_times), min(sg_times)
    res = {"bench": "index", "n": a.n, "dims": a.dims, "rounds": a.rounds,
           "raw_docs_per_s": round(a.n / raw_s, 1), "shopgen_docs_per_s": round(a.n / sg_s, 1),
           "ratio_vs_raw": round(raw_s / sg_s, 3), "gate_seconds": round(min(gate_times), 3),
           "seconds": {"raw": [round(x, 2) for x in raw_times], "shopgen": [round(x, 2) for x in sg_times]}}
    print(f"raw helpers.streaming_bulk: {res['raw_docs_per_s']} docs/s (best of {res['seconds']['raw']} s)")
    print(f"shopgen bulk path:          {res['shopgen_docs_per_s']} docs/s (best of {res['seconds']['shopgen']} s)")
    print(f"shopgen / raw = {res['ratio_vs_raw']}; the gate adds {res['gate_seconds']} s")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
