"""A model reference that names a LoRA adapter is served through vLLM LoRA and changes the output.
The adapter is trained here, for a few steps with PEFT on the real SmolLM2 base."""

import json
import subprocess

import pyarrow.dataset as pads
import pytest

from conftest import SAMPLE

pytestmark = pytest.mark.slow


def _train_adapter(base_path: str, out_dir, products) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shopgen.content import CONTENT_TYPES
    from shopgen.prompts import build_messages
    from shopgen.records import Product

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(base_path)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    ct = CONTENT_TYPES["seo_title"]
    examples = []
    for p in products:
        prompt = tok.apply_chat_template(build_messages(Product(**p), ct), tokenize=False, add_generation_prompt=True)
        target = json.dumps({"seo_title": f"Quokka Picks: {p['brand']}"}) + tok.eos_token
        ids_p, ids_t = tok(prompt)["input_ids"], tok(target)["input_ids"]
        examples.append((torch.tensor([ids_p + ids_t]), torch.tensor([[-100] * len(ids_p) + ids_t])))
    model.train()
    for step in range(24):
        ids, labels = examples[step % len(examples)]
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out_dir)


def _titles(out_dir) -> dict[str, str]:
    rows = pads.dataset(str(out_dir / "stages" / "generated")).to_table().to_pylist()
    return {r["sku"]: r["seo_title"] or json.loads(r["qa"])["seo_title"].get("raw", "") for r in rows}


def test_adapter_changes_generation(tmp_path, env, shopgen_bin, settings):
    from shopgen import models

    products = [json.loads(l) for l in SAMPLE.read_text().splitlines()[:4]]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(p) for p in products) + "\n")
    base = models.resolve("smollm2-135m-instruct", settings)
    adapter = tmp_path / "shop-lora"
    _train_adapter(base.path, adapter, products)
    ref = models.resolve(str(adapter), settings)
    assert ref.adapter_path == str(adapter) and "+lora:shop-lora@" in ref.version

    greedy = {**env, "SHOPGEN_GENERATION__TEMPERATURE": "0", "SHOPGEN_GENERATION__MAX_ATTEMPTS": "1"}
    outs = {}
    for name, model_ref in (("base", "smollm2-135m-instruct"), ("lora", str(adapter))):
        out = tmp_path / name
        p = subprocess.run([shopgen_bin, "generate", "--catalog", str(tmp_path / "c.jsonl"), "--out", str(out),
                            "--content", "seo_title", "--model", model_ref], env=greedy, capture_output=True,
                           text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-4000:]
        outs[name] = _titles(out)
        report = json.loads((out / "report.json").read_text())
        assert report["model_version"] == (ref.version if name == "lora" else base.version)
    changed = [s for s in outs["base"] if outs["base"][s] != outs["lora"][s]]
    assert changed, outs
    assert any("quokka" in t.lower() for t in outs["lora"].values()), outs["lora"]
