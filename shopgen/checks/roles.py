"""role_confusion: a fact put in the wrong role: a designer's or brand's name given as the material
('made with a high-quality material of Ronan and Erwan Bouroullec'), a dimension given as what the
product is made from ('made from 157 x 88 cm of cedar'), a person's or brand's name given as a place."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CheckResult, as_texts, n_words, norm, shorten
from shopgen.core.records import Product

_MATERIAL_CUE = re.compile(r"\b(?:made|crafted|constructed|built|formed|cut|woven|sewn|fashioned|manufactured) "
                           r"(?:from|of|with|in|out of)\b|\b(?:material|materials|fabric|upholstery|construction|"
                           r"frame|shell|finish) (?:is |are |of |in |from |made of )+|\bfeaturing (?:a |an )?"
                           r"(?:material|fabric) of\b|(?:材质为|材质是|采用|面料为|面料是)")
_PERSON_KEYS = re.compile(r"design|brand|artist|author|maker|manufacturer|creator|by|studio|collection|label|"
                          r"设计|品牌|作者|厂商", re.I)


def _names(p: Product) -> list[str]:
    """The product's person, studio and brand names (never materials)."""
    out = [p.brand] if p.brand else []
    for k, v in p.attributes.items():
        if _PERSON_KEYS.search(k):
            for x in v if isinstance(v, list) else [v]:
                if isinstance(x, str):
                    out += [s.strip() for s in re.split(r"\s*(?:,|&|\band\b|/|、|和)\s*", x) if len(s.strip()) > 2]
    return [n for n in dict.fromkeys(out) if n]


_NOT_MATERIAL_KEYS = re.compile(r"fill|insulation|colou?r|finish_colou?r|shape|length|size|gender|lining|颜色|填充", re.I)


def _non_materials(p: Product) -> list[str]:
    """Values of attributes that say something other than what the product is made of (its fill, colour)."""
    out = []
    for k, v in p.attributes.items():
        if _NOT_MATERIAL_KEYS.search(k) and not re.search(r"material|fabric|材质", k, re.I):
            out += [norm(str(x)) for x in (v if isinstance(v, list) else [v]) if isinstance(x, str) and len(str(x)) > 2]
    return out


_A_BRAND = re.compile(r"\b(?:is|as) (?:an?|the) (?:[\w'-]+ ){0,4}(?:brand|company|manufacturer|retailer|label|store)\b")
_COLOR_KEYS = re.compile(r"colou?r|颜色", re.I)


def _colour_clash(low: str, p: Product) -> list[str]:
    """Colour words that are not the product's colour, when its data names one ('pink' for a red ball
    whose URL key happens to say pink)."""
    from shopgen.checks.faithfulness import COLORS

    mine = " ".join(norm(str(x)) for k, v in p.attributes.items() if _COLOR_KEYS.search(k)
                    for x in (v if isinstance(v, list) else [v]))
    if not mine:
        return []
    title = norm(p.title)
    out = []
    for c in COLORS:
        pat = rf"\b{re.escape(c)}\b" if c.isascii() else re.escape(c)
        if re.search(pat, low) and not re.search(pat, mine) and not re.search(pat, title):
            out.append(f"colour {c!r} is not the product's colour ({shorten(mine, 20)})")
    return out


def check_roles(texts: Sequence[str], p: Product) -> CheckResult:
    names = [norm(n) for n in _names(p)]
    others = _non_materials(p)
    bad: list[str] = []
    for t in as_texts(texts):
        low = norm(t)
        if n_words(t) <= 12:  # a title, headline or bullet naming the colour ('... 55 cm pink')
            bad += _colour_clash(low, p)
        for m in _A_BRAND.finditer(low):
            bad.append(f"the product called a {m.group(0).split()[-1]} {shorten(m.group(0), 30)!r}")
        for m in _MATERIAL_CUE.finditer(low):
            obj = low[m.end():m.end() + 60]
            obj = re.split(r"[.;,!?。！？，]|\band\b|\b(?:which|that|and is|for|to|by|from)\b|设计|出品", obj)[0]
            for n in names:
                if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", obj):
                    bad.append(f"name {n!r} given as a material")
            for v in others:
                if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", obj) and not re.search(rf"(?<!\w){re.escape(v)}(?!\w)",
                                                                                     norm(p.title)):
                    bad.append(f"{v!r} given as the material")
            dim = re.match(r"\s*(?:a |an |the )?(?:high[- ]quality |premium |sturdy )?\d+(?:[.,]\d+)?\s*(?:x|×|by|\*)"
                           r"\s*\d|\s*(?:a |an |the )?\d+(?:[.,]\d+)?\s*(?:(?:mm|cm|m|in|inch|inches|ft|feet)\b|厘米|毫米)", obj)
            if dim:
                bad.append(f"dimension given as a material {shorten(m.group(0) + obj, 40)!r}")
    bad = list(dict.fromkeys(bad))
    return CheckResult("role_confusion", not bad, bad)
