"""Answering a batch of questions: each row (a question, its product's facts or the candidates it
could not be matched to) is resolved, drafted by the LLM (n samples under the answer grammar) and by
extraction, and every draft is gated; the first that passes is published. `answer_rows` is pure given
an `engine` callable; `Answerer` wraps a vLLM engine for Ray Data, `shopgen ask` and Ray Serve."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from shopgen.answers.draft import check_draft, grammar, messages, pick
from shopgen.answers.facts import DEFAULT_CUES, Fact, parse_policies, product_facts
from shopgen.answers.resolve import Resolution, language_of, resolve, vocabulary
from shopgen.core.questions import Answer
from shopgen.core.records import Product

# One engine call: prompts and grammars in, per prompt a list of (text, tokens) samples out.
Engine = Callable[[Sequence[list[dict[str, str]]], Sequence[str]], list[list[tuple[str, int]]]]

ANSWER_SCHEMA = pa.schema([("id", pa.string()), ("sku", pa.string()), ("status", pa.string()),
                           ("answer", pa.string()), ("cites", pa.list_(pa.string())),
                           ("candidates", pa.list_(pa.string())), ("reasons", pa.list_(pa.string())),
                           ("locale", pa.string()), ("question", pa.string()), ("drafted_by", pa.string()),
                           ("tokens", pa.int64())])
INPUT_SCHEMA = pa.schema([("id", pa.string()), ("question", pa.string()), ("sku", pa.string()),
                          ("locale", pa.string()), ("product", pa.string()), ("candidates", pa.list_(pa.string()))])


@dataclass(frozen=True)
class Context:
    """What every question is answered against besides its product."""

    policies: tuple[Fact, ...] = ()
    vocab: frozenset[str] = frozenset()
    languages: tuple[str, ...] = ("en",)
    cues: dict[str, list[str]] | None = None
    banned: dict[str, list[str]] | None = None
    extractive: bool = True
    prefer_llm: bool = False  # publish a passing LLM draft before the extractive one


def merged_cues(extra: dict[str, list[str]]) -> dict[str, list[str]]:
    return {**DEFAULT_CUES, **{k: [*DEFAULT_CUES.get(k, []), *v] for k, v in extra.items()}}


def prefers_llm(settings: Any) -> bool:
    """answers.prefer: `llm`, `extractive`, or `auto`: the LLM's drafts first only when a fine-tuned
    answerer is promoted (it beat the base through the serving path); the base model's drafts were
    less often publishable than the extractive ones (README, *Shoppers' questions*)."""
    a = settings.answers
    if a.prefer != "auto":
        return a.prefer == "llm"
    if not settings.models.use_promoted:
        return False
    from shopgen.adapters.registry import Registry

    return Registry(settings.registry_uri, settings.s3).promoted("answerer") is not None


def context(settings: Any, vocab: frozenset[str], policies_text: str | None) -> Context:
    a = settings.answers
    policies = tuple(parse_policies(policies_text)) if policies_text else ()
    vocab = vocab | vocabulary(list(policies))  # "shipping" is a property word when a policy names it
    return Context(policies, vocab,
                   tuple(a.languages or settings.models.languages()), merged_cues(a.cues), settings.qa.banned_claims,
                   a.extractive, prefers_llm(settings))


def input_row(qid: str, question: str, sku: str | None, locale: str | None, product: Product | None,
              candidates: Sequence[str] = ()) -> dict[str, Any]:
    return {"id": qid, "question": question, "sku": sku, "locale": locale,
            "product": product.model_dump_json() if product is not None else None, "candidates": list(candidates)}


def _answer(row: dict[str, Any], p: Product | None, status: str, **kw: Any) -> Answer:
    return Answer(id=row["id"], sku=p.sku if p else row.get("sku"), status=status, question=row["question"],
                  locale=row.get("locale") or (p.locale if p else "en-US"), **kw)


def plan(row: dict[str, Any], ctx: Context) -> tuple[Answer | None, Product | None, Resolution | None]:
    """A row's final Answer when no draft is needed, else its product and Resolution."""
    p = Product.model_validate_json(row["product"]) if row.get("product") else None
    lang = language_of(row["question"], row.get("locale") or (p.locale if p else None))
    if lang not in ctx.languages:
        return _answer(row, p, "unsupported_language", reasons=[f"questions in {lang!r} are not answered"]), p, None
    facts = product_facts(p, ctx.cues) if p is not None else []
    res = resolve(row["question"], p, facts, ctx.policies, ctx.vocab)
    if p is None and not (res.status == "draft" or res.status == "refused"):
        # Without a product only a policy answers; never an answer about a guessed product.
        why = "no product matched clearly" if row.get("candidates") else "no product matched"
        return _answer(row, p, "not_in_catalog", candidates=list(row.get("candidates") or []), reasons=[why]), p, None
    if res.status != "draft":
        return _answer(row, p, res.status, reasons=list(res.reasons)), p, None
    return None, p, res


def _text_of(raw: str) -> str:
    try:
        out = json.loads(raw)
        return out["answer"].strip() if isinstance(out, dict) and isinstance(out.get("answer"), str) else ""
    except ValueError:
        return ""


def finish(row: dict[str, Any], p: Product | None, res: Resolution, samples: Sequence[tuple[str, int]], ctx: Context,
           own_check: list[str] | None = None) -> Answer:
    """The first draft that passes the gate (the LLM's first when ctx.prefer_llm, else the extractive
    one), else needs_human. `own_check`: the extractive draft's gate result when already known."""
    drafts = [(t, _check(t, row, p, res, ctx), "llm") for t in (_text_of(raw) for raw, _ in samples)]
    if ctx.extractive:
        own = (res.extractive, _check(res.extractive, row, p, res, ctx) if own_check is None else own_check,
               "extractive")
        drafts = [*drafts, own] if ctx.prefer_llm else [own, *drafts]
    tokens = sum(n for _, n in samples)
    i = pick([(t, why) for t, why, _ in drafts])
    if i is None:
        why = next((w for _, w, by in drafts if by == "llm"), drafts[0][1] if drafts else ["no draft"])
        return _answer(row, p, "needs_human", reasons=why[:4], cites=res.cites, tokens=tokens)
    return _answer(row, p, "answered", answer=drafts[i][0], cites=res.cites, drafted_by=drafts[i][2], tokens=tokens)


def _check(text: str, row: dict[str, Any], p: Product | None, res: Resolution, ctx: Context) -> list[str]:
    return check_draft(text, row["question"], res, p, locale=row.get("locale") or (p.locale if p else "en-US"),
                       banned=ctx.banned)


def answer_rows(rows: Sequence[dict[str, Any]], ctx: Context, engine: Engine | None) -> list[Answer]:
    """Every row answered; one engine call for all the drafts the batch needs (none without an engine)."""
    planned = [plan(r, ctx) for r in rows]
    todo = [i for i, (done, _, _) in enumerate(planned) if done is None]
    own: dict[int, list[str]] = {}
    if ctx.extractive and not ctx.prefer_llm:  # the LLM drafts only where the extractive answer fails the gate
        own = {i: _check(planned[i][2].extractive, rows[i], planned[i][1], planned[i][2], ctx)  # type: ignore[union-attr]
               for i in todo}
        todo = [i for i in todo if own[i]]
    samples: list[list[tuple[str, int]]] = [[] for _ in todo]
    if engine is not None and todo:
        samples = engine([messages(rows[i]["question"], planned[i][2]) for i in todo],  # type: ignore[arg-type]
                         [grammar(rows[i]["question"], planned[i][2]) for i in todo])  # type: ignore[arg-type]
    out: list[Answer] = []
    drafted = dict(zip(todo, samples))
    for i, (done, p, res) in enumerate(planned):
        out.append(done if done is not None else finish(rows[i], p, res, drafted.get(i, []), ctx,  # type: ignore[arg-type]
                                                        own.get(i)))
    return out


def answers_table(answers: Sequence[Answer]) -> pa.Table:
    return pa.Table.from_pylist([a.model_dump(include=set(ANSWER_SCHEMA.names)) for a in answers], schema=ANSWER_SCHEMA)


class Answerer:
    """One vLLM engine (generation.* settings; answers.candidates samples per question), reused for every
    batch: a Ray Data callable class, and the engine `shopgen ask` and the Serve deployment keep warm."""

    def __init__(self, model: Any, settings: Any, ctx: Context):
        self.ctx, self.n = ctx, settings.answers.candidates
        self.max_tokens, self.temperature = settings.answers.max_tokens, settings.answers.temperature
        self.seed = settings.generation.seed
        self.llm = self.lora = None
        self.started = time.time()
        if self.n > 0:
            from shopgen.generate.engine import make_llm

            self.llm, self.lora, self.on_gpu, _, self.local = make_llm(model, settings)
        self.model_version = getattr(model, "version", "")

    def engine(self, prompts: Sequence[list[dict[str, str]]], grammars: Sequence[str]) -> list[list[tuple[str, int]]]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = [SamplingParams(n=self.n, temperature=self.temperature, max_tokens=self.max_tokens,
                                 structured_outputs=StructuredOutputsParams(grammar=g)) for g in grammars]
        outs = self.llm.chat(list(prompts), params, use_tqdm=False, lora_request=self.lora)
        return [[(c.text, len(c.token_ids)) for c in o.outputs] for o in outs]

    def answer(self, rows: Sequence[dict[str, Any]]) -> list[Answer]:
        return answer_rows(rows, self.ctx, self.engine if self.llm is not None else None)

    def __call__(self, batch: pa.Table) -> pa.Table:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        return answers_table(self.answer(batch.to_pylist()))
