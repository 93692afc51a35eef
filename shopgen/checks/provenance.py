"""provenance: where the product is sold, where it comes from and which edition or year it is; all
facts a small model likes to invent ('available through the Quill website', 'a Japanese knife'
for a German one, 'limited 2024 edition'). Each is refused unless the input states it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, as_texts, negated, norm, product_text, shorten
from shopgen.core.records import Product

SALES_CHANNELS = [
    r"\bavailable (?:to (?:buy|purchase|order) )?(?:(?:at any time|now|today|exclusively|only|online) )?"
    r"(?:at|on|through|via|from|in) (?:our|the|any|all|select|leading|major|your local|local)\b",
    r"\b(?:sold|stocked|available) (?:exclusively |only )?(?:online|in stores?|at retailers?|in shops?)\b",
    r"\b(?:buy|order|purchase|shop)(?: (?:it|yours|one|now|today|online))* (?:at|on|from|through|via) \w+",
    r"\b(?:our|the|its|official|brand'?s?) (?:online )?(?:store|shop|website|web ?site|web ?shop|e-?shop|outlet)s?\b",
    r"\bwebsite\b", r"\bonline (?:store|shop|retailers?)\b", r"\bin[- ]stores?\b", r"\bretail(?:er|ers)? (?:near|nationwide)",
    r"\b(?:amazon|ebay|etsy|walmart|target\.com|aliexpress|taobao|tmall|jd\.com)\b",
    "官网", "官方网站", "旗舰店", "天猫", "京东", "淘宝", "拼多多", "线下门店", "专卖店", "实体店", "网店有售", "商城",
]
EDITIONS = [r"\b(?:limited|special|collector'?s?|anniversary|exclusive|signature|deluxe|first|launch|heritage|"
            r"commemorative|\d{4}) (?:edition|release|collection|series|model year)\b",
            r"\bedition\b", r"\blimited run\b", "限量", "限定版", "纪念版", "典藏版", "特别版", "首发"]
YEARS = [r"\b(?:since|founded in|established in|est\.?|new for|released in|launched in|introduced in|from|in|for|"
         r"circa) (?:19|20)\d{2}\b", r"\b(?:19|20)\d{2} (?:edition|collection|model|season|version|release|range)\b",
         r"(?:19|20)\d{2}年", r"(?:19|20)\d{2}(?:款|版|系列)"]
COUNTRIES = ("japan", "germany", "italy", "france", "switzerland", "sweden", "denmark", "norway", "finland",
             "iceland", "spain", "portugal", "england", "scotland", "ireland", "britain", "united kingdom", "uk",
             "usa", "u.s.a", "united states", "america", "canada", "mexico", "china", "korea", "taiwan", "vietnam",
             "india", "thailand", "indonesia", "turkey", "austria", "belgium", "netherlands", "holland", "poland",
             "czech republic", "australia", "new zealand", "brazil", "peru", "morocco", "scandinavia", "europe",
             "asia")
NATIONALITIES = ("japanese", "german", "italian", "french", "swiss", "swedish", "danish", "norwegian", "finnish",
                 "icelandic", "spanish", "portuguese", "english", "scottish", "irish", "british", "american",
                 "canadian", "mexican", "chinese", "korean", "taiwanese", "vietnamese", "indian", "thai", "turkish",
                 "austrian", "belgian", "dutch", "polish", "czech", "australian", "brazilian", "peruvian",
                 "moroccan", "scandinavian", "nordic", "european", "asian", "tibetan", "persian")
ORIGINS_ZH = ("日本", "德国", "意大利", "法国", "瑞士", "瑞典", "丹麦", "挪威", "芬兰", "西班牙", "葡萄牙", "英国", "美国",
              "加拿大", "墨西哥", "中国", "韩国", "台湾", "越南", "印度", "泰国", "土耳其", "奥地利", "比利时", "荷兰",
              "波兰", "澳大利亚", "澳洲", "巴西", "北欧", "欧洲", "亚洲", "日式", "德式", "欧式", "美式", "意式", "法式",
              "韩式", "进口", "原产", "产地", "国产")
# "available in various colours": options the input does not list (one colour is not "various").
_OPTIONS = re.compile(r"\b(?:available|comes?|offered|sold) in (?:a (?:wide )?(?:variety|range|choice|selection) of|"
                      r"various|different|multiple|many|several|numerous|all|other|assorted) "
                      r"(?:colou?rs?|sizes?|styles?|options|finish(?:es)?|shades|designs|models|patterns|lengths|widths|"
                      r"versions|variants)\b|多种(?:颜色|尺寸|款式|规格)|各种(?:颜色|尺寸|款式)")
_ORIGIN_EN = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in (*COUNTRIES, *NATIONALITIES)) + r")\b")
_MADE_IN = re.compile(r"\b(?:made|designed|crafted|handcrafted|manufactured|produced|forged|sourced|built|assembled|"
                      r"woven|sewn|printed) in (?:the )?([a-z][a-z .'-]{2,30})")


def _find_all(patterns: Sequence[str], text: str) -> list[re.Match[str]]:
    out = []
    for pat in patterns:
        out += [m for m in re.finditer(pat, text, flags=re.I) if not negated(text, m.start(), m.end())]
    return out


def _stated(phrase: str, src: str) -> bool:
    core = re.sub(r"\s+", " ", phrase.strip())
    return core in src


def check_provenance(texts: Sequence[str], p: Product) -> CheckResult:
    out = norm(" \n ".join(as_texts(texts)))
    src = norm(product_text(p))
    bad: list[str] = []
    for m in _find_all(SALES_CHANNELS, out):
        if not _stated(m.group(0), src):
            bad.append(f"sales channel {shorten(m.group(0), 40)!r}")
    edition_src = bool(re.search(r"\bedition\b|\blimited\b|限量|版", src))
    for m in _find_all(EDITIONS, out):
        if not (_stated(m.group(0), src) or (edition_src and "edition" in m.group(0) and m.group(0) in src)):
            bad.append(f"edition {shorten(m.group(0), 30)!r}")
    for m in _find_all(YEARS, out):
        year = re.search(r"(?:19|20)\d{2}", m.group(0)).group(0)
        if year not in src:
            bad.append(f"year {shorten(m.group(0), 30)!r}")
    for m in _ORIGIN_EN.finditer(out):
        w = m.group(0)
        if not re.search(rf"\b{re.escape(w)}\b", src) and not negated(out, m.start(), m.end()):
            bad.append(f"origin {w!r}")
    for m in _MADE_IN.finditer(out):
        place = m.group(1).split(" and ")[0].split(",")[0].strip()
        words = [x for x in place.split() if x not in ("the", "a", "an")][:2]
        if words and not re.search(rf"\b{re.escape(words[0])}\b", src) and words[0] not in ("small", "house",
                                                                                           "batches", "small-batch"):
            bad.append(f"origin {shorten(m.group(0), 30)!r}")
    many = any(isinstance(v, list) and len(v) > 1 for v in p.attributes.values())
    for m in _OPTIONS.finditer(out):
        if not many and not negated(out, m.start(), m.end()):
            bad.append(f"options {shorten(m.group(0), 30)!r}")
    for w in ORIGINS_ZH:
        if w in out and w not in src:
            bad.append(f"origin {w!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("provenance", not bad, bad)
