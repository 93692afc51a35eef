"""Ray job entrypoint for embed + index without generation: `shopgen index build` with the same
options (`python jobs/embed_index.py --help`); --input is a raw catalog or `shopgen generate` output."""

import sys

from jobrunner import run


def main(argv: list[str] | None = None) -> int:
    return run(["index", "build"], argv, sample_option="--input")


if __name__ == "__main__":
    sys.exit(main())
