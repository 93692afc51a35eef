"""Every bench script starts: `python bench/<name>.py --help` exits 0 and prints its usage. A new
script is covered by being in bench/; a module without a main (bench/luma.py, bench/stubs.py) is a
library the scripts load and is left out. They run from the repo root, as the README shows them, with
bench/ first on sys.path: no file there may be named like a standard library module (the former
bench/copy.py shadowed `copy`, and scripts crashed once they imported shopgen)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

_MAIN = re.compile(r"""^if __name__ == ["']__main__["']\s*:""", re.M)


def _is_script(path) -> bool:
    text = path.read_text(encoding="utf-8")
    return bool(_MAIN.search(text)) or "argparse" in text


SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if _is_script(p))


def test_bench_has_scripts():
    assert SCRIPTS, "no bench scripts found"


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_bench_script_help(path):
    p = subprocess.run([sys.executable, str(path.relative_to(ROOT)), "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.lstrip().startswith("usage:") and path.name in p.stdout, p.stdout


def test_no_bench_module_shadows_the_standard_library():
    shadowing = [p.name for p in (ROOT / "bench").glob("*.py") if p.stem in sys.stdlib_module_names]
    assert not shadowing, f"bench/ is on sys.path when its scripts run; rename {shadowing}"
