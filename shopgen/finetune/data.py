"""Fine-tuning data (pure): input/target pairs from two sources, a deterministic train/val/test
split by a hash of the SKU's variant group, and flags for targets the gate would not publish.

Sources: `catalog` (the shop's own human-written copy; its fields are removed from the input, so
the model never sees its answer) and `accepted` (copy the gate accepted in earlier nightly runs,
paired with the product as the generator saw it: rejection-sampling fine-tuning). Every target is
run through the serving gate, so the model only learns from text the shop would publish. Prompts
come from shopgen.generate.prompts, so training and serving see the same text."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from shopgen.checks import check_faithfulness
from shopgen.core.content import CONTENT_TYPES, input_product, target_of, texts_of, word_count
from shopgen.core.records import Product
from shopgen.generate.engine import GateSpec, evaluate
from shopgen.generate.prompts import build_messages, prompt_version
from shopgen.related.stage import variant_group

SPLITS = ("train", "val", "test")
SOURCES = ("catalog", "accepted", "reviewed")  # reviewed: texts people approved or edited (review export --train)

# Where a product carries human-written copy for each content type: (field or attribute keys).
# The target's own fields are removed from the input, so the model never sees its answer.



@dataclass
class Example:
    sku: str
    content: str
    split: str
    locale: str
    messages: str  # JSON list of chat messages, as the generator builds them
    target: str  # compact JSON, the form the structured-output grammar produces
    target_text: str  # the target's plain text, for ROUGE-L
    product: str  # the input product (JSON), for the fact checks at evaluation
    flags: list[str] = field(default_factory=list)
    source: str = "catalog"  # catalog | accepted

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def split_of(key: str, val_fraction: float, test_fraction: float, seed: int = 0) -> str:
    """Deterministic and stable across runs and machines: a key's split never changes when the
    catalog grows, so no test product ever drifts into training."""
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:15], 16) / 16 ** 15
    if h < test_fraction:
        return "test"
    return "val" if h < test_fraction + val_fraction else "train"


def _example(p: Product, src: Product, c: str, tgt: dict[str, Any], split: str, prompt: str, source: str,
             gate: GateSpec | None) -> Example:
    """One pair; flags name what the serving gate (or, without one, the fact check) finds wrong."""
    ct = CONTENT_TYPES[c]
    texts = texts_of(tgt)
    target = json.dumps(tgt, ensure_ascii=False, separators=(",", ":"))
    if gate is None:
        flags = [f"unsupported {d}" for d in check_faithfulness(texts, src).details]
    else:
        _, checks = evaluate(target, src, ct, gate)
        flags = [f"gate {r.check}: {'; '.join(r.details)[:200]}" for r in checks if not r.passed]
    return Example(sku=p.sku, content=c, split=split, locale=p.locale,
                   messages=json.dumps(build_messages(src, ct, prompt=prompt), ensure_ascii=False),
                   target=target, target_text=" ".join(texts), product=src.model_dump_json(), flags=flags,
                   source=source)


def _check_content(content: list[str]) -> None:
    for c in content:
        if c not in CONTENT_TYPES:
            raise ValueError(f"unknown content type {c!r}; choose from {', '.join(CONTENT_TYPES)}")


def build_examples(products: Iterable[Product], content: Iterable[str], val_fraction: float = 0.1,
                   test_fraction: float = 0.1, seed: int = 0, variant_keys: list[str] | None = None,
                   prompt: str = "grounded", gate: GateSpec | None = None) -> list[Example]:
    """One example per (product, content type) that has a human-written target. Variants of one
    product share a split (they are near-copies), keyed by the variant group's hash."""
    content = list(content)
    _check_content(content)
    out = []
    for p in products:
        split = product_split(p, val_fraction, test_fraction, seed, variant_keys)
        src = input_product(p)
        for c in content:
            tgt = target_of(p, c)
            if tgt is not None:
                out.append(_example(p, src, c, tgt, split, prompt, "catalog", gate))
    return out


def accepted_examples(products: Iterable[Product], accepted: dict[str, dict[str, Any]],
                      content: Iterable[str], val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
                      variant_keys: list[str] | None = None, prompt: str = "grounded",
                      gate: GateSpec | None = None) -> list[Example]:
    """Pairs from copy the gate accepted in earlier runs: sku -> content type -> the output's
    fields (or a list of them: several accepted texts), for products whose facts have not changed
    since (the caller matches content hashes).
    The input is the product as the generator saw it (its seller description included); test
    products are left out, so held-out products never reach training through this source."""
    content = list(content)
    _check_content(content)
    out = []
    for p in products:
        copy = accepted.get(p.sku) or {}
        split = product_split(p, val_fraction, test_fraction, seed, variant_keys)
        if split == "test" or not copy:
            continue
        for c in content:
            got = copy.get(c) or []
            for fields in got if isinstance(got, list) else [got]:
                try:  # stored fields back into the type's output shape (validated: a corrupt row is skipped)
                    tgt = CONTENT_TYPES[c].schema.model_validate(fields).model_dump()
                except ValueError:
                    continue
                out.append(_example(p, p, c, tgt, split, prompt, "accepted", gate))
    return out


def product_split(p: Product, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
                  variant_keys: list[str] | None = None) -> str:
    keys = variant_keys if variant_keys is not None else ["parent_sku", "variant_of", "group_id"]
    return split_of(variant_group(p.sku, p.attributes, keys), val_fraction, test_fraction, seed)


def dedupe(examples: Iterable[Example]) -> list[Example]:
    """One pair per (sku, type, target): a text accepted on several nights, or equal to the
    catalog's own, is trained on once (the first source listed wins)."""
    seen, out = set(), []
    for e in examples:
        k = (e.sku, e.content, e.target)
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


def keep(examples: list[Example], unsupported: str = "drop") -> list[Example]:
    """Flagged pairs out ("drop"), or kept with their flags ("flag"). Accepted copy that the gate
    no longer accepts is always dropped: self-training learns only from publishable text."""
    return [e for e in examples if not e.flags or (unsupported == "flag" and e.source == "catalog")]


def data_hash(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for e in sorted(examples, key=lambda e: (e.sku, e.content)):
        h.update(json.dumps([e.sku, e.content, e.split, e.messages, e.target, e.source], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def stats(products_n: int, examples: list[Example], kept: list[Example], content: list[str],
          prompt: str = "grounded") -> dict[str, Any]:
    reasons = Counter(f.split()[1].rstrip(":") for e in examples for f in e.flags if len(f.split()) > 1)
    return {
        "products": products_n,
        "pairs": len(examples),
        "kept": len(kept),
        "flagged_unsupported": sum(1 for e in examples if e.flags),
        "dropped": len(examples) - len(kept),
        "by_content": {c: sum(1 for e in kept if e.content == c) for c in content},
        "by_split": {s: sum(1 for e in kept if e.split == s) for s in SPLITS},
        "by_source": {s: sum(1 for e in kept if e.source == s) for s in SOURCES},
        "mean_target_words": round(sum(word_count(e.target_text) for e in kept) / max(1, len(kept)), 1),
        "unsupported_kinds": dict(reasons.most_common(10)),
        "prompt": prompt,
        "prompt_versions": {c: prompt_version(CONTENT_TYPES[c], prompt) for c in content},
    }
