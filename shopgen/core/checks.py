"""The quality gate: pure checks over one generated output (or, for near-duplicates, a run's
outputs). Each returns a machine-readable CheckResult; none does I/O."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shopgen.core.records import Product

COPY_CHECKS = ("placeholder", "unsupported_claims", "degeneration", "invented_entities", "wrong_product")
CHECKS = ("schema", "language", "banned_claims", "faithfulness", "injection") + COPY_CHECKS


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


# =================================================================================================
# Copy checks: pure heuristics for the failure modes seen in real nightly output (template slots,
# invented claims and names, loops, the wrong product). Every detail is a short string naming the
# offending token, because it is fed back verbatim into the retry prompt.
# =================================================================================================

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’&-][A-Za-z0-9]+)*")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
# English sentences end at .!? followed by space (so "3.5 mm" stays whole); Chinese ones at 。！？.
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])|\n+")
STOPWORDS = frozenset("""a an the and or but nor so yet of to in on at by for with from into onto over under about as
    is are was were be been being am it its it's this that these those there here their they them you your yours we
    our ours us he she his her i me my mine what which who whom whose when where why how all any each every both
    few more most other some such no not only own same than too very can will just should would could may might
    must do does did done has have had having if then else also up down out off again further once per via yes
    one two three four five six""".split())


def _as_texts(texts: Any) -> list[str]:
    """Tolerate a bare string, None items or non-strings: a check must never raise on odd input."""
    if texts is None:
        return []
    if isinstance(texts, str):
        return [texts]
    return ["" if t is None else t if isinstance(t, str) else str(t) for t in texts]


def _short(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_SPLIT.split(text) if s and s.strip()]


def _n_words(text: str) -> int:
    return len(_WORD.findall(_CJK.sub(" ", text)))


def _n_cjk(text: str) -> int:
    return len(_CJK.findall(text))


def _stem(w: str) -> str:
    """Crude singular form so 'sleepers'/'Sleeper's' match 'sleeper'."""
    w = w.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w


def _tokens(text: str) -> set[str]:
    """Lower-cased word stems, with hyphen/ampersand parts too ('gore-tex' -> gore-tex, gore, tex)."""
    out = set()
    for w in _WORD.findall(unicodedata.normalize("NFKC", text)):
        out.add(_stem(w))
        for part in re.split(r"[-&'’]", w):
            if part:
                out.add(_stem(part))
    return out


_FALSY = {"", "false", "no", "none", "n/a", "na", "0", "null", "not included", "否", "无", "不", "没有", "不含"}


def _is_falsy(v: Any) -> bool:
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v == 0
    if isinstance(v, list):
        return all(_is_falsy(x) for x in v)
    return str(v).strip().lower() in _FALSY


def _evidence_text(p: Product) -> str:
    """product_text without attributes whose value says 'no': {"waterproof": false} is not evidence."""
    parts = [p.title, p.brand or "", p.category or "", p.description or ""]
    for k, v in p.attributes.items():
        if _is_falsy(v):
            continue
        parts.append(k.replace("_", " "))
        parts.append(" ".join(map(str, v)) if isinstance(v, list) else str(v))
    return "\n".join(parts)


# ---- placeholders and template residue ---------------------------------------------------------
# (label, pattern), tried in order; each match is blanked so a later pattern does not report it again.
PLACEHOLDER_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("template residue", re.compile(r"<\|[^<>|\n]{1,30}\|>")),                        # <|im_end|>
    ("template residue", re.compile(r"\[/?INST\]|<</?SYS>>|</?s>", re.I)),
    ("placeholder", re.compile(r"\{\{[^{}\n]{0,40}\}\}|\{[A-Za-z_\u4e00-\u9fff][^{}\n]{0,40}\}")),  # {color} {{x}}
    ("placeholder", re.compile(r"\[(?=[^\]\n]*[A-Za-z\u4e00-\u9fff])[^\[\]\n]{1,60}\]")),        # [Company Name]
    ("template residue", re.compile(r"</\s*[A-Za-z_][\w.-]{0,30}\s*>|<\s*(?:product|p|br|div|span|ul|li|b|i|strong|em|"
                                    r"h\d|json|output|input|response|answer|text|description|title)\b[^<>\n]{0,30}>",
                                    re.I)),                                                 # </product> <br/>
    ("placeholder", re.compile(r"<\s*[A-Za-z_][\w .-]{0,30}>")),                           # <brand>
    # 【】 is ordinary Chinese title punctuation; only a slot-like content is a placeholder.
    ("placeholder", re.compile(r"【[^【】\n]{0,12}(?:名称|品牌名|产品名|商品名|型号|[Xx]{2,}|某|插入|填写|地址|公司|链接)"
                               r"[^【】\n]{0,12}】")),
    ("placeholder", re.compile(r"lorem ipsum|dolor sit amet", re.I)),
    ("placeholder", re.compile(r"\b(?:TBD|TBA|TODO|FIXME)\b")),
    ("placeholder", re.compile(r"\binsert\b[^.\n]{0,30}?\bhere\b|\b(?:your|brand|company|product) name here\b", re.I)),
    ("placeholder", re.compile(r"(?<![A-Za-z0-9])[Xx]{2,}(?![A-Za-z0-9-])|某某|待定|待补充")),  # XX品牌, XXX, 某某
    ("template residue", re.compile(r"^\s*(?:assistant|user|system|human|<\|?assistant\|?>)\s*[:：]", re.I)),
    ("template residue", re.compile(r"```|\\[nt\"]|\*\*|^#{1,6}\s", re.M)),                 # code fence, \n, markdown
    ("template residue", re.compile(r"\"\s*[}\]]|[{\[]\s*\"|[{}]")),                      # json-ish braces
]
_TERMINAL = ".!?。！？\"'”’)）】」』»"
_TRAIL_CONNECTIVE = re.compile(r"(?:[,;:，、；：(（\-–—]|\b(?:and|or|the|with|a|an|of|to|for|in|on|by|from|but|that|"
                               r"which|its|your|our|plus)|[和与及或的])\s*$", re.I)


def _is_emoji(ch: str) -> bool:
    return ord(ch) >= 0x2190 and unicodedata.category(ch) == "So"


def _symbol_runs(text: str) -> list[str]:
    """Runs of one emoji twice or one symbol three times ('🎮🎮', '!!!', '★★★'); '...' and '——' are prose."""
    t = re.sub("[\ufe0f\u200d]", "", text)
    out = []
    for m in re.finditer(r"(\S)\1+", t):
        ch, run = m.group(1), m.group(0)
        if _is_emoji(ch) or (len(run) >= 3 and unicodedata.category(ch)[0] in "PS" and ch not in ".。-—–_=·"):
            out.append(run)
    return out


def _unfinished(text: str) -> str | None:
    """The ending of long prose cut off mid-sentence; short headlines and bullets may lack a period."""
    t = text.rstrip()
    while t and (_is_emoji(t[-1]) or t[-1] in "\ufe0f\u200d "):  # a trailing emoji is not the ending
        t = t[:-1].rstrip()
    words, cjk = _n_words(t), _n_cjk(t)
    if words < 15 and cjk < 40:
        return None
    last = t.rsplit("\n", 1)[-1]  # copy may end in a short list line without a period
    tail = _short(last[-30:].split(" ", 1)[-1] if not _n_cjk(last) else last[-12:], 30)
    if _TRAIL_CONNECTIVE.search(t) or t.endswith(("...", "…")):
        return tail
    if (_n_words(last) >= 40 or _n_cjk(last) >= 60) and t[-1] not in _TERMINAL:  # prose ends its sentence
        return tail
    return None


def check_placeholders(texts: Sequence[str]) -> CheckResult:
    """Unfilled template slots, prompt/markup residue, symbol spam and prose cut off mid-sentence."""
    bad: list[str] = []
    for text in _as_texts(texts):
        work = unicodedata.normalize("NFKC", text)  # fullwidth ［品牌］ and ｛｝ read as [ ] and { }
        for label, pat in PLACEHOLDER_PATTERNS:
            for m in pat.finditer(work):
                bad.append(f"{label} {_short(m.group(0).strip(), 30)!r}")
            work = pat.sub(lambda m: " " * len(m.group(0)), work)
        bad += [f"symbol run {r!r}" for r in _symbol_runs(text)]
        tail = _unfinished(text)
        if tail is not None:
            bad.append(f"unfinished ending {tail!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("placeholder", not bad, bad)


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
# "not waterproof", "does not come with a sheath", "non-recycled", "不防水": a negated mention is
# neither a claim nor evidence. Negation reaches back to the start of the clause ("not only" aside).
_NEGATION = re.compile(r"\b(?:not|no|non|without|never|nor|neither|lacks?|lacking)\b(?! only| just)|n't\b", re.I)
_NEGATION_ZH = re.compile(r"(?:[不非无没未]|[不没][可会能有含带]|不是|并非|并不)$")  # right before: 不防水, 没有认证
_NEGATED_AFTER = re.compile(r"^[\w\s-]{0,20}?\b(?:is|are|was|were|comes?)\s+(?:not|n't|never)\b|^\s*(?:sold separately|"
                            r"not included)", re.I)


def _negated(text: str, start: int, end: int | None = None) -> bool:
    clause = re.split(r"[.!?;,:。！？；，、\n]", text[max(0, start - 80):start])[-1]
    if _NEGATION.search(clause) or _NEGATION_ZH.search(clause):
        return True
    if end is None:
        return False
    stop = re.search(r"[.!?。！？\n]", text[end:])
    if stop and stop.group(0) in "?？":  # a question ("Does it have pit zips?") asserts nothing
        return True
    return bool(_NEGATED_AFTER.search(text[end:end + 40]))


def _claim_hit(text: str, patterns: Iterable[str]) -> str | None:
    for pat in patterns:
        try:
            for m in re.finditer(pat, text, flags=re.I):
                if not _negated(text, m.start(), m.end()):
                    return m.group(0)
        except re.error:  # a bad configured pattern must not crash the gate
            continue
    return None


_KEY_FILLER = {"included", "compatible", "available", "is", "has", "with", "pct", "g", "mm", "cm", "c"}


def _asserted(pat: str, text: str) -> bool:
    """`pat` occurs in `text` without a negation before ('no pit zips') or after ('is not included')."""
    return any(not _negated(text, m.start(), m.end()) for m in re.finditer(pat, text))


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
    out, src = norm(" \n ".join(_as_texts(texts))), norm(_evidence_text(p))
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


# ---- degeneration ----------------------------------------------------------------------------
# Names of output-schema fields; a text that is one of them (or a snake_case key / "key": residue)
# means the model echoed the schema instead of writing copy. Callers add their schema's own names.
DEFAULT_FIELD_NAMES = ("description", "descriptions", "bullets", "bullet", "bullet point", "bullet points", "seo_title",
                       "ad_headlines", "ad_descriptions", "headline", "headlines", "faq", "question", "answer",
                       "title", "product_name", "name", "text", "content", "output", "json",
                       "描述", "标题", "卖点", "问题", "答案", "广告标题", "广告描述", "商品描述")
_SNAKE = re.compile(r"(?<![A-Za-z0-9_])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![A-Za-z0-9_])")
_JSON_KEY = re.compile(r"\"[^\"\n]{1,30}\"\s*:")
_REPEAT_WORD = re.compile(r"\b(\w+)(?:[\s,]+\1\b){3,}", re.I)   # 'very very very very'
_REPEAT_CHAR = re.compile(r"([\u3400-\u9fff])\1{4,}")            # '好好好好好'


def _key(text: str) -> str:
    """Comparison key: NFKC lower-case, punctuation and spacing removed."""
    return re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


def _content_tokens(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(_CJK.sub(" ", text)) if w.lower() not in STOPWORDS]


def _cjk_only(text: str) -> str:
    return "".join(_CJK_RUN.findall(text))


def _repeated_phrase(text: str, title: str) -> tuple[str, int] | None:
    """Most repeated word 4-gram (x3+) or, for Chinese, character 6-gram (x3+), ignoring the product name."""
    cjk = _cjk_only(text)
    if len(cjk) >= 18:
        tkey = _cjk_only(title)
        grams = [cjk[i:i + 6] for i in range(len(cjk) - 5)]
        grams = [g for g in grams if g not in tkey]
    else:
        toks = [w.lower() for w in _WORD.findall(text)]
        tset = {w.lower() for w in _WORD.findall(title)}
        grams = [" ".join(toks[i:i + 4]) for i in range(len(toks) - 3)]
        grams = [g for g in grams if not set(g.split()) <= (STOPWORDS | tset)]
    if not grams:
        return None
    gram, n = Counter(grams).most_common(1)[0]
    if n < 3:
        return None
    if len(cjk) >= 18:  # widen to the whole looping unit: '可以在约定时' -> '可以在约定时间决定'
        at = cjk.find(gram)
        while len(gram) < 20 and at + len(gram) < len(cjk) and cjk.count(cjk[at:at + len(gram) + 1]) >= n:
            gram = cjk[at:at + len(gram) + 1]
    return gram, n


def _bag(text: str) -> set[str]:
    """Word set (English) or character-bigram set (Chinese), for near-duplicate items."""
    cjk = _cjk_only(text)
    if len(cjk) >= 4:
        return {cjk[i:i + 2] for i in range(len(cjk) - 1)}
    return set(_content_tokens(text))


def _field_echo(text: str, names: set[str], title_key: str) -> str | None:
    k = re.sub(r"\d+", " ", _key(text)).strip()
    k = " ".join(k.split())
    if k and k in names and k not in title_key.split():
        return text.strip()
    return None


def _schema_echo(texts: list[str], names: set[str], title_key: str) -> list[str]:
    """Schema echo: the whole text is a field name, or it carries snake_case keys / "key": residue."""
    bad: list[str] = []
    for t in texts:
        hit = _field_echo(t, names, title_key)
        if hit:
            bad.append(f"field name {_short(hit, 30)!r} as text")
            continue
        label = re.match(r"\s*([^\W\d_][\w ]{0,24}?)\s*\d*\s*[:：]", t)
        if label and " ".join(_key(label.group(1)).split()) in names:
            bad.append(f"field label {label.group(0).strip()!r}")  # 'Description: ...', '标题：...'
        for m in _SNAKE.finditer(t):
            label = "field name" if _key(m.group(0)) in names else "identifier"
            bad.append(f"{label} {m.group(0)!r}")
        for m in _JSON_KEY.finditer(t):
            bad.append(f"json key {m.group(0)!r}")
    return bad


def check_degeneration(texts: Sequence[str], p: Product, field_names: Sequence[str] = (),
                       prose: bool | Sequence[bool] = False) -> CheckResult:
    """Loops and echoes: repeated sentences/phrases/items, schema field names as copy, and prose that
    only restates the title. `prose` says which texts are meant as prose (a description, an FAQ
    answer): one bool for all texts, or one per text. Headlines, bullets and SEO titles legitimately
    restate the title, so the title-only rule applies to prose texts only."""
    texts = _as_texts(texts)
    flags = [bool(prose)] * len(texts) if isinstance(prose, bool) else [bool(x) for x in prose]
    flags += [False] * (len(texts) - len(flags))
    names = {" ".join(_key(n).split()) for n in (*DEFAULT_FIELD_NAMES, *field_names)} - {""}
    title_key = _key(p.title)
    title_toks = _tokens(" ".join([p.title, p.brand or "", p.category or ""]))
    bad: list[str] = []

    bad += _schema_echo(texts, names, title_key)

    # Repeated items: identical, or near-identical word sets. A question is only compared with
    # questions, since an FAQ answer legitimately restates its question.
    seen_items: dict[str, int] = {}
    for i, t in enumerate(texts):
        k = _key(t)
        if not k:
            continue
        if k in seen_items:
            bad.append(f"repeated item {_short(t, 40)!r}")
            continue
        for j in seen_items.values():
            if texts[j].rstrip().endswith(("?", "？")) != t.rstrip().endswith(("?", "？")):
                continue
            a, b = _bag(texts[j]), _bag(t)
            if len(a) >= 3 and len(b) >= 3 and len(a & b) / len(a | b) >= 0.8:
                bad.append(f"near-duplicate items {_short(texts[j], 30)!r} / {_short(t, 30)!r}")
                break
        seen_items[k] = i

    # Repeated sentences within a text (3+ words) or across distinct texts (5+ words).
    within: Counter[str] = Counter()
    across: Counter[str] = Counter()
    surface: dict[str, str] = {}
    for k in dict.fromkeys(_key(t) for t in texts):  # each distinct text once
        t = next(x for x in texts if _key(x) == k)
        sents = [s for s in _sentences(t) if _n_words(s) >= 3 or _n_cjk(s) >= 6]
        keys = [_key(s) for s in sents]
        for s, sk in zip(sents, keys):
            surface.setdefault(sk, s)
        within.update(keys)
        across.update({sk for sk, s in zip(keys, sents) if _n_words(s) >= 5 or _n_cjk(s) >= 8})
    looped = set()
    for sk, n in within.items():
        if n >= 2 or across[sk] >= 2:
            looped.add(sk)
            bad.append(f"repeated sentence {_short(surface[sk], 40)!r} x{max(n, across[sk])}")

    for t, is_prose in zip(texts, flags):
        # Phrase loops (e.g. '可以在约定时间决定' x20), unless a repeated sentence already covers them.
        if not any(sk in _key(t) for sk in looped):
            rep = _repeated_phrase(t, p.title)
            if rep:
                bad.append(f"repeated phrase {rep[0]!r} x{rep[1]}")
        for m in _REPEAT_WORD.finditer(t):
            n = len(_WORD.findall(m.group(0)))
            bad.append(f"repeated word {m.group(1)!r} x{n}")
        for m in _REPEAT_CHAR.finditer(t):
            bad.append(f"repeated word {m.group(1)!r} x{len(m.group(0))}")
        if is_prose and _key(t) and not t.rstrip().endswith(("?", "？")):
            # Prose that says nothing beyond the product's own title (a question may name just the product).
            content = set(_content_tokens(t))
            cjk = set(_cjk_only(t)) - set("的是款这一个为了和与及")
            title_cjk = set(_cjk_only(" ".join([p.title, p.brand or ""])))
            if (_key(t) == title_key or (len(content) >= 2 and content <= title_toks and len(cjk) < 4)
                    or (len(cjk) >= 4 and cjk <= title_cjk and content <= title_toks)):
                bad.append(f"restates the title only {_short(t, 40)!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("degeneration", not bad, bad)


# ---- invented entities -----------------------------------------------------------------------
# Materials a model likes to invent. Words that are also colours, trees or verbs ("down", "gold", "iron",
# "ash", "pine", "concrete") appear only in unambiguous forms ("goose down", "ash wood", "solid pine").
EXTRA_MATERIALS = ["bakelite", "mahogany", "marble", "granite", "velvet", "velour", "satin", "chiffon", "tweed",
                   "corduroy", "flannel", "chenille", "boucle", "bouclé", "jersey", "mesh", "neoprene", "pu leather",
                   "faux leather", "vegan leather", "leatherette", "nubuck", "sherpa", "microfiber", "memory foam",
                   "vinyl", "pvc", "tpu", "eva foam", "polycarbonate", "polypropylene", "resin", "epoxy", "terracotta",
                   "stoneware", "earthenware", "bone china", "enamel", "enameled", "enamelled", "rattan", "wicker",
                   "seagrass", "sisal", "birch", "pine wood", "solid pine", "pinewood", "ash wood", "cherry wood",
                   "cherrywood", "beech",
                   "acacia", "rosewood", "ebony wood", "rubberwood", "mdf", "plywood", "particleboard", "veneer",
                   "solid wood", "modal", "rayon", "viscose", "lyocell", "tencel", "ripstop", "cordura",
                   "dyneema", "goose down", "duck down", "down fill", "feathers", "alpaca", "mohair", "angora",
                   "lambswool", "acetate", "celluloid", "pewter", "zinc", "chrome", "nickel", "tungsten", "damascus",
                   "high-carbon steel", "lead crystal", "quartz", "tempered glass", "borosilicate", "carbon fibre",
                   "实木", "大理石", "花岗岩", "天鹅绒", "丝绒", "灯芯绒", "亚麻", "棉麻", "藤编", "藤制", "柳编", "胡桃木",
                   "橡木", "松木", "榉木", "桦木", "樱桃木", "柚木", "相思木", "枫木", "红木", "胶木", "电木", "树脂",
                   "石材", "真皮", "牛皮", "羊皮", "人造革", "雪纺", "网布", "氯丁橡胶", "乙烯基", "亚克力", "碳纤维",
                   "玻璃纤维", "羽绒", "鹅绒", "鸭绒", "聚酯", "氨纶", "莫代尔", "羊绒", "记忆棉", "搪瓷", "珐琅", "陶土"]
_AMBIGUOUS_MATERIALS = {"down", "gold", "silver", "iron", "wood"}
ENTITY_MATERIALS = tuple(m for m in MATERIALS if m not in _AMBIGUOUS_MATERIALS) + tuple(EXTRA_MATERIALS)
# A generic material word is supported by any of its kinds in the input ("solid wood" <- walnut).
_WOOD_KINDS = ("wood", "oak", "walnut", "maple", "teak", "bamboo", "birch", "pine", "beech", "acacia", "mahogany",
               "rosewood", "cherry", "ash", "ebony", "木")
MATERIAL_KINDS: dict[str, tuple[str, ...]] = {"solid wood": _WOOD_KINDS, "实木": _WOOD_KINDS, "pinewood": ("pine",),
                                              "cherrywood": ("cherry",), "enameled": ("enamel",),
                                              "enamelled": ("enamel",), "carbon fibre": ("carbon fiber",),
                                              "solid pine": ("pine",), "pine wood": ("pine",), "羽绒": ("鸭绒", "鹅绒")}

# Words a capitalised token may be without being a name: sentence starts and Title Case headlines
# use them ("Shop", "Rugged", "Stay"). Proper but generic terms (Bluetooth, USB, Monday) are fine too.
COMMON_WORDS = frozenset("""
about above across add added adds adjust adjustable advanced adventure adventures after all-day all-new all-season
all-weather allow allows almost along also always amazing ample any anywhere around arrives assembled at-home
available away awesome back backed balanced base basic basics be beautiful beauty because become bed beginner
best better big bold boost both bottom bright bring brings build built bundle buy by camp camping can care
carry carrying case casual catalog certain change choose city classic clean clear clever climb close
cold collection color colors colorway come comes comfort comfortable comfy compact complete confidence
confident cook cooking cool core cozy craft crafted create crisp cut daily day days deep delivers design
designed designs detail details discover do double down drive dry durable during each ease easy edge
effortless elevate elevated else engineered enjoy enough essential essentials even ever every everyday
everything excellent expect experience explore extra fabric fast feature features feel feels find fine
finish first fit fits fitted flat flexible focus for forget free fresh friendly from front full fully
fun function functional get gets give gives go good grab great grip handle handy heavy help helps high
hike hiking hold holds home hot how ideal in included includes including indoor indoors inner inside
instant introducing is it just keep keeps key kit large last lasting layer lead less let lets level
life light lightweight like line lined lining listed long look looks love low made main make makes
material materials may meet meets minimal modern more morning most move much multi natural need needs never
new next nice night no non not now of off on one only open order organized our out outdoor outdoors
outer over pack packed packs pair part peak perfect performance pick place plenty plus pocket pockets
polished portable power powerful practical premium prep pro protect protected protection proven pure put
quality quick quiet range rated ready real refined reliable relax rest ride rugged run running safe
same save season seasons secure see set shape shop side simple single size sized sleek slim small smart
smooth snug soft solid space spacious special sport sports stable stand standard start stay steady
step store storage strong style stylish sturdy summer super support sure take tall tech technology the
there thick thin this through tight time timeless tired to top total tough trail trails travel
trek true trusted try two ultimate ultra ultralight under unique up upgrade upgraded use used useful
versatile very view walk want warm warmth wash water way wear weather weekend weight well when where
whether which while wide wild with within without work works world year years you your
""".split())
PROPER_COMMON = frozenset("""bluetooth usb led lcd oled wifi wi-fi gps uv upf spf bpa pfas pfc dwr ipx ip hd app ios
    android
    iphone ipad mac windows celsius fahrenheit monday tuesday wednesday thursday friday saturday sunday january
    february march april june july august september october november december spring summer autumn fall winter
    christmas halloween easter english american european asian japanese italian german french scandinavian
    nordic british chinese earth olympic pilates yoga hiit ok eu""".split())
# Parts and features of products, capitalised in Title Case copy ("Adjustable Hood", "Side Pocket").
PRODUCT_WORDS = frozenset("""arm back band base battery beam belt blade bottom brim buckle button cable cap charge
    collar cord crew cuff cuffs dial door drawstring drop edge fabric face fill finish fleece floor foot frame grip
    handle heel hem hip hood insole knit lace laces lid light lining loop mesh mode neck neckline outsole padding
    panel panels pole poles port pouch rain rubber seam seams seat shell sleeve sleeves sole sound stack strap
    straps stretch tip toe trim upper v-neck vent waist waistband wall zip zipper zippers""".split())
NAME_SUFFIXES = frozenset("collection series edition line team studio lab labs technology tech system pro plus max "
                          "ultra signature range".split())
_CAP = re.compile(r"[A-Z]")
_QUOTED_EN = re.compile(r"(?:^|(?<=[\s(]))['‘\"“]([A-Z][^'’\"”\n]{1,40}?)['’\"”](?=[\s.,;:!?)]|$)")
# 「」《》『』 quote names; “” also quote ordinary feature terms (“自立式”), so only a “name” that is
# introduced as one (名为“…”, “…”系列/团队/品牌) counts.
_QUOTED_ZH = re.compile(r"[「《『]([^」》』\n]{2,12})[」》』]|(?<=名为|叫做|称为|取名)[“‘]([^”’\n]{2,12})[”’]"
                        r"|[“‘]([^”’\n]{2,12})[”’](?=系列|团队|品牌|牌|工作室|设计师)")
_ZH_SERIES = re.compile(r"([\u4e00-\u9fff]{2,4})系列")


def _common(word: str) -> bool:
    """A dictionary-ish word: listed, a stopword, or an adjective/verb/adverb by its suffix;
    a hyphenated word ('Long-Sleeve', 'All-Day') when all its parts are."""
    parts = [x for x in re.split(r"[-&'’]", word) if x]
    if len(parts) > 1:  # 'U-shaped', 'V-Neck': a single letter is a shape, not a name
        return all(len(x) == 1 or _common(x) for x in parts)
    low, w = word.lower(), _stem(word)
    if {low, w} & (COMMON_WORDS | STOPWORDS | PROPER_COMMON | PRODUCT_WORDS):
        return True
    return len(w) > 5 and w.endswith(("ly", "able", "ible", "ful", "less", "ive", "ous", "ing", "ed", "est",
                                      "ness", "ment", "tion", "ity", "al", "ic", "ize", "ise"))


def _acronym_or_code(word: str) -> bool:
    """'LED', 'IPX7', 'VG-10', 'A4': codes and units are checked by faithfulness, not here."""
    return any(c.isdigit() for c in word) or (word.isupper() and len(word) <= 4) or len(word) <= 1


def _is_title_case(text: str) -> bool:
    words = [w for w in _WORD.findall(_CJK.sub(" ", text)) if len(w) >= 3 and w.lower() not in STOPWORDS]
    return len(words) >= 2 and sum(1 for w in words if w[0].isupper()) >= 0.6 * len(words)


_CAP_WORD = r"[A-Z][A-Za-z0-9]*(?:['’&-][A-Za-z0-9]+)*"
_CAP_RUN = re.compile(rf"(?<![\w'’-]){_CAP_WORD}(?:[ \t]+{_CAP_WORD})*")


def _name_runs(sentence: str) -> list[tuple[list[str], bool]]:
    """Runs of consecutive capitalised words, and whether the run starts the sentence."""
    s = re.sub(r"^\s*(\d{1,2}[.)、．]\s*|[-*•]\s+)", "", sentence)
    first = _WORD.search(s)
    return [(_WORD.findall(m.group(0)), first is not None and m.start() == first.start())
            for m in _CAP_RUN.finditer(s)]


def _names_other_item(text: str, m: re.Match[str]) -> bool:
    """'wear it over a fleece': the material word names another item, not what this one is made of."""
    return bool(re.search(r"\b(?:a|an|your|my|their)\s+$", text[max(0, m.start() - 8):m.start()])
                and re.match(r"\s*(?:[.,;!?)]|$|(?:or|and|for|on|in)\b)", text[m.end():]))


def _material_hits(out: str, src: str, materials: Sequence[str]) -> list[str]:
    bad = []
    for w in materials:
        nw = norm(w)
        pat = rf"\b{re.escape(nw)}(?:e?s)?\b" if nw.isascii() else re.escape(nw)
        m = next((m for m in re.finditer(pat, out) if not _negated(out, m.start())
                  and not _names_other_item(out, m)), None)
        if not m:
            continue
        kinds = (nw, *MATERIAL_KINDS.get(nw, ()))
        if any((re.search(rf"\b{re.escape(k)}", src) if k.isascii() else k in src) for k in kinds):
            continue
        bad.append(w)
    # 'cast iron' also matches 'iron'; report the most specific words only.
    return [w for w in bad if not any(w != o and w in o for o in bad)]


def _run_name(run: list[str], initial: bool, title_case: bool, unknown: Any, known: set[str]) -> str | None:
    """The invented name in a run of capitalised words, if any. Mid-sentence capitals in sentence-case
    prose mark names ('at Tallgrass'); in headlines and at sentence starts capitals are just style, so
    there only an unknown non-word before a product word ('Bomba Sleeper'), a CamelCase coinage
    ('AquaShield') or a model suffix after a known name ('Wayfarer Pro') counts."""
    if initial and len(run) >= 2 and (run[0].lower() in STOPWORDS or _common(run[0])):
        run, initial = run[1:], False  # 'The AquaShield': only the article starts the sentence
    strong = not (initial or title_case)

    def product_word(w: str) -> bool:
        return _stem(w) in known or w.lower() in _TYPE_NOUNS_EN

    flagged = []
    for i, w in enumerate(run):
        if not unknown(w):
            continue
        nxt = run[i + 1] if i + 1 < len(run) else ""
        suffix_after = bool(nxt) and _stem(nxt) in NAME_SUFFIXES
        is_suffix = i > 0 and _stem(w) in NAME_SUFFIXES
        if re.search(r"[a-z][A-Z]", w) or (not _common(w) and (strong or suffix_after or (nxt and product_word(nxt)))):
            flagged.append(i)
        elif (strong and (suffix_after or is_suffix)) or (is_suffix and product_word(run[i - 1])):
            flagged.append(i)  # 'the Summer Collection', 'Wayfarer Pro'
    if not flagged:
        return None
    lo, hi = flagged[0], flagged[-1]
    if hi + 1 < len(run) and (product_word(run[hi + 1]) or _stem(run[hi + 1]) in NAME_SUFFIXES):
        hi += 1  # 'Bomba' + 'Sleeper'
    if lo == hi and lo > 0 and _stem(run[hi]) in NAME_SUFFIXES:
        lo -= 1  # 'Ridgeline' + 'Pro'
    return " ".join(run[lo:hi + 1])


def check_entities(texts: Sequence[str], p: Product, brands: Sequence[str] = (),
                   materials: Sequence[str] = ENTITY_MATERIALS) -> CheckResult:
    """Product/collection/designer names and materials that appear in no input field. Other catalog
    brands in `brands` are left to check_wrong_product/check_faithfulness."""
    texts = _as_texts(texts)
    src_raw = product_text(p)
    src = norm(src_raw)
    src_flat = re.sub(r"\s+", "", src)
    known = _tokens(src_raw)
    own = norm(p.brand or "")
    other = set().union(*(_tokens(b) for b in brands if norm(b) != own)) if brands else set()
    vocab_words = set().union(*(_tokens(w) for w in (*materials, *COLORS, *_TYPE_NOUNS_EN)))
    bad: list[str] = []

    def unknown(w: str) -> bool:
        parts = [x for x in re.split(r"[-&'’]", w) if x]
        return (_stem(w) not in known and not all(_stem(x) in known for x in parts)
                and _stem(w) not in other and _stem(w) not in vocab_words and not _acronym_or_code(w))

    mats = _material_hits(norm(" \n ".join(texts)), src, materials)
    bad += [f"invented material {m!r}" for m in mats]
    reported = {m.lower() for m in mats}

    for text in texts:
        zh = _n_cjk(text) > len(_LATIN.findall(text)) / 4
        title_case = not zh and _is_title_case(text)
        for sent in _sentences(text):
            for run, initial in _name_runs(sent):
                name = _run_name(run, initial, title_case, unknown, known)
                if name and name.lower() not in reported:
                    bad.append(f"invented name {name!r}")
                    reported.add(name.lower())
        for m in _QUOTED_EN.finditer(text):
            q = m.group(1).strip()
            words = _WORD.findall(q)
            if 1 <= len(words) <= 4 and norm(q) not in src and any(unknown(w) for w in words) \
                    and q.lower() not in reported:
                bad.append(f"invented name {q!r}")
                reported.add(q.lower())
        if zh:
            for m in _QUOTED_ZH.finditer(text):
                q = next(g for g in m.groups() if g).strip()
                if re.sub(r"\s+", "", norm(q)) not in src_flat and q.lower() not in reported:
                    bad.append(f"invented name {q!r}")
                    reported.add(q.lower())
            for m in _ZH_SERIES.finditer(text):
                q = m.group(1).lstrip("的是款这为该本此")
                while len(q) > 2 and q[:2] in src_flat:  # '北松极光' -> '极光': the brand part is known
                    q = q[2:]
                grams = [q[i:i + 2] for i in range(len(q) - 1)]
                if grams and sum(g not in src_flat for g in grams) > len(grams) / 2:
                    bad.append(f"invented name '{q}系列'")
            for w in _WORD.findall(_CJK.sub(" ", text)):  # Latin brand-like words inside Chinese copy
                if _CAP.search(w) and unknown(w) and _stem(w) not in PROPER_COMMON and w.lower() not in reported:
                    bad.append(f"invented name {w!r}")
                    reported.add(w.lower())
    bad = list(dict.fromkeys(bad))
    return CheckResult("invented_entities", not bad, bad)


# ---- wrong product ---------------------------------------------------------------------------
# Groups of compatible product-type nouns; an output noun is fine if it shares a group with a noun of
# the input (jacket~coat~parka). Multi-word nouns match first ("sleeping bag" is not a "bag").
PRODUCT_TYPES: list[tuple[str, ...]] = [
    ("jacket", "coat", "parka", "anorak", "windbreaker", "raincoat", "rain shell", "shell jacket", "outerwear",
     "夹克", "外套", "冲锋衣", "风衣", "雨衣", "大衣", "羽绒服"),
    ("vest", "gilet", "马甲", "背心"),
    ("shirt", "t-shirt", "tee", "tee shirt", "polo", "blouse", "tank top", "singlet", "衬衫", "t恤", "上衣", "背心",
     "polo衫"),
    # a zip hoodie is often called a jacket; that is not the wrong product
    ("hoodie", "sweatshirt", "pullover", "sweater", "jumper", "cardigan", "crewneck", "fleece jacket", "jacket",
     "卫衣", "毛衣", "针织衫", "夹克", "外套"),
    ("bra", "sports bra", "文胸", "运动内衣"),
    ("pants", "trousers", "joggers", "sweatpants", "leggings", "tights", "capris", "capri", "chinos", "jeans",
     "裤子", "长裤", "打底裤", "运动裤", "牛仔裤"),
    ("shorts", "短裤"),
    ("skirt", "半身裙", "裙子"),
    ("dress", "gown", "连衣裙", "裙子"),
    ("shoe", "shoes", "sneaker", "sneakers", "trainer", "trainers", "running shoe", "running shoes", "boot", "boots",
     "footwear", "鞋子", "跑鞋", "运动鞋", "靴子", "徒步鞋"),
    ("sandal", "sandals", "slipper", "slippers", "flip-flops", "凉鞋", "拖鞋"),
    ("socks", "sock", "袜子"),
    ("hat", "beanie", "baseball cap", "bucket hat", "帽子"),
    ("gloves", "glove", "mittens", "手套"),
    ("scarf", "围巾"),
    ("bag", "backpack", "daypack", "rucksack", "knapsack", "tote", "duffel", "duffle", "messenger bag", "satchel",
     "purse", "handbag", "fanny pack", "hip pack", "waist pack", "背包", "双肩包", "挎包", "手提包", "旅行包", "腰包",
     "书包", "单肩包"),
    ("wallet", "钱包"),
    ("smartwatch", "wristwatch", "手表", "腕表"),
    ("knife", "knives", "cleaver", "santoku", "nakiri", "chef knife", "chef's knife", "菜刀", "厨师刀", "主厨刀", "刀具"),
    ("pan", "frying pan", "skillet", "saute pan", "sauté pan", "wok", "pot", "saucepan", "stockpot", "dutch oven",
     "casserole", "cookware", "炒锅", "煎锅", "平底锅", "汤锅", "奶锅", "铁锅"),
    ("kettle", "teapot", "水壶", "烧水壶", "电水壶", "茶壶"),
    ("mug", "cup", "tumbler", "bottle", "water bottle", "flask", "thermos", "水杯", "杯子", "保温杯", "马克杯", "水瓶",
     "保温瓶", "水壶", "保温壶"),
    ("lamp", "desk lamp", "floor lamp", "lantern", "headlamp", "flashlight", "torch", "台灯", "头灯", "手电筒",
     "营地灯", "落地灯"),
    ("chair", "stool", "armchair", "recliner", "椅子", "凳子"),
    ("table", "desk", "桌子", "书桌", "餐桌", "茶几"),
    ("sofa", "couch", "sofa bed", "sleeper sofa", "loveseat", "settee", "futon", "sectional", "沙发", "沙发床"),
    ("bed", "bed frame", "床架"),
    ("mattress", "床垫"),
    ("pillow", "cushion", "枕头", "抱枕", "靠垫"),
    ("blanket", "quilt", "duvet", "comforter", "毯子", "毛毯", "被子"),
    ("rug", "carpet", "地毯"),
    ("shelf", "shelves", "bookshelf", "bookcase", "shelving", "书架", "置物架"),
    ("phone", "smartphone", "手机"),
    ("headphones", "headset", "earphones", "earbuds", "耳机"),
    ("speaker", "speakers", "soundbar", "音箱", "音响", "扬声器"),
    ("charger", "power bank", "充电器", "充电宝"),
    ("tent", "帐篷"),
    ("sleeping bag", "睡袋"),
    ("sleeping pad", "睡垫", "防潮垫"),
    ("yoga mat", "exercise mat", "mat", "瑜伽垫"),
    ("exercise ball", "yoga ball", "stability ball", "medicine ball"),
    ("foam roller",), ("jump rope", "skipping rope", "跳绳"), ("resistance band", "弹力带"),
    ("dumbbell", "dumbbells", "kettlebell", "哑铃"),
]
# Input-side only: ambiguous or single-character words that name the input's type ("Expedition Pack",
# "Fitness Short", "保温杯 -> 杯") but are too common to flag in output ("a short walk", "包括").
INPUT_TYPE_ALIASES: dict[str, str] = {
    "pack": "bag", "shelter": "tent", "short": "shorts", "pant": "pants", "tank": "shirt", "top": "shirt",
    "tees": "shirt",
    "watch": "smartwatch", "watches": "smartwatch", "shell": "jacket", "cap": "hat", "ball": "exercise ball",
    "band": "resistance band", "brick": "foam roller", "block": "foam roller", "strap": "resistance band",
    "包": "bag", "杯": "mug", "瓶": "mug", "壶": "kettle", "灯": "lamp", "椅": "chair", "桌": "table",
    "床": "bed", "枕": "pillow", "毯": "blanket", "鞋": "shoe", "靴": "shoe", "袜": "socks", "帽": "hat",
    "裤": "pants", "裙": "skirt", "刀": "knife", "锅": "pan", "垫": "yoga mat",
}
# Accessory phrases that contain a type noun but name a part, not the product ("carry bag", "cup holder").
NEUTRAL_TYPE_PHRASES = ("carry bag", "carrying bag", "storage bag", "stuff sack", "stuff bag", "dust bag",
                        "drawstring bag", "mesh bag", "compression sack", "carry case", "carrying case",
                        "cup holder", "cup holders", "bottle holder", "bottle pocket", "phone pocket", "shoe bag",
                        "shoe compartment", "water bladder", "bag lunch", "sleeping pad", "收纳袋", "收纳包",
                        "包括", "包含", "包装", "面包", "指示灯", "灯光", "桌面", "起床", "鞋垫")
_TYPE_GROUPS: dict[str, set[int]] = {}
for _i, _grp in enumerate(PRODUCT_TYPES):
    for _n in _grp:
        _TYPE_GROUPS.setdefault(norm(_n), set()).add(_i)
_TYPE_NOUNS_EN = {n for n in _TYPE_GROUPS if n.isascii()}


def _alternation(words: Iterable[str], plural: bool) -> str:
    ws = sorted({norm(w) for w in words}, key=len, reverse=True)
    en = "|".join(re.escape(w) for w in ws if w.isascii())
    zh = "|".join(re.escape(w) for w in ws if not w.isascii())
    suffix = "(?:e?s)?" if plural else ""
    return rf"(?P<en>\b(?:{en}){suffix}\b)|(?P<zh>{zh})"


_OUT_TYPES = re.compile(_alternation([*_TYPE_GROUPS, *NEUTRAL_TYPE_PHRASES], plural=True))
_IN_TYPES = re.compile(_alternation([*_TYPE_GROUPS, *NEUTRAL_TYPE_PHRASES, *INPUT_TYPE_ALIASES], plural=True))
_ZH_SELF = re.compile(r"(?:这|本|该|此)(?:款|口|把|个|只|件|条|双|顶|张|盏|台|套)?$")
# A type noun after these words refers to something else ("fits your phone", "pair it with jeans").
_CONTEXT_WORDS = frozenset("""your with for fits fit fitting holds hold holding carry carries carrying haul store stores
    stash pair pairs paired pairing wear wearing under over into inside in on onto beside next alongside like than
    or and plus nor compatible between behind atop beneath other any extra spare favorite favourite own any
    protect protects keep keeps put place slip slips toss throw""".split())
_ZH_CONTEXT = re.compile(r"(?:配|搭配|放入|装入|放进|装进|收纳|适合|可放|容纳|兼容|和|与|及|或|给|你的|您的|放在|装下)"
                         r"[\u4e00-\u9fff]{0,2}$")
_PART_WORDS = frozenset("""pocket pockets holder holders sleeve sleeves compartment compartments case mount stand clip
    loop loops strap straps compatible friendly storage size sized lid lids cap caps rack sharpener block guard
    charger cable port clamp hook opener organizer accessory accessories""".split())


def _singular(n: str) -> str:
    if n in _TYPE_GROUPS or n in INPUT_TYPE_ALIASES:
        return n
    for cut in ("es", "s"):
        if n.endswith(cut) and (n[: -len(cut)] in _TYPE_GROUPS or n[: -len(cut)] in INPUT_TYPE_ALIASES):
            return n[: -len(cut)]
    return n


def _input_types(p: Product) -> list[str]:
    """Type nouns of the input, title first (the title names the product best)."""
    vals = [str(x) for v in p.attributes.values() for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)]
    nouns: list[str] = []
    for text in [p.title, p.category or "", *vals, p.description or ""]:
        for m in _IN_TYPES.finditer(norm(text)):
            n = _singular(m.group(0))
            if n in NEUTRAL_TYPE_PHRASES:
                continue
            nouns.append(INPUT_TYPE_ALIASES.get(n, n) if n not in _TYPE_GROUPS else n)
            # the head word of a compound is the same thing: 'sleeping bag' -> 'bag', '保温杯' -> '杯'
            head = n.split()[-1] if n.isascii() else n[-1]
            if head != n:
                nouns.append("~" + head)
    return list(dict.fromkeys(nouns))


def _self_references(text: str) -> list[tuple[str, bool]]:
    """Type nouns the text uses for the product itself, with whether each is prominent (first
    sentence, or a short text such as a headline)."""
    out = []
    sents = _sentences(text) or [text]
    short = _n_words(text) < 12 and _n_cjk(text) < 25
    for si, sent in enumerate(sents):
        t = norm(sent)
        for m in _OUT_TYPES.finditer(t):
            n = _singular(m.group(0))
            if n in NEUTRAL_TYPE_PHRASES:
                continue
            before, after = t[:m.start()], t[m.end():]
            if re.search(r"[,，、]\s*(?:[\w'-]+\s+){0,2}$", before) or re.match(r"\s*(?:,|、|，)", after):
                continue  # an item of a list ('books, a bag lunch, water bottles'): something it holds
            if m.group("en"):
                prev = re.findall(r"[a-z']+", before)[-3:]
                nxt = re.findall(r"[a-z']+", after)[:1]
                if set(prev) & _CONTEXT_WORDS or set(nxt) & _PART_WORDS:
                    continue
            elif _ZH_CONTEXT.search(before[-6:]):
                continue
            out.append((n, si == 0 or short))
        # Single Chinese characters name a type only right after a demonstrative: 这口锅, 本款杯.
        for m in re.finditer("|".join(k for k in INPUT_TYPE_ALIASES if not k.isascii()), t):
            if _ZH_SELF.search(t[:m.start()]):
                out.append((m.group(0), si == 0 or short))
    return out


# Words that contradict each other: (kind, side A, side B). Input phrases include "value key" of
# attributes, so {"bevel": "single"} reads as "single bevel" and {"尺寸": "大号"} as 大号.
OPPOSITES: list[tuple[str, list[str], list[str]]] = [
    ("size", ["大号", "大码", "加大码", "特大号"], ["小号", "小码", "迷你款"]),
    ("size", [r"\bsize (?:large|l|xl|xxl)\b", r"\blarge[- ]size[sd]?\b"],
     [r"\bsize (?:small|s|xs)\b", r"\bsmall[- ]size[sd]?\b"]),
    ("count", ["单人"], ["双人"]),
    ("count", ["单层"], ["双层"]),
    ("count", ["单肩"], ["双肩"]),
    ("count", [r"\bsingle[- ]bevel(?:l?ed)?\b"], [r"\bdouble[- ]bevel(?:l?ed)?\b"]),
    ("count", [r"\bsingle[- ]wall(?:ed)?\b"], [r"\bdouble[- ]wall(?:ed)?\b"]),
    ("count", [r"\b(?:one|single|1)[- ]person\b", r"\b1p\b"], [r"\b(?:two|double|2)[- ]person\b", r"\b2p\b"]),
    ("sleeve", ["长袖"], ["短袖"]),
    ("sleeve", [r"\blong[- ]sleeved?\b"], [r"\bshort[- ]sleeved?\b"]),
    ("gender", ["男款", "男士", "男式", "男童", "男装"], ["女款", "女士", "女式", "女童", "女装"]),
    ("gender", [r"\bmen['’]?s\b", r"\bfor men\b"], [r"\bwomen['’]?s\b", r"\bfor women\b"]),
    ("age", ["儿童", "童款"], ["成人"]),
]
_SIZE_VALUES = {"l": "large", "xl": "large", "xxl": "large", "2xl": "large", "3xl": "large", "large": "large",
                "x-large": "large", "s": "small", "xs": "small", "small": "small", "x-small": "small",
                "大": "大号", "小": "小号"}


def _opposite_source(p: Product) -> str:
    parts = [p.title, p.category or "", p.description or ""]
    for k, v in p.attributes.items():
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, bool):
                continue
            s = str(x)
            parts.append(s)
            parts.append(f"{s} {k.replace('_', ' ')}")  # 'single bevel'
            if ("size" in k.lower() or "尺" in k or "规格" in k) and s.strip().lower() in _SIZE_VALUES:
                sv = _SIZE_VALUES[s.strip().lower()]
                parts.append(sv if not sv.isascii() else f"size {sv}")
    return norm("\n".join(parts))


def _find(patterns: list[str], text: str) -> str | None:
    for pat in patterns:
        m = re.search(pat, text)
        if m:
            return m.group(0)
    return None


def check_wrong_product(texts: Sequence[str], p: Product, brands: Sequence[str] = ()) -> CheckResult:
    """The copy names another product type ('This frying pan' for a knife), another catalog brand, or
    contradicts the input's size, count, sleeve, gender or age words ('小号' for a 大号 product)."""
    texts = _as_texts(texts)
    out = norm(" \n ".join(texts))
    bad: list[str] = []

    inputs = _input_types(p)
    allowed = {n.lstrip("~") for n in inputs}
    groups = set().union(*(_TYPE_GROUPS.get(n, set()) for n in allowed)) if allowed else set()
    main = next((n for n in inputs if not n.startswith("~")), None)
    if main:
        counts: Counter[str] = Counter()
        prominent: set[str] = set()
        for t in texts:
            for n, prom in _self_references(t):
                key = INPUT_TYPE_ALIASES.get(n, n) if n not in _TYPE_GROUPS else n
                if n in allowed or key in allowed or _TYPE_GROUPS.get(key, set()) & groups:
                    continue
                counts[n] += 1
                if prom:
                    prominent.add(n)
        for n, c in counts.items():
            if n in prominent or c >= 2:
                bad.append(f"wrong product type {n!r}, input is {main!r}")

    own, src = norm(p.brand or ""), norm(product_text(p))
    for b in brands:
        nb = norm(b)
        if nb and nb != own and nb not in src and re.search(rf"(?<!\w){re.escape(nb)}(?!\w)", out):
            bad.append(f"other brand {b!r}")

    osrc = _opposite_source(p)
    for kind, side_a, side_b in OPPOSITES:
        for mine, theirs in ((side_a, side_b), (side_b, side_a)):
            said, stated = _find(mine, out), _find(theirs, osrc)
            if said and stated and not _find(mine, osrc):
                bad.append(f"{kind} word {said!r} contradicts {stated!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("wrong_product", not bad, bad)


def copy_checks(texts: Sequence[str], p: Product, *, field_names: Sequence[str] = (),
                prose: bool | Sequence[bool] = False, brands: Sequence[str] = (),
                claims: dict[str, list[str]] | None = None) -> list[CheckResult]:
    """All five copy checks, in COPY_CHECKS order."""
    return [check_placeholders(texts), check_claims(texts, p, claims),
            check_degeneration(texts, p, field_names, prose), check_entities(texts, p, brands),
            check_wrong_product(texts, p, brands)]
