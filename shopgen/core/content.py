"""Content types: each has a versioned prompt template per locale and an output schema (pydantic).
The schema's JSON form is what vLLM is asked for; the same model validates what comes back."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shopgen.core.records import Product

_CJK = re.compile(r"[\u3400-\u9fff]")


def word_count(text: str) -> int:
    """Words for Latin scripts; for Chinese, characters count as words (no spaces to split on)."""
    cjk = len(_CJK.findall(text))
    return cjk + len(_CJK.sub(" ", text).split())


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _no_blank(self) -> "_Out":
        def walk(v: Any) -> None:
            if isinstance(v, str) and not v.strip():
                raise ValueError("blank text")
            if isinstance(v, list):
                for x in v:
                    walk(x)
            if isinstance(v, BaseModel):
                for x in v.__dict__.values():
                    walk(x)
        walk(self)
        return self


class DescriptionOut(_Out):
    # Structure and hard caps only; the shop's word limits are checked by check_limits.
    description: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class BulletsOut(_Out):
    bullets: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=300)]],
                       Field(min_length=1, max_length=12)]


class SeoTitleOut(_Out):
    seo_title: Annotated[str, StringConstraints(min_length=1, max_length=120)]


class AdCopyOut(_Out):
    ad_headlines: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=60)]],
                            Field(min_length=1, max_length=15)]
    ad_descriptions: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=90)]],
                               Field(min_length=2, max_length=4)]


class QA(_Out):
    question: Annotated[str, StringConstraints(min_length=1, max_length=160)]
    answer: Annotated[str, StringConstraints(min_length=1, max_length=400)]


class FaqOut(_Out):
    faq: Annotated[list[QA], Field(min_length=1, max_length=8)]


# Limit and sampling keys a shop may set per type (config `content.<type>.<key>`).
LIMIT_KEYS = ("min_words", "max_words", "min_items", "max_items", "max_chars")


def few_shot_for(ct: "ContentType", generation_few_shot: int | None, overrides: Any = None) -> int:
    """content.<type>.few_shot > generation.few_shot > the type's measured default."""
    o = overrides.model_dump(exclude_none=True) if hasattr(overrides, "model_dump") else dict(overrides or {})
    return next(v for v in (o.get("few_shot"), generation_few_shot, ct.few_shot) if v is not None)


def candidates_for(ct: "ContentType", overrides: Any = None) -> int:
    """content.<type>.candidates > the type's measured default (best-of-n samples per request)."""
    o = overrides.model_dump(exclude_none=True) if hasattr(overrides, "model_dump") else dict(overrides or {})
    return int(o.get("candidates") or ct.candidates)
SAMPLING_KEYS = ("temperature", "repetition_penalty", "max_tokens")


@dataclass(frozen=True)
class ContentType:
    name: str
    version: str
    schema: type[_Out]
    task: dict[str, str]  # locale -> instructions
    # Default limits (LIMIT_KEYS) that fit real shop copy; `content.<type>` overrides them.
    limits: dict[str, int] = field(default_factory=dict)
    # Default sampling (SAMPLING_KEYS) tuned per type on bench/copy_quality.py.
    sampling: dict[str, float] = field(default_factory=dict)
    # The field the word limits apply to (prose), and the list field the item limits apply to.
    prose: str | None = None
    items: str | None = None
    # A short style guide per locale, part of the grounded prompt.
    style: dict[str, str] = field(default_factory=dict)
    # Worked examples from the shop's own copy (bench/copy_quality.py: they raised bullets, lowered descriptions).
    few_shot: int = 0
    # Best-of-n: samples per request, each gated; the best accepted one is published (content.<type>.candidates).
    candidates: int = 1
    # The search document's field that joins all of this type's text (e.g. ad_text), when its own
    # fields are not searchable text by themselves (FAQ records) or are searched together.
    search_text: str | None = None

    def effective(self, overrides: Any = None) -> dict[str, Any]:
        """Limits, sampling and style with the shop's overrides (a ContentLimits or a dict) applied."""
        o = overrides.model_dump(exclude_none=True) if hasattr(overrides, "model_dump") else dict(overrides or {})
        return {**self.limits, **self.sampling, **o}

    def json_schema(self, locale: str = "en-US", overrides: Any = None) -> dict[str, Any]:
        """The schema vLLM's grammar enforces, carrying the limits, so a small model neither stops
        short nor runs past its token budget; word limits are checked again afterwards."""
        schema = self.schema.model_json_schema()
        lim = self.effective(overrides)
        props = schema["properties"]
        zh = locale.lower().startswith("zh")
        if self.prose and (lim.get("min_words") or lim.get("max_words")):
            # Characters per word: about 6 in English; a CJK character counts as a word.
            per = 1.3 if zh else 6.5
            if lim.get("min_words"):
                props[self.prose]["minLength"] = int(lim["min_words"] * (1 if zh else 5))
            if lim.get("max_words"):
                props[self.prose]["maxLength"] = max(int(lim["max_words"] * per), props[self.prose].get("minLength", 1))
        if self.items:
            arr = props[self.items]
            if lim.get("min_items"):
                arr["minItems"] = lim["min_items"]
            if lim.get("max_items"):
                arr["maxItems"] = lim["max_items"]
            if lim.get("max_chars") and "items" in arr and arr["items"].get("type") == "string":
                arr["items"]["maxLength"] = lim["max_chars"]
        elif lim.get("max_chars"):
            for f in props.values():
                if f.get("type") == "string":
                    f["maxLength"] = lim["max_chars"]
        return schema

    def texts(self, out: _Out) -> list[str]:
        """Every piece of generated text in an output, for the text checks."""
        return texts_of(out.model_dump())

    def fields(self) -> list[str]:
        return list(self.schema.model_fields)

    def records(self) -> list[str]:
        """The output fields that hold records (a list of objects, e.g. FAQ pairs), not text."""
        def bare(ann: Any) -> Any:
            return bare(get_args(ann)[0]) if get_origin(ann) is Annotated else ann

        def is_records(ann: Any) -> bool:
            ann = bare(ann)
            inner = bare(get_args(ann)[0]) if get_origin(ann) is list else None
            return isinstance(inner, type) and issubclass(inner, BaseModel)

        return [n for n, f in self.schema.model_fields.items() if is_records(f.annotation)]


_SAMPLING_FALLBACK = {"temperature": 0.3, "repetition_penalty": 1.05, "max_tokens": 400}


def sampling_for(ct: ContentType, gen: dict[str, Any], overrides: Any = None) -> dict[str, Any]:
    """content.<type>.<key> > generation.<key> > the type's tuned default."""
    o = overrides.model_dump(exclude_none=True) if hasattr(overrides, "model_dump") else dict(overrides or {})
    return {k: next(v for v in (o.get(k), gen.get(k), ct.sampling.get(k), _SAMPLING_FALLBACK[k]) if v is not None)
            for k in SAMPLING_KEYS}


def check_limits(ct: ContentType, fields: dict[str, Any], overrides: Any = None) -> list[str]:
    """The shop's length limits on one parsed output; each violation as a short reason."""
    lim = ct.effective(overrides)
    bad = []
    if ct.prose and isinstance(fields.get(ct.prose), str):
        n = word_count(fields[ct.prose])
        lo, hi = lim.get("min_words"), lim.get("max_words")
        if (lo and n < lo) or (hi and n > hi):
            bad.append(f"{ct.prose} has {n} words, needs {lo or 1}-{hi or 'any'}")
    if ct.items and isinstance(fields.get(ct.items), list):
        n = len(fields[ct.items])
        lo, hi = lim.get("min_items"), lim.get("max_items")
        if (lo and n < lo) or (hi and n > hi):
            bad.append(f"{ct.items} has {n} items, needs {lo or 1}-{hi or 'any'}")
    if mc := lim.get("max_chars"):
        target = fields.get(ct.items) if ct.items else [v for v in fields.values() if isinstance(v, str)]
        for x in target or []:
            if isinstance(x, str) and len(x) > mc:
                bad.append(f"{x[:30]!r} has {len(x)} characters, max {mc}")
    return bad


def texts_of(fields: dict[str, Any]) -> list[str]:
    """The text pieces of an output-shaped dict: strings, list items, and FAQ question/answer values."""
    vals: list[str] = []
    for v in fields.values():
        if isinstance(v, str):
            vals.append(v)
        elif isinstance(v, list):
            for x in v:
                vals.extend(map(str, x.values()) if isinstance(x, dict) else [str(x)])
    return vals


CONTENT_TYPES: dict[str, ContentType] = {c.name: c for c in [
    ContentType("description", "description-v2", DescriptionOut, {
        "en-US": "Write `description`: one paragraph of plain English prose about this product.",
        "zh-CN": "撰写 `description`：一段简体中文商品描述。",
    }, limits={"min_words": 20, "max_words": 150}, prose="description", candidates=3,
        sampling={"temperature": 0.3, "repetition_penalty": 1.05, "max_tokens": 320},
        style={"en-US": "Open with what the product is and who it is for, then its listed features. Short, "
                        "concrete sentences; no sentence twice; no names, materials or claims that are not in "
                        "the facts.",
               "zh-CN": "先说明这是什么商品、适合谁，再介绍列出的特点。句子简短具体，不要重复，不要写事实中没有的"
                        "名称、材质或功效。"}),
    ContentType("bullets", "bullets-v2", BulletsOut, {
        "en-US": "Write `bullets`: short English bullet points, one product fact each.",
        "zh-CN": "撰写 `bullets`：简短的简体中文卖点，每条一个商品事实。",
    }, limits={"min_items": 3, "max_items": 6, "max_chars": 120}, items="bullets", few_shot=1, candidates=3,
        sampling={"temperature": 0.3, "repetition_penalty": 1.05, "max_tokens": 220},
        style={"en-US": "Each bullet states a different listed fact in a few words. No bullet repeats another.",
               "zh-CN": "每条写一个不同的已列出事实，几个词即可，不要重复。"}),
    ContentType("seo_title", "seo_title-v2", SeoTitleOut, {
        "en-US": "Write `seo_title`: one English page title.",
        "zh-CN": "撰写 `seo_title`：一个简体中文网页标题。",
    }, limits={"max_chars": 60},
        sampling={"temperature": 0.2, "repetition_penalty": 1.05, "max_tokens": 60},
        style={"en-US": "The product name first, then the brand or one key feature from the facts.",
               "zh-CN": "先写商品名称，再写品牌或一个事实中的主要特点。"}),
    ContentType("ad_copy", "ad_copy-v2", AdCopyOut, {
        "en-US": ("Write search-ad copy in English: `ad_headlines`, headlines of at most 30 characters "
                  "each, and `ad_descriptions`, 2 to 4 descriptions of at most 90 characters each."),
        "zh-CN": ("用简体中文撰写搜索广告：`ad_headlines` 为标题，每条最多 30 个字符；"
                  "`ad_descriptions` 为 2 到 4 条描述，每条最多 90 个字符。"),
    }, limits={"min_items": 3, "max_items": 15, "max_chars": 30}, items="ad_headlines", search_text="ad_text", candidates=3,
        sampling={"temperature": 0.5, "repetition_penalty": 1.05, "max_tokens": 300},
        style={"en-US": "Headlines name the product or one listed feature; each headline is different. "
                        "Descriptions are full sentences built from the facts.",
               "zh-CN": "标题写商品名称或一个已列出的特点，每条不同。描述用完整句子，只用给出的事实。"}),
    ContentType("faq", "faq-v2", FaqOut, {
        "en-US": ("Write `faq`: customer questions about this product, each with a short English answer "
                  "that uses only the product data."),
        "zh-CN": "撰写 `faq`：顾客可能提出的问题，每个配一个只依据商品数据的简体中文简短回答。",
    }, limits={"min_items": 2, "max_items": 4}, items="faq", search_text="faq_text", candidates=2,
        sampling={"temperature": 0.3, "repetition_penalty": 1.1, "max_tokens": 400},
        style={"en-US": "Each question asks about one listed fact of this product, e.g. 'What is it made of?', "
                        "'How much does it weigh?', 'Is it freestanding?'; each answer states that fact in one "
                        "sentence. No 'best', no advice beyond the facts.",
               "zh-CN": "每个问题只问本商品的一个已列出事实，例如“它是什么材质？”“它有多重？”；每个回答用一句话说明该事实。"
                        "不要用“最好”，不要给出事实以外的建议。"}),
]}

DEFAULT_CONTENT = ("description", "ad_copy", "bullets")


def parse_content(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """'description,ad_copy' -> ('description', 'ad_copy'); unknown names are a clear error."""
    if not spec:
        return DEFAULT_CONTENT
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [n for n in names if n not in CONTENT_TYPES]
    if bad:
        raise ValueError(f"unknown content type(s) {', '.join(bad)}; choose from {', '.join(CONTENT_TYPES)}")
    return tuple(dict.fromkeys(names))


# ---- the shop's own copy of a product, per content type (few-shot examples, training targets) ----

# The attributes that hold a product's own copy of a type (the description is a field of its own).
TARGET_ATTRS = {
    "description": (),
    "bullets": ("bullets", "features"),
    "seo_title": ("seo_title", "meta_title"),
    "ad_copy": ("ad_headlines", "ad_descriptions"),
    "faq": ("faq",),
}


def _strings(v: Any) -> list[str]:
    if isinstance(v, list):
        return [str(x).strip() for x in v if str(x).strip()]
    return [s.strip() for s in str(v).split("\n") if s.strip()] if v not in (None, "") else []


def target_of(p: Product, content: str) -> dict[str, Any] | None:
    """The human-written target for one content type, shaped like the generator's output."""
    a = p.attributes
    if content == "description":
        return {"description": p.description} if p.description else None
    if content == "bullets":
        items = next((_strings(a[k]) for k in TARGET_ATTRS["bullets"] if a.get(k)), [])
        return {"bullets": items} if items else None
    if content == "seo_title":
        t = next((str(a[k]).strip() for k in TARGET_ATTRS["seo_title"] if a.get(k)), "")
        return {"seo_title": t} if t else None
    if content == "ad_copy":
        h, d = _strings(a.get("ad_headlines")), _strings(a.get("ad_descriptions"))
        return {"ad_headlines": h, "ad_descriptions": d} if h and d else None
    if content == "faq":
        raw = a.get("faq")
        try:
            faq = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            faq = None
        return {"faq": faq} if isinstance(faq, list) and faq else None
    raise ValueError(f"unknown content type {content!r}; choose from {', '.join(CONTENT_TYPES)}")


def input_product(p: Product) -> Product:
    """The product as the model sees it at training time: no description or copy attributes."""
    drop = {k for keys in TARGET_ATTRS.values() for k in keys}
    return p.model_copy(update={"description": None,
                                "attributes": {k: v for k, v in p.attributes.items() if k not in drop}})
