"""Real shoppers' questions: Amazon-PQA (Amazon's product question-answer dataset, CDLA-Permissive-1.0,
registry.opendata.aws/amazon-pqa). Each row has a shopper's question on a product page, the product's
facts (title, brand, five bullet points, description), the shoppers' answers and their aggregate
(yes / no / neutral for yes-no questions). Nothing of it is in this repository: pass a JSONL file of
its rows with --data (one category file of the dataset, or a slice of one).

    .venv/bin/python bench/amazon_pqa.py --data amazon_pqa_headsets.json [--limit N] [--llm] [--json]

The products become shopgen catalog rows (the bullets are the description's sentences), the questions
are answered from them (extractive answers only unless --llm), and it reports how many are answered,
refused or not in the catalog, and, on the yes-no questions answered with a verdict whose shoppers
agreed on yes or no, how often the verdict is theirs. The shoppers' answers draw on more than the
listing (use, experience), so agreement is measured only where shopgen answered. With --json the last
line is one JSON object; `--samples FILE` writes every answered question for reading."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def product_of(row: dict) -> dict:
    bullets = [str(row.get(f"bullet_point{i}") or "").strip() for i in range(1, 6)]
    text = " ".join(b if b.endswith((".", "!", "?")) else b + "." for b in bullets if b)
    desc = " ".join(x for x in (text, str(row.get("product_description") or "").strip()) if x)
    return {"sku": row["asin"], "title": row.get("item_name") or row["asin"], "brand": row.get("brand_name") or None,
            "description": desc or None, "locale": "en-US"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="Amazon-PQA rows, JSONL")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--llm", action="store_true", help="also draft with the LLM (answers.candidates; slower)")
    ap.add_argument("--samples", default=None, help="write every answered question here (JSONL)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from shopgen.answers.engine import Answerer, context, input_row
    from shopgen.answers.facts import product_facts
    from shopgen.answers.resolve import vocabulary
    from shopgen.core.config import load_settings
    from shopgen.core.records import Product

    rows = [json.loads(x) for x in Path(a.data).read_text(encoding="utf-8").splitlines() if x.strip()][:a.limit]
    products = {}
    for r in rows:
        try:
            products.setdefault(r["asin"], Product.model_validate(product_of(r)))
        except ValueError:
            continue
    settings = load_settings(answers={"policies": str(ROOT / "data" / "policies.md"),
                                      **({} if a.llm else {"candidates": 0})})
    ctx = context(settings, vocabulary([f for p in products.values() for f in product_facts(p)]), None)
    t0 = time.perf_counter()
    answerer = Answerer(None, settings, ctx) if not a.llm else None
    if answerer is None:
        from shopgen.adapters import models

        answerer = Answerer(models.resolve(models.answerer_ref(settings), settings), settings, ctx)
    inputs = [input_row(r["question_id"], r["question_text"], r["asin"], None, products.get(r["asin"])) for r in rows]
    answers = answerer.answer(inputs)
    secs = time.perf_counter() - t0
    by_row = {r["question_id"]: r for r in rows}
    agree = disagree = 0
    for ans in answers:
        r = by_row[ans.id]
        verdict = ans.answer.split(".")[0].strip().lower() if ans.status == "answered" else ""
        if r.get("question_type") == "yes-no" and r.get("answer_aggregated") in ("yes", "no") and verdict in ("yes", "no"):
            agree += verdict == r["answer_aggregated"]
            disagree += verdict != r["answer_aggregated"]
    status = Counter(x.status for x in answers)
    res = {"questions": len(answers), "products": len(products), "by_status": dict(status),
           "answered_share": round(status["answered"] / max(1, len(answers)), 4),
           "yes_no_verdicts": agree + disagree, "verdict_agreement": round(agree / max(1, agree + disagree), 4),
           "seconds": round(secs, 2), "llm": a.llm}
    if a.samples:
        Path(a.samples).write_text("".join(json.dumps({**x.model_dump(), "shoppers": by_row[x.id].get("answer_aggregated"),
                                                       "shoppers_answers": [y.get("answer_text") for y in by_row[x.id].get("answers", [])][:3]})
                                           + "\n" for x in answers if x.status == "answered"), encoding="utf-8")
    print(json.dumps(res) if a.json else "\n".join(f"{k}: {v}" for k, v in res.items()))


if __name__ == "__main__":
    main()
