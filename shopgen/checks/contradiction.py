"""contradiction: copy that says one thing and its opposite ('It is not a 350 ml bottle but is a
350 ml bottle', 'It is waterproof. ... It is not waterproof.', '不是保温杯，而是保温杯')."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, as_texts, norm, shorten

_NOT_BUT = re.compile(r"\bnot (?:just |only |simply )?(?:a |an |the )?(?P<x>[\w\s'-]{3,40}?),? but (?:it )?(?:is |are )?"
                      r"(?:also )?(?:a |an |the )?(?P=x)\b")
_NEG = re.compile(r"\b(?:is|are|it's|it is|they're) not (?:a |an |the )?(?P<x>[a-z][\w'-]*(?: [a-z][\w'-]*){0,3})")
_ZH_NOT_BUT = re.compile(r"不是(?P<x>[\u4e00-\u9fff\w]{2,12}?)[，,、]?(?:而|但|却)?(?:是|为)(?P=x)")
_ZH_NEG = re.compile(r"(?:不是|并非|不)(?P<x>[\u4e00-\u9fff]{2,6})")
_WEAK = {"only", "just", "too", "very", "so", "recommended", "included", "a", "an", "the", "meant", "designed",
         "intended", "suitable", "for", "sold", "available"}


def check_contradiction(texts: Sequence[str]) -> CheckResult:
    bad: list[str] = []
    for raw in as_texts(texts):
        t = norm(raw)
        for m in _NOT_BUT.finditer(t):
            bad.append(f"contradicts itself {shorten(m.group(0), 40)!r}")
        for m in _ZH_NOT_BUT.finditer(t):
            bad.append(f"contradicts itself {shorten(m.group(0), 20)!r}")
        # 'is not X' and 'is X' in the same text
        for m in _NEG.finditer(t):
            x = m.group("x").strip()
            if x.split()[0] in _WEAK:
                continue
            pos = re.compile(rf"\b(?:is|are|it's|they're) (?:a |an |the )?{re.escape(x)}\b")
            if any(not t[max(0, p.start() - 12):p.start()].rstrip().endswith(("not", "n't")) and p.start() != m.start()
                   for p in pos.finditer(t)):
                bad.append(f"says both 'is {x}' and 'is not {x}'")
        for m in _ZH_NEG.finditer(t):
            x = m.group("x")
            asserted = [a for a in re.finditer(re.escape(x), t) if a.start() != m.start("x")
                        and t[max(0, a.start() - 2):a.start()][-1:] not in "不非没无未"
                        and not t[max(0, a.start() - 2):a.start()].endswith(("不是", "并非"))]
            if asserted:
                bad.append(f"says both '{x}' and '不{x}'")
    bad = list(dict.fromkeys(bad))
    return CheckResult("contradiction", not bad, bad)
