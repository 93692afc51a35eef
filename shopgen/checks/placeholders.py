"""placeholder: unfilled template slots, prompt or markup residue, symbol spam and prose cut off mid-sentence."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, as_texts, n_cjk, n_words, shorten

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
    words, cjk = n_words(t), n_cjk(t)
    if words < 15 and cjk < 40:
        return None
    last = t.rsplit("\n", 1)[-1]  # copy may end in a short list line without a period
    tail = shorten(last[-30:].split(" ", 1)[-1] if not n_cjk(last) else last[-12:], 30)
    if _TRAIL_CONNECTIVE.search(t) or t.endswith(("...", "…")):
        return tail
    if (n_words(last) >= 40 or n_cjk(last) >= 60) and t[-1] not in _TERMINAL:  # prose ends its sentence
        return tail
    return None


def check_placeholders(texts: Sequence[str]) -> CheckResult:
    """Unfilled template slots, prompt/markup residue, symbol spam and prose cut off mid-sentence."""
    bad: list[str] = []
    for text in as_texts(texts):
        work = unicodedata.normalize("NFKC", text)  # fullwidth ［品牌］ and ｛｝ read as [ ] and { }
        for label, pat in PLACEHOLDER_PATTERNS:
            for m in pat.finditer(work):
                bad.append(f"{label} {shorten(m.group(0).strip(), 30)!r}")
            work = pat.sub(lambda m: " " * len(m.group(0)), work)
        bad += [f"symbol run {r!r}" for r in _symbol_runs(text)]
        tail = _unfinished(text)
        if tail is not None:
            bad.append(f"unfinished ending {tail!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("placeholder", not bad, bad)
