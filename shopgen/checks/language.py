"""language: the copy is written in the product's locale (Chinese copy for zh-CN, no CJK in English copy)."""

from __future__ import annotations

from collections.abc import Sequence

from shopgen.checks.base import CJK, LATIN, CheckResult

# ---- language --------------------------------------------------------------------------------


def check_language(texts: Sequence[str], locale: str) -> CheckResult:
    blob = "".join(texts)
    cjk, latin = len(CJK.findall(blob)), len(LATIN.findall(blob))
    if locale.lower().startswith("zh"):
        ok = cjk > 0 and cjk >= 0.5 * (cjk + latin / 4)
        return CheckResult("language", ok, [] if ok else ["zh-CN product needs Chinese copy"])
    ok = cjk <= 0.05 * max(1, cjk + latin)
    return CheckResult("language", ok, [] if ok else [f"{locale} product got non-Latin (CJK) copy"])
