"""Embedding throughput: shopgen's Ray Data embed stage vs raw sentence-transformers `encode`,
on the same products, in the same process run.

    .venv/bin/python bench/embedding.py [--n 1000] [--json]

Prints docs/s for both paths and the ratio (stage / raw); with --json the last line is one JSON
object. The stage figure includes actor start-up and Parquet I/O, which is what a run pays."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="documents (the sample catalog repeats to reach N)")
    ap.add_argument("--catalog", default=str(ROOT / "data" / "sample_catalog.jsonl"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from shopgen import models
    from shopgen.catalog import load_catalog
    from shopgen.config import load_settings
    from shopgen.embed import embedding_text, load_encoder
    from shopgen.generate import GENERATED_SCHEMA, product_row
    from shopgen.pipeline import embed_stage
    from shopgen.raysupport import ray_session

    s = load_settings()
    products, _ = load_catalog(a.catalog)
    rows = [product_row(products[i % len(products)]) for i in range(a.n)]
    # Stand-in for generated copy: the seller description (or title) so texts have realistic length.
    gen_rows = [{**r, "sku": f"{r['sku']}-{i}", "description": r["source_description"] or r["title"],
                 "ad_headlines": [], "ad_descriptions": [], "gen_ok": True, "gen_errors": [], "gen_attempts": 1,
                 "gen_tokens": 0, "model_version": "bench", "prompt_version": "bench"} for i, r in enumerate(rows)]
    model = models.resolve(s.models.embedder, s)

    enc = load_encoder(model.path)
    texts = [embedding_text(r) for r in gen_rows]
    t = time.perf_counter()
    enc.encode(texts, batch_size=s.embedding.batch_size, normalize_embeddings=True)
    raw_s = time.perf_counter() - t
    del enc

    with tempfile.TemporaryDirectory() as tmp:
        import pyarrow.parquet as pq

        src, out = Path(tmp) / "gen", Path(tmp) / "out"
        src.mkdir()
        pq.write_table(pa.Table.from_pylist(gen_rows, schema=GENERATED_SCHEMA), src / "part-0.parquet")
        with ray_session(s):
            t = time.perf_counter()
            embed_stage(src, model, s, out)
            stage_s = time.perf_counter() - t

    res = {"bench": "embedding", "n": a.n, "model": model.version,
           "raw_docs_per_s": round(a.n / raw_s, 1), "stage_docs_per_s": round(a.n / stage_s, 1),
           "ratio_stage_vs_raw": round(raw_s / stage_s, 3), "raw_seconds": round(raw_s, 2),
           "stage_seconds": round(stage_s, 2)}
    print(f"raw sentence-transformers encode: {res['raw_docs_per_s']} docs/s ({res['raw_seconds']} s)")
    print(f"shopgen embed stage (Ray Data):   {res['stage_docs_per_s']} docs/s ({res['stage_seconds']} s)")
    print(f"ratio stage/raw: {res['ratio_stage_vs_raw']}")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
