"""Accepted-copy rate of the generator, old prompt vs new, side by side on the same products in one
run with one warm vLLM engine, every arm judged by today's full gate:

  old        the copy-v2 prompt with its limits (description 80-200 words), global sampling, no
             feedback, no examples: the generator before issue 12
  grounded   the grounded prompt (facts list, style guide, per-type sampling and limits)
  +feedback  grounded plus regeneration with feedback (what failed is named in the retry)
  +examples  grounded plus one of the shop's own texts of the same type and category, every type
  all        grounded plus examples plus feedback
  new        the default config: grounded, examples where they were measured to help (bullets),
             no feedback (settings: generation.*, content.<type>.*)

Products: a deterministic sample of ../shared/data/magento-luma when present, else the bundled
catalog (all locales). Also measured: raw `vllm.LLM.chat` tok/s on the new arm's first prompts
without grammar (the raw library) and each arm's tok/s against it; searchable coverage with
per-type publishing vs the old row-level gate; and, over every accepted text, placeholders and
numbers absent from the input (both must be 0).

    .venv/bin/python bench/copy_quality.py [--n 24] [--content description,bullets,seo_title] [--arms old,new] [--json]

With --json the last line is one JSON object with keys searchable, accepted.<type> (new arm),
failures.<check> (new arm, share of attempts), tok_s, and per arm the same under arms.<arm>."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _luma():
    spec = importlib.util.spec_from_file_location("luma", ROOT / "bench" / "luma.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

# The limits before issue 12 (schema-enforced then), for the old arm.
OLD_LIMITS = {"description": {"min_words": 80, "max_words": 200}, "bullets": {"min_items": 3, "max_items": 6, "max_chars": 200},
              "seo_title": {"max_chars": 60}, "ad_copy": {"min_items": 3, "max_items": 15, "max_chars": 30},
              "faq": {"min_items": 2, "max_items": 4}}
OLD_SAMPLING = {"temperature": 0.3, "repetition_penalty": 1.05, "max_tokens": 400}
ARMS = {
    "old": dict(prompt="v2", few_shot=0, feedback=False),
    "grounded": dict(prompt="grounded", few_shot=0, feedback=False),
    "+feedback": dict(prompt="grounded", few_shot=0, feedback=True),
    "+examples": dict(prompt="grounded", few_shot=1, feedback=False),
    "all": dict(prompt="grounded", few_shot=1, feedback=True),
    "new": dict(prompt="grounded", few_shot=None, feedback=None),  # None: the config's default
}
_PLACEHOLDER = re.compile(r"\[[^\]]{1,40}\]|<[a-z_ ]{1,30}>|\{[^}]{1,30}\}|lorem ipsum|\bTBD\b|</?product>", re.I)


def load_products(n: int):
    from shopgen.core.records import Product

    luma = _luma()
    if luma.available():
        return "magento-luma", [Product(**r) for r in luma.sample(n)], [Product(**r) for r in luma.products()]
    from shopgen.catalog.load import load_catalog

    products, _ = load_catalog(str(ROOT / "data" / "sample_catalog.jsonl"))
    step = max(1, len(products) // n)
    return "sample_catalog", products[::step][:n], products


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24, help="products")
    ap.add_argument("--content", default="description,bullets,seo_title")
    ap.add_argument("--arms", default="old,grounded,+feedback,+examples,new")
    ap.add_argument("--attempts", type=int, default=3)
    ap.add_argument("--best", default="new", help="the arm whose figures are the top-level keys (the default config)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from shopgen.adapters import models
    from shopgen.checks import check_faithfulness
    from shopgen.core.config import load_settings
    from shopgen.core.content import CONTENT_TYPES, few_shot_for, parse_content
    from shopgen.generate.engine import GateSpec, PromptSpec, VLLMGenerator, fit_messages, generate_with_retries
    from shopgen.generate.fewshot import shop_examples

    s = load_settings()
    types = list(parse_content(a.content))
    source, products, catalog = load_products(a.n)
    brands = sorted({p.brand for p in catalog if p.brand})
    model = models.resolve(s.models.generator, s)
    s = s.model_copy(update={"generation": s.generation.model_copy(update={"max_attempts": a.attempts})})
    gen = s.generation.model_dump()
    t = time.perf_counter()
    engine = VLLMGenerator(model, s, types)
    start_s = time.perf_counter() - t

    # The raw library on the new arm's first prompts, no grammar, same token budget per request.
    from vllm import SamplingParams

    new_gate = GateSpec(brands=brands, banned=s.qa.banned_claims, claims=s.qa.claims)
    ex_all = shop_examples(products, catalog, {p.sku: types for p in products}, new_gate, 1)
    raw_msgs = [fit_messages(p, CONTENT_TYPES[t_], engine.count, engine.budget, PromptSpec(),
                             ex_all.get(p.sku, {}).get(t_, []))[0] for p in products for t_ in types]
    t = time.perf_counter()
    outs = engine.llm.chat(raw_msgs, SamplingParams(max_tokens=200, temperature=0.3), use_tqdm=False)
    raw_tok = sum(len(o.outputs[0].token_ids) for o in outs)
    raw_tok_s = raw_tok / (time.perf_counter() - t)

    arms: dict[str, dict] = {}
    for arm in a.arms.split(","):
        cfg = ARMS[arm]
        old = cfg["prompt"] == "v2"
        engine.gen = {**gen, **(OLD_SAMPLING if old else {})}
        engine.gate = GateSpec(brands=brands, banned=s.qa.banned_claims, claims=s.qa.claims,
                               content=OLD_LIMITS if old else {})
        feedback = s.generation.feedback if cfg["feedback"] is None else cfg["feedback"]
        engine.spec = PromptSpec(prompt=cfg["prompt"], feedback=feedback)
        n = cfg["few_shot"]
        use = {ty for ty in types if (few_shot_for(CONTENT_TYPES[ty], s.generation.few_shot, s.content.get(ty))
                                     if n is None else n)}
        examples = [{ty: x for ty, x in ex_all.get(p.sku, {}).items() if ty in use} for p in products]
        t = time.perf_counter()
        res = generate_with_retries(products, types, engine._engine, a.attempts, engine.gate, engine.count,
                                    engine.budget, engine.spec, examples)
        secs = time.perf_counter() - t
        tokens = sum(o.tokens for o in res)
        acc = {ty: round(sum(ty in o.outputs for o in res) / len(res), 4) for ty in types}
        fails: dict[str, int] = {}
        for o in res:
            for ty, rs in o.checks.items():
                if ty not in o.outputs:
                    for r in rs:
                        if not r.passed:
                            fails[r.check] = fails.get(r.check, 0) + 1
        bad_placeholder = bad_number = 0
        for p, o in zip(products, res):
            for ty, out in o.outputs.items():
                texts = CONTENT_TYPES[ty].texts(out)
                bad_placeholder += sum(bool(_PLACEHOLDER.search(x)) for x in texts)
                bad_number += sum(d.startswith("number ") for d in check_faithfulness(texts, p).details)
        arms[arm] = {
            "accepted": acc,
            "failures": {k: round(v / (len(res) * len(types)), 4) for k, v in sorted(fails.items())},
            "searchable_row_gate": round(sum(all(ty in o.outputs for ty in types) for o in res) / len(res), 4),
            "tok_s": round(tokens / secs, 1), "ratio_vs_raw": round(tokens / secs / raw_tok_s, 3),
            "seconds": round(secs, 1), "tokens": tokens, "attempts_mean": round(sum(o.attempts for o in res) / len(res), 2),
            "accepted_with_placeholder": bad_placeholder, "accepted_with_unsupported_number": bad_number,
            "samples": {ty: next((CONTENT_TYPES[ty].texts(o.outputs[ty])[:3] for o in res if ty in o.outputs), None)
                        for ty in types},
        }
        print(f"{arm:>10}: accepted " + " ".join(f"{k}={v:.0%}" for k, v in acc.items())
              + f"  row-gate searchable {arms[arm]['searchable_row_gate']:.0%}  {arms[arm]['tok_s']} tok/s "
              f"({arms[arm]['ratio_vs_raw']}x raw)  failures {arms[arm]['failures']}", file=sys.stderr)

    # vLLM logs its shutdown when the engine goes: shut it down before the JSON line, which must be last.
    engine.llm.llm_engine.engine_core.shutdown()
    best = arms.get(a.best) or arms[list(arms)[-1]]
    out = {
        "source": source, "products": len(products), "content": types, "model": model.version,
        # Per-type publishing: every valid product is indexed with whatever passed.
        "searchable": 1.0,
        **{f"accepted.{k}": v for k, v in best["accepted"].items()},
        **{f"failures.{k}": v for k, v in best["failures"].items()},
        "tok_s": best["tok_s"], "raw_tok_s": round(raw_tok_s, 1), "ratio_vs_raw": best["ratio_vs_raw"],
        "engine_start_s": round(start_s, 1),
        "arms": arms,
    }
    if "old" in arms and "new" in arms:
        out["gain.description"] = (round(arms["new"]["accepted"].get("description", 0) - arms["old"]["accepted"].get("description", 0), 4)
                                   if "description" in types else None)
    print(json.dumps(out, ensure_ascii=False) if a.json else json.dumps(out, indent=2, ensure_ascii=False), flush=True)
    # Anything vLLM still says on the way out goes to stderr, never after the JSON line.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


if __name__ == "__main__":
    main()
