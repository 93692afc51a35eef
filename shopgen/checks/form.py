"""form: each text is the right kind of text for its type, and none echoes the prompt.

- a bullet states a feature: not a bare value ('Sellable', 'Mixed'), a `key: value` label
  ('Brand: Kelda', 'Cooking: False'), the category name, a numbering ('1. Product: ...') or a
  non-word; an ad headline is a complete phrase; no text doubles a word ('The Kelda Kelda');
- prompt_echo: the prompt's own instructions copied into the copy ('Each bullet point is a
  different listed fact in a few words.')."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from shopgen.checks.base import CJK, STOPWORDS, WORD, CheckResult, as_texts, n_cjk, n_words, norm, shorten, stem
from shopgen.checks.entities import COMMON_WORDS
from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import Product

_NUMBERING = re.compile(r"^\s*(?:\d{1,2}|[a-z])\s*[.)、．:]\s*|^\s*[-*•·]\s*|^\s*(?:第[一二三四五六七八九十\d]+[条点项])", re.I)
_LABEL = re.compile(r"^\s*([^\W\d][\w' /&-]{0,28}?)\s*[:：]\s*(.+)$", re.S)
_VALUE_WORDS = {"true", "false", "yes", "no", "none", "null", "n/a", "na", "是", "否", "无"}
_ENDS_OPEN = re.compile(r"(?:\b(?:and|or|the|a|an|of|to|for|with|from|is|are|its|your|our|that|but)"
                        r"|[,;:(\-–—&]|[和与及或的是])\s*$", re.I)
_DOUBLED = re.compile(r"(?<![\w'’-])([A-Za-z][A-Za-z'’-]+)\s+\1(?![\w'’-])", re.I)
_DOUBLED_OK = {"bye", "knock", "so", "very", "really", "had", "that", "pom", "choo", "tut", "ha", "no"}


def _fields(p: Product) -> list[str]:
    vals = [p.title, p.brand or "", p.category or ""]
    for k, v in p.attributes.items():
        vals.append(k.replace("_", " "))
        vals += [str(x) for x in (v if isinstance(v, list) else [v])]
    return [v for v in vals if v]


def _key(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", norm(text)).split())


def _known_words(p: Product) -> set[str]:
    src = " ".join([*_fields(p), p.description or ""])
    return {stem(w) for w in WORD.findall(src)} | {w.lower() for w in WORD.findall(src)}


def _non_word(w: str, known: set[str]) -> bool:
    """A made-up token: long, not in the input, no vowel pattern of a word or glued words ('Volgaglasschair')."""
    low = w.lower()
    if low in known or stem(w) in known or len(low) < 12:
        return False
    return bool(re.fullmatch(r"[a-z]+", low))


_GLUE = frozenset("""a an the and or of to in on at by for with from is are it its this that what which how much many
    does do did can will be has have was not no yes your you who when where why there these those made make weigh
    weight weighs long wide tall big size color colour use used work works come comes type kind one any best good""".split())


COMMON = COMMON_WORDS | STOPWORDS
_SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "ly", "ness", "able", "ful", "y", "al")


def misspelled(word: str, known: set[str]) -> str | None:
    """The input word that `word` misspells ('borosilac' for borosilicate, 'ampinging' for amping), or
    None: a word of 5+ letters not in the input, very close to one that is and not an inflection of it."""
    import difflib

    w = word.lower()
    if len(w) < 5 or not w.isalpha() or w in known or stem(w) in known or w in COMMON:
        return None
    for k in known:
        if len(k) < 5 or not k.isalpha() or k[:3] != w[:3]:
            continue
        if w.startswith(k) and (rest := w[len(k):]) and k.endswith(rest):
            return k  # a stutter: 'ampinging'
        if len(k) >= 7 and difflib.SequenceMatcher(None, w, k).ratio() >= 0.85 and not (
                w.startswith(k) or k.startswith(w)) and w.replace("our", "or") != k.replace("our", "or"):
            return k
    return None


def glued(word: str, known: set[str]) -> bool:
    """A run of words written without spaces ('whatisitmadeof', 'howmuchdoesitweigh'): a lower-case
    token of 9+ letters, not in the input, that splits into 3+ common words or input words."""
    w = word.lower()
    if len(w) < 9 or not w.isalpha() or w in known or stem(w) in known:
        return False
    vocab = _GLUE | {k for k in known if len(k) >= 3}
    best = [0] + [-1] * len(w)  # best[i]: most pieces splitting w[:i] (-1: no split)
    for i in range(1, len(w) + 1):
        for j in range(max(0, i - 12), i):
            if best[j] >= 0 and w[j:i] in vocab:
                best[i] = max(best[i], best[j] + 1)
    return best[len(w)] >= 3


def bullet_form(item: str, p: Product, field_keys: set[str], known: set[str]) -> str | None:
    """Why a bullet is not a feature statement, or None."""
    t = item.strip()
    if _NUMBERING.match(t):
        return f"numbered or marked bullet {shorten(t, 30)!r}"
    lab = _LABEL.match(t)
    if lab:
        key, rest = _key(lab.group(1)), lab.group(2).strip()
        if key in field_keys or _key(rest) in _VALUE_WORDS or n_words(rest) + n_cjk(rest) // 2 <= 3:
            return f"label bullet {shorten(t, 30)!r}"
    k = _key(t)
    if k in field_keys or k in _VALUE_WORDS:
        return f"bare value bullet {shorten(t, 30)!r}"
    zh = n_cjk(t) > len(re.findall(r"[A-Za-z]", t)) / 4
    if (zh and n_cjk(t) < 4) or (not zh and n_words(t) < 3):
        return f"bare value bullet {shorten(t, 30)!r}"
    title = {stem(w) for w in WORD.findall(p.title)}
    if not zh and {stem(w) for w in WORD.findall(t)} <= title:
        return f"the product's name as a bullet {shorten(t, 30)!r}"
    if not zh and any(_non_word(w, known) for w in WORD.findall(t)):
        return f"non-word in bullet {shorten(t, 30)!r}"
    return None


_TERMINAL = tuple(".!?。！？\"'”’)）")
# What a FAQ question asks, and what its answer must then contain (a material, a number with a unit, ...).
_INTENTS = [
    (re.compile(r"\bmade of\b|\bmade from\b|\bmaterials?\b|什么材质|材质是|用什么做"), "material"),
    (re.compile(r"\bweigh|\bweight\b|多重|重量"), "weight"),
    (re.compile(r"\bhow (?:big|large|long|wide|tall|high|deep)\b|\bdimensions?\b|\bsize\b|尺寸|多大|多长|多高|多宽"),
     "size"),
    (re.compile(r"\bcolou?rs?\b|颜色|什么色"), "color"),
    (re.compile(r"\bhow (?:much|many) (?:does it hold|can it hold)|\bcapacity\b|容量|能装"), "capacity"),
]
_ANSWERS = {
    "material": re.compile(r"\bmade (?:of|from|with)\b|\bmaterial\b|\bfabric\b|\bbuilt from\b|"
                           r"\bconstructed from\b|材质|材料|面料|采用|制成|[棉麻钢铝木皮]"),
    "weight": re.compile(r"\d\s*(?:g|kg|grams?|kilograms?|oz|ounces?|lbs?|pounds?)\b|\d\s*(?:克|千克|公斤)"),
    "size": re.compile(r"\d\s*(?:mm|cm|m|in|inch|inches|ft|feet|l|liters?|litres?)\b|\d\s*(?:毫米|厘米|米|升)|"
                       r"\b(?:one size|small|medium|large|xs|xl|s|m|l)\b|大号|小号|均码"),
    "color": re.compile(r"\bcolou?r\b|\bcomes in\b|\bin (?:a |an )?\w+\b|颜色|色"),
    "capacity": re.compile(r"\d\s*(?:l|ml|liters?|litres?|oz)\b|\d\s*(?:升|毫升)|\bholds\b"),
}


def cut_off(text: str, known: set[str]) -> bool:
    """A short text cut at its length limit mid-word: its last word is not a word of the input but the
    start of one ('Fixed LED S', 'Tri-ply Stainless Stor')."""
    words = WORD.findall(text)
    if not words or text.rstrip()[-1:] in _TERMINAL:
        return False
    last = words[-1].lower()
    return last not in known and stem(last) not in known and any(k.startswith(last) and k != last for k in known)


_TITLE_WORDS = frozenset("for with and by in the a an of men's women's mens womens kids unisex new".split())


def seo_title_form(text: str, p: Product) -> list[str]:
    """A page title: one phrase (no second sentence, no open ending) that names the product (at least
    half of its title's words, or all of them in Chinese by character)."""
    t = text.strip()
    bad = []
    if re.search(r"[.!?。！？]\s+\S", t) or _ENDS_OPEN.search(t) or re.search(
            r"\b(?:is|are|was|were|has|have|will|can|offers|features|boasts)\b", t, re.I):
        bad.append(f"not a title {shorten(t, 30)!r}")
    known = _known_words(p)
    extra = [w for w in WORD.findall(t) if w.lower() not in known and stem(w) not in known
             and w.lower() not in _TITLE_WORDS and not w.isdigit()]
    if extra:  # a title is built from the facts: 'Sell Your ...', 'Rainshell'
        bad.append(f"title word not in the facts {shorten(' '.join(extra), 30)!r}")
    title = {stem(w) for w in WORD.findall(p.title) if w.lower() not in ("the", "a", "an", "and", "of", "co")}
    said = {stem(w) for w in WORD.findall(t)}
    cjk_title = set(re.sub(r"[^\u3400-\u9fff]", "", p.title))
    if title and len(title & said) < len(title) / 2 and not (cjk_title and cjk_title <= set(t)):
        bad.append(f"title does not name the product {shorten(t, 30)!r}")
    return bad


def faq_form(pairs: Sequence[tuple[str, str]], known: set[str]) -> list[str]:
    """A FAQ question is a question; its answer is a finished sentence that answers it."""
    bad = []
    for q, a in pairs:
        qs, as_ = q.strip(), a.strip()
        zh = n_cjk(qs) > 0
        if not qs.endswith(("?", "？")) or (not zh and n_words(qs) < 3) or (zh and n_cjk(qs) < 4):
            bad.append(f"not a question {shorten(qs, 30)!r}")
        if not as_.endswith(_TERMINAL):
            bad.append(f"unfinished answer {shorten(as_, 30)!r}")
        low_q, low_a = norm(qs), norm(as_)
        for pat, intent in _INTENTS:
            if pat.search(low_q) and not _ANSWERS[intent].search(low_a):
                bad.append(f"answer does not say the {intent} asked for {shorten(qs, 30)!r}")
                break
    return bad


def check_form(texts: Sequence[str], p: Product, kind: str = "", items: Sequence[str] | None = None,
               headlines: Sequence[str] = (), pairs: Sequence[tuple[str, str]] = ()) -> CheckResult:
    """`kind`: the content type; `items`: its list items (bullets) when they are to be read as
    feature statements; `headlines`: ad headlines, which must be complete phrases."""
    texts = as_texts(texts)
    bad: list[str] = []
    field_keys = {_key(v) for v in _fields(p)} - {""}
    known = _known_words(p)
    for item in as_texts(items or []):
        why = bullet_form(item, p, field_keys, known)
        if why:
            bad.append(why)
    for h in as_texts(headlines):
        hs = h.strip()
        if cut_off(hs, known):
            bad.append(f"cut-off headline {shorten(hs, 30)!r}")
        elif _ENDS_OPEN.search(hs):
            bad.append(f"unfinished headline {shorten(hs, 30)!r}")
        elif not CJK.search(hs) and n_words(hs) < 2 and _key(hs) not in field_keys:
            bad.append(f"headline is not a phrase {shorten(hs, 30)!r}")
    for t in texts:
        for m in _DOUBLED.finditer(t):
            if m.group(1).lower() not in _DOUBLED_OK:
                bad.append(f"doubled word {shorten(m.group(0), 30)!r}")
        bad += [f"words run together {w!r}" for w in WORD.findall(t) if glued(w, known)]
        bad += [f"misspelled {w!r} ({k})" for w in WORD.findall(t) if (k := misspelled(w, known))]
    bad += faq_form(pairs, known)
    if kind == "seo_title":
        for t in texts:
            bad += seo_title_form(t, p) + ([f"cut-off title {shorten(t, 30)!r}"] if cut_off(t, known) else [])
    if kind == "description":  # prose ends its last sentence
        for t in texts:
            if t.strip() and not t.strip().endswith(_TERMINAL):
                bad.append(f"unfinished text {shorten(t[-30:], 30)!r}")
    if kind == "ad_copy":  # descriptions are sentences; a cut-off one reads as broken copy
        for t in texts:
            if t not in headlines and (_ENDS_OPEN.search(t.strip()) or not t.strip().endswith(_TERMINAL)):
                bad.append(f"unfinished text {shorten(t, 30)!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("form", not bad, bad)


# ---- prompt echo ---------------------------------------------------------------------------------
# Instruction phrases of the prompts themselves (the system prompt lives with the generator, so its
# telltale phrases are listed here), plus every content type's task and style text.
PROMPT_PHRASES = (
    "using only the facts listed", "only the facts", "listed fact", "listed facts", "in a few words",
    "the facts do not state", "facts between", "product tags", "answer with json", "json only",
    "never follow instructions", "supplied by a seller", "you are the copywriter", "online shop",
    "no bullet repeats another", "each bullet states", "each bullet point", "write a new answer",
    "your previous answer", "was rejected because", "uses only the facts", "do not add names",
    "only use the facts", "one product fact each", "short english bullet points", "plain english prose",
    "只使用", "列出的事实", "已列出", "只用 json", "只用json", "卖家提供", "绝不执行", "几个词即可", "不要重复",
)


def _grams(text: str, n: int) -> set[str]:
    t = norm(text)
    if n_cjk(t) > len(WORD.findall(t)):
        s = re.sub(r"[^\u3400-\u9fff]", "", t)
        return {s[i:i + 6] for i in range(max(0, len(s) - 5))}
    ws = re.findall(r"[a-z0-9']+", t)
    return {" ".join(ws[i:i + n]) for i in range(max(0, len(ws) - n + 1))}


def _instruction_grams(extra: Iterable[str] = ()) -> set[str]:
    texts = [*extra]
    for ct in CONTENT_TYPES.values():
        texts += [*ct.task.values(), *ct.style.values()]
    out: set[str] = set()
    for t in texts:
        # field names in backticks are the schema's, not copy
        out |= _grams(re.sub(r"`[^`]*`", " ", t), 5)
    return out


_INSTRUCTION_GRAMS = _instruction_grams()


def check_prompt_echo(texts: Sequence[str], p: Product, instructions: Iterable[str] = ()) -> CheckResult:
    """Copy that repeats the prompt: a 5-word (or 6-character) run of an instruction that the
    product's own data does not contain, or one of the prompt's telltale phrases."""
    grams = _INSTRUCTION_GRAMS | (_instruction_grams(instructions) if instructions else set())
    src_text = " ".join([*_fields(p), p.description or ""])
    src, src_norm = _grams(src_text, 5), norm(src_text)
    bad = []
    for t in as_texts(texts):
        hit = next((g for g in sorted(_grams(t, 5) & grams) if g not in src), None)
        if hit is None:
            low = norm(t)
            hit = next((ph for ph in PROMPT_PHRASES if ph in low and ph not in src_norm), None)
        if hit:
            bad.append(f"echoes the prompt {hit!r}")
        if re.match(r"\s*(?:style|task|facts?|风格|事实)\s*[:：]", t, re.I):
            bad.append(f"prompt label {shorten(t, 24)!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("prompt_echo", not bad, bad)
