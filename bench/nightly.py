"""Incremental vs full nightly: one full run, then an incremental run after 1% of the products
changed, on the same catalog, in one process run (same machine, same server, back to back).

    .venv/bin/python bench/nightly.py [--limit 100] [--changed 0.01] [--content seo_title] [--json]

The catalog is the first --limit products of the bundled sample (or --catalog). The change is a new
price on every 100th product, so their generation keys change and nothing else does. Fixed
start-up is Ray's start plus the vLLM engine's start (both recorded in report.json's `startup`);
the ratio is printed with and without it (target: <= 0.10 without). With --json the last line is
one JSON object with `full_s`, `incremental_s` and `ratio_incremental_vs_full`."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _startup(rep: dict) -> float:
    s = rep.get("startup") or {}
    return float(s.get("ray_init_s") or 0) + float(s.get("engine_start_s") or 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default=str(ROOT / "data" / "sample_catalog.jsonl"))
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--changed", type=float, default=0.01, help="share of products changed before run 2")
    ap.add_argument("--content", default=None, help="content types (default: generation.content)")
    ap.add_argument("--alias", default="bench-nightly")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from rich.console import Console

    from shopgen.adapters import devstack
    from shopgen.core.config import load_settings
    from shopgen.nightly import recipe as nightly

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
        "mode": {"full": full.get("mode"), "incremental": inc.get("mode")},
        "stages_s": {"full": {k: v.get("seconds") for k, v in full["stages"].items()},
                     "incremental": {k: v.get("seconds") for k, v in inc["stages"].items()}},
    }
    print(f"full run      : {res['full_s']:8.1f} s  ({len(products)} products, start-up {su_full:.1f} s)")
    print(f"incremental   : {res['incremental_s']:8.1f} s  ({n_changed} changed, start-up {su_inc:.1f} s)")
    print(f"ratio         : {res['ratio_incremental_vs_full']:.4f} (with start-up), "
          f"{res['ratio_without_startup']:.4f} without (target <= 0.10)")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
