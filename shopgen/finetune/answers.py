"""`shopgen finetune --task answers --data LOG --catalog CATALOG`: fine-tune the answer drafter on the
shop's support log, with the copy fine-tuning's training core (Ray Train, LoRA or full) and registry.

Each resolved log row whose question the resolver can answer from its product's facts becomes one
example: the serving prompt (the cited facts, the computed check, the question) with the agent's
answer as the target. Questions the facts cannot answer are refused by the resolver before any
drafting, so they train no draft; they are scored (the refusal rate) like the rest. The base and the
fine-tuned model are judged through the serving path (vLLM, the answer grammar, the gate) on a
held-out split of the log, against labels read from the agent's answers: the figures it stated, its
yes/no, or its refusal. The version (kind `answerer`) passes its gate only when the correct rate
rises and the wrong rate does not."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from shopgen.adapters.registry import Registry, answerer_gate, new_version_id
from shopgen.answers.draft import messages
from shopgen.answers.engine import Answerer, Context, context, input_row
from shopgen.answers.evaluate import Expected, grade, summary
from shopgen.answers.facts import product_facts
from shopgen.answers.load import read_log, read_policies
from shopgen.answers.resolve import resolve, vocabulary
from shopgen.catalog.load import load_catalog
from shopgen.core.config import Settings
from shopgen.core.questions import LogRow
from shopgen.core.records import Product
from shopgen.finetune import data as sftdata
from shopgen.finetune.recipe import fit, worker_config
from shopgen.finetune.serving import candidate_ref
from shopgen.train import driver

REFUSAL = re.compile(r"\b(?:does not say|doesn't say|do not know|don't know|can't help|cannot help|not able to help|"
                     r"no information)\b", re.I)
_FIGURE = re.compile(r"-?\d+(?:[.,]\d+)?")


def expected_of(row: LogRow, p: Product | None) -> Expected:
    """A label read from the agent's answer: a refusal is unanswerable; otherwise its leading yes/no
    and the product's own figures it states are what a right answer contains."""
    if REFUSAL.search(row.answer) or p is None:
        return Expected(answerable=False, kind="log")
    values = []
    if m := re.match(r"^\W*(yes|no)\b", row.answer, re.I):
        values.append(m.group(1).lower())
    facts = " ".join(f.value for f in product_facts(p))
    values += [n for n in dict.fromkeys(_FIGURE.findall(row.answer)) if re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", facts)]
    return Expected(answerable=True, values=values, kind="log")


def log_examples(rows: Sequence[LogRow], products: dict[str, Product], ctx: Context, ft: Any
                 ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], Expected]]]:
    """(training rows in the fine-tuning core's format, the held-out test rows with their labels).
    Only resolved rows with an answer count; the split is by question and product, so a rephrasing
    of a test question may still train (as in a real log)."""
    train: list[dict[str, Any]] = []
    test: list[tuple[dict[str, Any], Expected]] = []
    for i, r in enumerate(rows):
        if r.resolved is False or not r.answer.strip():
            continue
        p = products.get(r.sku) if r.sku else None
        split = sftdata.split_of(f"{r.sku}|{r.question.lower()}", ft.val_fraction, ft.test_fraction, ft.seed)
        if split == "test":
            test.append((input_row(f"log-{i}", r.question, r.sku, None, p), expected_of(r, p)))
            continue
        if p is None:
            continue
        res = resolve(r.question, p, product_facts(p, ctx.cues), ctx.policies, ctx.vocab)
        if res.status != "draft" or REFUSAL.search(r.answer):
            continue
        target = json.dumps({"answer": r.answer}, ensure_ascii=False, separators=(",", ":"))
        train.append({"sku": p.sku, "content": "answer", "split": split, "locale": p.locale,
                      "messages": json.dumps(messages(r.question, res), ensure_ascii=False), "target": target,
                      "target_text": r.answer, "product": p.model_dump_json(), "flags": [], "source": "support_log"})
    return train, test


def eval_answerers(settings: Settings, base: Any, checkpoint: Any, method: str, ctx: Context,
                   test: Sequence[tuple[dict[str, Any], Expected]]) -> dict[str, Any]:
    """A Ray task: the base and the checkpoint through the serving path on the same held-out rows."""
    rows = [r for r, _ in test]
    out: dict[str, Any] = {}
    ctx = replace(ctx, prefer_llm=True)  # the drafter is judged where its drafts come first
    with tempfile.TemporaryDirectory() as d:
        checkpoint.to_directory(d)
        cand = candidate_ref(base, d, method)
        arms = [("base", base), ("finetuned", cand)]
        shared = method == "lora"
        engine = Answerer(cand, settings, ctx) if shared else None
        for name, ref in arms:
            a = engine or Answerer(ref, settings, ctx)
            lora = a.lora
            if shared and name == "base":
                a.lora = None
            t0 = time.perf_counter()
            answers = a.answer(rows)
            secs = time.perf_counter() - t0
            # The drafter alone: without the extractive fallback, what the model itself gets published.
            a.ctx = replace(ctx, extractive=False)
            alone = summary(zip(a.answer(rows), (e for _, e in test)))
            a.ctx, a.lora = ctx, lora
            by_id = {x.id: x for x in answers}
            s = summary((by_id[r["id"]], e) for r, e in test)
            out[name] = {k: s[k] for k in ("n", "correct_rate", "wrong_rate", "refusal_rate", "incomplete_rate")} | {
                "drafted_by": s["by_drafter"], "seconds": round(secs, 2),
                "llm_only": {k: alone[k] for k in ("correct_rate", "wrong_rate", "incomplete_rate")},
                "grades": {r["id"]: grade(by_id[r["id"]], e) for r, e in test}}
            if not shared:
                a.llm.llm_engine.engine_core.shutdown()
        if engine is not None:
            engine.llm.llm_engine.engine_core.shutdown()
    return out


def run_answer_finetune(log: str, catalog: str, settings: Settings, base: str = "base", name: str | None = None,
                        promote: bool | None = None, console: Any = None) -> dict[str, Any]:
    """Train on the support log, judge base and fine-tuned through the serving path, register kind answerer."""
    import ray

    say = console.print if console else print
    if settings.answers.candidates < 1:
        raise ValueError("answers.candidates is 0: the drafter would never be served; set it to 1 or more")
    ft = settings.finetune.model_copy(update={"select_metric": "val_loss", "eval_samples": 0})
    settings = settings.model_copy(update={"finetune": ft})
    rows, bad = read_log(log, settings.s3)
    products_list, _ = load_catalog(catalog, settings.catalog, settings.s3)
    products = {p.sku: p for p in products_list}
    ctx = context(settings, vocabulary([f for p in products_list for f in product_facts(p)]),
                  read_policies(settings.answers.policies, settings.s3))
    train, test = log_examples(rows, products, ctx, ft)
    if not any(r["split"] == "train" for r in train):
        raise ValueError(f"{log}: no resolved log row the resolver can answer from {catalog}; nothing to train on")
    base_ref = driver.resolve_base(base, settings, "; fine-tune from a base or merged model")
    dh = sftdata.data_hash([sftdata.Example(**r) for r in train])
    name = name or driver.run_name("answers", dh, ft, base_ref.version, ("answers",))
    reg = Registry(settings.registry_uri, settings.s3)
    run_uri = f"{settings.finetune_storage}/{name}"
    data = {"log_rows": len(rows), "invalid": len(bad), "examples": len(train), "test": len(test),
            "by_split": {s: sum(r["split"] == s for r in train) for s in ("train", "val")}}
    report: dict[str, Any] = {"task": "answers", "run": name, "log": log, "catalog": catalog, "base": base_ref.ref,
                              "method": ft.method, "data_hash": dh, "data": data, "registry": reg.uri,
                              "storage": run_uri}
    say(f"data: {len(train)} examples from {len(rows)} log rows ({data['invalid']} invalid); {len(test)} held out")
    data_uri = f"{run_uri}/shopgen/examples.parquet"
    driver.write_rows(data_uri, train, settings.s3)
    cfg = worker_config(settings, base_ref, data_uri)
    with driver.session(settings):
        t0 = time.time()
        result = fit(settings, cfg, name)
        train_s = time.time() - t0
        ckpt, best = driver.best_checkpoint(result, "val_loss", True, "val_loss")
        say(f"best checkpoint at step {best.get('step')}; serving base and fine-tuned through vLLM (answer grammar, "
            f"gate) on {len(test)} held-out log rows")
        res = {"num_gpus": 1} if ft.gpu else {"num_cpus": 1}
        metrics = ray.get(ray.remote(**res)(eval_answerers).remote(settings, base_ref, ckpt, ft.method, ctx, test))
    passed, reasons = answerer_gate(metrics)
    version = new_version_id(name)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt.to_directory(tmp)
        folders = {k: os.path.join(tmp, k) for k in ("adapter", "model") if os.path.isdir(os.path.join(tmp, k))}
        reg.register(folders, {"version": version, "kind": "answerer", "run": name, "base": base_ref.ref,
                               "base_version": base_ref.version, "method": ft.method, "data_hash": dh, "log": log,
                               "catalog": catalog, "data": data, "metrics": metrics,
                               "gate": {"passed": passed, "reasons": reasons},
                               "training": {k: best.get(k) for k in ("step", "val_loss", "train_loss")}
                               | {"seconds": round(train_s, 1)}})
    promoted = driver.promote(reg, version, promote, ft.auto_promote)
    report.update(status="succeeded", version=version, metrics=metrics, gate={"passed": passed, "reasons": reasons},
                  promoted=promoted)
    return driver.write_report(report, run_uri, settings.s3)
