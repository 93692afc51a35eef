"""What people decided, written back out (pure over the decisions):

- audit: one record per decided text in the copy audit set's format (docs/COPY_AUDIT.md), read by
  the gate's precision test as it is: approved texts are publishable (`ok`), rejected ones carry
  their reason in the audit's words, an edited text's original is not publishable (`other`).
- train: shopgen.finetune.reviewed (the fine-tuning's own example rows)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from shopgen.core.content import texts_of
from shopgen.review.night import wilson
from shopgen.review.records import AUDIT_REASON, Decision, text_hash


def decided(decisions: Iterable[Decision]) -> list[Decision]:
    """The newest human decision per (product, type, text)."""
    out: dict[tuple[str, str, str], Decision] = {}
    for d in decisions:
        if d.action != "regenerated" and d.product is not None:
            k = (d.sku, d.type, d.text_hash)
            if k not in out or d.seq > out[k].seq:
                out[k] = d
    return sorted(out.values(), key=lambda d: (d.at, d.sku, d.type))


def audit_records(decisions: Iterable[Decision], catalog: str, brands: list[str]) -> list[dict[str, Any]]:
    out = []
    for d in decided(decisions):
        if not d.text_hash:
            continue
        publishable = d.action == "approve"
        reason = "ok" if publishable else AUDIT_REASON.get(d.reason or "", "other")
        out.append({
            "id": "review-" + text_hash({"sku": d.sku, "type": d.type, "text": d.text_hash})[:12], "catalog": catalog, "sku": d.sku, "type": d.type,
            "product": d.product, "brands": brands, "output": json.dumps(d.text, ensure_ascii=False),
            "texts": texts_of(d.text), "publishable": publishable, "reason": reason,
            "note": d.note or ("edited by a reviewer" if d.action == "edit" else ""),
            "decision": d.action, "review_reason": d.reason, "reviewer": d.reviewer, "decided_at": d.at,
            "audit_sample": d.audit, "gate_accepted": d.gate_accepted, "text_hash": d.text_hash})
    return out


def audit_precision(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The gate's precision on the uniform audit sample: publishable share of the accepted texts
    people decided on, with its 95% Wilson interval."""
    sample = [r for r in records if r["audit_sample"] and r["gate_accepted"]]
    p, lo, hi = wilson(sum(r["publishable"] for r in sample), len(sample))
    allp, alo, ahi = wilson(sum(r["publishable"] for r in records if r["gate_accepted"]),
                            sum(1 for r in records if r["gate_accepted"]))
    return {"records": len(records), "audit_decided": len(sample), "gate_precision": p,
            "gate_precision_ci95": [lo, hi] if p is not None else None,
            # every decided accepted text: the queue puts risky ones first, so this one is biased low
            "decided_precision": allp, "decided_precision_ci95": [alo, ahi] if allp is not None else None}
