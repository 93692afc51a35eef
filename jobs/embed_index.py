"""Ray job entrypoint for embedding and indexing: `python jobs/embed_index.py [--config FILE] [--input URI]
[--alias NAME] [--workdir DIR] [--limit N] [--incremental]`.

The input is a raw catalog or `shopgen generate` output (its enriched/ folder). Runs under `ray job submit` /
`shopgen submit embed_index` (RAY_ADDRESS is set, so the pipeline joins that cluster) or locally. Settings
come from the config file (or SHOPGEN_CONFIG_YAML) and SHOPGEN_* environment; never asks for input."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shopgen.config import load_settings
from shopgen.pipeline import run_index_build

DEFAULT_INPUT = Path(__file__).resolve().parents[1] / "data" / "sample_catalog.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=None, help="YAML config (default: SHOPGEN_CONFIG or built-in defaults)")
    ap.add_argument("--input", default=str(DEFAULT_INPUT), help="catalog or enriched Parquet (default: the sample)")
    ap.add_argument("--alias", default=None)
    ap.add_argument("--workdir", default=None, help="default: <home>/index-build")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--incremental", action="store_true",
                    help="upsert into the live index and delete SKUs missing from the input")
    a = ap.parse_args(argv)
    if a.incremental and a.limit:  # as in the CLI: it would delete every live SKU past the limit
        ap.error("--incremental with --limit would delete every live SKU past the limit")
    settings = load_settings(a.config)
    inc = ({"run_epoch": int(time.time() * 1000), "version_from": "updated_at", "delete_missing": True}
           if a.incremental else None)
    report = run_index_build(a.input, a.workdir or settings.home / "index-build", settings, alias=a.alias,
                             limit=a.limit, incremental=inc)
    print(f"report: {report['outputs']['report']}")
    return 0 if report["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
