"""Ray job entrypoint for the nightly run: `python jobs/nightly.py --config FILE [--catalog URI]`.

Runs under `ray job submit` (RAY_ADDRESS is set, so the pipeline joins that cluster) or locally.
Reads its settings from the config file and SHOPGEN_* environment; never asks for input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shopgen.config import load_settings
from shopgen.pipeline import run_nightly

DEFAULT_CATALOG = Path(__file__).resolve().parents[1] / "data" / "sample_catalog.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=None, help="YAML config (default: SHOPGEN_CONFIG or built-in defaults)")
    ap.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--alias", default=None)
    a = ap.parse_args(argv)
    settings = load_settings(a.config)
    report = run_nightly(a.catalog, a.workdir or settings.home / "work", settings, limit=a.limit, alias=a.alias)
    print(f"report: {report['outputs']['report']}")
    return 0 if report["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
