"""faithfulness: every number, unit, material, colour, size and other catalog brand in the copy occurs in the input."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from shopgen.checks.base import CheckResult, norm, product_text
from shopgen.core.records import Product

# ---- attribute faithfulness ------------------------------------------------------------------
MATERIALS = ["cotton", "wool", "merino", "silk", "linen", "leather", "suede", "nylon", "polyester", "spandex", "elastane",
             "fleece", "down", "canvas", "denim", "cork", "bamboo", "jute", "rubber", "silicone", "plastic", "glass",
             "ceramic", "porcelain", "stainless steel", "carbon steel", "steel", "cast iron", "iron", "aluminum",
             "titanium", "copper", "brass", "bronze", "gold", "silver", "wood", "oak", "walnut", "maple", "teak",
             "carbon fiber", "fiberglass", "gore-tex", "kevlar", "tritan", "acrylic", "cashmere", "hemp", "latex",
             "棉", "羊毛", "真丝", "皮革", "尼龙", "涤纶", "不锈钢", "钛", "铝", "铜", "竹", "软木", "硅胶", "陶瓷", "玻璃"]
COLORS = ["black", "white", "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "gray", "beige",
          "navy", "teal", "olive", "maroon", "burgundy", "ivory", "cream", "tan", "khaki", "charcoal", "turquoise",
          "lavender", "saffron", "ochre", "coral", "mint", "indigo", "crimson", "scarlet", "gold", "silver",
          "黑色", "白色", "红色", "蓝色", "绿色", "黄色", "橙色", "紫色", "粉色", "棕色", "灰色", "米色"]
SIZES = [r"\bxxs\b", r"\bxs\b", r"\bxl\b", r"\bxxl\b", r"\bxxxl\b", r"\b[2-5]xl\b", r"\bsize \w+"]
UNITS = {"mm": "mm", "millimeter": "mm", "millimeters": "mm", "cm": "cm", "centimeter": "cm", "centimeters": "cm",
         "m": "m", "meter": "m", "meters": "m", "km": "km", "in": "in", "inch": "in", "inches": "in", "ft": "ft",
         "g": "g", "gram": "g", "grams": "g", "kg": "kg", "kilogram": "kg", "kilograms": "kg", "oz": "oz",
         "lb": "lb", "lbs": "lb", "pound": "lb", "pounds": "lb", "l": "l", "liter": "l", "liters": "l", "litre": "l",
         "litres": "l", "ml": "ml", "w": "w", "watt": "w", "watts": "w", "v": "v", "mah": "mah", "wh": "wh",
         "lumen": "lm", "lumens": "lm", "lm": "lm", "°c": "°c", "°f": "°f", "hz": "hz", "db": "db",
         "毫米": "mm", "厘米": "cm", "克": "g", "千克": "kg", "公斤": "kg", "升": "l", "毫升": "ml", "瓦": "w"}
_NUM = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:[.,]\d+)*)\s*([a-z°\u4e00-\u9fff]+)?", re.I)


def _numbers_units(text: str) -> tuple[set[str], set[str]]:
    nums, units = set(), set()
    for m in _NUM.finditer(text):
        raw = m.group(1).replace(",", "")
        try:
            nums.add(f"{float(raw):g}")
        except ValueError:
            continue
        u = (m.group(2) or "").lower()
        if u in UNITS:
            units.add(UNITS[u])
        else:  # a unit glued to a CJK suffix, e.g. 500毫升
            for k, v in UNITS.items():
                if u.startswith(k) and not k.isascii():
                    units.add(v)
    return nums, units



def _attr_key_units(p: Product) -> set[str]:
    out = set()
    for k in p.attributes:
        suffix = k.rsplit("_", 1)[-1].lower()
        if suffix in UNITS:
            out.add(UNITS[suffix])
    return out


def check_faithfulness(texts: Sequence[str], p: Product, brands: Iterable[str] = (),
                       materials: Sequence[str] = MATERIALS, colors: Sequence[str] = COLORS) -> CheckResult:
    """Every number, unit, material, colour, size and brand in the output must be in the input."""
    # "1. ..." or "- ..." enumerators in bullets are layout, not facts.
    texts = [re.sub(r"^\s*(\d{1,2}[.)、．]\s*|[-*•]\s+)", "", t) for t in texts]
    src, out = norm(product_text(p)), norm(" \n ".join(texts))
    src_nums, src_units = _numbers_units(src)
    src_units |= _attr_key_units(p)
    out_nums, out_units = _numbers_units(out)
    bad = [f"number {n}" for n in sorted(out_nums - src_nums)]
    bad += [f"unit {u}" for u in sorted(out_units - src_units)]
    for kind, vocab in (("material", materials), ("color", colors)):
        for w in vocab:
            pat = rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w)
            if re.search(pat, out) and not re.search(pat, src):
                bad.append(f"{kind} {w}")
    for pat in SIZES:
        for m in re.finditer(pat, out):
            if m.group(0) not in src:
                bad.append(f"size {m.group(0)}")
    own = norm(p.brand or "")
    for b in brands:
        nb = norm(b)
        if nb and nb != own and re.search(rf"\b{re.escape(nb)}\b", out) and nb not in src:
            bad.append(f"brand {b}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("faithfulness", not bad, bad)
