"""Ray job entrypoint for fine-tuning: `shopgen finetune` with the same options
(`python jobs/finetune.py --help`); registers a candidate version in the model registry."""

import sys

from jobrunner import run


def main(argv: list[str] | None = None) -> int:
    return run(["finetune"], argv)


if __name__ == "__main__":
    sys.exit(main())
