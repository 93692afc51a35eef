"""What every jobs/*.py entrypoint does: run one `shopgen` command in this interpreter, with exactly
the CLI's options (`python jobs/nightly.py --help`). `--config FILE` may come anywhere; it goes to the
shopgen group. Without a catalog, a job reads the bundled sample catalog."""

from __future__ import annotations

import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_catalog.jsonl"


def command_line(command: list[str], argv: list[str], sample_option: str | None) -> list[str]:
    """The shopgen command line for a job's own arguments (pure)."""
    head, rest, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--config" and i + 1 < len(argv):
            head += [a, argv[i + 1]]
            i += 2
            continue
        if a.startswith("--config="):
            head.append(a)
        else:
            rest.append(a)
        i += 1
    given = {a.split("=", 1)[0] for a in rest}
    if sample_option and sample_option not in given and not given & {"--help", "-h"}:
        rest += [sample_option, str(SAMPLE)]
    return [*head, *command, *rest]


def run(command: list[str], argv: list[str] | None = None, sample_option: str | None = "--catalog") -> int:
    try:
        from shopgen.cli.main import main
    except ImportError as e:
        print(f"error: shopgen cannot run under {sys.executable}: {e}\n"
              "The job must run under the interpreter of the cluster's shopgen install: install shopgen on every "
              "node (cluster.yaml setup_commands), or start a local head from shopgen's venv "
              "(.venv/bin/ray start --head), whose interpreter `shopgen submit` then uses.", file=sys.stderr)
        return 2
    args = command_line(command, list(sys.argv[1:] if argv is None else argv), sample_option)
    return main(args, prog_name="shopgen") or 0
