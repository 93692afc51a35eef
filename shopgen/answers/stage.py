"""`shopgen answer`: questions -> validate -> match each to its product (its SKU, else the search
index or the catalog's titles) -> resolve, draft and gate on a Ray Data actor pool (one vLLM engine
per actor) -> the answers file and report.json."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console

from shopgen.adapters import models
from shopgen.adapters.raysupport import build_processor, ray_session
from shopgen.adapters.storage import write_bytes
from shopgen.answers.engine import ANSWER_SCHEMA, INPUT_SCHEMA, Answerer, Context, context, input_row
from shopgen.answers.facts import product_facts
from shopgen.answers.load import read_policies, read_questions
from shopgen.answers.match import TitleIndex, choose, doc_product, index_candidates, index_products
from shopgen.answers.resolve import vocabulary
from shopgen.catalog.load import load_catalog
from shopgen.core.config import Settings
from shopgen.core.questions import STATUSES, Answer, Question
from shopgen.core.records import Product
from shopgen.core.run import append_quarantine, running, start_run


class Source:
    """Where facts come from: a catalog file's products, or the live index's documents."""

    def __init__(self, settings: Settings, catalog: str | None = None, alias: str | None = None, es: Any = None):
        self.settings, self.alias, self.es = settings, alias, es
        self.products: dict[str, Product] = {}
        self.titles: TitleIndex | None = None
        self.invalid: list[Any] = []
        if catalog:
            products, self.invalid = load_catalog(catalog, settings.catalog, settings.s3)
            self.products = {p.sku: p for p in products}
            self.titles = TitleIndex(products)

    def rows(self, questions: Sequence[Question]) -> list[dict[str, Any]]:
        """The answerer's input rows: each question with its product (or the candidates it was not matched to)."""
        a = self.settings.answers
        if self.es is not None:
            self.products.update(index_products(self.es, self.alias, sorted({q.sku for q in questions if q.sku})))
        out = []
        for q in questions:
            p, cands = (self.products.get(q.sku), ()) if q.sku else (None, ())
            if not q.sku:
                titles = (self.titles.candidates(q.question) if self.titles is not None
                          else index_candidates(self.es, self.alias, q.question))
                m = choose(q.question, titles, a.match_min, a.match_margin)
                if m.sku and self.es is not None and m.sku not in self.products:
                    self.products.update(index_products(self.es, self.alias, [m.sku]))
                p, cands = (self.products.get(m.sku) if m.sku else None), m.candidates
            out.append(input_row(q.id, q.question, q.sku, q.locale, p, cands))
        return out

    def vocab(self) -> frozenset[str]:
        """The catalog's property vocabulary: of the catalog file, or of every indexed document (read
        once), so a question is judged the same way in bulk, in the nightly and on demand."""
        if self.es is None:
            return vocabulary([f for p in self.products.values() for f in product_facts(p)])
        from elasticsearch import helpers

        out: set[str] = set()
        batch: list[Product] = []
        for h in helpers.scan(self.es, index=self.alias, query={"query": {"match_all": {}}},
                              _source_includes=["sku", "title", "category", "brand", "attributes", "price", "currency",
                                                "locale", "source_description"]):
            try:
                batch.append(doc_product(h["_source"]))
            except ValueError:
                continue
            if len(batch) >= 2000:
                out |= vocabulary([f for p in batch for f in product_facts(p)])
                batch = []
        return frozenset(out | vocabulary([f for p in batch for f in product_facts(p)]))


def answer_context(settings: Settings, source: Source) -> Context:
    return context(settings, source.vocab(), read_policies(settings.answers.policies, settings.s3))


def answer_dataset(rows: list[dict[str, Any]], model: models.ModelRef, settings: Settings, ctx: Context) -> Any:
    """The rows as a Ray Dataset mapped through the answerer's actor pool (ANSWER_SCHEMA batches)."""
    import ray

    table = pa.Table.from_pylist(rows, schema=INPUT_SCHEMA)
    size = settings.answers.batch_size
    blocks = [table.slice(i, size) for i in range(0, table.num_rows, size)] or [table]
    pool = settings.generation.model_copy(update={"batch_size": size})
    return build_processor(ray.data.from_arrow(blocks), pool, Answerer, dict(model=model, settings=settings, ctx=ctx),
                           max_restarts=settings.generation.engine_restarts,
                           max_task_retries=settings.generation.engine_restarts)


def answer_all(rows: list[dict[str, Any]], settings: Settings, ctx: Context) -> list[Answer]:
    """Every row answered on Ray Data (in a Ray session the caller holds)."""
    if not rows:
        return []
    model = models.resolve(models.answerer_ref(settings), settings)
    out: list[Answer] = []
    for batch in answer_dataset(rows, model, settings, ctx).iter_batches(batch_size=None, batch_format="pyarrow"):
        out += [Answer.model_validate(r) for r in batch.to_pylist()]
    order = {r["id"]: i for i, r in enumerate(rows)}
    return sorted(out, key=lambda a: order.get(a.id, 0))


def answer_counts(answers: Sequence[Answer]) -> dict[str, Any]:
    """Counts per status and per locale, and tokens generated per answered question."""
    answered = [a for a in answers if a.status == "answered"]
    by_locale: dict[str, Counter] = {}
    for a in answers:
        by_locale.setdefault(a.locale, Counter())[a.status] += 1
    return {"questions": len(answers), "by_status": {s: sum(a.status == s for a in answers) for s in STATUSES},
            "by_locale": {k: dict(v) for k, v in sorted(by_locale.items())},
            "drafted_by": dict(Counter(a.drafted_by for a in answered)),
            "tokens": sum(a.tokens for a in answers),
            "tokens_per_answered": round(sum(a.tokens for a in answered) / len(answered), 2) if answered else 0.0}


def write_answers(answers: Sequence[Answer], out: str, settings: Settings) -> None:
    """JSONL, CSV (cites and candidates `;`-joined) or Parquet by the file's extension, local or s3://."""
    rows = [a.model_dump() for a in answers]
    suffix = out.rsplit(".", 1)[-1].lower() if "." in out else ""
    if suffix == "parquet":
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([{k: r[k] for k in ANSWER_SCHEMA.names} for r in rows],
                                            schema=ANSWER_SCHEMA), buf)
        data = buf.getvalue()
    elif suffix == "csv":
        import csv

        s = io.StringIO()
        w = csv.DictWriter(s, fieldnames=list(rows[0]) if rows else list(Answer.model_fields))
        w.writeheader()
        for r in rows:
            w.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in r.items()})
        data = s.getvalue().encode("utf-8")
    elif suffix == "jsonl":
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    else:
        raise ValueError(f"--out {out}: use a .jsonl, .csv or .parquet file")
    if "://" not in out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_bytes(out, data, settings.s3)


def run_answer(questions: str, out: str, settings: Settings, *, catalog: str | None = None, alias: str | None = None,
               workdir: str | Path | None = None, console: Console | None = None) -> dict[str, Any]:
    """`shopgen answer`: answers every valid question of `questions` from `catalog` or the index `alias`."""
    console = console or Console(stderr=True)
    work = Path(workdir or Path(settings.home) / "answers")
    rep, qpath, rpath = start_run("answer", work, settings, questions=str(questions), out=str(out),
                                  catalog=catalog, alias=alias)
    rep.data["outputs"]["answers"] = str(out)
    with running(rep, qpath, rpath, console):
        with rep.stage("validate", console) as st:
            qs, bad, _ = read_questions(questions, settings.s3)
            append_quarantine(qpath, bad)
            st.update(valid=len(qs), invalid=len(bad))
        es = None
        if alias:
            from indexing.client import make_client

            es = make_client(settings)
        source = Source(settings, catalog=catalog, alias=alias, es=es)
        append_quarantine(qpath, list(source.invalid))
        with rep.stage("match", console) as st:
            rows = source.rows(qs)
            st.update(with_product=sum(r["product"] is not None for r in rows))
        ctx = answer_context(settings, source)
        with ray_session(settings), rep.stage("answer", console) as st:
            answers = answer_all(rows, settings, ctx)
            st.update(answer_counts(answers)["by_status"])
        write_answers(answers, out, settings)
        rep.data["answers"] = answer_counts(answers)
        rep.data["status"] = "succeeded"
    return rep.data


def run_eval_answers(questions: str, settings: Settings, *, catalog: str | None = None, alias: str | None = None,
                     out: str | None = None, workdir: str | Path | None = None,
                     console: Console | None = None) -> dict[str, Any]:
    """`shopgen eval-answers`: answers labelled questions (rows with `expected`) and scores them
    (shopgen.answers.evaluate): correct_rate, wrong_rate, refusal_rate, n, and the same per status,
    locale and kind. Rows without a label are answered but not scored."""
    from shopgen.answers.evaluate import Expected, grade, summary

    console = console or Console(stderr=True)
    work = Path(workdir or Path(settings.home) / "eval-answers")
    rep, qpath, rpath = start_run("eval-answers", work, settings, questions=str(questions), catalog=catalog, alias=alias)
    with running(rep, qpath, rpath, console):
        qs, bad, labels = read_questions(questions, settings.s3, with_expected=True)
        append_quarantine(qpath, bad)
        expected: dict[str, Expected] = {}
        for q in qs:
            try:
                expected[q.id] = Expected.model_validate(labels.get(q.id))
            except ValueError:
                pass
        es = None
        if alias:
            from indexing.client import make_client

            es = make_client(settings)
        source = Source(settings, catalog=catalog, alias=alias, es=es)
        rows = source.rows(qs)
        ctx = answer_context(settings, source)
        with ray_session(settings), rep.stage("answer", console):
            answers = answer_all(rows, settings, ctx)
        if out:
            write_answers(answers, out, settings)
        scored = [(a, expected[a.id]) for a in answers if a.id in expected]
        rep.data["eval"] = summary(scored)
        rep.data["grades"] = {a.id: grade(a, e) for a, e in scored}
        rep.data["answers"] = answer_counts(answers)
        rep.data["unlabelled"] = len(answers) - len(scored)
        rep.data["status"] = "succeeded"
    return rep.data
