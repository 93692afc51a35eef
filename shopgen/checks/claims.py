"""unsupported_claims: marketing claims (eco, certified, waterproof, ...) the product's own data does not state,
and features its data denies."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from shopgen.checks.base import CheckResult, as_texts, evidence_text, negated, norm
from shopgen.core.records import Product

# ---- unsupported claims ----------------------------------------------------------------------
# claim -> patterns (matched case-insensitively on norm()ed text). A claim in the output passes only
# if the seller's own data matches a pattern of the same claim (or CLAIM_EVIDENCE). "high quality" /
# 优质 and "durable" are deliberately left out: too common and too vague to be worth a retry.
DEFAULT_CLAIMS: dict[str, list[str]] = {
    "eco_friendly": [r"\beco[- ]?(?:friendly|conscious)\b", r"\benvironment(?:ally)?[- ]friendly\b",
                     r"\b(?:planet|earth)[- ]friendly\b", r"\beco\b", "环保"],
    "sustainable": [r"\bsustainab\w*", "可持续"],
    "recycled": [r"\brecycl\w*", r"\bupcycl\w*", "再生", "回收"],
    "organic": [r"\borganic\b", "有机"],
    "handmade": [r"\bhand[- ]?(?:made|crafted|stitched|sewn|forged|finished)\b", "手工"],
    "hypoallergenic": [r"\bhypo[- ]?allergenic\b", r"\ballergy[- ]friendly\b", "低敏", "防过敏", "抗过敏"],
    "waterproof": [r"\bwater[- ]?proof\w*", "防水"],
    "water_resistant": [r"\bwater[- ]?(?:resistant|resistance|repellent|repellency)\b",
                        r"\bsplash[- ]?(?:proof|resistant)\b",
                        r"\bdwr\b", "防泼水", "拒水"],
    "bpa_free": [r"\bbpa[- ]?free\b", r"\bfree (?:of|from) bpa\b", r"不含 ?bpa", r"无 ?bpa"],
    "award_winning": [r"\baward[- ]?winning\b", r"\bawards?\b", r"\bprize[- ]?winning\b", "获奖", "屡获殊荣"],
    "certified": [r"\bcertifi\w*", r"\boeko[- ]?tex\b", r"\bbluesign\b", r"\bfsc\b", "认证"],
    "patented": [r"\bpatent\w*", "专利"],
    "expert_designed": [r"\b(?:designed|developed|engineered|crafted|made) by (?:a team of |our )?experts?\b",
                        r"\bteams? of (?:\w+ )?experts?\b", r"\bexpert(?:ly)?[- ]designed\b",
                        r"\b(?:renowned|famous|leading|world[- ]class|award[- ]winning|expert|master|skilled)"
                        r"(?: \w+)? (?:designers?|engineers?|craftsm[ae]n|artisans?|team)\b",
                        "专家设计", "专家团队", "设计师团队", "知名设计师", "著名设计师", "工匠"],
    "clinical": [r"\bclinical\w*", "临床"],
    "dermatologist": [r"\bdermatolog\w*", "皮肤科"],
    "non_toxic": [r"\bnon[- ]?toxic\b", r"\btoxin[- ]free\b", "无毒"],
    "vegan": [r"\bvegan\b", r"\bcruelty[- ]free\b", "纯素"],
    "fair_trade": [r"\bfair[- ]?trade\b", "公平贸易"],
    "ethically_sourced": [r"\bethical(?:ly)?\b", r"\bresponsibly (?:sourced|made)\b", "道德采购"],
    "antibacterial": [r"\banti[- ]?(?:bacterial|microbial)\b", r"\bgerm[- ]resistant\b", "抗菌", "抑菌"],
    "medical_grade": [r"\bmedical[- ]grade\b", "医用级", "医疗级"],
    "fda_approved": [r"\bfda\b", "美国食品药品"],
    "warranty": [r"\bwarrant(?:y|ies|ed)\b", "保修", "质保"],
    "premium_quality": [r"\b(?:top|premium|superior|finest|highest|exceptional|unmatched|unrivall?ed)[- ]quality\b",
                        "顶级品质", "顶级质量", "卓越品质", "高端品质"],
    "uv_protection": [r"\buv[- ]?(?:protection|protective|resistant|blocking|rays?)\b", r"\bupf\b", r"\bspf\b",
                      "防晒", "防紫外线"],
    "breathable": [r"\bbreathab\w*", "透气"],
    "non_slip": [r"\b(?:non|anti)[- ]?slip\b", r"\bslip[- ]resistant\b", "防滑"],
    "stain_resistant": [r"\bstain[- ]?(?:resistant|proof|repellent)\b", "防污"],
    "dishwasher_safe": [r"\bdishwasher[- ]safe\b", "洗碗机"],
    "microwave_safe": [r"\bmicrowave[- ]safe\b", "微波炉"],
}
# Extra evidence only (never flagged): stronger or equivalent facts that support a claim.
CLAIM_EVIDENCE: dict[str, list[str]] = {
    "water_resistant": [r"\bwater[- ]?proof\w*", r"\bipx?\d", "防水"],
    "waterproof": [r"\bipx?[78]\b", r"\bip6[78]\b"],
    "breathable": [r"\bmesh\b", r"\bventilat\w*", "网布"],
    "eco_friendly": [r"\brecycl\w*", r"\borganic\b", r"\bsustainab\w*", "再生", "有机"],
    "non_slip": [r"\bgrip\w*", "抓地"],
}


def _claim_hit(text: str, patterns: Iterable[str]) -> str | None:
    for pat in patterns:
        try:
            for m in re.finditer(pat, text, flags=re.I):
                if not negated(text, m.start(), m.end()):
                    return m.group(0)
        except re.error:  # a bad configured pattern must not crash the gate
            continue
    return None


_KEY_FILLER = {"included", "compatible", "available", "is", "has", "with", "pct", "g", "mm", "cm", "c"}


def _asserted(pat: str, text: str) -> bool:
    """`pat` occurs in `text` without a negation before ('no pit zips') or after ('is not included')."""
    return any(not negated(text, m.start(), m.end()) for m in re.finditer(pat, text))


def _denied_features(p: Product) -> list[str]:
    """Features the data says the product lacks: {"insulated": false} -> 'insulated'."""
    out = []
    for k, v in p.attributes.items():
        if isinstance(v, bool) and not v or isinstance(v, str) and v.strip().lower() in {"no", "false", "否", "无"}:
            words = [w for w in re.split(r"[_\s]+", k.lower()) if w and w not in _KEY_FILLER]
            if words and all(w.isascii() for w in words):
                out.append(" ".join(words))
    return out


def check_claims(texts: Sequence[str], p: Product, claims: dict[str, list[str]] | None = None) -> CheckResult:
    """Marketing claims (eco, certified, expert-designed, waterproof...) the product's own data does not
    state, and features its data denies ({"insulated": false} -> 'claim 'insulated' (input says no)')."""
    claims = DEFAULT_CLAIMS if claims is None else claims
    out, src = norm(" \n ".join(as_texts(texts))), norm(evidence_text(p))
    bad = []
    for name, patterns in claims.items():
        hit = _claim_hit(out, patterns)
        if hit and not _claim_hit(src, [*patterns, *CLAIM_EVIDENCE.get(name, [])]):
            bad.append(f"claim {' '.join(hit.split())!r}")
    seller = norm(" \n ".join([p.title, p.description or ""]))
    for feat in _denied_features(p):
        pat = r"\b" + r"[\s_-]+".join(map(re.escape, feat.split())) + r"\b"
        # the seller's own text asserting it anyway means it is not the model's invention
        said = {re.sub(r"[\s_-]+", " ", b) for b in bad}
        if _asserted(pat, out) and not _asserted(pat, seller) and f"claim '{feat}'" not in said:
            bad.append(f"claim {feat!r} (input says no)")
    bad = list(dict.fromkeys(bad))
    return CheckResult("unsupported_claims", not bad, bad)
