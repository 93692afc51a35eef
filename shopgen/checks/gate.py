"""The gate: every check composed over one parsed output. Each check is a pure function
(texts, product, ...) -> CheckResult; an output is accepted when every check passes. The check
names, in order, are CHECKS (schema and language come first and are run by the caller too)."""

from __future__ import annotations

from collections.abc import Sequence

from shopgen.checks.banned import check_banned
from shopgen.checks.base import CheckResult, product_text
from shopgen.checks.claims import check_claims
from shopgen.checks.contradiction import check_contradiction
from shopgen.checks.degeneration import check_degeneration
from shopgen.checks.entities import check_entities
from shopgen.checks.faithfulness import check_faithfulness
from shopgen.checks.form import check_form, check_prompt_echo
from shopgen.checks.grounding import check_grounding
from shopgen.checks.injection import check_injection
from shopgen.checks.language import check_language
from shopgen.checks.numbers import check_number_roles
from shopgen.checks.placeholders import check_placeholders
from shopgen.checks.provenance import check_provenance
from shopgen.checks.puffery import check_puffery
from shopgen.checks.roles import check_roles
from shopgen.checks.untrusted import check_contact
from shopgen.checks.wrong_product import check_wrong_product
from shopgen.core.records import Product

COPY_CHECKS = ("placeholder", "unsupported_claims", "degeneration", "invented_entities", "wrong_product")
# Checks added from the copy audit (docs/COPY_AUDIT.md): facts in the wrong role, text of the wrong
# kind, invented provenance, contradictions, untrusted contact details and copy with no fact at all.
AUDIT_CHECKS = ("contact", "number_roles", "role_confusion", "provenance", "contradiction", "form", "prompt_echo",
                "grounding", "puffery")
CHECKS = ("schema", "language", "banned_claims", "faithfulness", "injection") + COPY_CHECKS + AUDIT_CHECKS


def copy_checks(texts: Sequence[str], p: Product, *, field_names: Sequence[str] = (),
                prose: bool | Sequence[bool] = False, brands: Sequence[str] = (),
                claims: dict[str, list[str]] | None = None) -> list[CheckResult]:
    """All five copy checks, in COPY_CHECKS order."""
    return [check_placeholders(texts), check_claims(texts, p, claims),
            check_degeneration(texts, p, field_names, prose), check_entities(texts, p, brands),
            check_wrong_product(texts, p, brands)]


def faq_pairs(kind: str, texts: Sequence[str]) -> list[tuple[str, str]]:
    """A FAQ's texts come as question, answer, question, answer ..."""
    return list(zip(texts[0::2], texts[1::2])) if kind == "faq" else []


def audit_checks(texts: Sequence[str], p: Product, *, kind: str = "", items: Sequence[str] | None = None,
                 headlines: Sequence[str] = ()) -> list[CheckResult]:
    """The audit's checks, in AUDIT_CHECKS order. `kind`: the content type (an SEO title may be the
    product's name and nothing else, so it is not held to stating a fact)."""
    grounding = check_grounding(texts, p) if kind != "seo_title" else CheckResult("grounding", True)
    return [check_contact(texts), check_number_roles(texts, p), check_roles(texts, p), check_provenance(texts, p),
            check_contradiction(texts), check_form(texts, p, kind, items, headlines, faq_pairs(kind, texts)),
            check_prompt_echo(texts, p),
            grounding, check_puffery(texts, p)]


def gate_checks(texts: Sequence[str], p: Product, *, kind: str = "", items: Sequence[str] | None = None,
                headlines: Sequence[str] = (), field_names: Sequence[str] = (), prose: bool | Sequence[bool] = False,
                brands: Sequence[str] = (), banned: dict[str, list[str]] | None = None,
                claims: dict[str, list[str]] | None = None) -> list[CheckResult]:
    """Every text check after the schema, in CHECKS order (without schema)."""
    name = "\n".join(x for x in (p.title, p.brand) if x)
    return [check_language(texts, p.locale), check_banned(texts, name, banned), check_faithfulness(texts, p, brands),
            check_injection(texts, p),
            *copy_checks(texts, p, field_names=field_names, prose=prose, brands=brands, claims=claims),
            *audit_checks(texts, p, kind=kind, items=items, headlines=headlines)]


def legacy_checks(texts: Sequence[str], p: Product, *, field_names: Sequence[str] = (),
                  prose: bool | Sequence[bool] = False, brands: Sequence[str] = (),
                  banned: dict[str, list[str]] | None = None,
                  claims: dict[str, list[str]] | None = None) -> list[CheckResult]:
    """The gate before the copy audit (no AUDIT_CHECKS; a banned phrase passed when any input field
    said it), kept only so bench/copy_quality.py can measure against it side by side."""
    return [check_language(texts, p.locale), check_banned(texts, product_text(p), banned),
            check_faithfulness(texts, p, brands), check_injection(texts, p),
            *copy_checks(texts, p, field_names=field_names, prose=prose, brands=brands, claims=claims)]
