"""Serving-path evaluation of a fine-tuned generator: the candidate and the base in vLLM with the
serving grammar, constraints, best-of-n, retries and full gate, on the same test-split products.
What the promotion gate reads is what a nightly run would publish, not greedy HF output.

A pure core (`arm_figures`: per-type accepted, estimated publishable, unsupported-number rate,
tokens per accepted text, prompt tokens, schema pass rate over every served sample, each check's
failure rate, ROUGE-L against the shop's own text where it has one) and one runner (`serve_eval`)
that holds one engine: for a LoRA candidate the base is the same engine without the adapter."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shopgen.checks.audit import publishable_precision
from shopgen.checks.faithfulness import check_faithfulness
from shopgen.core.content import CONTENT_TYPES, texts_of
from shopgen.core.records import Product
from shopgen.finetune.data import target_of
from shopgen.finetune.evaluate import rouge_l


@dataclass
class Served:
    """One sample the engine served: which arm, product and type, its raw text, and its verdicts."""

    arm: str
    sku: str
    content: str
    text: str
    tokens: int
    schema_ok: bool
    accepted: bool

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ArmRun:
    """What one arm produced on the test products (the input of arm_figures)."""

    products: list[Product]
    outcomes: list[Any]  # shopgen.generate.engine.Outcome, one per product
    types: list[str]
    samples: list[Served] = field(default_factory=list)
    prompt_tokens: dict[str, list[int]] = field(default_factory=dict)  # type -> tokens per request
    seconds: float = 0.0  # wall time of the arm's generation (every type, batched together)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def arm_figures(run: ArmRun, references: dict[tuple[str, str], str]) -> dict[str, Any]:
    """Per content type and overall (pure). references: (sku, type) -> the shop's own text."""
    by_type: dict[str, Any] = {}
    for t in run.types:
        ct = CONTENT_TYPES[t]
        n = len(run.products)
        acc = [(p, o.outputs[t]) for p, o in zip(run.products, run.outcomes) if t in o.outputs]
        tokens = sum(o.type_tokens.get(t, 0) for o in run.outcomes)
        bad_num = sum(any(d.startswith("number ") for d in check_faithfulness(ct.texts(out), p).details)
                      for p, out in acc)
        fails: dict[str, int] = {}
        for o in run.outcomes:
            for r in o.checks.get(t, []):
                if not r.passed:
                    fails[r.check] = fails.get(r.check, 0) + 1
        samples = [s for s in run.samples if s.content == t]
        rouge = [rouge_l(" ".join(ct.texts(o.outputs[t])) if t in o.outputs else o.raw.get(t, ""), ref)
                 for p, o in zip(run.products, run.outcomes) if (ref := references.get((p.sku, t)))]
        prec, basis = publishable_precision(t)
        rate = len(acc) / n if n else 0.0
        pt = run.prompt_tokens.get(t, [])
        by_type[t] = {
            "n": n, "accepted": _round(rate), "publishable": _round(rate * prec) if prec is not None else None,
            "precision": prec, "precision_basis": basis,
            "unsupported_number_rate": _round(bad_num / len(acc)) if acc else 0.0,
            "accepted_with_unsupported_number": bad_num,
            "tokens": tokens, "tokens_per_accepted": round(tokens / len(acc), 1) if acc else None,
            "prompt_tokens": round(sum(pt) / len(pt), 1) if pt else None,
            "samples": len(samples),
            "schema_pass_rate": _round(sum(s.schema_ok for s in samples) / len(samples)) if samples else None,
            "check_failures": {c: _round(k / n) for c, k in sorted(fails.items())},
            "rouge_l": _round(sum(rouge) / len(rouge)) if rouge else None,
        }
    req = sum(f["n"] for f in by_type.values())
    acc_n = sum(round(f["accepted"] * f["n"]) for f in by_type.values())
    samples = run.samples
    rouge_all = [f["rouge_l"] for f in by_type.values() if f["rouge_l"] is not None]
    return {
        "n": req, "accepted_rate": _round(acc_n / req) if req else None,
        "unsupported_rate": _round(sum(f["accepted_with_unsupported_number"] for f in by_type.values()) / acc_n)
        if acc_n else 0.0,
        "schema_pass_rate": _round(sum(s.schema_ok for s in samples) / len(samples)) if samples else None,
        "tokens_per_accepted": round(sum(f["tokens"] for f in by_type.values()) / acc_n, 1) if acc_n else None,
        "rouge_l": _round(sum(rouge_all) / len(rouge_all)) if rouge_all else None,
        "seconds": round(run.seconds, 1),
        "tok_s": round(sum(f["tokens"] for f in by_type.values()) / run.seconds, 1) if run.seconds else None,
        "by_type": by_type,
    }


def references_of(products: Sequence[Product], types: Sequence[str]) -> dict[tuple[str, str], str]:
    out = {}
    for p in products:
        for t in types:
            tgt = target_of(p, t)
            if tgt:
                out[(p.sku, t)] = " ".join(texts_of(tgt))
    return out


@dataclass
class Arm:
    """One model to evaluate: its name in the figures, the ModelRef, and its serving prompt."""

    name: str
    model: Any  # shopgen.adapters.models.ModelRef
    prompt: str


def open_engine(arms: Sequence[Arm], types: Sequence[str], settings: Any, gate: Any) -> Any:
    """One vLLM engine (the serving VLLMGenerator) for arms that share a base model; LoRA-enabled
    when one of them is an adapter, so the base is the same engine without it."""
    from shopgen.generate.engine import VLLMGenerator

    if any(a.model.base != arms[0].model.base for a in arms):
        raise ValueError("arms in one engine must share one base model (full fine-tunes: one engine each)")
    lora = next((a for a in arms if a.model.adapter), None)
    return VLLMGenerator(lora.model if lora else arms[0].model, settings, list(types), gate=gate)


def serve_arm(gen: Any, arm: Arm, products: Sequence[Product], catalog: Sequence[Product], types: Sequence[str],
              settings: Any, gate: Any) -> ArmRun:
    """One arm through the serving path (prompt, few-shot examples where its prompt uses them,
    grammar and constraints, best-of-n, retries, gate), recording every sample served."""
    from shopgen.generate.engine import generate_with_retries
    from shopgen.generate.fewshot import shop_examples
    from shopgen.generate.stage import few_shot, prompt_spec

    types = list(types)
    s = settings.model_copy(update={"generation": settings.generation.model_copy(update={"prompt": arm.prompt})})
    ex_n = few_shot(s, types)
    ex = shop_examples(products, catalog, {p.sku: types for p in products}, gate, ex_n) if any(ex_n.values()) else {}
    gen.lora = lora_request(gen, arm)
    spec = prompt_spec(s)  # the serving spec (style, feedback, best-of-n) with the arm's prompt
    run = ArmRun(list(products), [], types)

    def sink(p: Product, ct: Any, smp: Any, accepted: bool) -> None:
        try:
            ct.schema.model_validate_json(smp.text)
            ok = True
        except ValueError:
            ok = False
        run.samples.append(Served(arm.name, p.sku, ct.name, smp.text, smp.tokens, ok, accepted))

    def engine(reqs: Sequence[Any], attempt: int) -> list:
        if attempt == 0:
            for r in reqs:
                run.prompt_tokens.setdefault(r.ct.name, []).append(gen.count(r.messages))
        return gen._engine(reqs, attempt)

    t0 = time.perf_counter()
    run.outcomes = generate_with_retries(list(products), types, engine, settings.generation.max_attempts, gate,
                                         gen.count, gen.budget, spec, [ex.get(p.sku, {}) for p in products], sink=sink)
    run.seconds = time.perf_counter() - t0
    return run


def accepted_of(run: ArmRun) -> dict[str, dict[str, dict[str, Any]]]:
    """sku -> type -> the fields of each text the gate accepted (the accepted source of a round)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for p, o in zip(run.products, run.outcomes):
        for t, res in o.outputs.items():
            out.setdefault(p.sku, {})[t] = res.model_dump()
    return out


def serve_eval(arms: Sequence[Arm], products: Sequence[Product], catalog: Sequence[Product], types: Sequence[str],
               settings: Any, samples_out: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every arm through the serving path on the same products, in one engine. samples_out
    receives every served sample."""
    from shopgen.generate.stage import gate_spec

    gate = gate_spec(settings, sorted({p.brand for p in catalog if p.brand}))
    gen = open_engine(arms, types, settings, gate)
    refs = references_of(products, types)
    out: dict[str, Any] = {}
    try:
        for arm in arms:
            run = serve_arm(gen, arm, products, catalog, types, settings, gate)
            out[arm.name] = arm_figures(run, refs)
            if samples_out is not None:
                samples_out.extend(s.as_row() for s in run.samples)
    finally:
        gen.llm.llm_engine.engine_core.shutdown()
    return out


def lora_request(gen: Any, arm: Arm) -> Any:
    """The engine's adapter for a LoRA arm; None (the plain base) for any other."""
    if not arm.model.adapter:
        return None
    from vllm.lora.request import LoRARequest

    path = gen.local.adapter_path
    return LoRARequest(os.path.basename(path.rstrip("/")) or "adapter", 1, path)


def candidate_ref(base: Any, checkpoint_dir: str, method: str) -> Any:
    """A checkpoint on this node as a ModelRef: the base plus the adapter, or the full model."""
    from shopgen.adapters.models import ModelRef

    if method == "lora":
        return ModelRef("candidate", base.base, os.path.join(checkpoint_dir, "adapter"), f"{base.version}+candidate")
    return ModelRef("candidate", os.path.join(checkpoint_dir, "model"), None, "candidate")


def eval_checkpoint(settings: Any, base: Any, checkpoint: Any, method: str, prompt: str,
                    products: Sequence[Product], catalog: Sequence[Product], types: Sequence[str]) -> dict[str, Any]:
    """A Ray task: the base (with the serving prompt) and the checkpoint (with its own prompt)
    through the serving path on the same products. Returns {"base", "finetuned", "samples"}."""
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        checkpoint.to_directory(d)
        cand = candidate_ref(base, d, method)
        arms = [Arm("base", base, settings.generation.prompt), Arm("finetuned", cand, prompt)]
        if method == "lora":
            figs = serve_eval(arms, products, catalog, types, settings, samples)
        else:  # a full fine-tune is another model: one engine each, one after the other
            figs = {**serve_eval(arms[:1], products, catalog, types, settings, samples),
                    **serve_eval(arms[1:], products, catalog, types, settings, samples)}
    return {**figs, "samples": samples}
