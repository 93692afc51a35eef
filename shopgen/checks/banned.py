"""banned_claims: price, shipping, discount, contact, superlative and health phrases (configurable, qa.banned_claims)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, norm

# ---- banned claims ---------------------------------------------------------------------------
DEFAULT_BANNED: dict[str, list[str]] = {
    "price_shipping_discount": [r"\bfree shipping\b", r"\bshipping\b", r"\bdiscount(s|ed)?\b", r"\b\d+\s?% off\b",
                                r"\bon sale\b", r"[$€£¥]\s?\d", r"\bprices?\b", r"\bcheap(est|er)?\b", r"\bcoupons?\b",
                                r"\bbargain\b", "包邮", "折扣", "优惠", "特价", "价格"],
    "contact_url": [r"https?://", r"\bwww\.", r"\b[\w.+-]+@[\w-]+\.[a-z]{2,}\b", r"\b[\w-]+\.(com|net|org|io|cn|shop)\b",
                    r"\b(call|phone|whatsapp|email) us\b", r"\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b", "联系我们", "电话"],
    "superlative_guarantee": [r"\bbest\b", r"#\s?1\b", r"\bnumber one\b", r"\bguarantee[sd]?\b", r"\bunbeatable\b",
                              r"\bworld'?s (finest|greatest)\b", r"\b100% (safe|satisfaction)\b", "最好", "第一(?!次|步|天|层|眼)", "保证", "最佳"],
    "health_claim": [r"\bcures?\b", r"\bheals?\b", r"\bclinically proven\b", r"\bfda\b", r"\bprevents? (disease|illness|cancer)\b",
                     r"\bboosts? (your )?immun", r"\bweight loss\b", r"\bmedical grade\b",
                     r"\bhealthier\b", r"\bwell[- ]being\b", r"\bwellness\b", "治疗", "治愈", "药效"],
}


def check_banned(texts: Sequence[str], name: str, rules: dict[str, list[str]] | None = None) -> CheckResult:
    """A banned phrase fails the output even when the seller's data says it (the feed is untrusted:
    'the best mug, guaranteed' in an attribute must not reach published copy). Only the product's own
    name (`name`: its title and brand) may carry one, since copy has to be able to name the product."""
    rules = DEFAULT_BANNED if rules is None else rules
    out, src = norm(" \n ".join(texts)), norm(name)
    hits = []
    for category, patterns in rules.items():
        for pat in patterns:
            try:
                found = list(re.finditer(pat, out, flags=re.I))
            except re.error:  # a bad configured pattern must not crash the gate
                continue
            for m in found:
                if not re.search(re.escape(m.group(0)), src, flags=re.I):
                    hits.append(f"{category}: {m.group(0)!r}")
    hits = list(dict.fromkeys(hits))
    return CheckResult("banned_claims", not hits, hits)
