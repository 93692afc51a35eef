"""Training pairs from the review page: approved and edited texts as fine-tuning examples
(shopgen.finetune.data.Example rows, source `reviewed`, the product as the generator saw it when
the person decided), and rejected texts as negatives (source `rejected`, flagged with the reason:
the SFT recipe keeps only unflagged examples, so it never learns from them; a preference recipe
can pair them with the approved ones)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

from shopgen.adapters.storage import read_bytes
from shopgen.core.config import S3Config
from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import Product
from shopgen.finetune.data import Example, accepted_examples
from shopgen.review.export import decided
from shopgen.review.records import Decision


def train_rows(decisions: Iterable[Decision], prompt: str = "grounded") -> list[dict[str, Any]]:
    """One example row per decided text (the newest decision on it)."""
    out = []
    for d in decided(decisions):
        target = d.published if d.action in ("approve", "edit") else d.text
        if not target:
            continue
        p = Product(**d.product)
        try:
            CONTENT_TYPES[d.type].schema.model_validate(target)
        except ValueError:
            continue
        for ex in accepted_examples([p], {p.sku: {d.type: target}}, [d.type], val_fraction=0.1,
                                    test_fraction=0.0, prompt=prompt):
            row = ex.as_row()
            if d.action == "reject":
                row.update(source="rejected", flags=[f"rejected_by_review: {d.reason or 'other'}"])
            else:
                row["source"] = "reviewed"
            row.update(decision=d.action, reviewer=d.reviewer, decided_at=d.at)
            out.append(row)
    return out


def read_rows(uri: str, s3: S3Config | None = None) -> list[dict[str, Any]]:
    """A `review export --train` file; a line that is not a JSON object is an error naming it."""
    rows = []
    for n, line in enumerate(read_bytes(uri, s3).decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{uri}:{n}: not JSON ({e.msg})") from None
            if not isinstance(r, dict):
                raise ValueError(f"{uri}:{n}: not a JSON object")
            rows.append(r)
    return rows


def reviewed_examples(rows: Iterable[dict[str, Any]], content: Iterable[str], val_fraction: float = 0.1,
                      test_fraction: float = 0.1, seed: int = 0, variant_keys: list[str] | None = None,
                      prompt: str = "grounded") -> list[Example]:
    """The approved and edited texts of an export as training pairs, split like every other source
    (held-out products left out) and prompted with the fine-tuning's prompt. A person judged them
    publishable, so no gate flag drops them; rejected rows are never trained on."""
    content = [c for c in content if c in CONTENT_TYPES]
    out: list[Example] = []
    for r in rows:
        if r.get("source") != "reviewed" or r.get("content") not in content:
            continue
        try:
            p = Product.model_validate_json(r["product"])
            target = json.loads(r["target"])
        except (KeyError, TypeError, ValueError):
            continue  # a row from another tool or version: nothing to learn from
        for ex in accepted_examples([p], {p.sku: {r["content"]: target}}, [r["content"]], val_fraction,
                                    test_fraction, seed, variant_keys, prompt):
            out.append(dataclasses.replace(ex, flags=[], source="reviewed"))
    return out
