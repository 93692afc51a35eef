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

and the fine-tuning loop (arms base, round1, round2; shopgen/finetune/serving.py), each served
through the serving path (vLLM, grammar, constraints, best-of-n, gate) on the same held-out
test-split products of the dataset:

  base         the base generator as served today (the arms above, with best-of-n)
  round1       LoRA fine-tuned from the base on the train split: the shop's own copy that passes the
               gate, plus the copy the base's serving path got accepted on train products
               (rejection-sampling fine-tuning), with the short `facts` prompt
  round2       the same from the base again, adding the copy round 1 got accepted on train products

Each round is `shopgen finetune`'s recipe (run_finetune) with the accepted copy given directly
(the CLI reads it from a nightly state: --from-accepted); test products never reach training.

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
    .venv/bin/python bench/copy_quality.py --arms base,round1,round2 [--n 8] [--train 24]
        [--steps 20] [--test-fraction 0.3] [--datasets magento-luma] [--json]

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
ROUND_ARMS = ("base", "round1", "round2")
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


def round_split(all_products, s, n_test: int, n_train: int):
    """The held-out test products (as run_finetune's evaluation picks them) and the first n_train
    train/val products, from one catalog, deterministic."""
    from shopgen.finetune import data as sftdata
    from shopgen.finetune.recipe import held_out_products

    ft = s.finetune
    held = held_out_products(all_products, s)[:n_test]
    rest = [p for p in sorted(all_products, key=lambda p: p.sku)
            if sftdata.product_split(p, ft.val_fraction, ft.test_fraction, ft.split_seed,
                                     s.related.variant_keys) != "test"][:n_train]
    return held, rest


def _harvest(s, arm, products, catalog, types, raw=False):
    """The copy arm's serving path gets accepted on the train products (the next round's source).
    raw: also time the raw library on the same engine (vllm.LLM.chat, the prompts without grammar,
    one sample each), for the tok/s ratios."""
    from vllm import SamplingParams

    from shopgen.core.content import CONTENT_TYPES
    from shopgen.finetune.serving import accepted_of, open_engine, serve_arm
    from shopgen.generate.prompts import build_messages
    from shopgen.generate.stage import gate_spec

    gate = gate_spec(s, sorted({p.brand for p in catalog if p.brand}))
    gen = open_engine([arm], types, s, gate)
    try:
        raw_tok_s = None
        if raw:
            msgs = [build_messages(p, CONTENT_TYPES[t], prompt=arm.prompt) for p in products[:4] for t in types]
            t0 = time.perf_counter()
            outs = gen.llm.chat(msgs, SamplingParams(max_tokens=200, temperature=0.3), use_tqdm=False)
            raw_tok_s = round(sum(len(o.outputs[0].token_ids) for o in outs) / (time.perf_counter() - t0), 1)
        run = serve_arm(gen, arm, products, catalog, types, s, gate)
    finally:
        gen.llm.llm_engine.engine_core.shutdown()
    acc = accepted_of(run)
    return acc, {"products": len(products), "accepted_texts": sum(map(len, acc.values())),
                 "tokens": sum(o.tokens for o in run.outcomes), "seconds": round(run.seconds, 1),
                 "raw_tok_s": raw_tok_s}


def _merge(a, b):
    """Accepted copy of two rounds: sku -> type -> [fields, ...] (duplicates removed at pairing)."""
    out = {}
    for src in (a, b):
        for sku, types in src.items():
            for t, f in types.items():
                out.setdefault(sku, {}).setdefault(t, []).extend(f if isinstance(f, list) else [f])
    return out


def _round_figures(m, who, raw_tok_s):
    f = m[who]
    return {"accepted": {t: x["accepted"] for t, x in f["by_type"].items()},
            "publishable": {t: x["publishable"] for t, x in f["by_type"].items()},
            "tokens_per_accepted": {t: x["tokens_per_accepted"] for t, x in f["by_type"].items()},
            "prompt_tokens": {t: x["prompt_tokens"] for t, x in f["by_type"].items()},
            "unsupported_number_rate": {t: x["unsupported_number_rate"] for t, x in f["by_type"].items()},
            "accepted_with_unsupported_number": sum(x["accepted_with_unsupported_number"]
                                                    for x in f["by_type"].values()),
            "schema_pass_rate": f["schema_pass_rate"], "check_failures": {t: x["check_failures"]
                                                                          for t, x in f["by_type"].items()},
            "tok_s": f.get("tok_s"),
            "ratio_vs_raw": round(f["tok_s"] / raw_tok_s, 3) if f.get("tok_s") and raw_tok_s else None}


def run_rounds(s, name, catalog, types, n_test, n_train, steps, work):
    """base, round1, round2 on the same held-out products of one dataset (see the docstring)."""
    from shopgen.adapters import models
    from shopgen.finetune.recipe import run_finetune
    from shopgen.finetune.serving import Arm

    held, train = round_split(catalog, s, n_test, n_train)
    path = work / f"{name}.jsonl"
    path.write_text("".join(p.model_dump_json() + "\n" for p in held + train), encoding="utf-8")
    ft = s.finetune.model_copy(update={"test_samples": len(held), "max_steps": steps, "content": list(types),
                                       "sources": ["catalog", "accepted"], "eval": "serving",
                                       "storage_path": str(work / "ft"), "auto_promote": False})
    s = s.model_copy(update={"finetune": ft, "models": s.models.model_copy(update={"registry": str(work / "reg")})})
    base = models.resolve("base", s)
    print(f"{name}: {len(held)} test products, {len(train)} train/val products; harvesting with the base",
          file=sys.stderr)
    acc0, h0 = _harvest(s, Arm("base", base, s.generation.prompt), train, catalog, types, raw=True)
    t0 = time.perf_counter()
    r1 = run_finetune(str(path), s, accepted=acc0, name=f"{name}-round1", console=None)
    r1_s = time.perf_counter() - t0
    v1 = models.resolve(r1["version"], s)
    acc1, h1 = _harvest(s, Arm("round1", v1, v1.prompt or "facts"), train, catalog, types)
    r2 = run_finetune(str(path), s, accepted=_merge(acc0, acc1), name=f"{name}-round2", console=None)

    raw = h0["raw_tok_s"]
    arms = {"base": _round_figures(r1["metrics"], "base", raw),
            "round1": _round_figures(r1["metrics"], "finetuned", raw),
            "round2": _round_figures(r2["metrics"], "finetuned", raw),
            # The base served again in round 2's evaluation: how far the same arm moves between runs.
            "base_again": _round_figures(r2["metrics"], "base", raw)}
    return {"products": len(held), "train_products": len(train), "test_skus": [p.sku for p in held],
            "harvest": {"base": h0, "round1": h1},
            "rounds": {k: {"version": r["version"], "data": r["data"]["by_source"], "pairs": r["data"]["kept"],
                           "by_content": r["data"]["by_content"], "gate": r["gate"], "training": r["training"],
                           "seconds": r.get("seconds")} for k, r in (("round1", r1), ("round2", r2))},
            "round1_seconds": round(r1_s, 1), "raw_tok_s": raw, "arms": arms}


def rounds_main(a, s, types) -> None:
    import tempfile

    if a.attempts:
        s = s.model_copy(update={"generation": s.generation.model_copy(update={"max_attempts": a.attempts})})
    per = {}
    with tempfile.TemporaryDirectory(prefix="copy-rounds-") as work:
        for name, _, catalog in datasets(1):
            if name in a.datasets.split(","):
                st = s.model_copy(update={"finetune": s.finetune.model_copy(update={"test_fraction": a.test_fraction})})
                per[name] = run_rounds(st, name, catalog, types, a.n, a.train, a.steps, Path(work))
    main_ds = next(iter(per))
    top = per[main_ds]["arms"]
    keys = ("accepted", "publishable", "tokens_per_accepted", "prompt_tokens", "unsupported_number_rate")
    out = {"dataset": main_ds, "content": types, "steps": a.steps, "attempts": s.generation.max_attempts,
           **{f"{k}.{arm}.{t}": v for k in keys for arm, f in top.items() for t, v in f[k].items()},
           **{f"tok_s.{arm}": f["tok_s"] for arm, f in top.items()},
           **{f"ratio_vs_raw.{arm}": f["ratio_vs_raw"] for arm, f in top.items()},
           "raw_tok_s": per[main_ds]["raw_tok_s"], "datasets": per}
    print(json.dumps(out, ensure_ascii=False) if a.json else json.dumps(out, indent=2, ensure_ascii=False), flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24, help="products per dataset")
    ap.add_argument("--content", default="description,bullets,seo_title,ad_copy,faq")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--attempts", type=int, default=None, help="default: generation.max_attempts")
    ap.add_argument("--datasets", default="magento-luma,bundled")
    ap.add_argument("--dump", default=None, help="write every sample of the last arm here (JSONL, unlabelled)")
    ap.add_argument("--train", type=int, default=24, help="round arms: train/val products per dataset")
    ap.add_argument("--steps", type=int, default=20, help="round arms: optimizer steps per round")
    ap.add_argument("--test-fraction", type=float, default=0.3, help="round arms: finetune.test_fraction")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from shopgen.adapters import models
    from shopgen.core.config import load_settings
    from shopgen.core.content import parse_content
    from shopgen.generate.engine import VLLMGenerator

    s = load_settings()
    types = list(parse_content(a.content))
    arms = [x for x in a.arms.split(",") if x]
    bad = [x for x in arms if x not in ARMS + ROUND_ARMS]
    if bad:
        ap.error(f"unknown arm(s) {bad}; choose from {', '.join(ARMS + ROUND_ARMS)}")
    if set(arms) & set(ROUND_ARMS):
        if set(arms) - set(ROUND_ARMS):
            ap.error(f"the fine-tuning arms ({', '.join(ROUND_ARMS)}) run on their own: give them without "
                     f"{', '.join(ARMS)}")
        rounds_main(a, s, types)
        return
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
