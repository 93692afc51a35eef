"""Publishable copy, side by side on the same products in one run with one warm vLLM engine:

  today        today's generator (JSON-schema grammar, one sample per request) under the gate before
               the copy audit (shopgen.checks.gate.legacy_checks)
  new_gate     the same outputs under the new gate: the precision change alone (no generation)
  constraints  the new gate + per-request constraints: digits only as the product's own numbers, no
               braces/brackets/tags/'#' (a grammar), the banned-claim words blocked (bad_words)
  lexicon      + English strings built only from the product's own words and a closed list of
               function and neutral copy words (generation.lexicon)
  best_of_n    + content.<type>.candidates samples per request, each gated, the best accepted kept
               (with the lexicon when generation.lexicon is on)

Every arm runs the configured retry loop (generation.max_attempts) on the same products: a
deterministic sample of ../shared/data/magento-luma when present, and the bundled catalog.

Per arm and content type: accepted rate; the gate's audited precision (tests/data/copy_audit.jsonl,
labelled by reading, docs/COPY_AUDIT.md; today's arm uses the old gate's precision on the same
labels); estimated publishable rate = accepted x precision; tok/s (and its ratio to raw
`vllm.LLM.chat` without grammar on the same prompts, measured in the same run); generated tokens
per accepted text; and, over every accepted text, placeholders and numbers absent from the input.
Also each check's precision as a rejector on the audit set.

    .venv/bin/python bench/copy_quality.py [--n 24] [--content description,bullets,seo_title,ad_copy,faq]
        [--arms today,new_gate,constraints,lexicon,best_of_n] [--json]

With --json the last line is one JSON object: accepted.<arm>.<type>, precision.<type>,
publishable.<arm>.<type>, tokens_per_accepted.<arm>.<type> (for the Luma sample when present, else
the bundled catalog), and the same per dataset under datasets.<name>."""

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
AUDIT = ROOT / "tests" / "data" / "copy_audit.jsonl"
ARMS = ("today", "new_gate", "constraints", "lexicon", "best_of_n")
_PLACEHOLDER = re.compile(r"\[[^\]]{1,40}\]|<[a-z_ ]{1,30}>|\{[^}]{1,30}\}|lorem ipsum|\bTBD\b|</?product>", re.I)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def datasets(n: int):
    """(name, products, whole catalog) for the Luma sample (when present) and the bundled catalog."""
    from shopgen.catalog.load import load_catalog
    from shopgen.core.records import Product

    out = []
    luma = _load("luma")
    if luma.available():
        out.append(("magento-luma", [Product(**r) for r in luma.sample(n)], [Product(**r) for r in luma.products()]))
    bundled, _ = load_catalog(str(ROOT / "data" / "sample_catalog.jsonl"))
    en = [p for p in bundled if p.locale.startswith("en")]
    step = max(1, len(en) // n)
    out.append(("bundled", en[::step][:n], bundled))
    return out


def audit_precision(legacy: bool) -> tuple[dict, dict]:
    """The gate's precision per type on the labelled audit set, and each check's precision."""
    from shopgen.checks.audit import Verdict, audit_figures
    from shopgen.core.content import CONTENT_TYPES
    from shopgen.core.records import Product
    from shopgen.generate.engine import GateSpec, evaluate

    if not AUDIT.exists():
        return {}, {}
    verdicts = []
    for line in AUDIT.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out, checks = evaluate(r["output"], Product(**r["product"]), CONTENT_TYPES[r["type"]],
                               GateSpec(brands=r.get("brands", []), legacy=legacy))
        verdicts.append(Verdict(r["type"], r["publishable"], out is not None,
                                tuple(c.check for c in checks if not c.passed)))
    f = audit_figures(verdicts)
    return f.precision, f.check_precision


def _rejudge(products, outcomes, types, gate):
    """today's outputs (accepted, or the last raw of a failed type) under another gate."""
    import copy as _copy

    from shopgen.core.content import CONTENT_TYPES
    from shopgen.generate.engine import evaluate

    res = []
    for p, o in zip(products, outcomes):
        o2 = _copy.deepcopy(o)
        for t in types:
            raw = json.dumps(o.outputs[t].model_dump(), ensure_ascii=False) if t in o.outputs else o.raw.get(t)
            if raw is None:
                continue
            out, o2.checks[t] = evaluate(raw, p, CONTENT_TYPES[t], gate)
            if out is None:
                o2.outputs.pop(t, None)
        res.append(o2)
    return res


def _sink(f, name, brands):
    """Writes every sample of the final arm, unlabelled, in the copy audit's format (a fresh set to
    label by reading: docs/COPY_AUDIT.md)."""
    import hashlib

    seen: dict[str, int] = {}

    def write(p, ct, smp, accepted):
        key = f"{name}:{p.sku}:{ct.name}"
        seen[key] = seen.get(key, 0) + 1
        try:
            texts = ct.texts(ct.schema.model_validate_json(smp.text))
        except ValueError:
            texts = [smp.text]
        rid = hashlib.sha256(f"final:{key}:{seen[key]}".encode()).hexdigest()[:12]
        f.write(json.dumps({"id": rid, "catalog": name, "sku": p.sku, "type": ct.name,
                            "product": p.model_dump(mode="json"), "brands": brands, "output": smp.text,
                            "texts": texts}, ensure_ascii=False) + "\n")
        f.flush()
    return write


def figures(products, res, types, secs):
    from shopgen.checks.faithfulness import check_faithfulness
    from shopgen.core.content import CONTENT_TYPES

    acc = {t: round(sum(t in o.outputs for o in res) / len(res), 4) for t in types}
    tok = {t: sum(o.type_tokens.get(t, 0) for o in res) for t in types}
    per_acc = {t: (round(tok[t] / n, 1) if (n := sum(t in o.outputs for o in res)) else None) for t in types}
    bad_placeholder = bad_number = 0
    for p, o in zip(products, res):
        for t, out in o.outputs.items():
            texts = CONTENT_TYPES[t].texts(out)
            bad_placeholder += sum(bool(_PLACEHOLDER.search(x)) for x in texts)
            bad_number += sum(d.startswith("number ") for d in check_faithfulness(texts, p).details)
    tokens = sum(tok.values())
    return {"accepted": acc, "tokens": tok, "tokens_per_accepted": per_acc,
            "tok_s": round(tokens / secs, 1) if secs else None, "seconds": round(secs, 1),
            "accepted_with_placeholder": bad_placeholder, "accepted_with_unsupported_number": bad_number,
            "samples": {t: next((CONTENT_TYPES[t].texts(o.outputs[t])[:3] for o in res if t in o.outputs), None)
                        for t in types}}


def run_dataset(engine, s, name, products, catalog, types, arms, attempts, dump=None):
    from vllm import SamplingParams

    from shopgen.core.content import CONTENT_TYPES, candidates_for
    from shopgen.generate.engine import GateSpec, PromptSpec, fit_messages, generate_with_retries
    from shopgen.generate.fewshot import shop_examples
    from shopgen.generate.stage import few_shot

    brands = sorted({p.brand for p in catalog if p.brand})
    gen = s.generation.model_dump()
    new_gate = GateSpec(brands=brands, banned=s.qa.banned_claims, claims=s.qa.claims)
    old_gate = GateSpec(brands=brands, banned=s.qa.banned_claims, claims=s.qa.claims, legacy=True)
    ex_all = shop_examples(products, catalog, {p.sku: types for p in products}, new_gate, few_shot(s, types))
    examples = [ex_all.get(p.sku, {}) for p in products]

    # The raw library on the same prompts: no grammar, one sample, same token budget.
    msgs = [fit_messages(p, CONTENT_TYPES[t], engine.count, engine.budget, PromptSpec(), examples[i].get(t, []))[0]
            for i, p in enumerate(products) for t in types]
    t0 = time.perf_counter()
    outs = engine.llm.chat([m for m in msgs if m], SamplingParams(max_tokens=200, temperature=0.3), use_tqdm=False)
    raw_tok_s = sum(len(o.outputs[0].token_ids) for o in outs) / (time.perf_counter() - t0)

    lex = s.generation.lexicon
    setups = {"today": (old_gate, False, False, {}), "constraints": (new_gate, True, False, {}),
              "lexicon": (new_gate, True, True, {}),
              "best_of_n": (new_gate, True, lex, {t: candidates_for(CONTENT_TYPES[t], s.content.get(t)) for t in types})}
    out, results = {}, {}
    for arm in arms:
        if arm == "new_gate":
            if "today" not in results:
                continue
            res = _rejudge(products, results["today"], types, new_gate)
            out[arm] = figures(products, res, types, 0)
            out[arm]["tokens_per_accepted"] = {
                t: (round(out["today"]["tokens"][t] / n, 1) if (n := sum(t in o.outputs for o in res)) else None)
                for t in types}
            out[arm]["tokens"], out[arm]["tok_s"] = out["today"]["tokens"], out["today"]["tok_s"]
        else:
            gate, constrain, lexicon, cands = setups[arm]
            engine.gen = {**gen, "constrain": constrain, "block_banned_words": constrain, "lexicon": lexicon}
            engine.gate = gate
            spec = PromptSpec(prompt=s.generation.prompt, feedback=s.generation.feedback, candidates=cands)
            t0 = time.perf_counter()
            sink = _sink(dump, name, brands) if dump is not None and arm == arms[-1] else None
            res = generate_with_retries(products, types, engine._engine, attempts, gate, engine.count, engine.budget,
                                        spec, examples, sink=sink)
            out[arm] = figures(products, res, types, time.perf_counter() - t0)
        results[arm] = res
        out[arm]["ratio_vs_raw"] = round(out[arm]["tok_s"] / raw_tok_s, 3) if out[arm]["tok_s"] else None
        print(f"{name:>13} {arm:>11}: accepted " + " ".join(f"{k}={v:.0%}" for k, v in out[arm]["accepted"].items())
              + f"  tok/accepted {out[arm]['tokens_per_accepted']}  {out[arm]['tok_s']} tok/s", file=sys.stderr)
    return {"products": len(products), "raw_tok_s": round(raw_tok_s, 1), "arms": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24, help="products per dataset")
    ap.add_argument("--content", default="description,bullets,seo_title,ad_copy,faq")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--attempts", type=int, default=None, help="default: generation.max_attempts")
    ap.add_argument("--datasets", default="magento-luma,bundled")
    ap.add_argument("--dump", default=None, help="write every sample of the last arm here (JSONL, unlabelled)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from shopgen.adapters import models
    from shopgen.core.config import load_settings
    from shopgen.core.content import parse_content
    from shopgen.generate.engine import VLLMGenerator

    s = load_settings()
    types = list(parse_content(a.content))
    arms = [x for x in a.arms.split(",") if x]
    bad = [x for x in arms if x not in ARMS]
    if bad:
        ap.error(f"unknown arm(s) {bad}; choose from {', '.join(ARMS)}")
    model = models.resolve(models.generation_ref(s), s)
    attempts = a.attempts or s.generation.max_attempts
    t0 = time.perf_counter()
    engine = VLLMGenerator(model, s, types)
    start_s = time.perf_counter() - t0
    per = {}
    dump = open(a.dump, "w", encoding="utf-8") if a.dump else None
    for name, products, catalog in datasets(a.n):
        if name in a.datasets.split(","):
            per[name] = run_dataset(engine, s, name, products, catalog, types, arms, attempts, dump)
    engine.llm.llm_engine.engine_core.shutdown()
    # The audit is read after generating, so a long run sees the labels as they are when it ends.
    prec_new, checks_new = audit_precision(legacy=False)
    prec_old, _ = audit_precision(legacy=True)
    for d in per.values():
        for arm, f in d["arms"].items():
            prec = prec_old if arm == "today" else prec_new
            f["publishable"] = {t: (round(v * prec[t], 4) if prec.get(t) is not None else None)
                                for t, v in f["accepted"].items()}
    main_ds = next(iter(per))
    top = per[main_ds]["arms"]
    out = {
        "dataset": main_ds, "content": types, "model": model.version, "attempts": attempts,
        "engine_start_s": round(start_s, 1),
        **{f"accepted.{arm}.{t}": v for arm, f in top.items() for t, v in f["accepted"].items()},
        **{f"precision.{t}": v for t, v in prec_new.items()},
        **{f"precision_legacy.{t}": v for t, v in prec_old.items()},
        **{f"publishable.{arm}.{t}": v for arm, f in top.items() for t, v in f["publishable"].items()},
        **{f"tokens_per_accepted.{arm}.{t}": v for arm, f in top.items() for t, v in f["tokens_per_accepted"].items()},
        **{f"tok_s.{arm}": f["tok_s"] for arm, f in top.items()},
        **{f"ratio_vs_raw.{arm}": f["ratio_vs_raw"] for arm, f in top.items()},
        "raw_tok_s": per[main_ds]["raw_tok_s"],
        "check_precision": checks_new,
        "datasets": per,
    }
    print(json.dumps(out, ensure_ascii=False) if a.json else json.dumps(out, indent=2, ensure_ascii=False), flush=True)
    # Anything vLLM still says on the way out goes to stderr, never after the JSON line.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


if __name__ == "__main__":
    main()
