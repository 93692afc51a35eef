"""Evaluation of generated copy against human references (pure), plus a small batched HF
generation helper used during and after fine-tuning. The fact checks are shopgen.checks'."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from shopgen.checks import check_faithfulness, norm
from shopgen.core.content import CONTENT_TYPES, texts_of
from shopgen.core.records import Product

# Hand-written rather than rouge-score: its tokenizer drops every non-ASCII character, which
# would score all Chinese copy as empty.
_TOKEN = re.compile(r"[\u3400-\u9fff]|[a-z0-9]+(?:['.][a-z0-9]+)*")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(norm(text))


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: longest common token subsequence against the reference."""
    c, r = tokens(candidate), tokens(reference)
    if not c or not r:
        return 0.0
    prev = [0] * (len(r) + 1)
    for x in c:
        cur = [0]
        for j, y in enumerate(r):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if not lcs:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


def attribute_values(p: Product) -> list[str]:
    """Attribute values a good text would mention (booleans say nothing quotable)."""
    out = []
    for v in p.attributes.values():
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, bool) or x in (None, ""):
                continue
            out.append(f"{x:g}" if isinstance(x, float) else str(x))
    return out


def attribute_coverage(text: str, p: Product) -> float:
    vals = attribute_values(p)
    if not vals:
        return 1.0
    t = norm(text)
    hit = sum(1 for v in vals if re.search(rf"(?<!\w){re.escape(norm(v))}(?!\w)", t))
    return hit / len(vals)


def parse_output(raw: str, content: str) -> tuple[list[str], bool]:
    """(texts, schema_ok): the generated texts, also from invalid or cut-off JSON."""
    ct = CONTENT_TYPES[content]
    try:
        out = ct.schema.model_validate_json(raw)
        return ct.texts(out), True
    except ValueError:
        pass
    try:
        data = json.loads(raw)
        if isinstance(data, dict):
            return texts_of(data), False
    except ValueError:
        pass
    # Cut off at max_new_tokens: take the string values that made it out.
    vals = re.findall(r'"(?:[^"\\]|\\.)*"\s*:\s*"((?:[^"\\]|\\.)*)', raw)
    return ([v.replace('\\"', '"') for v in vals] or [raw.strip()]), False


def score_sample(raw: str, content: str, reference: str, product: Product) -> dict[str, Any]:
    texts, schema_ok = parse_output(raw, content)
    blob = " ".join(texts)
    found = check_faithfulness(texts, product)
    return {"rouge_l": rouge_l(blob, reference), "attribute_coverage": attribute_coverage(blob, product),
            "unsupported": len(found.details), "schema_ok": schema_ok}


def aggregate(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over samples; unsupported_rate is the share of outputs with any unsupported fact."""
    n = len(scores)
    if not n:
        return {"n": 0}
    return {
        "n": n,
        "rouge_l": round(sum(s["rouge_l"] for s in scores) / n, 4),
        "attribute_coverage": round(sum(s["attribute_coverage"] for s in scores) / n, 4),
        "unsupported_rate": round(sum(1 for s in scores if s["unsupported"]) / n, 4),
        "unsupported_per_output": round(sum(s["unsupported"] for s in scores) / n, 4),
        "schema_pass_rate": round(sum(1 for s in scores if s["schema_ok"]) / n, 4),
    }


def generate_raw(model: Any, tok: Any, messages: Sequence[list[dict[str, str]]], max_new_tokens: int,
                 batch_size: int = 8) -> list[str]:
    """Greedy, batched, left-padded HF generation (deterministic, unlike sampling)."""
    import torch

    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    out: list[str] = []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(messages), batch_size):
            prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                       for m in messages[i:i + batch_size]]
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            out += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    if was_training:
        model.train()
    return out


def evaluate_rows(model: Any, tok: Any, rows: Sequence[dict[str, Any]], max_new_tokens: int) -> dict[str, Any]:
    """Generate for example rows (sftdata.Example dicts) and score against their references."""
    if not rows:
        return {"n": 0}
    raws = generate_raw(model, tok, [json.loads(r["messages"]) for r in rows], max_new_tokens)
    return aggregate([score_sample(raw, r["content"], r["target_text"], Product.model_validate_json(r["product"]))
                      for raw, r in zip(raws, rows)])
