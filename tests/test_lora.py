"""End to end: `shopgen finetune` trains a LoRA adapter on the real SmolLM2 with Ray Train, scores
base and fine-tuned on the test split, registers the version and promotes it through the gate;
`shopgen generate` then serves it through vLLM LoRA by default, and `--model base` does not."""

import json
import subprocess

import pyarrow.dataset as pads
import pytest
from conftest import SAMPLE

pytestmark = pytest.mark.slow


def _titles(out_dir) -> dict[str, str]:
    rows = pads.dataset(str(out_dir / "stages" / "generated")).to_table().to_pylist()
    return {r["sku"]: r["seo_title"] or json.loads(r["qa"])["seo_title"].get("raw", "") for r in rows}


def test_finetune_register_promote_and_generate(tmp_path, env, shopgen_bin):
    # The shop's house style for SEO titles, as a human-written attribute the dataset builder trains on.
    lines = SAMPLE.read_text().splitlines()[:16]
    plain = tmp_path / "plain.jsonl"  # what generation sees: no answer in the input
    plain.write_text("\n".join(lines[:4]) + "\n")
    products = [json.loads(line) for line in lines]
    for p in products:
        p["attributes"]["seo_title"] = f"Quokka Picks: {p['brand']}"
    catalog = tmp_path / "c.jsonl"
    catalog.write_text("\n".join(json.dumps(p) for p in products) + "\n")
    reg = tmp_path / "registry"
    ft_env = {**env, "SHOPGEN_FINETUNE__CONTENT": '["seo_title"]', "SHOPGEN_FINETUNE__VAL_FRACTION": "0.15",
              "SHOPGEN_FINETUNE__TEST_FRACTION": "0.25", "SHOPGEN_FINETUNE__EVAL_EVERY": "10",
              "SHOPGEN_FINETUNE__EVAL_SAMPLES": "2", "SHOPGEN_FINETUNE__TEST_SAMPLES": "4",
              "SHOPGEN_FINETUNE__MAX_NEW_TOKENS": "24", "SHOPGEN_FINETUNE__BATCH_SIZE": "1",
              "SHOPGEN_FINETUNE__LEARNING_RATE": "0.003", "SHOPGEN_FINETUNE__LORA_R": "8",
              "SHOPGEN_FINETUNE__TARGET_MODULES": '["q_proj", "v_proj"]'}
    p = subprocess.run([shopgen_bin, "finetune", "--catalog", str(catalog), "--max-steps", "20", "--registry",
                        str(reg), "--promote", "--json"], env=ft_env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-4000:]
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    version, m = rep["version"], rep["metrics"]
    assert rep["data"]["by_split"]["train"] >= 8 and m["base"]["n"] == m["finetuned"]["n"] >= 2
    assert m["finetuned"]["rouge_l"] > m["base"]["rouge_l"], m
    assert rep["gate"]["passed"] and rep["promoted"], rep["gate"]
    assert (reg / "versions" / version / "adapter" / "adapter_config.json").exists()

    greedy = {**env, "SHOPGEN_GENERATION__TEMPERATURE": "0", "SHOPGEN_GENERATION__MAX_ATTEMPTS": "1"}
    outs = {}
    for name, model_args in (("promoted", []), ("base", ["--model", "base"])):
        out = tmp_path / name
        p = subprocess.run([shopgen_bin, "generate", "--catalog", str(plain), "--out", str(out),
                            "--content", "seo_title", "--registry", str(reg), *model_args], env=greedy,
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-4000:]
        outs[name] = _titles(out)
        model_version = json.loads((out / "report.json").read_text())["model_version"]
        assert model_version.endswith(f"+{version}") == (name == "promoted"), model_version
    assert any("quokka" in t.lower() for t in outs["promoted"].values()), outs["promoted"]
    assert not any("quokka" in t.lower() for t in outs["base"].values()), outs["base"]
