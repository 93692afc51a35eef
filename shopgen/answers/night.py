"""Questions in the nightly (answers.questions): tonight answers the questions that are new (or whose
text changed) and those whose product's facts changed since they were last answered; the rest keep
their stored answer. Each product's `answered` questions become its document's `qa`. The answers'
state is `<state>/<alias>/answers.parquet`, written with the rest of the state once the index is done."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
from shopgen.checks.untrusted import check_contact
from shopgen.core.config import Settings
from shopgen.core.questions import Answer, Question
from shopgen.core.records import Product, Quarantined

STATE = "answers.parquet"
QA_PER_PRODUCT = 20  # answered questions a document shows
STATE_SCHEMA = pa.schema([("id", pa.string()), ("question_hash", pa.string()), ("question", pa.string()),
                          ("sku", pa.string()), ("content_hash", pa.string()), ("status", pa.string()),
                          ("answer", pa.string()), ("cites", pa.list_(pa.string())), ("locale", pa.string()),
                          ("answered_at", pa.string()), ("policies_hash", pa.string())])
QA_TYPE = pa.list_(pa.struct([("question", pa.string()), ("answer", pa.string()), ("cites", pa.list_(pa.string())),
                              ("answered_at", pa.string())]))


@dataclass(frozen=True)
class Answered:
    """Every question's current answer (tonight's and the kept ones), and the SKUs whose qa changed."""

    rows: tuple[dict[str, Any], ...] = ()
    changed: frozenset[str] = frozenset()
    figures: dict[str, Any] = field(default_factory=dict)
    enabled: bool = False

    def qa(self, limit: int = QA_PER_PRODUCT) -> dict[str, list[dict[str, Any]]]:
        """Each product's answered questions for its page: a question with contact details or a link is
        not shown (it is untrusted text too), and at most `limit` per product, the newest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        rows = sorted(self.rows, key=lambda r: (r.get("answered_at") or "", r["id"]), reverse=True)
        for r in rows:
            if len(out.get(r["sku"] or "", [])) >= limit:
                continue
            if r["status"] == "answered" and r["sku"] and check_contact([r["question"]]).passed:
                out.setdefault(r["sku"], []).append({"question": r["question"], "answer": r["answer"],
                                                     "cites": list(r["cites"] or []), "answered_at": r["answered_at"]})
        return out


NO_ANSWERS = Answered()


def question_hash(q: Question) -> str:
    blob = json.dumps([q.question, q.sku, q.locale], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def to_answer(qs: Sequence[Question], previous: dict[str, dict[str, Any]], hashes: dict[str, str],
              policies: str = "") -> list[Question]:
    """The questions to answer tonight: new or changed ones; those whose product's facts changed (or
    whose product left the catalog); those answered from a policy that changed since; and those
    without a SKU that matched no product yet (the catalog may have it now)."""
    out = []
    for q in qs:
        old = previous.get(q.id)
        if old is None or old["question_hash"] != question_hash(q):
            out.append(q)
        elif old["sku"] and hashes.get(old["sku"]) != old["content_hash"]:
            out.append(q)
        elif any(c.startswith("policies#") for c in old.get("cites") or []) and old.get("policies_hash") != policies:
            out.append(q)
        elif not q.sku and not old["sku"]:
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
    """Tonight's answers, the kept ones, and the SKUs whose qa changed. A questions file or policies
    file that cannot be read, or one without a single valid question where the state has some, keeps
    last night's answers as they are (the error is in the figures): a broken feed never empties the qa."""
    a = settings.answers
    previous = {r["id"]: r for r in (store.read_table(STATE).to_pylist() if store.exists(STATE) else [])}
    kept = Answered(tuple(previous.values()), frozenset(), {}, True)
    try:
        qs, bad, _ = read_questions(a.questions, settings.s3)  # type: ignore[arg-type]
        policies = read_policies(a.policies, settings.s3)
    except (OSError, ValueError) as e:
        return replace(kept, figures={"error": f"{type(e).__name__}: {e}", "kept": len(previous)})
    quarantine(bad)
    if not qs and previous:
        return replace(kept, figures={"error": f"no valid question in {a.questions}; last night's answers kept",
                                      "invalid": len(bad), "kept": len(previous)})
    todo = to_answer(qs, previous, hashes, policies_hash(policies))
    answered: list[Answer] = []
    if todo:
        need = {q.sku for q in todo if q.sku}
        products, titles, vocab = _catalog_pass(catalog, settings, need, any(not q.sku for q in todo))
        ctx = context(settings, vocab, policies)
        matched = {q.id: choose(q.question, titles.candidates(q.question), a.match_min, a.match_margin)
                   for q in todo if not q.sku and titles is not None}
        missing = {m.sku for m in matched.values() if m.sku and m.sku not in products}
        if missing:  # matched by title: one more pass for all their facts
            products.update(_catalog_pass(catalog, settings, missing, False)[0])
        rows = []
        for q in todo:
            m = matched.get(q.id)
            p = products.get(q.sku) if q.sku else (products.get(m.sku) if m and m.sku else None)
            rows.append(input_row(q.id, q.question, q.sku, q.locale, p, m.candidates if m else ()))
        answered = answer(rows, ctx)
    return merge(qs, previous, answered, hashes, len(bad), policies=policies_hash(policies))


def policies_hash(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()[:16]


def merge(qs: Sequence[Question], previous: dict[str, dict[str, Any]], answered: Sequence[Answer],
          hashes: dict[str, str], invalid: int, now: str | None = None, policies: str = "") -> Answered:
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
                         "cites": list(x.cites), "locale": x.locale, "answered_at": now, "policies_hash": policies})
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
