"""The copy audit's figures (pure): the gate's precision and recall against labels read by people
(docs/COPY_AUDIT.md), per content type and overall, and each check's precision as a rejector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    """One labelled text and what the gate said of it."""

    type: str
    publishable: bool  # the label
    accepted: bool  # the gate's verdict
    failed: tuple[str, ...] = ()  # the checks that failed


@dataclass
class AuditFigures:
    n: int
    precision: dict[str, float | None] = field(default_factory=dict)  # per type and "all"
    recall: dict[str, float | None] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    publishable: dict[str, int] = field(default_factory=dict)
    check_precision: dict[str, float | None] = field(default_factory=dict)  # not publishable / rejected by it
    check_rejected: dict[str, int] = field(default_factory=dict)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def audit_figures(verdicts: Sequence[Verdict]) -> AuditFigures:
    out = AuditFigures(n=len(verdicts))
    for t in sorted({v.type for v in verdicts}) + ["all"]:
        vs = [v for v in verdicts if t in ("all", v.type)]
        acc = [v for v in vs if v.accepted]
        pub = [v for v in vs if v.publishable]
        out.accepted[t], out.publishable[t] = len(acc), len(pub)
        out.precision[t] = _ratio(sum(v.publishable for v in acc), len(acc))
        out.recall[t] = _ratio(sum(v.accepted for v in pub), len(pub))
    for c in sorted({c for v in verdicts for c in v.failed}):
        rej = [v for v in verdicts if c in v.failed]
        out.check_rejected[c] = len(rej)
        out.check_precision[c] = _ratio(sum(not v.publishable for v in rej), len(rej))
    return out


# The gate's audited precision, per type and overall: (precision, texts the gate accepted), over
# tests/data/copy_audit.jsonl and copy_audit_fresh.jsonl together (563 texts labelled by reading;
# tests/test_copy_audit.py recomputes these and fails when they drift).
AUDITED_PRECISION: dict[str, tuple[float | None, int]] = {
    "description": (0.0, 8), "bullets": (None, 0), "seo_title": (1.0, 71), "ad_copy": (None, 0),
    "faq": (0.0, 1), "all": (0.8875, 80),
}
MIN_AUDITED = 5  # fewer accepted texts of a type than this: its precision is the overall one


def publishable_precision(content: str) -> tuple[float | None, str]:
    """The precision that turns an accepted rate into an estimated publishable rate, and its basis:
    the type's own when the audit holds at least MIN_AUDITED accepted texts of it, else all types'."""
    p, n = AUDITED_PRECISION.get(content, (None, 0))
    if n >= MIN_AUDITED:
        return p, content
    return AUDITED_PRECISION["all"][0], "all"
