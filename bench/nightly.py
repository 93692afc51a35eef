"""Incremental vs full nightly: one full run, then the second night, an incremental run after 1% of the
products changed, on the same catalog, in one process run (same machine, same server, back to back).
The second night (the first night's failures are moved one night back, shopgen.nightly.state.pass_nights)
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
    from shopgen.core.config import load_settings
    from indexing.client import make_client

    es, t = make_client(load_settings()), time.perf_counter()
    es.indices.refresh(index=alias)
    es.search(index=alias, query={"match": {"title": "trail"}}, size=10)
    return round(time.perf_counter() - t, 2)


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
    a = ap.parse_args()
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
    from shopgen.nightly.state import StateStore, pass_nights

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
