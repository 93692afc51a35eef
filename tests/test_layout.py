"""The code's shape, checked: the layers of docs/ARCHITECTURE.md (import-linter's contract in
pyproject.toml), ruff's rule set, no module importing another module's private name (ruff's
PLC2701 across packages, and the same rule within one), and no function in a stage package or
indexing/ over 80 lines."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

OWN = ("shopgen", "indexing", "jobs")
MAX_LINES = 80


def _modules(*roots: str):
    for r in roots:
        yield from sorted((ROOT / r).rglob("*.py"))


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    p = subprocess.run([str(ruff), "check", "--no-cache", *OWN, "tests", "bench"], cwd=ROOT, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(exe), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_layers_contract_is_kept():
    p = _lint_imports(ROOT)
    assert p.returncode == 0 and "1 kept, 0 broken" in p.stdout, p.stdout[-3000:] + p.stderr[-2000:]


def test_a_stage_that_imports_a_workflow_breaks_the_contract(tmp_path):
    """The contract is not vacuous: the same code with one stage importing the nightly fails it."""
    for pkg in ("shopgen", "indexing"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.j2", "*.css"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    stage = tmp_path / "shopgen" / "generate" / "stage.py"
    stage.write_text(stage.read_text(encoding="utf-8") + "\nfrom shopgen.nightly import recipe  # noqa\n")
    p = _lint_imports(tmp_path)
    assert p.returncode != 0 and "1 broken" in p.stdout, p.stdout[-3000:]
    assert "shopgen.generate is not allowed to import shopgen.nightly" in p.stdout, p.stdout[-3000:]


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


def test_xdist_plan_gives_each_module_to_the_least_loaded_worker():
    from conftest import plan_workers

    assert plan_workers({"a": 5, "b": 4, "c": 3, "d": 3, "e": 1}, 2) == [["a", "d"], ["b", "c", "e"]]
    assert plan_workers({"a": 5}, 2) == [["a"], []]
