"""banned_claims: price, shipping, discount, contact, superlative and health phrases (configurable, qa.banned_claims)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, norm
from shopgen.core.config import DEFAULT_BANNED


# ---- banned claims ---------------------------------------------------------------------------
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
