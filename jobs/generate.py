"""Ray job entrypoint for generation without indexing: `python jobs/generate.py [--config FILE] [--catalog URI]
[--out DIR] [--limit N] [--content TYPES] [--model REF]`.

Runs under `ray job submit` / `shopgen submit generate` (RAY_ADDRESS is set, so the pipeline joins that
cluster) or locally. Settings come from the config file (or SHOPGEN_CONFIG_YAML) and SHOPGEN_* environment;
never asks for input. Writes the same outputs as `shopgen generate`: enriched/, quarantine.jsonl, report.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shopgen.config import load_settings
from shopgen.pipeline import run_generate

DEFAULT_CATALOG = Path(__file__).resolve().parents[1] / "data" / "sample_catalog.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=None, help="YAML config (default: SHOPGEN_CONFIG or built-in defaults)")
    ap.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    ap.add_argument("--out", default=None, help="output folder (default: <home>/generate)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--content", default=None, help="comma-separated content types (default: generation.content)")
    ap.add_argument("--model", default=None, help="'base', a registry version, a built-in, a folder or s3:// prefix "
                                                  "(default: the promoted version, else models.generator)")
    a = ap.parse_args(argv)
    settings = load_settings(a.config)
    if a.model:  # as in the CLI: an explicit model wins over the promoted version; 'base' is models.generator
        upd = {"use_promoted": False} | ({} if a.model == "base" else {"generator": a.model})
        settings = settings.model_copy(update={"models": settings.models.model_copy(update=upd)})
    report = run_generate(a.catalog, a.out or settings.home / "generate", settings, limit=a.limit,
                          content=a.content)
    print(f"report: {report['outputs']['report']}")
    return 0 if report["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
