"""wrong_product: copy that names another product type or catalog brand, or contradicts the input's size,
count, sleeve, gender or age words."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from shopgen.checks.base import CheckResult, as_texts, n_cjk, n_words, norm, product_text, sentences
from shopgen.core.records import Product

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
TYPE_NOUNS_EN = {n for n in _TYPE_GROUPS if n.isascii()}


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
    sents = sentences(text) or [text]
    short = n_words(text) < 12 and n_cjk(text) < 25
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
    texts = as_texts(texts)
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
