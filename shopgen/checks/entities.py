"""invented_entities: product, collection and designer names and materials that appear in no input field."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from shopgen.checks.base import (
    CJK,
    LATIN,
    STOPWORDS,
    WORD,
    CheckResult,
    as_texts,
    n_cjk,
    negated,
    norm,
    product_text,
    sentences,
    stem,
    word_tokens,
)
from shopgen.checks.faithfulness import COLORS, MATERIALS
from shopgen.checks.wrong_product import TYPE_NOUNS_EN
from shopgen.core.records import Product

# ---- invented entities -----------------------------------------------------------------------
# Materials a model likes to invent. Words that are also colours, trees or verbs ("down", "gold", "iron",
# "ash", "pine", "concrete") appear only in unambiguous forms ("goose down", "ash wood", "solid pine").
EXTRA_MATERIALS = ["wax", "beeswax", "bakelite", "mahogany", "marble", "granite", "velvet", "velour", "satin", "chiffon", "tweed",
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
    low, w = word.lower(), stem(word)
    if {low, w} & (COMMON_WORDS | STOPWORDS | PROPER_COMMON | PRODUCT_WORDS):
        return True
    return len(w) > 5 and w.endswith(("ly", "able", "ible", "ful", "less", "ive", "ous", "ing", "ed", "est",
                                      "ness", "ment", "tion", "ity", "al", "ic", "ize", "ise"))


def _acronym_or_code(word: str) -> bool:
    """'LED', 'IPX7', 'VG-10', 'A4': codes and units are checked by faithfulness, not here."""
    return any(c.isdigit() for c in word) or (word.isupper() and len(word) <= 4) or len(word) <= 1


def _is_title_case(text: str) -> bool:
    words = [w for w in WORD.findall(CJK.sub(" ", text)) if len(w) >= 3 and w.lower() not in STOPWORDS]
    return len(words) >= 2 and sum(1 for w in words if w[0].isupper()) >= 0.6 * len(words)


_CAP_WORD = r"[A-Z][A-Za-z0-9]*(?:['’&-][A-Za-z0-9]+)*"
_CAP_RUN = re.compile(rf"(?<![\w'’-]){_CAP_WORD}(?:[ \t]+{_CAP_WORD})*")


def _name_runs(sentence: str) -> list[tuple[list[str], bool]]:
    """Runs of consecutive capitalised words, and whether the run starts the sentence."""
    s = re.sub(r"^\s*(\d{1,2}[.)、．]\s*|[-*•]\s+)", "", sentence)
    first = WORD.search(s)
    return [(WORD.findall(m.group(0)), first is not None and m.start() == first.start())
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
        m = next((m for m in re.finditer(pat, out) if not negated(out, m.start())
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
        return stem(w) in known or w.lower() in TYPE_NOUNS_EN

    flagged = []
    for i, w in enumerate(run):
        if not unknown(w):
            continue
        nxt = run[i + 1] if i + 1 < len(run) else ""
        suffix_after = bool(nxt) and stem(nxt) in NAME_SUFFIXES
        is_suffix = i > 0 and stem(w) in NAME_SUFFIXES
        if re.search(r"[a-z][A-Z]", w) or (not _common(w) and (strong or suffix_after or (nxt and product_word(nxt)))):
            flagged.append(i)
        elif (strong and (suffix_after or is_suffix)) or (is_suffix and product_word(run[i - 1])):
            flagged.append(i)  # 'the Summer Collection', 'Wayfarer Pro'
    if not flagged:
        return None
    lo, hi = flagged[0], flagged[-1]
    if hi + 1 < len(run) and (product_word(run[hi + 1]) or stem(run[hi + 1]) in NAME_SUFFIXES):
        hi += 1  # 'Bomba' + 'Sleeper'
    if lo == hi and lo > 0 and stem(run[hi]) in NAME_SUFFIXES:
        lo -= 1  # 'Ridgeline' + 'Pro'
    return " ".join(run[lo:hi + 1])


def check_entities(texts: Sequence[str], p: Product, brands: Sequence[str] = (),
                   materials: Sequence[str] = ENTITY_MATERIALS) -> CheckResult:
    """Product/collection/designer names and materials that appear in no input field. Other catalog
    brands in `brands` are left to check_wrong_product/check_faithfulness."""
    texts = as_texts(texts)
    src_raw = product_text(p)
    src = norm(src_raw)
    src_flat = re.sub(r"\s+", "", src)
    known = word_tokens(src_raw)
    own = norm(p.brand or "")
    other = set().union(*(word_tokens(b) for b in brands if norm(b) != own)) if brands else set()
    vocab_words = set().union(*(word_tokens(w) for w in (*materials, *COLORS, *TYPE_NOUNS_EN)))
    bad: list[str] = []

    def unknown(w: str) -> bool:
        parts = [x for x in re.split(r"[-&'’]", w) if x]
        return (stem(w) not in known and not all(stem(x) in known for x in parts)
                and stem(w) not in other and stem(w) not in vocab_words and not _acronym_or_code(w))

    mats = _material_hits(norm(" \n ".join(texts)), src, materials)
    bad += [f"invented material {m!r}" for m in mats]
    reported = {m.lower() for m in mats}

    for text in texts:
        zh = n_cjk(text) > len(LATIN.findall(text)) / 4
        title_case = not zh and _is_title_case(text)
        for sent in sentences(text):
            for run, initial in _name_runs(sent):
                name = _run_name(run, initial, title_case, unknown, known)
                if name and name.lower() not in reported:
                    bad.append(f"invented name {name!r}")
                    reported.add(name.lower())
        for m in _QUOTED_EN.finditer(text):
            q = m.group(1).strip()
            words = WORD.findall(q)
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
            for w in WORD.findall(CJK.sub(" ", text)):  # Latin brand-like words inside Chinese copy
                if _CAP.search(w) and unknown(w) and stem(w) not in PROPER_COMMON and w.lower() not in reported:
                    bad.append(f"invented name {w!r}")
                    reported.add(w.lower())
    bad = list(dict.fromkeys(bad))
    return CheckResult("invented_entities", not bad, bad)
