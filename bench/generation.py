"""Generation throughput, in one process run, on the same N prompts:
  (a) raw `vllm.LLM.chat` with the same sampling and structured-output params,
  (b) the shopgen generate stage (VLLMGenerator: prompts, structured output, the quality gate),
  (c) HF transformers batched `generate` (no grammar), same model, same max new tokens.

    .venv/bin/python bench/generation.py [--n 32] [--content description] [--json]

(a) and (b) share one warm engine (start-up excluded from both), so the ratio isolates what the
stage adds. Each is run twice, alternating, and the faster run counts, so neither gains from the
prefix cache the other warmed. Prints tokens/s and the ratios shopgen/raw and raw vLLM/HF; with
--json the last line is one JSON object."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32, help="prompts (products; the sample catalog repeats)")
    ap.add_argument("--content", default="description", help="content type to generate")
    ap.add_argument("--catalog", default=str(ROOT / "data" / "sample_catalog.jsonl"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from shopgen.adapters import models
    from shopgen.catalog.load import load_catalog
    from shopgen.core.config import load_settings
    from shopgen.core.content import CONTENT_TYPES, sampling_for
    from shopgen.generate.engine import GEN_INPUT_SCHEMA, GENERATED_SCHEMA, VLLMGenerator, product_row, row_product
    from shopgen.generate.prompts import build_messages

    s = load_settings()
    ct = CONTENT_TYPES[a.content]
    products, _ = load_catalog(a.catalog)
    en = [p for p in products if p.locale == "en-US"]
    rows = [{**product_row(en[i % len(en)]), "sku": f"B{i}"} for i in range(a.n)]
    model = models.resolve(s.models.generator, s)
    s = s.model_copy(update={"generation": s.generation.model_copy(update={"max_attempts": 1})})
    gen_cfg = s.generation.model_dump()
    local = models.materialize(model, s)

    t = time.perf_counter()
    stage = VLLMGenerator(model, s, [a.content])
    start_s = time.perf_counter() - t
    msgs = [build_messages(row_product(r), ct) for r in rows]
    stage._engine(msgs[:2], [ct, ct], 0, ["en-US", "en-US"])  # warm-up
    samp = sampling_for(ct, gen_cfg)

    def raw() -> tuple[int, float]:
        t = time.perf_counter()
        outs = stage.llm.chat(msgs, stage._params([ct] * len(msgs), ["en-US"] * len(msgs), 0), use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs), time.perf_counter() - t

    def shopgen() -> tuple[int, float]:
        table = pa.Table.from_pylist(rows, schema=GEN_INPUT_SCHEMA)
        t = time.perf_counter()
        out = stage(table)
        dt = time.perf_counter() - t
        assert out.schema == GENERATED_SCHEMA
        return sum(out.column("gen_tokens").to_pylist()), dt

    runs = {"raw": [], "shopgen": []}
    for name, fn in (("raw", raw), ("shopgen", shopgen), ("raw", raw), ("shopgen", shopgen)):
        runs[name].append(fn())
    best = {k: max(v, key=lambda x: x[0] / x[1]) for k, v in runs.items()}
    tok_s = {k: v[0] / v[1] for k, v in best.items()}
    stage = None  # frees the engine (and its memory) before the figures are printed
    gc.collect()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(local.path)
    tok.padding_side = "left"
    hf = AutoModelForCausalLM.from_pretrained(local.path, dtype=torch.bfloat16).eval()
    texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in msgs]
    enc = tok(texts, return_tensors="pt", padding=True)
    t = time.perf_counter()
    with torch.no_grad():
        out = hf.generate(**enc, max_new_tokens=samp["max_tokens"], do_sample=True,
                          temperature=samp["temperature"], top_p=s.generation.top_p,
                          pad_token_id=tok.pad_token_id or tok.eos_token_id)
    hf_s = time.perf_counter() - t
    new = out[:, enc["input_ids"].shape[1]:]
    eos = tok.eos_token_id
    hf_tokens = int(sum(((row != tok.pad_token_id) & (row != eos)).sum().item() + int((row == eos).any())
                        for row in new))
    hf_tok_s = hf_tokens / hf_s

    res = {
        "bench": "generation", "n": a.n, "content": a.content, "model": model.version,
        "max_tokens": samp["max_tokens"], "batch": a.n, "engine_start_s": round(start_s, 1),
        "shopgen_tok_s": round(tok_s["shopgen"], 1), "raw_vllm_tok_s": round(tok_s["raw"], 1),
        "hf_tok_s": round(hf_tok_s, 1),
        "ratio_shopgen_vs_raw": round(tok_s["shopgen"] / tok_s["raw"], 3),
        "ratio_vllm_vs_hf": round(tok_s["raw"] / hf_tok_s, 3),
        "tokens": {"raw": best["raw"][0], "shopgen": best["shopgen"][0], "hf": hf_tokens},
        "seconds": {"raw": round(best["raw"][1], 2), "shopgen": round(best["shopgen"][1], 2), "hf": round(hf_s, 2)},
    }
    print(f"(a) raw vllm.LLM.chat:       {res['raw_vllm_tok_s']} tok/s ({res['tokens']['raw']} tokens)")
    print(f"(b) shopgen generate stage:  {res['shopgen_tok_s']} tok/s ({res['tokens']['shopgen']} tokens)")
    print(f"(c) HF transformers generate: {res['hf_tok_s']} tok/s ({hf_tokens} tokens)")
    print(f"shopgen / raw vLLM = {res['ratio_shopgen_vs_raw']}   raw vLLM / HF = {res['ratio_vllm_vs_hf']}")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
