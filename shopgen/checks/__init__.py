"""The quality gate on generated copy: one module per check family, each a pure function
(texts, product, ...) -> CheckResult, composed in shopgen.checks.gate. No I/O anywhere."""

from shopgen.checks.banned import DEFAULT_BANNED, check_banned
from shopgen.checks.base import CheckResult, norm, product_text
from shopgen.checks.claims import DEFAULT_CLAIMS, check_claims
from shopgen.checks.degeneration import check_degeneration
from shopgen.checks.duplicates import near_duplicates
from shopgen.checks.entities import check_entities
from shopgen.checks.faithfulness import check_faithfulness
from shopgen.checks.gate import CHECKS, COPY_CHECKS, copy_checks
from shopgen.checks.injection import check_injection
from shopgen.checks.language import check_language
from shopgen.checks.placeholders import check_placeholders
from shopgen.checks.wrong_product import check_wrong_product

__all__ = ["CHECKS", "COPY_CHECKS", "DEFAULT_BANNED", "DEFAULT_CLAIMS", "CheckResult", "check_banned", "check_claims",
           "check_degeneration", "check_entities", "check_faithfulness", "check_injection", "check_language",
           "check_placeholders", "check_wrong_product", "copy_checks", "near_duplicates", "norm", "product_text"]
