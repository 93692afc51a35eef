"""Per-request decoding constraints (pure): the content type's JSON schema turned into an EBNF grammar
(vLLM structured outputs, xgrammar backend) in which every string may contain digits only as one of
the product's own numbers, and no braces, brackets, angle brackets, '#', quotes or backslashes. The
model then cannot write a number that is not in its input, nor template residue.

Why a grammar and not the JSON schema's `pattern`: xgrammar ignores minLength/maxLength on a string
that also has a pattern. Here every string is runs of plain characters between allowed numbers (each
followed by a non-digit), and the schema's length bounds are not in the grammar: a bounded repetition
of that alternation made xgrammar's per-token bitmask cost ~75 ms per sequence on CPU, even for a
30-character headline, so the engine core, not the model, became the bottleneck. max_tokens bounds
each output and the gate checks the type's exact limits (a headline over 30 characters is rejected,
where the schema's bound used to cut it off mid-word).

Also: the banned-claim vocabulary as vLLM `bad_words` (plain words only; the gate still checks the
full patterns)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from shopgen.checks.banned import DEFAULT_BANNED
from shopgen.checks.base import product_text
from shopgen.core.records import Product

# Characters a copy string may never contain: digits (they come only as whole allowed numbers),
# JSON's quote and backslash, control characters, and template residue: braces, brackets, tags, '#'.
_RESIDUE = r'"\\\x00-\x1f{}\[\]<>#'
_FORBIDDEN = "0-9" + _RESIDUE
_SAFE = f"[^{_FORBIDDEN}]"
_SAFE_AFTER_NUMBER = f"[^{_FORBIDDEN}.,]"  # '3.5' must not be assembled from allowed '3' and '5'
_NUM = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)*")


def allowed_numbers(p: Product) -> list[str]:
    """Every number the input states, as written, plus its plain and thousands-separated forms
    ('15000' and '15,000'), longest first."""
    out: set[str] = set()
    for m in _NUM.finditer(product_text(p)):
        raw = m.group(0)
        out.add(raw)
        plain = raw.replace(",", "")
        out.add(plain)
        if re.fullmatch(r"\d{4,}", plain):
            out.add(f"{int(plain):,}")
    return sorted(out, key=lambda s: (-len(s), s))


def _lit(s: str) -> str:
    return json.dumps(s)


# Between two words of a lexicon string: a space, punctuation and a space, or a joiner inside a
# compound ("3-layer", "wash/dry").
_SEPS = (" ", ", ", ". ", "; ", ": ", " - ", " & ", "! ", "? ", "-", "/")


class _Builder:
    def __init__(self, schema: dict[str, Any], numbers: Iterable[str], words: Iterable[str] | None = None):
        self.schema, self.rules, self.n = schema, {}, 0
        nums = list(numbers)
        self.has_numbers = bool(nums)
        self.lexicon = words is not None
        if self.lexicon:
            lex = [w for w in words if w and not re.search(f"[{_RESIDUE}]", w)]
            self.rules["lex"] = " | ".join(_lit(w) for w in lex) if lex else '"a"'
            self.rules["word"] = "lex | num" if nums else "lex"
            self.rules["sep"] = " | ".join(_lit(x) for x in _SEPS)
            self.rules["text"] = 'word (sep word)* ("" | "." | "!" | "?")'
            if nums:
                self.rules["num"] = " | ".join(_lit(n) for n in nums)
            return
        if nums:
            self.rules["num"] = " | ".join(_lit(n) for n in nums)
            # a number is followed by a non-digit (optionally after one '.' or ','), so two allowed numbers
            # never run together into one that is not allowed
            self.rules["numsep"] = f'num ({_SAFE_AFTER_NUMBER} | [.,] {_SAFE_AFTER_NUMBER})'
        self.rules["unit"] = f"{_SAFE} | numsep" if nums else _SAFE
        self.rules["safe"] = f"{_SAFE}*"

    def _name(self, base: str) -> str:
        self.n += 1
        return f"{re.sub(r'[^a-z0-9]', '_', base.lower())}_{self.n}"

    def string(self, s: dict[str, Any]) -> str:
        """Runs of plain characters (one fast character-class automaton) between allowed numbers. The
        schema's length bounds are left to max_tokens and the gate: a bounded repetition of the
        number/character alternation cost xgrammar ~75 ms per token on CPU (even {1,30})."""
        if self.lexicon:
            return '"\\"" text "\\""'
        tail = ' ("" | num)' if self.has_numbers else ""
        body = "safe (numsep safe)*" if self.has_numbers else "safe"
        return f'"\\"" {body}{tail} "\\""'

    def node(self, s: dict[str, Any], hint: str) -> str:
        if "$ref" in s:
            s = self.schema["$defs"][s["$ref"].rsplit("/", 1)[-1]]
        t = s.get("type")
        if t == "string":
            name = self._name(hint)
            self.rules[name] = self.string(s)
            return name
        if t == "array":
            item = self.node(s["items"], hint + "_item")
            lo, hi = int(s.get("minItems", 0)), s.get("maxItems")
            name = self._name(hint)
            more = f"{{{max(lo - 1, 0)},{int(hi) - 1}}}" if hi is not None else f"{{{max(lo - 1, 0)},}}"
            body = f'"[" {item} ("," {item}){more} "]"'
            self.rules[name] = body if lo >= 1 else f'{body} | "[]"'
            return name
        if t == "object":
            props = s["properties"]
            missing = [k for k in props if k not in s.get("required", [])]
            if missing:
                raise ValueError(f"constraints: optional properties are not supported ({missing})")
            parts = []
            for i, (k, sub) in enumerate(props.items()):
                parts.append(_lit(("," if i else "") + json.dumps(k) + ":"))
                parts.append(self.node(sub, k))
            name = self._name(hint)
            self.rules[name] = '"{" ' + " ".join(parts) + ' "}"'
            return name
        raise ValueError(f"constraints: unsupported schema type {t!r}")


def copy_grammar(schema: dict[str, Any], numbers: Iterable[str], words: Iterable[str] | None = None) -> str:
    """The EBNF grammar of compact JSON for `schema` (a content type's json_schema()), whose strings
    may hold digits only as one of `numbers`. With `words` (shopgen.generate.lexicon), a string is
    those words and numbers only, joined by spaces, punctuation, hyphens and slashes."""
    b = _Builder(schema, numbers, words)
    top = b.node(schema, "out")
    return "\n".join([f"root ::= {top}", *(f"{k} ::= {v}" for k, v in b.rules.items())])


def banned_words(rules: dict[str, list[str]] | None = None) -> list[str]:
    """The banned-claim vocabulary's plain words and phrases ('best', 'free shipping', '包邮'), for
    vLLM's `bad_words`. Regex-only patterns stay with the gate."""
    rules = DEFAULT_BANNED if rules is None else rules
    out = []
    for patterns in rules.values():
        for pat in patterns:
            bare = re.sub(r"^\\b|\\b$", "", pat)
            if re.fullmatch(r"[A-Za-z][A-Za-z' ]*|[\u4e00-\u9fff]+", bare):
                out.append(bare)
    return list(dict.fromkeys(out))
