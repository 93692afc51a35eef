"""Questions in the nightly (answers.questions): tonight answers the questions that are new (or whose
text changed) and those whose product's facts changed since they were last answered; the rest keep
their stored answer. Each product's `answered` questions become its document's `qa`. The answers'
state is `<state>/<alias>/answers.parquet`, written with the rest of the state once the index is done."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shopgen.answers.engine import Context, context, input_row
from shopgen.answers.facts import product_facts
from shopgen.answers.load import read_policies, read_questions
from shopgen.answers.match import TitleIndex, choose
from shopgen.answers.resolve import vocabulary
from shopgen.catalog.load import iter_catalog
from shopgen.core.config import Settings
from shopgen.core.questions import Answer, Question
from shopgen.core.records import Product, Quarantined

STATE = "answers.parquet"
STATE_SCHEMA = pa.schema([("id", pa.string()), ("question_hash", pa.string()), ("question", pa.string()),
                          ("sku", pa.string()), ("content_hash", pa.string()), ("status", pa.string()),
                          ("answer", pa.string()), ("cites", pa.list_(pa.string())), ("locale", pa.string()),
                          ("answered_at", pa.string())])
QA_TYPE = pa.list_(pa.struct([("question", pa.string()), ("answer", pa.string()), ("cites", pa.list_(pa.string())),
                              ("answered_at", pa.string())]))


@dataclass(frozen=True)
class Answered:
    """Every question's current answer (tonight's and the kept ones), and the SKUs whose qa changed."""

    rows: tuple[dict[str, Any], ...] = ()
    changed: frozenset[str] = frozenset()
    figures: dict[str, Any] = field(default_factory=dict)
    enabled: bool = False

    def qa(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for r in sorted(self.rows, key=lambda r: r["id"]):
            if r["status"] == "answered" and r["sku"]:
                out.setdefault(r["sku"], []).append({"question": r["question"], "answer": r["answer"],
                                                     "cites": list(r["cites"] or []), "answered_at": r["answered_at"]})
        return out


NO_ANSWERS = Answered()


def question_hash(q: Question) -> str:
    blob = json.dumps([q.question, q.sku, q.locale], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def to_answer(qs: Sequence[Question], previous: dict[str, dict[str, Any]], hashes: dict[str, str]) -> list[Question]:
    """The questions to answer tonight: new or changed ones, and those whose product's facts changed
    (or whose product left the catalog) since they were answered."""
    out = []
    for q in qs:
        old = previous.get(q.id)
        if old is None or old["question_hash"] != question_hash(q):
            out.append(q)
        elif old["sku"] and hashes.get(old["sku"]) != old["content_hash"]:
            out.append(q)
    return out


def _catalog_pass(catalog: str, settings: Settings, need: set[str], titles: bool) -> tuple[dict[str, Product],
                                                                                              TitleIndex | None, frozenset[str]]:
    """One streaming pass: the products `need` names, the catalog's titles (only when a question has no
    SKU) and its property vocabulary."""
    keep: dict[str, Product] = {}
    index = TitleIndex(()) if titles else None
    vocab: set[str] = set()
    for good, _ in iter_catalog(catalog, settings.catalog, settings.s3):
        vocab |= vocabulary([f for p in good for f in product_facts(p)])
        for p in good:
            if p.sku in need:
                keep[p.sku] = p
        if index is not None:
            index.add(good)
    return keep, index, frozenset(vocab)


def answers_night(settings: Settings, catalog: str, store: Any, hashes: dict[str, str],
                  quarantine: Callable[[list[Quarantined]], None],
                  answer: Callable[[list[dict[str, Any]], Context], list[Answer]]) -> Answered:
    """Tonight's answers, the kept ones, and the SKUs whose qa changed."""
    a = settings.answers
    qs, bad, _ = read_questions(a.questions, settings.s3)  # type: ignore[arg-type]
    quarantine(bad)
    previous = {r["id"]: r for r in (store.read_table(STATE).to_pylist() if store.exists(STATE) else [])}
    todo = to_answer(qs, previous, hashes)
    answered: list[Answer] = []
    if todo:
        need = {q.sku for q in todo if q.sku} | {previous[q.id]["sku"] for q in todo if q.id in previous
                                                   and previous[q.id]["sku"]}
        products, titles, vocab = _catalog_pass(catalog, settings, need, any(not q.sku for q in todo))
        ctx = context(settings, vocab, read_policies(a.policies, settings.s3))
        rows = []
        for q in todo:
            p, cands = products.get(q.sku) if q.sku else None, ()
            if not q.sku and titles is not None:
                m = choose(q.question, titles.candidates(q.question), a.match_min, a.match_margin)
                p, cands = products.get(m.sku) if m.sku else None, m.candidates
                if m.sku and p is None:  # matched by title: a second pass for its facts
                    p = _catalog_pass(catalog, settings, {m.sku}, False)[0].get(m.sku)
            rows.append(input_row(q.id, q.question, q.sku, q.locale, p, cands))
        answered = answer(rows, ctx)
    return merge(qs, previous, answered, hashes, len(bad))


def merge(qs: Sequence[Question], previous: dict[str, dict[str, Any]], answered: Sequence[Answer],
          hashes: dict[str, str], invalid: int, now: str | None = None) -> Answered:
    """The state after tonight: tonight's answers replace their question's row; questions no longer in
    the file are dropped; the SKUs whose published qa differs from last night's are `changed`."""
    now = now or datetime.now(timezone.utc).isoformat()
    by_id = {a.id: a for a in answered}
    rows = []
    for q in qs:
        if q.id in by_id:
            x = by_id[q.id]
            rows.append({"id": q.id, "question_hash": question_hash(q), "question": q.question, "sku": x.sku,
                         "content_hash": hashes.get(x.sku or ""), "status": x.status, "answer": x.answer,
                         "cites": list(x.cites), "locale": x.locale, "answered_at": now})
        elif q.id in previous:
            rows.append(previous[q.id])
    before, after = Answered(tuple(previous.values())).qa(), Answered(tuple(rows)).qa()
    changed = frozenset(s for s in set(before) | set(after) if before.get(s) != after.get(s))
    figures = {"questions": len(qs), "invalid": invalid, "answered_tonight": len(answered),
               "kept": len(rows) - len(answered),
               "by_status": {s: sum(a.status == s for a in answered) for s in sorted({a.status for a in answered})},
               "tokens": sum(a.tokens for a in answered), "qa_products": len(after)}
    return Answered(tuple(rows), changed, figures, True)


def save_answers(store: Any, answered: Answered) -> None:
    if answered.enabled:
        store.write_table(STATE, pa.Table.from_pylist(list(answered.rows), schema=STATE_SCHEMA))


def add_qa(enriched: Path, answered: Answered) -> int:
    """Adds each product's `qa` (its answered questions) to every enriched row, a file at a time."""
    qa, n = answered.qa(), 0
    for f in sorted(enriched.glob("*.parquet")):
        t = pq.read_table(f)
        if "qa" in t.column_names:
            t = t.drop_columns(["qa"])
        vals = [qa.get(s) or None for s in t["sku"].to_pylist()]
        n += sum(v is not None for v in vals)
        pq.write_table(t.append_column("qa", pa.array(vals, QA_TYPE)), f)
    return n
