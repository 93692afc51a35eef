"""degeneration: loops and echoes (repeated sentences, phrases and items, schema field names as copy, prose
that only restates the title)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from shopgen.checks.base import (
    CJK,
    CJK_RUN,
    STOPWORDS,
    WORD,
    CheckResult,
    as_texts,
    n_cjk,
    n_words,
    sentences,
    shorten,
    stem,
    word_tokens,
)
from shopgen.core.records import Product

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
    return [stem(w) for w in WORD.findall(CJK.sub(" ", text)) if w.lower() not in STOPWORDS]


def _cjk_only(text: str) -> str:
    return "".join(CJK_RUN.findall(text))


def _repeated_phrase(text: str, title: str) -> tuple[str, int] | None:
    """Most repeated word 4-gram (x3+) or, for Chinese, character 6-gram (x3+), ignoring the product name."""
    cjk = _cjk_only(text)
    if len(cjk) >= 18:
        tkey = _cjk_only(title)
        grams = [cjk[i:i + 6] for i in range(len(cjk) - 5)]
        grams = [g for g in grams if g not in tkey]
    else:
        toks = [w.lower() for w in WORD.findall(text)]
        tset = {w.lower() for w in WORD.findall(title)}
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
            bad.append(f"field name {shorten(hit, 30)!r} as text")
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
    texts = as_texts(texts)
    flags = [bool(prose)] * len(texts) if isinstance(prose, bool) else [bool(x) for x in prose]
    flags += [False] * (len(texts) - len(flags))
    names = {" ".join(_key(n).split()) for n in (*DEFAULT_FIELD_NAMES, *field_names)} - {""}
    title_key = _key(p.title)
    title_toks = word_tokens(" ".join([p.title, p.brand or "", p.category or ""]))
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
            bad.append(f"repeated item {shorten(t, 40)!r}")
            continue
        for j in seen_items.values():
            if texts[j].rstrip().endswith(("?", "？")) != t.rstrip().endswith(("?", "？")):
                continue
            a, b = _bag(texts[j]), _bag(t)
            if len(a) >= 3 and len(b) >= 3 and len(a & b) / len(a | b) >= 0.8:
                bad.append(f"near-duplicate items {shorten(texts[j], 30)!r} / {shorten(t, 30)!r}")
                break
        seen_items[k] = i

    # Repeated sentences within a text (3+ words) or across distinct texts (5+ words).
    within: Counter[str] = Counter()
    across: Counter[str] = Counter()
    surface: dict[str, str] = {}
    for k in dict.fromkeys(_key(t) for t in texts):  # each distinct text once
        t = next(x for x in texts if _key(x) == k)
        sents = [s for s in sentences(t) if n_words(s) >= 3 or n_cjk(s) >= 6]
        keys = [_key(s) for s in sents]
        for s, sk in zip(sents, keys):
            surface.setdefault(sk, s)
        within.update(keys)
        across.update({sk for sk, s in zip(keys, sents) if n_words(s) >= 5 or n_cjk(s) >= 8})
    looped = set()
    for sk, n in within.items():
        if n >= 2 or across[sk] >= 2:
            looped.add(sk)
            bad.append(f"repeated sentence {shorten(surface[sk], 40)!r} x{max(n, across[sk])}")

    for t, is_prose in zip(texts, flags):
        # Phrase loops (e.g. '可以在约定时间决定' x20), unless a repeated sentence already covers them.
        if not any(sk in _key(t) for sk in looped):
            rep = _repeated_phrase(t, p.title)
            if rep:
                bad.append(f"repeated phrase {rep[0]!r} x{rep[1]}")
        for m in _REPEAT_WORD.finditer(t):
            n = len(WORD.findall(m.group(0)))
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
                bad.append(f"restates the title only {shorten(t, 40)!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("degeneration", not bad, bad)
