"""puffery: vague praise and sweeping generalities that the product's data does not back ('a unique
and high-quality cooking tool', 'designed to be used with any device', 'exceptional performance').
A copy editor strikes them: they state nothing a shopper can check, and a small model uses them to
fill the space where facts should be. One mild word ('durable', 'reliable') passes; strong praise,
a sweeping generality or two mild words fail, unless the input says the same."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, as_texts, negated, norm, product_text, shorten
from shopgen.core.records import Product

STRONG = [r"\bunparall?ell?ed\b", r"\bexceptional(?:ly)?\b", r"\btop[- ]notch\b", r"\bsuperior\b", r"\bstate[- ]of[- ]the[- ]art\b",
          r"\bcutting[- ]edge\b", r"\binnovative\b", r"\bunique(?:ly)?\b", r"\bremarkabl[ey]\b", r"\bluxurious\b",
          r"\bhigh[- ]end\b", r"\bworld[- ]class\b", r"\bmust[- ]have\b", r"\bunmatched\b", r"\bsecond to none\b",
          r"\bbespoke\b", r"\brevolutionary\b", r"\bgame[- ]chang\w*", r"\bultimate\b", r"\bextraordinary\b",
          r"\bstunning\b", r"\bflawless\b", r"\bperfect(?:ly)?\b", r"\bideal\b", r"\bpopular\b", r"\brenowned\b",
          r"\bimpeccabl[ey]\b", r"\bpremium\b", r"\bsuperb\b", r"\bamazing\b", r"\bincredibl[ey]\b", r"\belevate\w*",
          "顶级", "卓越", "完美", "极致", "无与伦比", "独一无二", "革命性", "奢华", "高端"]
MILD = [r"\bdurab\w+", r"\bhigh[- ]quality\b", r"\breliab\w+", r"\bversatil\w+", r"\bstylish\b", r"\blong[- ]lasting\b",
        r"\bsturdy\b", r"\brobust\b", r"\bexcellent\b", r"\bgreat\b", r"\bbeautiful(?:ly)?\b", r"\belegant\b",
        r"\bconvenient\b", r"\bcomfortabl[ey]\b", r"\befficient\b", r"\bsleek\b", r"\bmodern\b", r"\bquality\b",
        "耐用", "优质", "高品质", "可靠", "时尚", "舒适", "精致", "实用"]
SWEEPING = [r"\bany (?:type|kind|device|occasion|weather|season|situation|environment|setting|activity|style|outfit|"
            r"home|room|space|adventure|task|need|one|user|budget)s?\b", r"\ball (?:types|kinds|sorts) of\b",
            r"\bboth indoor and outdoor\b", r"\bindoors? (?:and|or) outdoors?\b", r"\bfor years to come\b",
            r"\bwide (?:range|variety) of\b", r"\bevery (?:need|occasion|taste|budget|home)\b", r"\bwhether you\b",
            r"\bcan withstand\b", r"\bwill (?:love|appreciate|enjoy|impress)\b", r"\bimpress your\b",
            "适合各种", "各种场合", "所有人", "任何场合"]


def _hits(patterns: Sequence[str], out: str, src: str) -> list[str]:
    found = []
    for pat in patterns:
        for m in re.finditer(pat, out, flags=re.I):
            if not negated(out, m.start(), m.end()) and not re.search(pat, src, flags=re.I):
                found.append(m.group(0))
                break
    return found


def check_puffery(texts: Sequence[str], p: Product) -> CheckResult:
    out, src = norm(" \n ".join(as_texts(texts))), norm(product_text(p))
    strong, mild, sweep = _hits(STRONG, out, src), _hits(MILD, out, src), _hits(SWEEPING, out, src)
    bad = [f"praise {shorten(w, 24)!r}" for w in strong] + [f"sweeping claim {shorten(w, 30)!r}" for w in sweep]
    if len(mild) >= 2:
        bad += [f"praise {shorten(w, 24)!r}" for w in mild]
    return CheckResult("puffery", not bad, bad)
