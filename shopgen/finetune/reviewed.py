"""Training pairs from the review page: approved and edited texts as fine-tuning examples
(shopgen.finetune.data.Example rows, source `reviewed`, the product as the generator saw it when
the person decided), and rejected texts as negatives (source `rejected`, flagged with the reason:
the SFT recipe keeps only unflagged examples, so it never learns from them; a preference recipe
can pair them with the approved ones)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import Product
from shopgen.finetune.data import accepted_examples
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
