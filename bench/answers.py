"""Shoppers' questions, in one run:
  (1) quality: correct, wrong and refusal rates on the labelled sets, for the base generator and a
      fine-tuned answerer side by side (and the extractive drafts alone, no LLM, as the floor):
      data/questions.jsonl over the sample catalog, bench/luma_questions.jsonl over
      ../shared/data/magento-luma when present;
  (2) batch throughput: shopgen's answering with every draft from the LLM (answers.prefer llm: resolve,
      prompt, grammar, n drafts, gate) against raw `vllm.LLM.chat` on the same prompts with the same n
      and max_tokens, on one warm engine; and the default path's answers/s (the LLM drafts only where
      the extractive answer fails the gate);
  (3) on-demand latency, warm: POST /answer through the Ray Serve deployment (`shopgen serve answers`)
      against one raw `llm.chat` call per question, p50 and p95.

    .venv/bin/python bench/answers.py [--finetuned REF] [--train-steps 60] [--requests 30] [--json]

Without --finetuned, a short `finetune --task answers` on the synthetic support log
(data/make_support_log.py) trains one first. With --json the last line is one JSON object."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
CATALOG = ROOT / "data" / "sample_catalog.jsonl"
POLICIES = ROOT / "data" / "policies.md"


def _sets(tmp: Path) -> dict[str, tuple[str, str]]:
    import luma

    out = {"bundled": (str(ROOT / "data" / "questions.jsonl"), str(CATALOG))}
    if luma.available():
        cat = tmp / "luma_catalog.jsonl"
        cat.write_text("".join(json.dumps(p) + "\n" for p in luma.products()), encoding="utf-8")
        out["luma"] = (str(ROOT / "bench" / "luma_questions.jsonl"), str(cat))
    return out


def _prepared(settings: Any, sets: dict[str, tuple[str, str]]) -> dict[str, tuple[list, Any, dict]]:
    from shopgen.answers.evaluate import Expected
    from shopgen.answers.load import read_questions
    from shopgen.answers.stage import Source, answer_context

    out = {}
    for name, (qpath, cat) in sets.items():
        qs, _, labels = read_questions(qpath, with_expected=True)
        src = Source(settings, catalog=cat)
        out[name] = (src.rows(qs), answer_context(settings, src), {k: Expected.model_validate(v) for k, v in labels.items()})
    return out


def _quality(answerer: Any, prepared: dict[str, tuple[list, Any, dict]]) -> dict[str, Any]:
    from dataclasses import replace

    from shopgen.answers.evaluate import summary

    out = {}
    for name, (rows, ctx, labels) in prepared.items():
        answerer.ctx = ctx
        s = summary((a, labels[a.id]) for a in answerer.answer(rows))
        answerer.ctx = replace(ctx, extractive=False)
        alone = summary((a, labels[a.id]) for a in answerer.answer(rows))
        out[name] = {k: s[k] for k in ("n", "correct_rate", "wrong_rate", "refusal_rate", "incomplete_rate")} | {
            "drafted_by": s["by_drafter"], "llm_only": {k: alone[k] for k in ("correct_rate", "wrong_rate")}}
    return out


def _throughput(answerer: Any, rows: list, ctx: Any) -> dict[str, Any]:
    """shopgen's answer_rows against raw llm.chat on the same draft prompts, best of two alternating runs."""
    from dataclasses import replace

    from vllm import SamplingParams

    from shopgen.answers.draft import messages
    from shopgen.answers.engine import plan

    # Every draft through the engine (answers.prefer llm), so both sides generate for the same prompts.
    answerer.ctx = replace(ctx, prefer_llm=True)
    prompts = [messages(r["question"], res) for r in rows for done, _, res in [plan(r, ctx)] if done is None]
    raw_params = SamplingParams(n=answerer.n, temperature=answerer.temperature, max_tokens=answerer.max_tokens)
    ours, raw = [], []
    t0 = time.perf_counter()
    answerer.ctx = ctx
    answerer.answer(rows)  # the default path: the LLM drafts only where the extractive answer fails the gate
    default_s = time.perf_counter() - t0
    answerer.ctx = replace(ctx, prefer_llm=True)
    for _ in range(2):
        t0 = time.perf_counter()
        answerer.answer(rows)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        answerer.llm.chat(prompts, raw_params, use_tqdm=False)
        raw.append(time.perf_counter() - t0)
    n = len(rows)
    return {"questions": n, "drafted": len(prompts), "answers_per_s": round(n / min(ours), 2),
            "default_answers_per_s": round(n / default_s, 2),
            "raw_vllm_prompts_per_s": round(len(prompts) / min(raw), 2),
            "ratio_vs_raw_vllm": round((n / min(ours)) / (len(prompts) / min(raw)), 3)}


def _raw_latency(answerer: Any, rows: list, ctx: Any, k: int) -> list[float]:
    from vllm import SamplingParams

    from shopgen.answers.draft import messages
    from shopgen.answers.engine import plan

    prompts = [messages(r["question"], res) for r in rows for done, _, res in [plan(r, ctx)] if done is None][:k]
    params = SamplingParams(n=answerer.n, temperature=answerer.temperature, max_tokens=answerer.max_tokens)
    out = []
    for p in prompts:
        t0 = time.perf_counter()
        answerer.llm.chat([p], params, use_tqdm=False)
        out.append(time.perf_counter() - t0)
    return out


def _serve_latency(env: dict[str, str], home: Path, questions: list[dict[str, Any]], k: int) -> list[float]:
    from shopgen.adapters.devstack import free_port
    from shopgen.answers.serve import post, stop, wait_until_up

    sg = str(Path(sys.executable).with_name("shopgen"))
    subprocess.run([sg, "index", "build", "--input", str(CATALOG), "--alias", "bench-answers", "--workdir",
                    str(home / "index")], env=env, check=True, capture_output=True, timeout=1800)
    port = free_port()
    proc = subprocess.Popen([sg, "serve", "answers", "--alias", "bench-answers", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, questions[0], proc)
        for q in questions[:3]:  # warm
            post(url, q)
        out = []
        for q in questions[:k]:
            t0 = time.perf_counter()
            code, _ = post(url, q)
            out.append(time.perf_counter() - t0)
            assert code == 200, code
        return out
    finally:
        stop(proc)
        subprocess.run([sg, "dev", "down"], env=env, capture_output=True, timeout=120)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 1) if xs else 0.0


def _finetuned(settings: Any, tmp: Path, steps: int, say: Any) -> tuple[str, dict[str, Any]]:
    from shopgen.finetune.answers import run_answer_finetune

    log = tmp / "support_log.jsonl"
    subprocess.run([sys.executable, str(ROOT / "data" / "make_support_log.py"), "--out", str(log)], check=True,
                   capture_output=True)
    ft = settings.finetune.model_copy(update={"max_steps": steps, "eval_every": max(10, steps // 3)})
    rep = run_answer_finetune(str(log), str(CATALOG), settings.model_copy(update={"finetune": ft}))
    say(f"fine-tuned answerer {rep['version']}: held-out log base {rep['metrics']['base']['correct_rate']} / "
        f"fine-tuned {rep['metrics']['finetuned']['correct_rate']} correct")
    return rep["version"], {k: rep[k] for k in ("version", "metrics", "gate", "data")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--finetuned", default=None, help="a registry version (answerer) or adapter folder")
    ap.add_argument("--train-steps", type=int, default=60)
    ap.add_argument("--requests", type=int, default=30, help="on-demand requests timed")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    import os

    from shopgen.adapters import models
    from shopgen.answers.engine import Answerer
    from shopgen.core.config import load_settings

    say = (lambda m: print(m, file=sys.stderr)) if a.json else print
    tmp = Path(tempfile.mkdtemp(prefix="bench-answers-"))
    settings = load_settings(answers={"policies": str(POLICIES)}, models={"registry": str(tmp / "registry")},
                             finetune={"storage_path": str(tmp / "ft")})
    res: dict[str, Any] = {}
    t0 = time.time()
    ft_ref = a.finetuned
    if ft_ref is None:
        ft_ref, res["finetune"] = _finetuned(settings, tmp, a.train_steps, say)
    prepared = _prepared(settings, _sets(tmp))
    res["quality"] = {}
    for arm, ref in (("base", "base"), ("finetuned", ft_ref)):
        ans = Answerer(models.resolve(ref, settings), settings, prepared["bundled"][1])
        res["quality"][arm] = _quality(ans, prepared)
        say(f"{arm}: " + json.dumps(res["quality"][arm]))
        if arm == "base":
            rows, ctx, _ = prepared["bundled"]
            res["batch"] = _throughput(ans, rows, ctx)
            raw_lat = _raw_latency(ans, [r for r in rows if r["product"]], ctx, a.requests)
        ans.llm.llm_engine.engine_core.shutdown()
        del ans
    extractive = settings.model_copy(update={"answers": settings.answers.model_copy(update={"candidates": 0})})
    res["quality"]["extractive_only"] = _quality(Answerer(None, extractive, prepared["bundled"][1]), prepared)
    qs = [json.loads(x) for x in (ROOT / "data" / "questions.jsonl").read_text().splitlines()]
    asks = [{"question": q["question"], **({"sku": q["sku"]} if q.get("sku") else {})} for q in qs if q.get("sku")]
    env = {**os.environ, "SHOPGEN_HOME": str(tmp / "home"), "SHOPGEN_ANSWERS__POLICIES": str(POLICIES),
           "SHOPGEN_MODELS__CACHE_DIR": str(settings.model_cache), "SHOPGEN_MODELS__USE_PROMOTED": "false"}
    serve_lat = _serve_latency(env, tmp / "home", asks, a.requests)
    res["on_demand"] = {"requests": len(serve_lat), "serve_p50_ms": _pct(serve_lat, 0.5),
                        "serve_p95_ms": _pct(serve_lat, 0.95), "raw_vllm_p50_ms": _pct(raw_lat, 0.5),
                        "raw_vllm_p95_ms": _pct(raw_lat, 0.95),
                        "ratio_p50_vs_raw_vllm": round(_pct(serve_lat, 0.5) / max(_pct(raw_lat, 0.5), 1e-9), 3)}
    res["seconds"] = round(time.time() - t0, 1)
    say(f"batch: {res['batch']}")
    say(f"on demand: {res['on_demand']}")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
