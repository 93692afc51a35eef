"""`shopgen --set KEY=VALUE` and the config-backed command options: one validated path
(shopgen/cli/overrides.py -> core.config.apply_overrides). Fast: the training recipes are faked."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from shopgen.cli.main import main


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOPGEN_HOME", str(tmp_path / "home"))
    for k in ("SHOPGEN_CONFIG", "SHOPGEN_CONFIG_YAML", "SHOPGEN_VERBOSE"):
        monkeypatch.delenv(k, raising=False)
    return CliRunner()


@pytest.fixture
def captured(monkeypatch):
    """Fake training recipes: each records the Settings and the group's ctx.obj it was run with."""
    import click

    calls: list[dict] = []

    def fake(*args, **kwargs):
        s = next(a for a in args if hasattr(a, "finetune"))
        calls.append({"settings": s, "obj": click.get_current_context().find_root().obj})
        return {"version": "v1", "registry": s.registry_uri, "metrics": {}}

    for mod, fn in (("shopgen.finetune.recipe", "run_finetune"), ("shopgen.searchtune.recipe", "run_search_finetune")):
        monkeypatch.setitem(sys.modules, mod, types.SimpleNamespace(**{fn: fake}))
    return calls


def _config(runner, *args) -> dict:
    r = runner.invoke(main, [*args, "config", "show"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _finetune(runner, captured, *args):
    r = runner.invoke(main, [*args[:args.index("finetune")], "finetune", "--catalog", "c.jsonl",
                             *args[args.index("finetune") + 1:]])
    assert r.exit_code == 0, r.output
    return captured.pop()["settings"]


def test_help_lists_set_and_verbose(runner):
    r = runner.invoke(main, ["--help"])
    assert r.exit_code == 0
    assert "--set KEY=VALUE" in r.output and "--verbose" in r.output
    assert "Ray's and vLLM's own logs" in r.output


def test_set_applies_typed_values_on_top_of_env(runner, monkeypatch):
    monkeypatch.setenv("SHOPGEN_GENERATION__MAX_ATTEMPTS", "5")
    d = _config(runner, "--set", "generation.max_attempts=2", "--set", "finetune.content=[seo_title,description]",
                "--set", "finetune.gpu=true", "--set", "finetune.max_steps=null", "--set", "es.alias=2024",
                "--set", "content.description.min_words=3", "--set", "generation.concurrency=[1, 4]")
    assert d["generation"]["max_attempts"] == 2  # --set beats the env var
    assert d["finetune"]["content"] == ["seo_title", "description"]
    assert d["finetune"]["gpu"] is True and d["finetune"]["max_steps"] is None
    assert d["es"]["alias"] == "2024"  # a number where the key is text: taken as the text
    assert d["content"]["description"]["min_words"] == 3
    assert d["generation"]["concurrency"] == [1, 4]
    assert _config(runner)["generation"]["max_attempts"] == 5


@pytest.mark.parametrize("pair, named", [
    ("generation.max_attempts=two", "generation.max_attempts"),
    ("generation.max_attempts=2.5", "generation.max_attempts"),
    ("finetune.method=qlora", "finetune.method"),
    ("generation.no_such_key=1", "generation.no_such_key"),
    ("nosection.key=1", "nosection"),
    ("generation.seed.x=1", "generation.seed"),
    ("content.poems.min_words=3", "content.poems"),
    ("=1", "KEY=VALUE"),
    ("generation.max_attempts", "KEY=VALUE"),
])
def test_a_bad_key_or_value_is_a_usage_error_naming_the_key(runner, captured, pair, named):
    r = runner.invoke(main, ["--set", pair, "finetune", "--catalog", "c.jsonl"])
    assert r.exit_code == 2, r.output
    assert "Invalid value for --set" in r.output and named in r.output
    assert "Traceback" not in r.output and not captured  # nothing ran


def test_secrets_are_never_echoed(runner):
    for pair in ("es.password=[hunter2]", "s3.secret_access_key={k: hunter2}", "hunter2"):
        r = runner.invoke(main, ["--set", pair, "config", "show"])
        assert r.exit_code == 2 and "hunter2" not in r.output, r.output
    d = _config(runner, "--set", "es.password=123", "--set", "es.api_key=hunter2")
    assert d["es"]["password"] == d["es"]["api_key"] == "**********"


def test_relative_paths_become_absolute_through_set_and_options(runner, captured, tmp_path):
    want = str(tmp_path / "runs")
    assert _config(runner, "--set", "finetune.storage_path=runs")["finetune"]["storage_path"] == want
    assert _finetune(runner, captured, "finetune", "--storage", "runs").finetune.storage_path == want
    assert _finetune(runner, captured, "--set", "finetune.storage_path=runs", "finetune").finetune.storage_path == want
    s = _finetune(runner, captured, "finetune", "--from-accepted", "state/products", "--registry", "reg")
    assert s.finetune.accepted_state == str(tmp_path / "state" / "products")
    assert s.finetune.sources == ["catalog", "accepted"] and s.models.registry == str(tmp_path / "reg")
    for args in (["finetune-search", "--storage", "runs"], ["--set", "search_finetune.storage_path=runs",
                                                             "finetune-search"]):
        r = runner.invoke(main, [*args, "--catalog", "c.jsonl", "--judgments", "j.csv"])
        assert r.exit_code == 0, r.output
        assert captured.pop()["settings"].search_finetune.storage_path == want


def test_an_option_and_set_on_the_same_key_agree(runner, captured):
    by_option = _finetune(runner, captured, "finetune", "--workers", "2", "--method", "full", "--gpu", "--epochs", "2")
    by_set = _finetune(runner, captured, "--set", "finetune.workers=2", "--set", "finetune.method=full",
                       "--set", "finetune.gpu=true", "--set", "finetune.epochs=2", "finetune")
    assert by_option.finetune == by_set.finetune
    assert (by_option.finetune.workers, by_option.finetune.method, by_option.finetune.gpu) == (2, "full", True)
    # Both on the command line: the command's own option is the more specific one, and --epochs
    # clears a max_steps set before it (max_steps would override epochs).
    both = _finetune(runner, captured, "--set", "finetune.workers=3", "--set", "finetune.max_steps=7",
                     "finetune", "--workers", "2", "--epochs", "2")
    assert (both.finetune.workers, both.finetune.epochs, both.finetune.max_steps) == (2, 2, None)
    r = runner.invoke(main, ["--set", "search_finetune.batch_size=8", "finetune-search", "--catalog", "c.jsonl",
                             "--judgments", "j.csv"])
    r2 = runner.invoke(main, ["finetune-search", "--batch-size", "8", "--catalog", "c.jsonl", "--judgments", "j.csv"])
    assert r.exit_code == r2.exit_code == 0, r.output + r2.output
    assert captured[0]["settings"].search_finetune == captured[1]["settings"].search_finetune
    assert captured[0]["settings"].search_finetune.batch_size == 8


def test_verbose_reaches_the_environment_and_ctx_obj(runner, captured):
    _finetune(runner, captured, "finetune")
    assert "SHOPGEN_VERBOSE" not in os.environ
    r = runner.invoke(main, ["--verbose", "finetune", "--catalog", "c.jsonl"])
    assert r.exit_code == 0, r.output
    assert captured[-1]["obj"]["verbose"] is True and os.environ["SHOPGEN_VERBOSE"] == "1"
    os.environ.pop("SHOPGEN_VERBOSE")  # set by the command itself, not by monkeypatch


def test_submit_refuses_set_it_cannot_ship(runner):
    r = runner.invoke(main, ["--set", "generation.max_attempts=2", "submit", "nightly"])
    assert r.exit_code == 2 and "--set does not travel with a job" in r.output, r.output


def test_set_values_pass_through_apply_overrides():
    from shopgen.core.config import apply_overrides, load_settings

    s = load_settings()
    assert apply_overrides(s, {}) is s
    t = apply_overrides(s, {"search.field_weights.brand": 2, "finetune.storage_path": "x"})
    assert t.search.field_weights == {"brand": 2.0} and Path(t.finetune.storage_path).is_absolute()
    assert s.search.field_weights is None  # the original is untouched
