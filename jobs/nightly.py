"""Ray job entrypoint for the incremental nightly run:
`python jobs/nightly.py [--config FILE] [--catalog URI] [--state PREFIX] [--alias NAME] [--full]`.

Runs under `ray job submit` / `shopgen submit nightly` (RAY_ADDRESS is set, so the pipeline joins
that cluster) or locally. Reads its settings from the config file (or the text `shopgen submit`
ships in SHOPGEN_CONFIG_YAML) and SHOPGEN_* environment; never asks for input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shopgen.config import load_settings

DEFAULT_CATALOG = Path(__file__).resolve().parents[1] / "data" / "sample_catalog.jsonl"


def main(argv: list[str] | None = None) -> int:
    from shopgen import nightly
    from shopgen.state import LockedError

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=None, help="YAML config (default: SHOPGEN_CONFIG or built-in defaults)")
    ap.add_argument("--catalog", default=str(DEFAULT_CATALOG), help="catalog file, local or s3:// (default: the "
                                                                     "bundled sample catalog)")
    ap.add_argument("--workdir", default=None, help="local stage folder (default: <home>/work)")
    ap.add_argument("--state", default=None, help="state prefix, folder or s3:// (default: nightly.state, else "
                                                  "<workdir>/state)")
    ap.add_argument("--alias", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--content", default=None, help="comma-separated content types (default: generation.content)")
    ap.add_argument("--full", action="store_true", help="regenerate everything and build a new index")
    ap.add_argument("--force-unlock", action="store_true", help="clear the run lock first")
    a = ap.parse_args(argv)
    settings = load_settings(a.config)
    try:
        report = nightly.run(a.catalog, a.workdir or settings.home / "work", settings, state=a.state, alias=a.alias,
                             full=a.full, limit=a.limit, content=a.content, force_unlock=a.force_unlock)
    except LockedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    c = report["counts"]
    print(f"{report.get('mode')} run {report['run_id']}: " + ", ".join(
        f"{k} {c.get(k, 0)}" for k in ("new", "changed", "unchanged", "deleted", "quarantined", "regenerated")))
    print(f"report: {report['outputs']['report']}")
    print(f"run report: {report['outputs']['run_prefix']}/report.html")
    return 0 if report["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
