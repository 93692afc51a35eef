"""From a question and its product to what may be said (pure): the question is screened (an
instruction, a request for discounts, contact details or other shops, anything unsafe is refused),
matched to the facts that answer it (every content word of the question must be covered by one fact's
name, cues or value, or by one sentence of the description or a policy), and a comparison is computed
in the fact's own unit. The Resolution carries the cited facts, the verdict, and an extractive answer
composed from them, which the LLM's drafts are gated against."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from shopgen.answers.facts import DEFAULT_CUES, DIM_CUES, Fact, negative, stems
from shopgen.checks.base import CJK, negated, stem
from shopgen.checks.injection import INJECTION
from shopgen.core.measures import NUMBER_WORDS, Quantity, convert, question_quantities, show
from shopgen.core.records import Product

# Words that frame a question and say nothing about what is asked.
FRAME = {stem for stem in """what which how much many does do did is are was can could will would should shall has have
    had it its this that these those the a an of for to in on at by with about please pls hi hello hey thanks thank
    tell me know want wondering wonder need any there i my we our you your product item one get got come comes
    really exactly approximately roughly about total overall actually just also like buy bought purchase
    something anything thing stuff quick question say said mean listed list available don't doesn't isn't won't
    can't didn't i'm it's i've i'd kind type sort work works working see until take takes use used using put get
    gets need needs go goes""".split()}
_SUFFIX = re.compile(r"(?:able|ible|ing|ed|er|ness|ity|ment)$")

# A question is refused, not answered, when it asks the answerer to do something else or to promise,
# contact or compare with other shops. (refusal reason, pattern)
REFUSE: list[tuple[str, str]] = [
    ("instruction", "|".join(INJECTION)),
    ("instruction", r"\b(?:pretend|act as|role-?play|reveal|your (?:prompt|instructions|rules)|repeat after me|"
                    r"write (?:me )?(?:a|an) (?:poem|story|song|essay|joke|review)|tell me a joke|translate this|"
                    r"ignore (?:your|the|all|any)|forget (?:your|the|all))\b"),
    ("discount", r"\b(?:discount|coupon|promo(?:tion)?(?: code)?|voucher|vouchers|deal|sale|price match|"
                 r"cheaper (?:at|on|elsewhere|somewhere)|lower (?:the|your) price|free shipping code)\b"),
    ("contact", r"\b(?:phone|telephone|e-?mail|email address|contact (?:you|details|info|number)|call you|whatsapp|"
                r"address of your|talk to (?:a|the|your) (?:human|manager|person|agent)|your (?:number|address))\b"),
    ("competitor", r"\b(?:amazon|walmart|ebay|target\.com|costco|aliexpress|temu|best ?buy|rei|decathlon|"
                   r"competitors?|other (?:shops?|stores?|sites?|websites?)|another (?:shop|store|site))\b"),
    ("promise", r"\b(?:promise|guarantee (?:me|that)|swear|reserve|put (?:it |one )?aside|set (?:it |one )?aside|"
                r"hold (?:an?|one|it|this|that)\b.*\bfor me)\b"),
    ("unsafe", r"\b(?:hurt|harm|kill|injure|stab|weapon|attack|poison|suicide|bomb|explosive)\b"),
]
LE = re.compile(r"\b(?:under|below|less than|lighter than|smaller than|shorter than|within|at most|no more than|"
                r"up to|maximum|max|beneath|narrower than|thinner than|cheaper than|fit (?:in|into|under|through|"
                r"inside|within|on|in my)|low enough)\b", re.I)
GE = re.compile(r"\b(?:over|above|more than|at least|longer than|bigger than|larger than|heavier than|taller than|"
                r"wider than|thicker than|exceeds?|hold|holds|carry|take|reach|reaches|last|lasts|handle|withstand|"
                r"minimum|fit (?:a|an|someone|somebody|my|me|people|persons?|\d)|enough)\b", re.I)
_WARMTH = re.compile(r"\b(?:warm|cold|night|nights|winter|sleep|camp|camping|freezing|temperatures?)\b", re.I)
YESNO = re.compile(r"(?:^|[,.;!?]\s*)(?:(?:hi|hello|hey|pls|please|so|and|but|also)[,!\s]+)*(?:is|are|does|do|can|"
                   r"will|would|has|have|could|should|was|did)\b", re.I)


def root(w: str) -> str:
    """washable/washing/washed -> wash, dimmable -> dim (a shopper's word and the seller's rarely share a suffix)."""
    if len(w) <= 6:
        return w
    r = _SUFFIX.sub("", w)
    return r[:-1] if r != w and len(r) > 2 and r[-1] == r[-2] and r[-1] not in "ls" else r


def roots(words: set[str] | frozenset[str]) -> set[str]:
    return {root(w) for w in words}


@dataclass(frozen=True)
class Resolution:
    status: str  # a questions.STATUSES value, or "draft": an answer is drafted and gated
    reasons: tuple[str, ...] = ()
    facts: tuple[Fact, ...] = ()
    verdict: str | None = None  # yes | no
    extractive: str = ""
    check: str = ""  # the computed comparison, in words, for the prompt
    required: tuple[str, ...] = ()  # what a drafted answer must state (the cited value)
    numbers: tuple[str, ...] = ()  # numbers a drafted answer may state besides the facts'
    evidence: tuple[str, ...] = field(default=())  # the sentences cited

    @property
    def cites(self) -> list[str]:
        return list(dict.fromkeys(f.field for f in self.facts))


def screen(question: str) -> str | None:
    """The refusal reason of a question that must not be answered, else None."""
    for reason, pat in REFUSE:
        if re.search(pat, question, re.I):
            return reason
    return None


_RANGE = re.compile(r"\d\s*(?:-|–|to|or|and)\s*[-$]?\d|\bbetween\b.*\d.*\band\b", re.I)
_COMPOUND = re.compile(rf"\b(?:{'|'.join(NUMBER_WORDS)}|hundred|thousand)\s+(?:and\s+)?"
                       rf"(?:{'|'.join(NUMBER_WORDS)}|hundred|thousand)\b", re.I)


def unclear_figures(question: str) -> str | None:
    """A question whose figures cannot be read as one figure: a range, a compound number in words, a
    figure out of any product's range. A person answers it."""
    if re.search(r"\d{10,}|\d[eE][+-]?\d", question):
        return "a figure out of range"
    if _COMPOUND.search(question):
        return "a number in words made of several words"
    if _RANGE.search(question) and question_quantities(question):
        return "a range of figures"
    return None


def key_words(question: str) -> set[str]:
    """The question's content words (roots) that say what is asked."""
    if not re.search(r"\b(?:covered|guaranteed|valid|lasts?|takes?|keeps?|until|before|delivered|shipped)\b", question,
                     re.I):
        question = re.sub(r"\bhow long (?=is|are|was)\b", " length ", question, flags=re.I)
    q = re.sub(r"\bsend (?:\w+ ){0,2}back\b", " return ", question, flags=re.I)
    q = re.sub(r"\bmoney back\b", " refund ", q, flags=re.I)
    q = re.sub(r"\bhow (?:long|soon)\b", " duration ", q, flags=re.I)
    if not re.search(r"\b(?:weigh|weighs|hold|holds|measure|last|take|charge)\b", q, re.I):
        q = re.sub(r"\bhow much (?:is|are|for|does|do|r)\b", " price ", q, flags=re.I)
    return roots(stems(q) - FRAME)


@lru_cache(maxsize=1 << 18)
def _near(w: str, vocab: frozenset[str]) -> bool:
    limit = 2 if len(w) >= 8 else 1
    return any(abs(len(v) - len(w)) <= limit and _distance(w, v, limit) <= limit for v in vocab if len(v) >= 5)


def near(w: str, vocab: set[str] | frozenset[str]) -> bool:
    """w is in vocab, or one typo away (two for long words): `lumins` ~ `lumen`, `materal` ~ `material`."""
    if w in vocab:
        return True
    if len(w) < 5:
        return False
    return _near(w, vocab if isinstance(vocab, frozenset) else frozenset(vocab))


def _distance(a: str, b: str, limit: int) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


_DURATION = re.compile(r"\d+\s*(?:-\s*)?(?:business\s+)?(?:days?|weeks?|months?|years?|hours?|h)\b", re.I)
_AMOUNT = re.compile(r"\d+(?:\.\d+)?\s*(?:usd|eur|gbp|cny|dollars?)\b|[$€£]\s*\d", re.I)


def _sentence_cover(key: set[str], fact: Fact, context: set[str] | frozenset[str] = frozenset(),
                    question: str = "") -> tuple[set[str], str]:
    """The description or policy sentence covering most key words (with the fact's name words);
    `context` words (the product's name) break ties."""
    best: tuple[float, set[str], str] = (0.0, set(), "")
    words_q = re.findall(r"[a-z]+", question.lower())
    bigrams = ({f"{a} {b}" for a, b in zip(words_q, words_q[1:]) if a not in FRAME or b not in FRAME}
               if YESNO.search(question) else set())
    name = roots(fact.words)
    for s in fact.sentences or (fact.text,):
        words = roots(stems(s))
        own = {w for w in key if near(w, words)}
        cov = own | {w for w in key if near(w, name)}
        own = own | {w for w in context if near(w, words)}
        # "how long" wants a duration, "how much" an amount; ties go to the earlier sentence (a section's rule
        # comes first)
        wants = ("duration" in key and _DURATION.search(s)) or ("price" in key and _AMOUNT.search(s))
        # A sentence about what is asked starts with it ("Refunds are paid within ..."); one that says what
        # is not so ("The warranty does not cover ...") answers only a yes/no question.
        lead = [root(stem(w.lower())) for w in re.findall(r"[A-Za-z]+", s)[:3]]
        subject = any(near(w, set(lead)) for w in key - roots(stems(fact.label)))
        # the question's own phrasing ("ship to") found in the sentence breaks the remaining ties
        grams = sum(1 for g in bigrams if g in s.lower())
        score = 4 * len(cov) + len(own) + 2 * bool(wants) + 0.5 * subject - 0.75 * bool(_NOT.search(s)) + 0.3 * grams
        if cov and score > best[0]:
            best = (score, cov, s)
    return best[1], best[2]


def cover(key: set[str], fact: Fact) -> tuple[set[str], str]:
    """(key words the fact covers, the sentence that covers them when the fact is prose)."""
    if fact.field.startswith("policies#") and not any(near(w, roots(fact.own)) for w in key):
        return set(), ""  # a policy answers only when the question names it (shipping, returns, ...)
    if fact.sentences:
        return _sentence_cover(key, fact)
    words = roots(fact.words) | roots(fact.value_words)
    return {w for w in key if near(w, words)}, ""


def ranked_facts(key: set[str], facts: Sequence[Fact]) -> list[tuple[Fact, set[str], str]]:
    """Every fact covering a key word, best first: most words covered; a named attribute wins a tie
    over prose, the product over policies."""
    scored = []
    for i, f in enumerate(facts):
        cov, sent = cover(key, f)
        if not cov:
            continue
        named = len(key & roots(f.own))
        # The product's own facts win a tie over the shop's general policies ("1-year limited warranty" in
        # a watch's description over the shop's 2-year warranty).
        score = len(cov) + 0.5 * named - (0.3 if f.sentences else 0) - (0.8 if f.field.startswith("policies#") else 0)
        scored.append((-score, i, f, cov, sent))
    return [(f, cov, sent) for _, _, f, cov, sent in sorted(scored, key=lambda x: (x[0], x[1]))]


def direction(question: str, fact: Fact) -> str | None:
    """`le` when yes means the fact is at most the question's figure, `ge` at least, None: unclear.
    A temperature rating answers warmth (a bag rated 10 °C is not warm enough for 0 °C); a limit
    (oven_safe_c, max_load_kg) answers whether the question's figure is within it."""
    if fact.dim == "temperature" and re.search(r"rating|comfort|limit|lower", fact.label) and _WARMTH.search(question):
        return "le"
    if re.search(r"\b(?:safe|max|maximum|limit|load|capacity)\b", fact.label) and not LE.search(question):
        return "ge"
    le, ge = LE.search(question), GE.search(question)
    if le and ge:
        return "le" if le.start() < ge.start() else "ge"
    return "le" if le else "ge" if ge else None


def _figure(fact: Fact, question: str) -> float:
    """The fact's number a comparison reads: the largest of `183 x 61` (the length), unless the
    question asks about width or depth."""
    nums = sorted(fact.numbers, reverse=True)
    if len(nums) > 1 and re.search(r"\b(?:wide|width|narrow|deep|depth)\b", question, re.I):
        return nums[1]
    return nums[0]


def compare(question: str, q: Quantity, fact: Fact) -> Resolution:
    """A comparison answered with the product's own figure, in its own unit."""
    value = _figure(fact, question)
    theirs = convert(q.value, q.unit, fact.unit or "")
    if theirs is None:
        return Resolution("not_in_catalog", ("the question's unit does not convert to the fact's",))
    way = direction(question, fact)
    # Only a conversion's rounding is forgiven: 2390 g is not "at least 2400 g".
    tol = 0.0 if q.unit == fact.unit else max(abs(theirs), abs(value)) * 1e-6
    if way == "le":
        yes = value <= theirs + tol
    elif way == "ge":
        yes = value >= theirs - tol
    else:
        yes = abs(value - theirs) <= tol
    rel = "equal to" if abs(value - theirs) <= tol else "less than" if value < theirs else "more than"
    fact_shown, q_shown = show(value, fact.unit or ""), q.shown()
    conv = "" if q.unit == fact.unit else f" ({show(round(theirs, 2), fact.unit or '')})"
    verdict = "yes" if yes else "no"
    label = fact.label
    if len(fact.numbers) > 1 and fact.dim == "length":  # 183 x 61: the comparison read the length (or the width)
        label = "width" if value != max(fact.numbers) else "length"
    stated = phrase(label, fact_shown).rstrip(".")
    text = f"{verdict.capitalize()}. {stated}, {rel} {q_shown}{conv}."
    check = f"{fact.label} {fact_shown} is {rel} {q_shown}{conv}, so the answer is {verdict}."
    extra = (f"{q.value:g}", f"{round(theirs, 2):g}", f"{value:g}")
    return Resolution("draft", (), (fact,), verdict, text, check, (verdict, fact_shown), extra)


def _flag_text(fact: Fact) -> str:
    label, yes = fact.label, bool(fact.flag)
    if label.endswith(" included"):
        return f"{'Yes' if yes else 'No'}, the {label[:-9]} is {'' if yes else 'not '}included."
    if re.search(r"(?:able|ible|ed|safe|compatible|proof|standing|ic|ive|less)$", label) and " " not in label:
        return f"{'Yes' if yes else 'No'}, it is {'' if yes else 'not '}{label}."
    if label.split()[-1] in NOUNS_HAD:  # a thing it has: hood, pockets, strap
        return f"Yes, it has {label}." if yes else f"No, it does not have {label}."
    return f"{'Yes' if yes else 'No'}. {label[:1].upper()}{label[1:]}: {'yes' if yes else 'no'}."  # a spec line


# Things a product has (a yes/no attribute named by one reads "it has a hood").
NOUNS_HAD = set("hood hoods pocket pockets strap straps lid handle handles wheels zips zipper zippers vents light mode "
                "sheath case cover".split())


_NOT = re.compile(r"\b(?:not|no|non|never|without|cannot|can't|cant|won't|isn't|aren't|doesn't|don't|lacks?)\b", re.I)


def _sentence_verdict(asked: set[str], sentence: str) -> str | None:
    """yes when the sentence states every asked word, no when it negates one ("non-freestanding",
    "cannot be returned"), None when it does not state them (no verdict is drawn)."""
    hits = [m for m in re.finditer(r"[A-Za-z0-9]+(?:'[a-z]+)?", sentence) if near(root(stem(m.group(0).lower())), asked)]
    if {w for w in asked if any(near(root(stem(m.group(0).lower())), {w}) for m in hits)} != asked:
        return None
    for m in hits:
        before = re.split(r"[.,;:!?]", sentence[:m.start()])[-1]
        after = re.split(r"[.,;:!?]", sentence[m.end():])[0]
        if _NOT.search(before) or _NOT.search(after) or negated(sentence, m.start(), m.end()):
            return "no"
    return "yes"


# The last word of an attribute's name that makes "The <name> is <value>." a sentence (a measure or a
# kind of thing); any other name is written as a spec line, "Keeps cold: 36 h.".
NOUNS = set("""weight capacity height width length depth thickness drop distance time playtime rating temperature
    price color colour material type size brand category shape fill diameter output power wattage version mode texture
    gender pattern style finish coating lumens voltage volume sleeve neckline closure strap lining insulation side
    season range resistance hardness load""".split())


def phrase(label: str, value: str) -> str:
    """A fact as a sentence: "The weight is 2390 g.", "The color options are Black, Gray and Orange.",
    "Keeps cold: 36 h."."""
    items = [x.strip() for x in value.split(",") if x.strip()]
    listed = ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else (items[0] if items else value)
    last = label.split()[-1] if label.split() else ""
    if last in NOUNS:
        # A list of sizes or colours is what one chooses from; a list of materials is what it is made of.
        if len(items) > 1 and last in ("size", "color", "colour"):
            return f"The {label} options are {listed}."
        return f"The {label} is {listed}."
    return f"{label[:1].upper()}{label[1:]}: {listed}."


def state(question: str, key: set[str], fact: Fact, sentence: str, whole: set[str] | None = None) -> Resolution:
    """A fact stated: a yes/no attribute with its verdict, a value, or the sentence that says it. An
    either-or question ("freestanding or do I need stakes?") gets the fact without a bare yes or no."""
    yesno = bool(YESNO.search(question)) and not re.search(r"\bor\b", question, re.I)
    if fact.flag is not None:
        verdict = "yes" if fact.flag else "no"
        text = _flag_text(fact)
        if not yesno:
            text = text.split(", ", 1)[1][:1].upper() + text.split(", ", 1)[1][1:] if ", " in text else text
            return Resolution("draft", (), (fact,), None, text, f"{fact.label}: {verdict}", ())
        return Resolution("draft", (), (fact,), verdict, text, f"{fact.label}: {verdict}", (verdict,))
    if sentence:
        policy = fact.field.startswith("policies#")
        name = f"Our {fact.label} policy" if policy else "The product description"
        # The words beyond the policy's name (paypal, knife); in a seller's description every word the
        # question asks about must be there, since marketing prose mentions much ("Works with Xbox"
        # says nothing about needing an adapter).
        asked = key - roots(stems(fact.label)) if policy else (whole if whole is not None else key)
        verdict = _sentence_verdict(asked, sentence) if yesno and asked else None
        lead = f"{verdict.capitalize()}. " if verdict else ""
        return Resolution("draft", (), (fact,), verdict, f"{lead}{name} says: {sentence.strip()}", sentence,
                          ((verdict,) if verdict else ()) + (sentence.strip(),), evidence=(sentence,))
    has = re.search(r"\b(?:have|has|come with|include|includes)\b", question, re.I)
    items = [x.strip() for x in fact.value.split(",") if x.strip()]
    asked = key - roots(fact.own) - roots(stems(fact.label))
    if yesno and len(items) > 1 and asked:  # "Does it have wheels?" against features: Wheeled, Lockable
        hit = next((x for x in items if re.search(r"[A-Za-z]", x) and all(near(w, roots(stems(x))) for w in asked)),
                   None)
        if hit is not None and not negative(fact):
            return Resolution("draft", (), (fact,), "yes", f"Yes. {phrase(fact.label, fact.value)}", "", ("yes", hit))
    if yesno and not (roots(stems(question)) & roots(fact.value_words)):
        # "Does it have a hood?" is settled by a hood attribute with a value, not by a cue word ("built-in").
        if not (has and key & roots(stems(fact.label))) or negative(fact):
            return Resolution("not_in_catalog", (f"a yes/no question that {fact.field} does not settle",))
        return Resolution("draft", (), (fact,), "yes", f"Yes. {phrase(fact.label, fact.value)}", "",
                          ("yes", *[x.strip() for x in fact.value.split(",") if x.strip()]))
    items = [x.strip() for x in fact.value.split(",") if x.strip()] or [fact.value]
    return Resolution("draft", (), (fact,), None, phrase(fact.label, fact.value), "", tuple(items))


def _comparison(question: str, key: set[str], facts: Sequence[Fact], q: Quantity) -> Resolution:
    dims = {q.dim} | ({"capacity"} if q.unit == "oz" else set())  # 24 oz of water is fluid ounces
    same = [f for f in facts if f.dim in dims and f.numbers]
    named = [f for f in same if key & roots(f.own)] or [f for f in same if key & roots(f.words)] or same
    if len(named) != 1:
        return Resolution("not_in_catalog", (f"{'several facts could be meant' if named else 'no fact measures it'}"
                                             f" ({q.dim})",))
    if named[0].dim != q.dim:
        q = Quantity(q.value, "fl oz")
    if direction(question, named[0]) is None and not YESNO.search(question):
        return Resolution("needs_human", ("the comparison's direction is unclear",))
    return compare(question, q, named[0])


# A question asking for an amount is answered only by a fact that states one.
AMOUNT_ASKED = re.compile(r"\bhow (?:many|much|long|far|big|heavy|tall|wide|thick|soon)\b|\bwhat (?:percentage|percent|"
                          r"size|length|weight|capacity)\b|\bdimensions?\b|\bmeasurements?\b", re.I)
_ASKS_ELSE = re.compile(r"^\W*(?:where|when|why|who)\b|\b(?:made in|country|origin|manufactured|in stock|stock|"
                        r"arrive|deliver(?:ed)? by|on sale|restock)\b", re.I)


def resolve(question: str, p: Product | None, facts: Sequence[Fact], policies: Sequence[Fact],
            vocab: frozenset[str] = frozenset()) -> Resolution:
    """What may be said in answer to `question` about product `p` (None: no product page) from its
    facts and the shop's policies. `vocab`: the catalog's property words (every product's fact names,
    cues and values): a word of the question outside it (`put`, `work`) says nothing about what is asked."""
    if (why := screen(question)) is not None:
        return Resolution("refused", (why,))
    if (why := unclear_figures(question)) is not None:
        return Resolution("needs_human", (why,))
    key = key_words(question)
    if len(key) > 25:
        return Resolution("needs_human", ("too long a question to answer from single facts",))
    naming = roots(stems(" ".join(x for x in (p.title, p.brand or "", p.category or "") if x))) if p else set()
    # A figure of the product's own name ("the -18°C sleeping bag", "the 40W speaker") names it; it is not asked.
    title_numbers = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", p.title)} if p else set()
    quantities = [q for q in question_quantities(question) if abs(q.value) not in title_numbers]
    if len(quantities) > 1:
        return Resolution("needs_human", ("more than one figure to compare",))
    if quantities:
        return _comparison(question, key - naming, facts, quantities[0])
    pool = [*facts, *policies] if not _ASKS_ELSE.search(question) else [f for f in policies]
    # The product's own name covers nothing: "the dutch oven's price" is about the price.
    asked = {w for w in key if not near(w, naming)}
    ranked = ranked_facts(asked, pool)
    fact, cov, sentence = ranked[0] if ranked else (None, set(), "")
    # An uncovered word counts unless it is no property anywhere: not in the catalog's vocabulary, not in
    # any of this product's facts; a yes/no question must be covered whole ("meet airline carry-on limits").
    mine = {w for f in facts for w in roots(f.words) | roots(f.value_words)}

    def counts(w: str) -> bool:
        return not vocab or near(w, vocab) or w in mine

    # The seller's prose must cover every word: marketing text mentions much, and a sentence sharing one
    # word with the question ("games") is no answer to it (measured on Amazon-PQA, bench/amazon_pqa.py).
    def seller_prose(f: Fact | None) -> bool:
        return f is not None and bool(f.sentences) and not f.field.startswith("policies#")

    rest = {w for w in asked - cov if counts(w) or seller_prose(fact)}
    for f, c, sent in ranked:  # the best fact that leaves no asked word uncovered
        if not {w for w in asked - c if counts(w) or seller_prose(f)}:
            fact, cov, sentence, rest = f, c, sent, set()
            break
    if fact is not None and not rest:
        if fact.sentences:  # within prose, the product's name breaks ties between sentences
            sentence = _sentence_cover(asked, fact, key - asked, question)[1] or sentence
        if AMOUNT_ASKED.search(question) and not re.search(r"\d", sentence or fact.value):
            return Resolution("not_in_catalog", ("asks for an amount; the fact states none",))
        stated = [n for n in re.findall(r"\d+(?:\.\d+)?", question) if float(n) not in title_numbers]
        if any(n not in (sentence or fact.text) for n in stated):
            return Resolution("not_in_catalog", (f"the facts do not state {', '.join(stated)}",))
        heard = {w for w in asked if not vocab or near(w, vocab) or near(w, roots(stems(sentence)))}
        res = state(question, heard, fact, sentence, asked)
        # A yes/no question answered without a verdict must be covered whole: a fact beside the question
        # ("Does it meet airline carry-on limits?" -> the bag's size) is no answer.
        if res.verdict is None and YESNO.search(question) and asked - cov:
            return Resolution("not_in_catalog", (f"no fact settles {' '.join(sorted(asked - cov)[:5])}",))
        return res
    if p is not None and key and not (key - naming) and YESNO.search(question):
        title = Fact("title", "product", p.title, frozenset(), frozenset(stems(p.title)))
        return Resolution("draft", (), (title,), "yes", f"Yes. It is the {p.title}.", "", ("yes",))
    missing = sorted(rest or key)
    return Resolution("not_in_catalog", (f"no fact says {' '.join(missing[:5])}",))


def vocabulary(facts: Sequence[Fact]) -> frozenset[str]:
    """The catalog's property words: every attribute's name, cues and value (folded over all products),
    and every cue word answers know of."""
    out: set[str] = {root(stem(w)) for ws in (*DEFAULT_CUES.values(), *DIM_CUES.values()) for w in ws}
    for f in facts:
        if f.field.startswith("attributes.") or f.field.startswith("policies#"):
            out |= roots(f.own) | (roots(f.value_words) if not f.field.startswith("policies#") else set())
    return frozenset(out)


# A few of each language's commonest words, to tell a question's language when it has no locale.
FUNCTION_WORDS = {
    "en": set("the is are does do can will it this what how with for of and to in on have has".split()),
    "es": set("el la los las es son que qué cómo con para por de del y en una un trae tiene puedo este esta".split()),
    "de": set("der die das ist sind was wie mit für und zu ein eine nicht kann hat diese dieser".split()),
    "fr": set("le la les est sont que quoi comment avec pour et de des un une ce cette peut il elle".split()),
    "pt": set("o a os as é são que como com para por e de do da um uma este esta tem pode".split()),
    "it": set("il lo la gli le è sono che come con per e di del un una questo questa può ha".split()),
}


def language_of(question: str, locale: str | None) -> str:
    """The question's primary language: its locale's, else Chinese when it is written in Han characters,
    else the language whose commonest words it uses most (English on a tie)."""
    if locale:
        return locale.replace("_", "-").split("-")[0].lower()
    if len(CJK.findall(question)) >= 2:
        return "zh"
    words = re.findall(r"[^\W\d_]+", question.lower())
    hits = {lang: sum(w in ws for w in words) for lang, ws in FUNCTION_WORDS.items()}
    best = max(hits, key=lambda k: (hits[k], k == "en"))
    return best if hits[best] > hits["en"] else "en"
