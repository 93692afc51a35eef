"""Index templates (pure): a settings component, a mappings component, and an index template that
composes them for `<alias>-*`. Text has an English analyzer that also reads numbers with units
(shopgen/core/units.py, `TEXT_ANALYZER`) plus a Chinese sub-field; keywords for
filters; price; a dense_vector whose dims come from the embedding model."""

from __future__ import annotations

import re
from typing import Any

from shopgen.core.config import ESConfig, SearchConfig
from shopgen.core.content import CONTENT_TYPES
from shopgen.core.units import DEFAULT_UNITS, analysis

# Content types whose per-type status a document carries (copy.<type>.status).
COPY_TYPES = tuple(CONTENT_TYPES)
# Generated copy: every content type's text fields and joined search_text field, and the fields
# that hold records (stored, not searched), all derived from the types' output schemas.
COPY_TEXT_FIELDS = tuple(f for ct in CONTENT_TYPES.values() for f in ct.fields() if f not in ct.records()) + tuple(
    ct.search_text for ct in CONTENT_TYPES.values() if ct.search_text)
COPY_RECORD_FIELDS = tuple(f for ct in CONTENT_TYPES.values() for f in ct.records())
# Searchable text fields; each also gets a `.zh` sub-field with the Chinese analyzer.
TEXT_FIELDS = ("title", *COPY_TEXT_FIELDS, "attributes_text", "source_description", "qa_text")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
# Analyzer name per Chinese plugin, in order of preference.
CHINESE_PLUGINS = {"analysis-smartcn": "smartcn", "analysis-ik": "ik_smart"}


def chinese_analyzer(choice: str, plugins: set[str]) -> str:
    """auto: the best analyzer the cluster has; otherwise the configured one (ik means ik_smart)."""
    if choice == "auto":
        return next((a for p, a in CHINESE_PLUGINS.items() if p in plugins), "cjk")
    return "ik_smart" if choice == "ik" else choice


def template_names(alias: str) -> dict[str, str]:
    return {"settings": f"shopgen-{alias}-settings", "mappings": f"shopgen-{alias}-mappings",
            "index": f"shopgen-{alias}"}


TEXT_ANALYZER = "shopgen_text"


def settings_component(cfg: ESConfig, search: SearchConfig | None = None) -> dict[str, Any]:
    search = search or SearchConfig()
    return {"settings": {"number_of_shards": cfg.shards, "number_of_replicas": cfg.replicas,
                         "refresh_interval": cfg.refresh_interval,
                         "analysis": analysis(search.units or DEFAULT_UNITS, search.synonyms, TEXT_ANALYZER)}}


def text_analyzer(index_settings: dict[str, Any]) -> str:
    """The analyzer new text fields of an existing index may use: ours when the index defines it (an
    index built before it existed has only the built-in english)."""
    defined = ((index_settings.get("index") or {}).get("analysis") or index_settings.get("analysis") or {})
    return TEXT_ANALYZER if TEXT_ANALYZER in (defined.get("analyzer") or {}) else "english"


def mappings_component(dims: int, cfg: ESConfig, zh_analyzer: str = "cjk",
                       analyzer: str = TEXT_ANALYZER) -> dict[str, Any]:
    keyword = {"type": "keyword"}

    def text(**extra: Any) -> dict[str, Any]:
        return {"type": "text", "analyzer": analyzer,
                "fields": {"zh": {"type": "text", "analyzer": zh_analyzer}, **extra}}

    vec: dict[str, Any] = {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine",
                           "index_options": {"type": cfg.vector_index_type}}
    if "hnsw" in cfg.vector_index_type:
        vec["index_options"].update(m=cfg.hnsw_m, ef_construction=cfg.hnsw_ef_construction)
    props: dict[str, Any] = {f: text() for f in TEXT_FIELDS}
    props["title"] = text(raw={"type": "keyword", "ignore_above": 512})
    props.update({
        "sku": keyword,
        # Keywords for filters, with an analysed sub-field so "tent" also matches the category "Tents".
        "brand": {"type": "keyword", "fields": {"text": {"type": "text", "analyzer": analyzer}}},
        "category": {"type": "keyword", "fields": {"text": {"type": "text", "analyzer": analyzer}}},
        "locale": keyword,
        "currency": keyword,
        "price": {"type": "double"},
        **{f: {"type": "object", "enabled": False} for f in COPY_RECORD_FIELDS},
        "attributes": {"type": "object", "enabled": False},
        # Sizes stated in the title and attributes (`0.5_inch 10_feet`) and their units: whitespace tokens.
        "quantities": {"type": "text", "analyzer": "whitespace"},
        "quantity_units": {"type": "text", "analyzer": "whitespace"},
        "model_version": keyword,
        "prompt_version": keyword,
        "embedding_model": keyword,
        "content_hash": keyword,
        "related_skus": keyword,
        # Behaviour lists (shopgen/recommend): SKUs, and the source of each slot of `recommended`.
        "also_viewed": keyword,
        "bought_together": keyword,
        "recommended": keyword,
        "recommended_sources": keyword,
        "popularity": {"type": "float"},
        # Shoppers' questions answered from the catalog (shopgen/answers): shown on the product page;
        # their text is searchable through qa_text.
        "qa": {"properties": {"question": {"type": "text", "analyzer": analyzer}, "answer": {"type": "text", "analyzer": analyzer},
                              "cites": keyword, "answered_at": {"type": "date", "ignore_malformed": True}}},
        "copy": {"properties": {t: {"properties": {"status": keyword, "reasons": {"type": "keyword", "ignore_above": 512}}}
                                for t in COPY_TYPES}},
        "updated_at": {"type": "date", "ignore_malformed": True},
        "indexed_at": {"type": "date"},
        "embedding": vec,
    })
    return {"mappings": {"dynamic": "strict", "properties": props}}


def index_template(alias: str) -> dict[str, Any]:
    names = template_names(alias)
    # A longer alias is more specific: `products-eu-*` must win over `products-*`.
    return {"index_patterns": [f"{alias}-*"], "composed_of": [names["settings"], names["mappings"]],
            "priority": 100 + len(alias), "_meta": {"managed_by": "shopgen", "alias": alias}}


# The bulk-load settings a new index is created with; the template's values are restored afterwards.
BUILD_SETTINGS = {"number_of_replicas": 0, "refresh_interval": "-1"}
