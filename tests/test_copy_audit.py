"""The gate against the copy audit: generated texts labelled by reading (tests/data/copy_audit.jsonl,
rules in docs/COPY_AUDIT.md). Precision: of the texts the gate accepts, the share labelled
publishable; recall: of the publishable texts, the share the gate accepts."""

import json
from collections import Counter
from pathlib import Path

import pytest

from shopgen.checks.audit import Verdict, audit_figures
from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import Product
from shopgen.generate.engine import GateSpec, evaluate

AUDIT = Path(__file__).parent / "data" / "copy_audit.jsonl"
REASONS = {"ok", "malformed", "wrong_language", "contact_or_claim", "prompt_echo", "wrong_role", "invented_fact",
           "contradiction", "wrong_form", "no_fact", "not_fluent",
           # from the review page (shopgen review export --audit): reasons only a person gives
           "unsafe", "other"}


@pytest.fixture(scope="module")
def records():
    return [json.loads(line) for line in AUDIT.read_text(encoding="utf-8").splitlines() if line.strip()]


def _verdicts(records):
    verdicts = []
    for r in records:
        out, checks = evaluate(r["output"], Product(**r["product"]), CONTENT_TYPES[r["type"]],
                               GateSpec(brands=r.get("brands", [])))
        verdicts.append(Verdict(r["type"], r["publishable"], out is not None,
                                tuple(c.check for c in checks if not c.passed)))
    return verdicts


@pytest.fixture(scope="module")
def verdicts(records):
    return _verdicts(records)


@pytest.fixture(scope="module")
def figures(verdicts):
    f = audit_figures(verdicts)
    print("\ncopy audit:", json.dumps({"n": f.n, "precision": f.precision, "recall": f.recall,
                                       "accepted": f.accepted, "publishable": f.publishable,
                                       "check_precision": f.check_precision}, indent=1))
    return f


def test_the_audit_set_is_large_mixed_and_well_formed(records):
    assert len(records) >= 400
    types = Counter(r["type"] for r in records)
    assert set(types) == set(CONTENT_TYPES) and min(types.values()) >= 40, types
    assert {r["catalog"] for r in records} >= {"bundled", "magento-luma"}
    assert sum(not r["publishable"] for r in records) >= 0.4 * len(records)
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        assert r["reason"] in REASONS and (r["reason"] == "ok") == r["publishable"], r["id"]
        Product(**r["product"])


def test_gate_precision_and_recall_on_the_audit(figures):
    assert figures.precision["all"] >= 0.95, figures.precision
    for t in CONTENT_TYPES:
        if figures.accepted.get(t):
            assert figures.precision[t] >= 0.9, (t, figures.precision)
    assert figures.recall["all"] >= 0.5, figures.recall


def test_audit_figures_arithmetic():
    vs = [Verdict("bullets", True, True), Verdict("bullets", False, True, ()), Verdict("bullets", True, False, ("form",)),
          Verdict("description", False, False, ("form", "grounding"))]
    f = audit_figures(vs)
    assert f.precision == {"bullets": 0.5, "description": None, "all": 0.5}
    assert f.recall == {"bullets": 0.5, "description": None, "all": 0.5}
    assert f.check_precision == {"form": 0.5, "grounding": 1.0}


def test_the_audited_precision_the_finetune_eval_uses_is_the_audits(verdicts):
    """shopgen.checks.audit.AUDITED_PRECISION (used for estimated publishable rates) must be what
    the two labelled sets give under today's gate."""
    from shopgen.checks.audit import AUDITED_PRECISION

    fresh = [json.loads(line) for line in (AUDIT.parent / "copy_audit_fresh.jsonl").read_text(encoding="utf-8")
             .splitlines() if line.strip()]
    f = audit_figures(verdicts + _verdicts([r for r in fresh if "publishable" in r]))
    got = {t: (f.precision.get(t), f.accepted.get(t, 0)) for t in [*CONTENT_TYPES, "all"]}
    assert got == AUDITED_PRECISION, got
