"""Ray job entrypoint for the incremental nightly run: `shopgen nightly` with the same options
(`python jobs/nightly.py --help`). Runs under `ray job submit` / `shopgen submit nightly` (RAY_ADDRESS
is set, so the pipeline joins that cluster) or locally; never asks for input."""

import sys

from jobrunner import run


def main(argv: list[str] | None = None) -> int:
    return run(["nightly"], argv)


if __name__ == "__main__":
    sys.exit(main())
