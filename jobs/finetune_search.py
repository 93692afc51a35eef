"""Ray job entrypoint for fine-tuning the embedder on judged queries: `shopgen finetune-search`
with the same options (`python jobs/finetune_search.py --help`); registers an embedder version."""

import sys

from jobrunner import run


def main(argv: list[str] | None = None) -> int:
    return run(["finetune-search"], argv)


if __name__ == "__main__":
    sys.exit(main())
