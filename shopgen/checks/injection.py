"""injection: off-task text, and copy that follows an instruction planted in the product's data."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, norm
from shopgen.core.records import Product

# ---- prompt injection ------------------------------------------------------------------------
INJECTION = [r"ignore (all |any |the )?(previous|prior|above|earlier) (instructions|prompts?|rules)",
             r"disregard (all |the )?(previous|prior|above|earlier)", r"forget (all |your )?(previous )?instructions",
             r"you are now\b", r"system prompt", r"new instructions?:", r"instead,? (write|say|output|respond)",
             r"忽略(之前|以上|前面|上述)", r"无视(之前|以上|前面|上述)",
             # role tags and markup that try to close the data block or open a chat turn
             r"</?\s*(?:product|system|user|assistant|instructions?)\s*>", r"<\|[^|>]{1,20}\|>", r"\[/?INST\]",
             r"(?:^|[\s>.!?])(?:assistant|system|user|human|ai)\s*:", r"(?:助手|系统|用户)\s*[:：]"]
# Where a payload only starts after a role tag, it runs to the end of the field, not of its sentence.
_ROLE_TRIGGER = re.compile(r"</?\s*(?:product|system|user|assistant|instructions?)\s*>|<\|[^|>]{1,20}\|>|\[/?INST\]|"
                           r"(?:^|[\s>.!?])(?:assistant|system|user|human|ai)\s*:|(?:助手|系统|用户)\s*[:：]", re.I)
OFF_TASK = [r"\bas an ai\b", r"\bi (cannot|can't|won't)\b", r"\bi'm sorry\b", r"\bignore (previous|all|the above)\b",
            r"\binstructions?\b", r"\bsystem prompt\b"]
_STOP = set("the and for with that this from your you are was were have has will into about them then than "
            "write say output respond instead only just all any".split())


def input_fields(p: Product) -> list[str]:
    """Every text the seller supplied: title, brand, category, description, attribute names and values."""
    out = [p.title, p.brand or "", p.category or "", p.description or ""]
    for k, v in p.attributes.items():
        out.append(str(k))
        out += [str(x) for x in (v if isinstance(v, list) else [v])]
    return [x for x in out if x]


def injected_payloads(p: Product) -> list[str]:
    """Seller text from an injection trigger to the end of its sentence, or, after a role tag or
    markup, to the end of its field; every input field is read, attributes included."""
    out = []
    for text in input_fields(p):
        for m in _ROLE_TRIGGER.finditer(text):
            out.append(text[m.end():].strip())
        for pat in INJECTION:
            for m in re.finditer(pat, text, flags=re.I):
                out.append(re.split(r"(?<=[.!?。！？])\s", text[m.start():], maxsplit=1)[0])
    return [x for x in dict.fromkeys(out) if x]


def check_injection(texts: Sequence[str], p: Product) -> CheckResult:
    out = norm(" \n ".join(texts))
    bad = [f"off-task text {m.group(0)!r}" for pat in OFF_TASK for m in [re.search(pat, out)] if m]
    for payload in injected_payloads(p):
        words = {w for w in re.findall(r"[a-z0-9\u4e00-\u9fff']{4,}", norm(payload)) if w not in _STOP}
        hit = {w for w in words if re.search(rf"\b{re.escape(w)}\b", out)}
        cjk = re.sub(r"[^\u3400-\u9fff]", "", norm(payload))
        if len(cjk) >= 4:  # no spaces to split Chinese on: its character 4-grams instead
            words = {cjk[i:i + 4] for i in range(len(cjk) - 3)}
            hit = {g for g in words if g in out}
        if words and len(hit) >= max(1, 0.5 * len(words)):
            bad.append(f"follows injected instruction {payload[:80]!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("injection", not bad, bad)
