"""Ray job entrypoint for fine-tuning: `python jobs/finetune.py --config FILE [--catalog URI] [--base REF]`.

Runs under `ray job submit` (RAY_ADDRESS is set, so Ray Train uses that cluster) or locally. Settings
come from the config file and SHOPGEN_* environment (finetune.*, models.registry); never asks for input.
Re-submitting with the same --name resumes from the run's checkpoints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shopgen.config import load_settings
from shopgen.finetune import run_finetune

DEFAULT_CATALOG = Path(__file__).resolve().parents[1] / "data" / "sample_catalog.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=None, help="YAML config (default: SHOPGEN_CONFIG or built-in defaults)")
    ap.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    ap.add_argument("--base", default="base")
    ap.add_argument("--name", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--promote", action="store_true", help="promote the new version if it passes the gate")
    a = ap.parse_args(argv)
    settings = load_settings(a.config)
    report = run_finetune(a.catalog, settings, base=a.base, name=a.name, limit=a.limit, promote=a.promote or None)
    print(json.dumps({k: report.get(k) for k in ("status", "version", "promoted", "metrics", "report")}))
    return 0 if report["status"] in ("succeeded", "already_registered") else 1


if __name__ == "__main__":
    sys.exit(main())
