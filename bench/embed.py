"""Embedding throughput: shopgen's Ray Data embed stage vs raw sentence-transformers `encode`,
on the same texts, in the same process run.

    .venv/bin/python bench/embed.py [--n 8000] [--json]

Both sides pay for loading the model; the stage also pays for its actor, Parquet read and write
(Ray itself is started once, before either is timed). That fixed start-up (a fresh actor process
importing torch) is ~10 s here, so the ratio depends on N; the cached run shows its size. The vector cache is off for the main
comparison; a second stage run with the cache on shows what an unchanged catalog costs.
With --json the last line is one JSON object with `ratio_vs_raw` (stage docs/s / raw docs/s)."""

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
    ap.add_argument("--n", type=int, default=8000, help="documents (the sample catalog repeats to reach N)")
    ap.add_argument("--catalog", default=str(ROOT / "data" / "sample_catalog.jsonl"))
    ap.add_argument("--raw-batch-size", type=int, default=32, help="encode() batch size (32 is its default)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    from shopgen.adapters import models
    from shopgen.adapters.encoder import cache_folder, embedding_text, load_encoder, write_cache
    from shopgen.adapters.raysupport import ray_session
    from shopgen.catalog.load import load_catalog
    from shopgen.core.config import load_settings
    from shopgen.embed.stage import embed_stage
    from shopgen.generate.engine import PRODUCT_SCHEMA, product_row

    products, _ = load_catalog(a.catalog)
    # Distinct SKUs and a run number in the title, so no two texts are the same.
    rows = [{**product_row(products[i % len(products)]), "sku": f"B{i}"} for i in range(a.n)]
    for i, r in enumerate(rows):
        r["title"] = f"{r['title']} #{i // len(products)}"

    with tempfile.TemporaryDirectory() as tmp:
        s = load_settings(home=Path(tmp) / "home", models={"cache_dir": ROOT / ".shopgen" / "models"})
        model = models.resolve(s.models.embedder, s)
        src = Path(tmp) / "src"
        src.mkdir()
        pq.write_table(pa.Table.from_pylist(rows, schema=PRODUCT_SCHEMA), src / "part-0.parquet")

        t = time.perf_counter()
        enc = load_encoder(models.materialize(model, s).path)
        enc.encode([embedding_text(r) for r in rows], batch_size=a.raw_batch_size, normalize_embeddings=True)
        raw_s = time.perf_counter() - t
        del enc

        with ray_session(s):
            no_cache = s.model_copy(update={"embedding": s.embedding.model_copy(update={"cache": False})})
            t = time.perf_counter()
            embed_stage(src, model, no_cache, Path(tmp) / "out1")
            stage_s = time.perf_counter() - t
            # Fill the cache from that output, then time a run where every vector is a cache hit.
            out = pads.dataset(str(Path(tmp) / "out1"), format="parquet").to_table(
                columns=["embedding_hash", "embedding", "embedding_cached"])
            write_cache(cache_folder(s.embedding_cache, model.version), out, "bench", s.s3)
            t = time.perf_counter()
            embed_stage(src, model, s, Path(tmp) / "out2")
            cached_s = time.perf_counter() - t

    res = {"bench": "embed", "n": a.n, "model": model.version,
           "raw_docs_per_s": round(a.n / raw_s, 1), "shopgen_docs_per_s": round(a.n / stage_s, 1),
           "ratio_vs_raw": round(raw_s / stage_s, 3), "cached_docs_per_s": round(a.n / cached_s, 1),
           "ratio_cached_vs_raw": round(raw_s / cached_s, 3),
           # The all-cached run is the stage's fixed cost (actor start, I/O) plus cache reads, so
           # this bounds the steady-state ratio that a large N approaches.
           "ratio_vs_raw_excl_fixed": round(raw_s / max(stage_s - cached_s, 1e-9), 3),
           "seconds": {"raw": round(raw_s, 2), "shopgen": round(stage_s, 2), "shopgen_cached": round(cached_s, 2)}}
    print(f"raw SentenceTransformer.encode:   {res['raw_docs_per_s']} docs/s ({raw_s:.1f} s, incl. model load)")
    print(f"shopgen embed stage (Ray Data):   {res['shopgen_docs_per_s']} docs/s ({stage_s:.1f} s)")
    print(f"shopgen, every vector cached:     {res['cached_docs_per_s']} docs/s ({cached_s:.1f} s)")
    print(f"shopgen / raw = {res['ratio_vs_raw']}   cached / raw = {res['ratio_cached_vs_raw']}")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
