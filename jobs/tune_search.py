"""Ray job entrypoint for choosing the search mode and fusion: `shopgen tune-search` with the same
options (`python jobs/tune_search.py --help`); stores the choice with the alias's indices."""

import sys

from jobrunner import run


def main(argv: list[str] | None = None) -> int:
    return run(["tune-search"], argv)


if __name__ == "__main__":
    sys.exit(main())
