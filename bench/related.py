"""Related products (the content kNN), measured where an incremental night runs it: Q changed products
matched against every product's stored vector (N products, 384 dims, in vector files of 50k products,
as nights write them).

For each N, three child processes on the same files, each with its driver's peak memory (VmHWM):
- `numpy`: the raw library: every vector file read into one matrix, then exact cosine top-k with
  argpartition (what the driver did before the kNN left it);
- `shopgen_local`: shopgen.related.stage.related_stage in this process (the candidates streamed from
  their files a chunk at a time);
- `shopgen_ray`: the same on Ray Data (the nightly's path above related.local_max_rows), the driver
  holding only the pool's SKUs and keys.

Lists are compared with numpy's (random vectors: no ties). Ratios are against numpy in the same run.

    .venv/bin/python bench/related.py [--sizes 20000,200000] [--queries 2000] [-k 8] [--json]

With --json the last line is one JSON object."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIMS, PER_FILE = 384, 50_000


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _vectors(rng, n: int):
    import numpy as np

    v = rng.standard_normal((n, DIMS), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_data(d: Path, n: int, q: int) -> None:
    """N products in vector files of PER_FILE, their metadata, and the Q changed ones' rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(n)
    (d / "vectors").mkdir(parents=True)
    (d / "queries").mkdir()
    skus = [f"P{i:08d}" for i in range(n)]
    locales = ["de-DE" if i % 10 == 0 else "en-US" for i in range(n)]
    attrs = ["{}"] * n
    pq.write_table(pa.table({"sku": skus, "locale": locales, "attributes": attrs}), d / "meta.parquet")
    for lo in range(0, n, PER_FILE):
        v = _vectors(rng, min(PER_FILE, n - lo))
        pq.write_table(pa.table({"sku": skus[lo:lo + len(v)], "embedding": pa.array(list(v), pa.list_(pa.float32()))}),
                       d / "vectors" / f"night-{lo // PER_FILE:04d}.parquet", row_group_size=4096)
        if lo == 0:
            pick = rng.choice(len(v), size=min(q, len(v)), replace=False)
            pq.write_table(pa.table({"sku": [skus[i] for i in pick], "locale": [locales[i] for i in pick],
                                     "attributes": [attrs[i] for i in pick],
                                     "embedding": pa.array(list(v[pick]), pa.list_(pa.float32()))}),
                           d / "queries" / "part-0.parquet")


def run_numpy(d: Path, k: int) -> dict:
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base = _peak_mb()
    t0 = time.perf_counter()
    meta = pq.read_table(d / "meta.parquet")
    parts = [pq.read_table(f) for f in sorted((d / "vectors").glob("*.parquet"))]
    skus = np.array([s for p in parts for s in p["sku"].to_pylist()])
    mat = np.concatenate([pc.list_flatten(p["embedding"]).to_numpy().reshape(p.num_rows, -1) for p in parts])
    loc = dict(zip(meta["sku"].to_pylist(), meta["locale"].to_pylist()))
    locs = np.array([loc[s] for s in skus])
    q = pq.read_table(d / "queries" / "part-0.parquet")
    qv = pc.list_flatten(q["embedding"]).to_numpy().reshape(q.num_rows, -1)
    qs, ql = q["sku"].to_pylist(), np.array(q["locale"].to_pylist())
    out = {}
    for lo in range(0, len(qs), 512):
        sims = qv[lo:lo + 512] @ mat.T
        sims[ql[lo:lo + 512, None] != locs[None, :]] = -np.inf
        sims[np.arange(len(sims)), np.searchsorted(skus, qs[lo:lo + 512])] = -np.inf  # itself
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for i, cand in enumerate(top):
            out[qs[lo + i]] = [str(skus[j]) for j in cand[np.argsort(-sims[i, cand])]]
    return {"seconds": round(time.perf_counter() - t0, 3), "peak_mb": round(_peak_mb(), 1),
            "base_mb": round(base, 1), "lists": out}


def run_shopgen(d: Path, k: int, ray: bool) -> dict:
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    from shopgen.adapters.raysupport import ray_session
    from shopgen.core.config import load_settings
    from shopgen.related.stage import make_pool, related_stage

    settings = load_settings(ray={"num_cpus": 2})
    cfg = settings.related
    with ray_session(settings) if ray else _nothing():
        base = _peak_mb()
        t0 = time.perf_counter()
        where = {}
        for f in sorted((d / "vectors").glob("*.parquet")):
            where.update(dict.fromkeys(pq.read_table(f, columns=["sku"])["sku"].to_pylist(), str(f)))
        pool = make_pool(pq.read_table(d / "meta.parquet"), where, [])
        out_dir = d / ("out-ray" if ray else "out-local")
        related_stage(d / "queries", out_dir, k, [], batch_size=cfg.batch_size, pool=pool,
                      local_max_rows=0 if ray else 10**9, chunk_rows=cfg.chunk_rows)
        secs = time.perf_counter() - t0
        rows = pads.dataset(str(out_dir), format="parquet").to_table(columns=["sku", "related_skus"])
    return {"seconds": round(secs, 3), "peak_mb": round(_peak_mb(), 1), "base_mb": round(base, 1),
            "lists": dict(zip(rows["sku"].to_pylist(), rows["related_skus"].to_pylist()))}


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def _child(kind: str, d: Path, k: int) -> dict:
    p = subprocess.run([sys.executable, __file__, "--child", kind, str(d), str(k)], capture_output=True, text=True,
                       timeout=3600, cwd=ROOT)
    if p.returncode:
        raise RuntimeError(f"{kind} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,200000", help="catalog sizes (products with a stored vector)")
    ap.add_argument("--queries", type=int, default=2000, help="changed products matched tonight")
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, d, k = a.child
        res = run_numpy(Path(d), int(k)) if kind == "numpy" else run_shopgen(Path(d), int(k), kind == "shopgen_ray")
        print(json.dumps(res))
        return
    out: dict = {"bench": "related", "dims": DIMS, "queries": a.queries, "k": a.k, "vectors_per_file": PER_FILE,
                 "sizes": {}}
    for n in [int(x) for x in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="shopgen-bench-related-") as tmp:
            d = Path(tmp)
            make_data(d, n, a.queries)
            runs = {kind: _child(kind, d, a.k) for kind in ("numpy", "shopgen_local", "shopgen_ray")}
        ref = runs["numpy"].pop("lists")
        row: dict = {"numpy": runs["numpy"]}
        for kind in ("shopgen_local", "shopgen_ray"):
            lists = runs[kind].pop("lists")
            r = runs[kind]
            r["same_lists_as_numpy"] = sum(lists.get(s) == v for s, v in ref.items()) / max(1, len(ref))
            r["time_vs_numpy"] = round(r["seconds"] / runs["numpy"]["seconds"], 3)
            r["peak_vs_numpy"] = round(r["peak_mb"] / runs["numpy"]["peak_mb"], 3)
            row[kind] = r
        out["sizes"][str(n)] = row
        if not a.json:
            print(f"{n} products: " + "; ".join(f"{kk} {v['seconds']} s, peak {v['peak_mb']} MB" for kk, v in row.items()))
    sizes = list(out["sizes"])
    if len(sizes) > 1:
        lo, hi = out["sizes"][sizes[0]], out["sizes"][sizes[-1]]
        out["peak_growth"] = {kk: round((hi[kk]["peak_mb"] - hi[kk]["base_mb"]) / max(1.0, lo[kk]["peak_mb"] - lo[kk]["base_mb"]), 2)
                              for kk in ("numpy", "shopgen_local", "shopgen_ray")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
