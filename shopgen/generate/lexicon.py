"""The words an English copy string may use when `generation.lexicon` is on (pure): the product's own
words (every input field, attribute names included) plus GLUE_EN, a closed list of function words and
neutral copy words. GLUE_EN names no material, colour, origin, brand, sales channel, certification,
audience or claim, and no praise (the puffery check's vocabulary): those can come only from the input,
so the model cannot write "made from cedar", "a Japanese knife", "on the Quill website" or "the
ultimate hoodie" for a product whose facts lack them. Extend it per shop with `generation.lexicon_words`."""

from __future__ import annotations

import re
from collections.abc import Iterable

from shopgen.checks.base import product_text
from shopgen.core.records import Product

GLUE_EN = tuple("""
a an the this that these those it its it's they them their there here
and or but nor so yet as than then also too both either neither each every all any some more most
much many few less least other another such same own only just even still very quite well
of in on at to for from with without by into onto over under up down out off about across along
around after before between through during per via within against near behind beside inside outside
is are was were be been being am has have had having do does did can could will would may might must
should shall not no yes
i you your yours we our us he she his her him one ones someone anyone everyone something anything
who whom whose which what when where why how whether if while because since until though although
made make makes making built build designed design designs feature features featuring featured
offer offers offering give gives giving keep keeps keeping help helps helping let lets hold holds
holding fit fits fitting come comes coming include includes including included add adds adding
stay stays work works working use uses using used wear wears wearing carry carries store stores
take takes need needs want wants find finds choose get gets go goes look looks looking set sets
provide provides providing allow allows support supports protect protects pair pairs
measure measures measuring weigh weighs weighing rated rating sized available
product products item items piece pieces model models style styles option options choice choices
size sizes detail details part parts side sides top bottom front back
day days everyday daily time times way ways everything
easy easily simple simply practical handy clean neat classic plain
new full half extra
first second third single double
length width height depth weight capacity volume
""".split())

# Letters of any script ("Ångström"), digits inside a name ("3L", "X200"), and the hyphen and
# apostrophe inside a word ("full-zip", "Levi's").
_WORD = re.compile(r"\w(?:[\w'’-]*\w)?", re.UNICODE)


def product_words(p: Product) -> set[str]:
    """The words of every input field, as written, with their parts ('full-zip' also gives 'full'
    and 'zip'). A name with digits ('3L') is kept whole; bare numbers are left to the number constraint."""
    out: set[str] = set()
    for m in _WORD.finditer(product_text(p).replace("_", " ")):
        w = m.group(0)
        if not re.search(r"[^\W\d_]", w):
            continue
        out.add(w)
        out.update(x for x in re.split(r"[-'’]", w) if re.search(r"[^\W\d_]", x) and not re.search(r"\d", x))
    # singular and plural of the input's own nouns ("2.5-layer" from "layers")
    out |= {w[:-1] for w in out if len(w) > 3 and w.endswith("s") and not w.endswith("ss")}
    out |= {w + ("es" if w.endswith(("s", "x", "ch", "sh")) else "s") for w in list(out) if len(w) > 2 and w.isalpha()}
    return out


def lexicon(p: Product, extra: Iterable[str] = ()) -> list[str]:
    """The product's words and the glue list, each also in lower case and capitalised (a sentence may
    start with any of them), longest first."""
    base = product_words(p) | set(GLUE_EN) | {w for w in extra if w and not re.search(r"\s|\d", w)}
    out = set()
    for w in base:
        out.update((w, w.lower(), w[:1].upper() + w[1:]))
    return sorted(out, key=lambda s: (-len(s), s))


def request_lexicon(p: Product, on: bool, extra: Iterable[str] = ()) -> list[str] | None:
    """The word list for one request, or None (no word constraint): off, or a product whose locale is
    not English (GLUE_EN is English; a zh-CN text has no spaces to split words on)."""
    return lexicon(p, extra) if on and p.locale.lower().startswith("en") else None
