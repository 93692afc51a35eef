"""Ray job entrypoint for generation without indexing: `shopgen generate` with the same options
(`python jobs/generate.py --help`). Writes enriched/, quarantine.jsonl and report.json under --out."""

import sys

from jobrunner import run


def main(argv: list[str] | None = None) -> int:
    return run(["generate"], argv)


if __name__ == "__main__":
    sys.exit(main())
