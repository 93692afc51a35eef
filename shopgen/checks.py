"""The quality gate: pure checks over one generated output (or, for near-duplicates, a run's
outputs). Each returns a machine-readable CheckResult; none does I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shopgen.records import Product

CHECKS = ("schema", "language", "banned_claims", "faithfulness", "injection")


@dataclass
class CheckResult:
    check: str
    passed: bool
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    for a, b in SYNONYMS.items():
        t = re.sub(rf"\b{a}\b", b, t)
    return t


SYNONYMS = {"aluminium": "aluminum", "grey": "gray", "colour": "color", "stainless-steel": "stainless steel"}

# ---- language --------------------------------------------------------------------------------
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def check_language(texts: Sequence[str], locale: str) -> CheckResult:
    blob = "".join(texts)
    cjk, latin = len(_CJK.findall(blob)), len(_LATIN.findall(blob))
    if locale.lower().startswith("zh"):
        ok = cjk > 0 and cjk >= 0.5 * (cjk + latin / 4)
        return CheckResult("language", ok, [] if ok else ["zh-CN product needs Chinese copy"])
    ok = cjk <= 0.05 * max(1, cjk + latin)
    return CheckResult("language", ok, [] if ok else [f"{locale} product got non-Latin (CJK) copy"])


# ---- banned claims ---------------------------------------------------------------------------
DEFAULT_BANNED: dict[str, list[str]] = {
    "price_shipping_discount": [r"\bfree shipping\b", r"\bshipping\b", r"\bdiscount(s|ed)?\b", r"\b\d+\s?% off\b",
                                r"\bon sale\b", r"[$€£¥]\s?\d", r"\bprices?\b", r"\bcheap(est|er)?\b", r"\bcoupons?\b",
                                r"\bbargain\b", "包邮", "折扣", "优惠", "特价", "价格"],
    "contact_url": [r"https?://", r"\bwww\.", r"\b[\w.+-]+@[\w-]+\.[a-z]{2,}\b", r"\b[\w-]+\.(com|net|org|io|cn|shop)\b",
                    r"\b(call|phone|whatsapp|email) us\b", r"\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b", "联系我们", "电话"],
    "superlative_guarantee": [r"\bbest\b", r"#\s?1\b", r"\bnumber one\b", r"\bguarantee[sd]?\b", r"\bunbeatable\b",
                              r"\bworld'?s (finest|greatest)\b", r"\b100% (safe|satisfaction)\b", "最好", "第一", "保证", "最佳"],
    "health_claim": [r"\bcures?\b", r"\bheals?\b", r"\bclinically proven\b", r"\bfda\b", r"\bprevents? (disease|illness|cancer)\b",
                     r"\bboosts? (your )?immun", r"\bweight loss\b", r"\bmedical grade\b", "治疗", "治愈", "药效"],
}


def check_banned(texts: Sequence[str], product_text: str, rules: dict[str, list[str]] | None = None) -> CheckResult:
    """A banned phrase fails the row unless the seller's own data states it (e.g. 'treated')."""
    rules = DEFAULT_BANNED if rules is None else rules
    out, src = norm(" \n ".join(texts)), norm(product_text)
    hits = []
    for category, patterns in rules.items():
        for pat in patterns:
            for m in re.finditer(pat, out, flags=re.I):
                if not re.search(re.escape(m.group(0)), src, flags=re.I):
                    hits.append(f"{category}: {m.group(0)!r}")
    hits = list(dict.fromkeys(hits))
    return CheckResult("banned_claims", not hits, hits)


# ---- attribute faithfulness ------------------------------------------------------------------
MATERIALS = ["cotton", "wool", "merino", "silk", "linen", "leather", "suede", "nylon", "polyester", "spandex", "elastane",
             "fleece", "down", "canvas", "denim", "cork", "bamboo", "jute", "rubber", "silicone", "plastic", "glass",
             "ceramic", "porcelain", "stainless steel", "carbon steel", "steel", "cast iron", "iron", "aluminum",
             "titanium", "copper", "brass", "bronze", "gold", "silver", "wood", "oak", "walnut", "maple", "teak",
             "carbon fiber", "fiberglass", "gore-tex", "kevlar", "tritan", "acrylic", "cashmere", "hemp", "latex",
             "棉", "羊毛", "真丝", "皮革", "尼龙", "涤纶", "不锈钢", "钛", "铝", "铜", "竹", "软木", "硅胶", "陶瓷", "玻璃"]
COLORS = ["black", "white", "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "gray", "beige",
          "navy", "teal", "olive", "maroon", "burgundy", "ivory", "cream", "tan", "khaki", "charcoal", "turquoise",
          "lavender", "saffron", "ochre", "coral", "mint", "indigo", "crimson", "scarlet", "gold", "silver",
          "黑色", "白色", "红色", "蓝色", "绿色", "黄色", "橙色", "紫色", "粉色", "棕色", "灰色", "米色"]
SIZES = [r"\bxxs\b", r"\bxs\b", r"\bxl\b", r"\bxxl\b", r"\bxxxl\b", r"\b[2-5]xl\b", r"\bsize \w+"]
UNITS = {"mm": "mm", "millimeter": "mm", "millimeters": "mm", "cm": "cm", "centimeter": "cm", "centimeters": "cm",
         "m": "m", "meter": "m", "meters": "m", "km": "km", "in": "in", "inch": "in", "inches": "in", "ft": "ft",
         "g": "g", "gram": "g", "grams": "g", "kg": "kg", "kilogram": "kg", "kilograms": "kg", "oz": "oz",
         "lb": "lb", "lbs": "lb", "pound": "lb", "pounds": "lb", "l": "l", "liter": "l", "liters": "l", "litre": "l",
         "litres": "l", "ml": "ml", "w": "w", "watt": "w", "watts": "w", "v": "v", "mah": "mah", "wh": "wh",
         "lumen": "lm", "lumens": "lm", "lm": "lm", "°c": "°c", "°f": "°f", "hz": "hz", "db": "db",
         "毫米": "mm", "厘米": "cm", "克": "g", "千克": "kg", "公斤": "kg", "升": "l", "毫升": "ml", "瓦": "w"}
_NUM = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:[.,]\d+)*)\s*([a-z°\u4e00-\u9fff]+)?", re.I)


def _numbers_units(text: str) -> tuple[set[str], set[str]]:
    nums, units = set(), set()
    for m in _NUM.finditer(text):
        raw = m.group(1).replace(",", "")
        try:
            nums.add(f"{float(raw):g}")
        except ValueError:
            continue
        u = (m.group(2) or "").lower()
        if u in UNITS:
            units.add(UNITS[u])
        else:  # a unit glued to a CJK suffix, e.g. 500毫升
            for k, v in UNITS.items():
                if u.startswith(k) and not k.isascii():
                    units.add(v)
    return nums, units


def product_text(p: Product) -> str:
    """Everything the seller stated, attribute names included (weight_g says the unit is grams)."""
    parts = [p.title, p.brand or "", p.category or "", p.description or ""]
    for k, v in p.attributes.items():
        parts.append(k.replace("_", " "))
        parts.append(" ".join(map(str, v)) if isinstance(v, list) else str(v))
    return "\n".join(parts)


def _attr_key_units(p: Product) -> set[str]:
    out = set()
    for k in p.attributes:
        suffix = k.rsplit("_", 1)[-1].lower()
        if suffix in UNITS:
            out.add(UNITS[suffix])
    return out


def check_faithfulness(texts: Sequence[str], p: Product, brands: Iterable[str] = (),
                       materials: Sequence[str] = MATERIALS, colors: Sequence[str] = COLORS) -> CheckResult:
    """Every number, unit, material, colour, size and brand in the output must be in the input."""
    # "1. ..." or "- ..." enumerators in bullets are layout, not facts.
    texts = [re.sub(r"^\s*(\d{1,2}[.)、．]\s*|[-*•]\s+)", "", t) for t in texts]
    src, out = norm(product_text(p)), norm(" \n ".join(texts))
    src_nums, src_units = _numbers_units(src)
    src_units |= _attr_key_units(p)
    out_nums, out_units = _numbers_units(out)
    bad = [f"number {n}" for n in sorted(out_nums - src_nums)]
    bad += [f"unit {u}" for u in sorted(out_units - src_units)]
    for kind, vocab in (("material", materials), ("color", colors)):
        for w in vocab:
            pat = rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w)
            if re.search(pat, out) and not re.search(pat, src):
                bad.append(f"{kind} {w}")
    for pat in SIZES:
        for m in re.finditer(pat, out):
            if m.group(0) not in src:
                bad.append(f"size {m.group(0)}")
    own = norm(p.brand or "")
    for b in brands:
        nb = norm(b)
        if nb and nb != own and re.search(rf"\b{re.escape(nb)}\b", out) and nb not in src:
            bad.append(f"brand {b}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("faithfulness", not bad, bad)


# ---- prompt injection ------------------------------------------------------------------------
INJECTION = [r"ignore (all |any |the )?(previous|prior|above|earlier) (instructions|prompts?|rules)",
             r"disregard (all |the )?(previous|prior|above|earlier)", r"forget (all |your )?(previous )?instructions",
             r"you are now\b", r"system prompt", r"new instructions?:", r"instead,? (write|say|output|respond)",
             r"忽略(之前|以上|前面|上述)", r"无视(之前|以上|前面|上述)"]
OFF_TASK = [r"\bas an ai\b", r"\bi (cannot|can't|won't)\b", r"\bi'm sorry\b", r"\bignore (previous|all|the above)\b",
            r"\binstructions?\b", r"\bsystem prompt\b"]
_STOP = set("the and for with that this from your you are was were have has will into about them then than "
            "write say output respond instead only just all any".split())


def injected_payloads(p: Product) -> list[str]:
    """Seller text from an injection trigger to the end of its sentence or field."""
    out = []
    for text in [p.title, p.description or "", *map(str, p.attributes.values())]:
        for pat in INJECTION:
            for m in re.finditer(pat, text, flags=re.I):
                out.append(re.split(r"(?<=[.!?。！？])\s", text[m.start():], maxsplit=1)[0])
    return out


def check_injection(texts: Sequence[str], p: Product) -> CheckResult:
    out = norm(" \n ".join(texts))
    bad = [f"off-task text {m.group(0)!r}" for pat in OFF_TASK for m in [re.search(pat, out)] if m]
    for payload in injected_payloads(p):
        words = {w for w in re.findall(r"[a-z0-9\u4e00-\u9fff']{4,}", norm(payload)) if w not in _STOP}
        hit = {w for w in words if re.search(rf"\b{re.escape(w)}\b", out)}
        if words and len(hit) >= max(1, 0.5 * len(words)):
            bad.append(f"follows injected instruction {payload[:80]!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("injection", not bad, bad)


# ---- near-duplicates across a run --------------------------------------------------------------
def _shingles(text: str, n: int = 3) -> set[str]:
    t = norm(text)
    toks = list(re.sub(r"\s+", "", t)) if _CJK.search(t) else re.findall(r"\w+", t)
    return {" ".join(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))}


def near_duplicates(items: Sequence[tuple[str, str]], threshold: float = 0.9, num_perm: int = 128) -> dict[str, str]:
    """sku -> earlier sku whose copy is identical or near-identical (MinHash LSH on word 3-shingles)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    exact: dict[str, str] = {}
    dups: dict[str, str] = {}
    for sku, text in items:
        key = re.sub(r"\W+", " ", norm(text)).strip()
        if not key:
            continue
        if key in exact:
            dups[sku] = exact[key]
            continue
        exact[key] = sku
        mh = MinHash(num_perm=num_perm)
        for s in _shingles(text):
            mh.update(s.encode("utf-8"))
        found = lsh.query(mh)
        if found:
            dups[sku] = sorted(found)[0]
        lsh.insert(sku, mh)
    return dups
