"""The README's fine-tuning loop, end to end on the bundled catalog with a few steps, from a project
root with the default (relative) home: `shopgen nightly` -> `shopgen finetune --from-accepted` (Ray
Train on the shop's copy that passes the gate and on the copy the gate accepted that night; the
candidate and the base served through vLLM with the serving grammar, best-of-n and gate on the
held-out products) -> `shopgen models promote` (the serving-path gate) -> `shopgen nightly`, which
serves the promoted LoRA version through vLLM with the prompt it was trained on."""

import json
import subprocess

import pytest
from conftest import BEST_OF_ONE, MODEL_CACHE, ONE_ATTEMPT, SAMPLE

from shopgen.adapters.registry import gate
from shopgen.core.content import CONTENT_TYPES

pytestmark = pytest.mark.slow


def _run(args, e, cwd, timeout=1200):
    p = subprocess.run(args, env=e, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-6000:]
    return p


@pytest.fixture
def project(tmp_path):
    """A scratch project root with the default home (.shopgen); its search server is stopped after."""
    from shopgen.adapters import devstack

    yield tmp_path
    devstack.down(tmp_path / ".shopgen")


def test_readme_walkthrough_nightly_finetune_promote_nightly(project, env, shopgen_bin):
    tmp_path = project
    # A scratch project root: data/ and the converted model linked in, every path setting at its default.
    (tmp_path / "data").symlink_to(SAMPLE.parent)
    (tmp_path / ".shopgen").mkdir()
    (tmp_path / ".shopgen" / "models").symlink_to(MODEL_CACHE)
    e = {k: v for k, v in env.items() if not k.startswith("SHOPGEN_")}
    e.update(BEST_OF_ONE, **ONE_ATTEMPT)
    nightly = [shopgen_bin, "nightly", "--catalog", "data/sample_catalog.jsonl", "--limit", "10",
               "--workdir", "night", "--content", "seo_title"]
    _run(nightly, e, tmp_path)
    night1 = json.loads((tmp_path / "night" / "report.json").read_text())
    state = tmp_path / "night" / "state" / "products"
    assert (state / "skus.parquet").exists()

    # Small and short so the suite stays within its budget; the method and sources are the defaults.
    ft_env = {**e, "SHOPGEN_FINETUNE__VAL_FRACTION": "0.2", "SHOPGEN_FINETUNE__TEST_FRACTION": "0.3",
              "SHOPGEN_FINETUNE__TEST_SAMPLES": "2", "SHOPGEN_FINETUNE__EVAL_SAMPLES": "0",
              "SHOPGEN_FINETUNE__EVAL_EVERY": "2", "SHOPGEN_FINETUNE__BATCH_SIZE": "2",
              "SHOPGEN_FINETUNE__CONTENT": '["seo_title", "description"]'}
    p = _run([shopgen_bin, "finetune", "--catalog", "data/sample_catalog.jsonl", "--limit", "10",
              "--from-accepted", "night/state/products", "--max-steps", "2", "--json"], ft_env, tmp_path)
    assert "Repo id must be in the form" not in p.stderr
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    data, m = rep["data"], rep["metrics"]
    assert data["sources"] == ["catalog", "accepted"] and data["by_source"]["accepted"] >= 1, (data, night1["counts"])
    assert data["prompt"] == "facts"

    # The evaluation is the serving path: both arms on the same held-out products, every sample
    # from the engine with the serving grammar (so it parses), figures per trained type.
    assert m["eval"] == "serving" and m["products"] >= 1 and m["types"], m
    samples = [json.loads(x) for x in (tmp_path / rep["eval_samples"]).read_text().splitlines()]
    for arm in ("base", "finetuned"):
        mine = [s for s in samples if s["arm"] == arm]
        assert mine and set(m[arm]["by_type"]) == set(m["types"])
        parsed = []
        for s in mine:
            try:
                CONTENT_TYPES[s["content"]].schema.model_validate_json(s["text"])
                parsed.append(True)
            except ValueError:
                parsed.append(False)
        assert m[arm]["schema_pass_rate"] == round(sum(parsed) / len(parsed), 4)
        assert {s["sku"] for s in mine} == {s["sku"] for s in samples if s["arm"] == "base"}
        for t, f in m[arm]["by_type"].items():
            assert f["samples"] == sum(s["content"] == t for s in mine) and f["n"] == m["products"]
            assert f["accepted"] == round(sum(s["content"] == t and s["accepted"] for s in mine) / f["n"], 4) \
                or f["samples"] > f["n"]  # best-of-n: several samples per request
    assert rep["gate"] == dict(zip(("passed", "reasons"), gate(m)))

    version = rep["version"]
    promote = [shopgen_bin, "models", "promote", version]
    p = subprocess.run(promote, env=e, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    if rep["gate"]["passed"]:
        assert p.returncode == 0, p.stderr
    else:  # the gate refuses a candidate that does not publish more; --force is the documented override
        assert p.returncode != 0 and "gate refused" in p.stderr and rep["gate"]["reasons"][0] in p.stderr
        _run([*promote, "--force"], e, tmp_path)

    _run(nightly, e, tmp_path)
    night2 = json.loads((tmp_path / "night" / "report.json").read_text())
    assert night2["model_version"].endswith(f"+{version}") and night2["prompt"] == "facts", night2
    assert night2["counts"]["regenerated"] == night2["counts"]["valid"]  # a new model: every product again
