"""Content types: each has a versioned prompt template per locale and an output schema (pydantic).
The schema's JSON form is what vLLM is asked for; the same model validates what comes back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

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
    description: Annotated[str, StringConstraints(min_length=1, max_length=1600)]

    @field_validator("description")
    @classmethod
    def _words(cls, v: str) -> str:
        n = word_count(v)
        if not 80 <= n <= 200:
            raise ValueError(f"description has {n} words, needs 80-200")
        return v


class BulletsOut(_Out):
    bullets: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
                       Field(min_length=3, max_length=6)]


class SeoTitleOut(_Out):
    seo_title: Annotated[str, StringConstraints(min_length=1, max_length=60)]


class AdCopyOut(_Out):
    # Google responsive search ads: 3-15 headlines <= 30 chars, 2-4 descriptions <= 90 chars.
    ad_headlines: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=30)]],
                            Field(min_length=3, max_length=15)]
    ad_descriptions: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=90)]],
                               Field(min_length=2, max_length=4)]


class QA(_Out):
    # Bounded so four pairs fit the token budget.
    question: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    answer: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class FaqOut(_Out):
    faq: Annotated[list[QA], Field(min_length=2, max_length=4)]


@dataclass(frozen=True)
class ContentType:
    name: str
    version: str
    schema: type[_Out]
    task: dict[str, str]  # locale -> instructions

    # (min, max) characters per locale asked of the grammar for word-bounded fields, so a small
    # model neither stops short nor runs past its token budget; word limits are checked afterwards.
    char_bounds: dict[str, dict[str, tuple[int, int]]] | None = None

    def json_schema(self, locale: str = "en-US") -> dict[str, Any]:
        schema = self.schema.model_json_schema()
        for fname, (lo, hi) in ((self.char_bounds or {}).get(locale) or {}).items():
            schema["properties"][fname].update(minLength=lo, maxLength=hi)
        return schema

    def texts(self, out: _Out) -> list[str]:
        """Every piece of generated text in an output, for the text checks."""
        return texts_of(out.model_dump())


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
    ContentType("description", "description-v1", DescriptionOut, {
        "en-US": "Write `description`: 80 to 200 words of plain English prose about this product.",
        "zh-CN": "撰写 `description`：80 到 200 字的简体中文商品描述。",
    }, char_bounds={"en-US": {"description": (560, 1000)}, "zh-CN": {"description": (100, 200)}}),
    ContentType("bullets", "bullets-v1", BulletsOut, {
        "en-US": "Write `bullets`: 3 to 6 short English bullet points, one product fact each.",
        "zh-CN": "撰写 `bullets`：3 到 6 条简短的简体中文卖点，每条一个商品事实。",
    }),
    ContentType("seo_title", "seo_title-v1", SeoTitleOut, {
        "en-US": "Write `seo_title`: one English page title of at most 60 characters.",
        "zh-CN": "撰写 `seo_title`：一个不超过 60 个字符的简体中文网页标题。",
    }),
    ContentType("ad_copy", "ad_copy-v1", AdCopyOut, {
        "en-US": ("Write search-ad copy in English: `ad_headlines`, 3 to 15 headlines of at most 30 characters "
                  "each, and `ad_descriptions`, 2 to 4 descriptions of at most 90 characters each."),
        "zh-CN": ("用简体中文撰写搜索广告：`ad_headlines` 为 3 到 15 条标题，每条最多 30 个字符；"
                  "`ad_descriptions` 为 2 到 4 条描述，每条最多 90 个字符。"),
    }),
    ContentType("faq", "faq-v1", FaqOut, {
        "en-US": ("Write `faq`: 2 to 4 customer questions about this product, each with a short English answer "
                  "that uses only the product data."),
        "zh-CN": "撰写 `faq`：2 到 4 个顾客可能提出的问题，每个配一个只依据商品数据的简体中文简短回答。",
    }),
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
