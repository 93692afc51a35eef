"""Incremental vs full nightly: one full run, then the second night, an incremental run after 1% of the
products changed, on the same catalog, in one process run (same machine, same server, back to back).
The second night (the first night's failures are moved one night back, shopgen.state.pass_nights)
retries the copy that failed on the first, within nightly.copy_retry_budget
(`retries` in the JSON: retried, retry_deferred, retry_gave_up), and its time includes them.

    .venv/bin/python bench/nightly.py [--limit 100] [--changed 0.01] [--content seo_title] [--json]

The catalog is the first --limit products of the bundled sample (or --catalog). The change is a new
price on every 100th product, so their generation keys change and nothing else does. Fixed
start-up is Ray's start plus the vLLM engine's start (both recorded in report.json's `startup`);
the ratio is printed with and without it (target: <= 0.10 without). With --json the last line is
one JSON object with `full_s`, `incremental_s` and `ratio_incremental_vs_full`.

    .venv/bin/python bench/nightly.py --scale 5000,50000 [--churn 50] [--json]

measures how the driver scales with catalog size instead: the same --churn changed products in
synthetic catalogs of each size, the generator and the embedder replaced by fixed-output stand-ins
(bench/stubs.py) for this measurement only. Each run is its own process (ru_maxrss is that run's
peak); `run_s` excludes start-up; `read_mb` is what the driver process read (/proc/self/io rchar).
The JSON has `sizes.<n>.driver_peak_mb`, `sizes.<n>.run_s`, `sizes.<n>.read_mb` and the ratios of
the largest size to the smallest (target <= 3). Between the full and the measured run the server is
given a refresh and a search (`sizes.<n>.settle_s`), as a day between nightly runs would."""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _startup(rep: dict) -> float:
    s = rep.get("startup") or {}
    return float(s.get("ray_init_s") or 0) + float(s.get("engine_start_s") or 0)


CATEGORIES = ["Jackets", "Shoes", "Tents", "Backpacks", "Knives", "Yoga", "Lamps", "Mugs", "Chairs", "Socks",
              "Watches", "Bottles"]
WORDS = ["alpine", "trail", "urban", "compact", "classic", "light", "storm", "cedar", "nova", "ridge", "coastal",
         "summit", "harbor", "prairie", "glacier", "meadow"]


def synthetic(n: int, seed: int = 0) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        cat = CATEGORIES[i % len(CATEGORIES)]
        name = " ".join(rnd.sample(WORDS, 2)).title()
        out.append({"sku": f"SYN-{i:07d}", "title": f"{name} {cat[:-1]} {i}", "category": cat,
                    "brand": f"Brand{i % 97}", "price": round(5 + (i % 500) * 0.37, 2), "currency": "USD",
                    "locale": "en-US", "updated_at": "2026-11-01T00:00:00Z",
                    "attributes": {"color": rnd.choice(["red", "blue", "black", "green"]),
                                   "weight_g": 100 + i % 900},
                    "description": f"A {name.lower()} {cat[:-1].lower()} for everyday use, item {i}."})
    return out


def _read_bytes() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_run(catalog: str, work: str, state: str, alias: str, full: bool) -> dict:
    """In this process: a nightly run with the stand-ins; its timings, peak memory and reads."""
    import importlib.util

    import ray.cloudpickle

    spec = importlib.util.spec_from_file_location("shopgen_bench_stubs", ROOT / "bench" / "stubs.py")
    stubs = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = stubs
    spec.loader.exec_module(stubs)

    from shopgen.core.config import load_settings
    from shopgen.embed import stage as embed_stage
    from shopgen.generate import stage as gen_stage
    from shopgen.nightly import recipe as nightly

    ray.cloudpickle.register_pickle_by_value(stubs)  # Ray's workers cannot import bench/
    gen_stage.VLLMGenerator = stubs.FixedGenerator
    embed_stage.Embedder = stubs.FixedEmbedder
    settings = load_settings(generation={"batch_size": 256})
    r0, t = _read_bytes(), time.perf_counter()
    rep = nightly.run(catalog, work, settings, state=state, alias=alias, full=full, content="seo_title")
    wall = time.perf_counter() - t
    startup = sum(float((rep.get("startup") or {}).get(k) or 0) for k in ("ray_init_s", "engine_start_s"))
    return {"status": rep["status"], "mode": rep.get("mode"), "wall_s": round(wall, 2),
            "run_s": round(wall - startup, 2), "startup_s": round(startup, 2),
            "driver_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "read_mb": round((_read_bytes() - r0) / 2 ** 20, 1),
            "counts": {k: rep["counts"].get(k) for k in ("valid", "changed", "regenerated", "embedded", "indexed")},
            "stages_s": {k: v.get("seconds") for k, v in rep["stages"].items()}}


def _child(*args: str) -> dict:
    p = subprocess.run([sys.executable, __file__, "--scale-child", *args], capture_output=True, text=True, timeout=3600,
                       cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"run failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def scale(a: argparse.Namespace) -> None:
    """--scale: the incremental run's time and driver memory at each catalog size (stand-in models)."""
    from shopgen.adapters import devstack
    from shopgen.core.config import load_settings

    settings = load_settings()
    started_es = not devstack.status(settings.home).get("running")
    sizes = [int(x) for x in a.scale.split(",")]
    res: dict = {"bench": "nightly_scale", "churn": a.churn, "stand_ins": "generator and embedder (bench/stubs.py)",
                 "sizes": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="shopgen-bench-scale-") as tmp:
            for n in sizes:
                res["sizes"][str(n)] = _scale_one(Path(tmp), n, a.churn)
    finally:
        if started_es:
            devstack.down(settings.home)
    if len(sizes) >= 2:
        lo, hi = res["sizes"][str(sizes[0])], res["sizes"][str(sizes[-1])]
        res["ratio_run_s"] = round(hi["run_s"] / max(lo["run_s"], 1e-9), 3)
        res["ratio_driver_peak"] = round(hi["driver_peak_mb"] / max(lo["driver_peak_mb"], 1e-9), 3)
        res["target_ratio"] = 3.0
        print(f"{sizes[-1]}/{sizes[0]}: run time x{res['ratio_run_s']}, driver peak x{res['ratio_driver_peak']} "
              f"(target <= 3)", file=sys.stderr)
    if a.json:
        print(json.dumps(res))


def _scale_one(tmp: Path, n: int, churn: int) -> dict:
    d = tmp / str(n)
    d.mkdir()
    products = synthetic(n)
    cat = d / "catalog.jsonl"
    cat.write_text("".join(json.dumps(p) + "\n" for p in products), encoding="utf-8")
    common = [str(cat), str(d / "work"), str(d / "state"), f"bench-scale-{n}"]
    first = _child(*common, "full")
    settle_s = _settle(f"bench-scale-{n}")
    for p in products[::max(1, n // churn)][:churn]:
        p["price"] = round(p["price"] + 1.0, 2)
    cat.write_text("".join(json.dumps(p) + "\n" for p in products), encoding="utf-8")
    inc = _child(*common, "incremental")
    print(f"{n:>7} products: incremental run {inc['run_s']:.1f} s (+{inc['startup_s']:.1f} s start-up), "
          f"driver peak {inc['driver_peak_mb']:.0f} MB, read {inc['read_mb']:.0f} MB; mode {inc['mode']}, "
          f"regenerated {inc['counts']['regenerated']}", file=sys.stderr)
    return {**{k: inc[k] for k in ("run_s", "driver_peak_mb", "read_mb", "startup_s", "mode", "counts", "stages_s")},
            "full_run": {k: first[k] for k in ("run_s", "driver_peak_mb", "mode")}, "settle_s": settle_s}


def _settle(alias: str) -> float:
    """A nightly runs a day after the last: let the server finish digesting the full build (a refresh
    and a search) before the measured run, so the run is not charged for the server's catch-up."""
    from indexing.client import make_client
    from shopgen.core.config import load_settings

    es, t = make_client(load_settings()), time.perf_counter()
    es.indices.refresh(index=alias)
    es.search(index=alias, query={"match": {"title": "trail"}}, size=10)
    return round(time.perf_counter() - t, 2)


# ---- --read-only: the driver's memory while reading a large catalog ------------------------------

READ_DIR = ROOT / ".shopgen" / "bench" / "read"  # git-ignored
FILLER = ("Made to last through daily use and easy to care for. " "Packs small and weighs little. "
          "Backed by a two-year warranty; spare parts are sold separately. ")


def _read_rows(target_bytes: int):
    """synthetic() rows with a description of a typical shop's length (~0.9 KB a row), and one empty
    title in 1,000, so the quarantine path is read too; until target_bytes of JSON Lines."""
    rnd, i, size = random.Random(0), 0, 0
    while size < target_bytes:
        cat = CATEGORIES[i % len(CATEGORIES)]
        name = " ".join(rnd.sample(WORDS, 2)).title()
        row = {"sku": f"SYN-{i:08d}", "title": "" if i % 1000 == 999 else f"{name} {cat[:-1]} {i}", "category": cat,
               "brand": f"Brand{i % 97}", "price": round(5 + (i % 500) * 0.37, 2), "currency": "USD",
               "locale": "en-US", "updated_at": "2026-11-01T00:00:00Z",
               "attributes": {"color": rnd.choice(["red", "blue", "black", "green"]), "weight_g": 100 + i % 900},
               "description": f"A {name.lower()} {cat[:-1].lower()} for everyday use, item {i}. " + FILLER * 4}
        yield row
        size += len(json.dumps(row)) + 1
        i += 1


def _write_catalog(fmt: str, target_bytes: int, row_group: int) -> tuple[Path, int]:
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    READ_DIR.mkdir(parents=True, exist_ok=True)
    path, n = READ_DIR / f"catalog.{fmt}", 0
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as f:
            for r in _read_rows(target_bytes):
                f.write(json.dumps(r) + "\n")
                n += 1
    elif fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            for n, r in enumerate(_read_rows(target_bytes), 1):
                if n == 1:
                    w.writerow(list(r))
                w.writerow([json.dumps(v) if isinstance(v, dict) else v for v in r.values()])
    else:  # parquet: row groups of `row_group` rows (a reader holds one), attributes as JSON text
        writer, rows = None, []
        for r in _read_rows(target_bytes):
            n += 1
            rows.append({**r, "attributes": json.dumps(r["attributes"])})
            if len(rows) == row_group:
                t = pa.Table.from_pylist(rows)
                writer = writer or pq.ParquetWriter(path, t.schema)
                writer.write_table(t)
                rows = []
        if rows:
            t = pa.Table.from_pylist(rows)
            writer = writer or pq.ParquetWriter(path, t.schema)
            writer.write_table(t)
        writer.close()
    return path, n


def _read(kind: str, path: str, chunk: int) -> dict:
    """One pass of `kind` over path: iter_catalog (stream) or the naive whole-file read."""
    if kind == "stream":
        from shopgen.catalog.load import iter_catalog

        valid = invalid = 0
        for good, bad in iter_catalog(path, chunk=chunk):
            valid, invalid = valid + len(good), invalid + len(bad)
        return {"valid": valid, "invalid": invalid}
    if kind == "bytes":  # what the readers did before: the file, then its lines, held whole
        lines = Path(path).read_bytes().splitlines()
        return {"lines": len(lines)}
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet as pq

    read = {".jsonl": pyarrow.json.read_json, ".csv": pyarrow.csv.read_csv, ".parquet": pq.read_table}
    return {"rows": read[Path(path).suffix](path).num_rows}


def read_child(kind: str, path: str, chunk: int) -> dict:
    """In this process: peak RSS above the post-import baseline during one pass: the larger of a
    thread's samples (every 5 ms) and ru_maxrss (the kernel's peak, which also sees short peaks)."""
    import gc
    import threading

    import psutil
    import pyarrow.csv  # noqa: F401  imported before the baseline, as the stream's modules are
    import pyarrow.json  # noqa: F401

    import shopgen.catalog.load  # noqa: F401

    proc, stop = psutil.Process(), threading.Event()
    gc.collect()
    base = proc.memory_info().rss
    peak = [base]

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], proc.memory_info().rss)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t = time.perf_counter()
    out = _read(kind, path, chunk)
    wall = time.perf_counter() - t
    stop.set()
    th.join()
    sampled = max(peak[0], proc.memory_info().rss)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # catches peaks between samples
    return {**out, "seconds": round(wall, 1), "baseline_mb": round(base / 2 ** 20, 1),
            "peak_increase_mb": round((max(sampled, maxrss) - base) / 2 ** 20, 1),
            "sampled_increase_mb": round((sampled - base) / 2 ** 20, 1)}


def read_only(a: argparse.Namespace) -> None:
    """--read-only: peak driver memory of one iter_catalog pass at each --read-chunks, against the
    naive whole-file reads, over a synthetic catalog of --synthetic-gb."""
    target = int(a.synthetic_gb * 2 ** 30)
    chunks = [int(x) for x in a.read_chunks.split(",")]
    res: dict = {"bench": "nightly_read", "synthetic_gb": a.synthetic_gb, "chunks": chunks, "formats": {}}
    for fmt in a.formats.split(","):
        t = time.perf_counter()
        path, rows = _write_catalog(fmt, target, a.row_group)
        entry = {"file_mb": round(path.stat().st_size / 2 ** 20, 1), "rows": rows,
                 "write_s": round(time.perf_counter() - t, 1), "stream": {}, "naive": {}}
        if fmt == "parquet":
            entry["row_group_rows"] = a.row_group
        print(f"{fmt}: {entry['file_mb']:.0f} MB, {rows} rows ({path})", flush=True)
        try:
            for c in chunks:
                r = entry["stream"][str(c)] = _read_child("stream", str(path), c)
                print(f"  iter_catalog chunk={c:>6}: peak +{r['peak_increase_mb']:7.1f} MB "
                      f"(sampled +{r['sampled_increase_mb']:.1f}), {r['seconds']:.0f} s, "
                      f"{r['valid']} valid, {r['invalid']} invalid", flush=True)
            for kind in (["bytes"] if fmt != "parquet" else []) + ["arrow"]:
                r = entry["naive"][kind] = _read_child(kind, str(path), 0)
                what = "read_bytes().splitlines()" if kind == "bytes" else "pyarrow whole-file read"
                print(f"  {what:<27}: peak +{r['peak_increase_mb']:7.1f} MB, {r['seconds']:.0f} s", flush=True)
        finally:
            if not a.keep:
                path.unlink(missing_ok=True)
        naive = max(r["peak_increase_mb"] for r in entry["naive"].values())
        for r in entry["stream"].values():
            r["ratio_vs_naive"] = round(r["peak_increase_mb"] / max(naive, 1e-9), 4)
        lo, hi = entry["stream"][str(chunks[0])], entry["stream"][str(chunks[-1])]
        entry["peak_per_1k_chunk_rows_mb"] = round(
            (hi["peak_increase_mb"] - lo["peak_increase_mb"]) / max((chunks[-1] - chunks[0]) / 1000, 1e-9), 2)
        print("  stream/naive peak: " + ", ".join(f"chunk {c}: {r['ratio_vs_naive']:.3f}"
                                                   for c, r in entry["stream"].items())
              + f"; +{entry['peak_per_1k_chunk_rows_mb']} MB per 1,000 rows of chunk", flush=True)
        res["formats"][fmt] = entry
    if a.json:
        print(json.dumps(res))


def _read_child(kind: str, path: str, chunk: int) -> dict:
    p = subprocess.run([sys.executable, __file__, "--read-child", kind, path, str(chunk)], capture_output=True,
                       text=True, timeout=3600, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"read {kind} failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default=str(ROOT / "data" / "sample_catalog.jsonl"))
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--changed", type=float, default=0.01, help="share of products changed before run 2")
    ap.add_argument("--content", default=None, help="content types (default: generation.content)")
    ap.add_argument("--alias", default="bench-nightly")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--scale", default=None, metavar="SIZES", help="e.g. 5000,50000: the driver-scaling measurement")
    ap.add_argument("--churn", type=int, default=50, help="--scale: products changed before the measured run")
    ap.add_argument("--scale-child", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--read-only", action="store_true", help="driver memory reading a synthetic catalog, no run")
    ap.add_argument("--synthetic-gb", type=float, default=1.0, help="--read-only: catalog size (GiB)")
    ap.add_argument("--formats", default="jsonl", help="--read-only: any of jsonl,csv,parquet")
    ap.add_argument("--read-chunks", default="1000,20000", help="--read-only: iter_catalog chunk sizes (rows)")
    ap.add_argument("--row-group", type=int, default=10_000, help="--read-only: Parquet row-group rows")
    ap.add_argument("--keep", action="store_true", help="--read-only: keep the synthetic files")
    ap.add_argument("--read-child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.read_child:
        kind, path, chunk = a.read_child
        print(json.dumps(read_child(kind, path, int(chunk))))
        return
    if a.read_only:
        read_only(a)
        return
    if a.scale_child:
        catalog, work, state, alias, full = a.scale_child
        print(json.dumps(one_run(catalog, work, state, alias, full == "full")))
        return
    if a.scale:
        scale(a)
        return

    from rich.console import Console

    from shopgen.adapters import devstack
    from shopgen.core.config import load_settings
    from shopgen.nightly import recipe as nightly
    from shopgen.state import StateStore, pass_nights

    settings = load_settings()
    console = Console(stderr=True)
    lines = [ln for ln in Path(a.catalog).read_text(encoding="utf-8").splitlines() if ln.strip()][:a.limit]
    products = [json.loads(ln) for ln in lines]
    n_changed = max(1, math.ceil(a.changed * len(products)))
    step = max(1, len(products) // n_changed)
    started_es = not devstack.status(settings.home).get("running")
    try:
        with tempfile.TemporaryDirectory(prefix="shopgen-bench-nightly-") as tmp:
            tmp = Path(tmp)
            catalog = tmp / "catalog.jsonl"
            catalog.write_text("".join(json.dumps(p) + "\n" for p in products), encoding="utf-8")
            kw = dict(state=str(tmp / "state"), alias=a.alias, content=a.content, console=console)
            t = time.perf_counter()
            full = nightly.run(str(catalog), tmp / "work", settings, full=True, **kw)
            full_s = time.perf_counter() - t
            # The second night: the first night's failures are a night old, so their retries are due.
            pass_nights(StateStore(nightly.state_prefix(settings, tmp / "work", str(tmp / "state"), a.alias)), 1)

            changed = [p["sku"] for p in products[::step][:n_changed]]
            products = [{**p, "price": round(float(p.get("price") or 0) + 1.0, 2)} if p["sku"] in changed else p
                        for p in products]
            catalog.write_text("".join(json.dumps(p) + "\n" for p in products), encoding="utf-8")
            t = time.perf_counter()
            inc = nightly.run(str(catalog), tmp / "work", settings, **kw)
            inc_s = time.perf_counter() - t
    finally:
        if started_es:
            devstack.down(settings.home)

    su_full, su_inc = _startup(full), _startup(inc)
    res = {
        "bench": "nightly", "products": len(products), "changed": n_changed,
        "content": full.get("content"),
        "full_s": round(full_s, 2), "incremental_s": round(inc_s, 2),
        "ratio_incremental_vs_full": round(inc_s / full_s, 4),
        "startup_full_s": round(su_full, 2), "startup_incremental_s": round(su_inc, 2),
        "ratio_without_startup": round((inc_s - su_inc) / max(full_s - su_full, 1e-9), 4),
        "target_without_startup": 0.10,
        "regenerated": {"full": full["counts"].get("regenerated"), "incremental": inc["counts"].get("regenerated")},
        # The second night retries failed copy (due one night after the failure) within the budget.
        "retries": {k: inc["counts"].get(k) for k in ("retried", "retry_deferred", "retry_gave_up", "copy_requests")},
        "mode": {"full": full.get("mode"), "incremental": inc.get("mode")},
        "stages_s": {"full": {k: v.get("seconds") for k, v in full["stages"].items()},
                     "incremental": {k: v.get("seconds") for k, v in inc["stages"].items()}},
    }
    print(f"full run      : {res['full_s']:8.1f} s  ({len(products)} products, start-up {su_full:.1f} s)")
    print(f"incremental   : {res['incremental_s']:8.1f} s  ({n_changed} changed, start-up {su_inc:.1f} s, "
          f"retries {res['retries']})")
    print(f"ratio         : {res['ratio_incremental_vs_full']:.4f} (with start-up), "
          f"{res['ratio_without_startup']:.4f} without (target <= 0.10)")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
