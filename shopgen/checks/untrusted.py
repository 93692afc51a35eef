"""contact: phone numbers, e-mail addresses, URLs and calls to action are refused in published copy
even when an input field carries them: the catalog feed is untrusted input, and copy is not a
channel for whatever a seller (or an attacker) put into it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, as_texts, norm, shorten

CONTACT = [
    ("url", r"https?://\S+|\bwww\.\S+|\b[\w-]+\.(?:com|net|org|io|co|shop|store|cn|de|uk|fr|info|biz)\b(?:/\S*)?"),
    ("e-mail", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    ("phone", r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3}[\s.-]\d{4}(?![\w.])"
              r"|(?<!\d)1[3-9]\d{9}(?!\d)|(?<![\w.])\+\d[\d\s().-]{7,}\d"),
    ("call to action", r"\b(?:call|phone|text|whatsapp|e-?mail|contact|message|dm|visit|click|tap|scan)"
                       r"(?: us| now| today| our| the| this)?(?: (?:at|on|to|via|for))? (?:\+?\d|us\b|now\b|today\b|"
                       r"our\b|www|http|the (?:link|website|number))"),
    ("call to action", r"\b(?:order|buy|shop|purchase) (?:now|today|online)\b|\bto order\b|\badd (?:it )?to (?:your )?cart\b"
                       r"|\b(?:can i|you can|how (?:do|can) i|where can i) (?:order|buy|purchase|get)\b"
                       r"|\b(?:order|buy|purchase)(?: it| the product| one| yours)? (?:at any time|anytime)\b"),
    ("call to action", r"立即购买|马上购买|立即下单|拨打|致电|联系电话|联系我们|扫码|点击链接|加微信|微信号|客服电话"),
]


def check_contact(texts: Sequence[str]) -> CheckResult:
    bad = []
    for t in as_texts(texts):
        low = norm(t)
        for label, pat in CONTACT:
            for m in re.finditer(pat, low, flags=re.I):
                bad.append(f"{label} {shorten(m.group(0), 30)!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("contact", not bad, bad)
