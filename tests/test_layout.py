"""The code's shape, checked: no module imports another module's private name (ruff's PLC2701
across packages, and the same rule within one), and no function in a stage package or indexing/
runs over 80 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

OWN = ("shopgen", "indexing", "jobs")
MAX_LINES = 80


def _modules(*roots: str):
    for r in roots:
        yield from sorted((ROOT / r).rglob("*.py"))


def test_ruff_import_private_name_rule_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    p = subprocess.run([str(ruff), "check", "--no-cache", *OWN], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_no_private_names_imported_between_our_own_modules():
    found = []
    for path in _modules(*OWN):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OWN:
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, found


def test_no_function_in_a_stage_package_or_indexing_is_over_80_lines():
    paths = [p for p in _modules("shopgen") if p.parent != ROOT / "shopgen"] + list(_modules("indexing"))
    long = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long
