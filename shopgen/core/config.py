"""One typed config. Defaults run the embedded local stack; production values come from a
YAML file (--config or SHOPGEN_CONFIG) and SHOPGEN_* environment variables (SHOPGEN_ES__URL=...).
Precedence: explicit overrides > environment > YAML file > defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

# The banned-claims families every gate applies unless qa.banned_claims replaces them.
DEFAULT_BANNED: dict[str, list[str]] = {
    "price_shipping_discount": [r"\bfree shipping\b", r"\bshipping\b", r"\bdiscount(s|ed)?\b", r"\b\d+\s?% off\b",
                                r"\bon sale\b", r"[$€£¥]\s?\d", r"\bprices?\b", r"\bcheap(est|er)?\b", r"\bcoupons?\b",
                                r"\bbargain\b", "包邮", "折扣", "优惠", "特价", "价格"],
    "contact_url": [r"https?://", r"\bwww\.", r"\b[\w.+-]+@[\w-]+\.[a-z]{2,}\b", r"\b[\w-]+\.(com|net|org|io|cn|shop)\b",
                    r"\b(call|phone|whatsapp|email) us\b", r"\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b", "联系我们", "电话"],
    "superlative_guarantee": [r"\bbest\b", r"#\s?1\b", r"\bnumber one\b", r"\bguarantee[sd]?\b", r"\bunbeatable\b",
                              r"\bworld'?s (finest|greatest)\b", r"\b100% (safe|satisfaction)\b", "最好", "第一(?!次|步|天|层|眼)", "保证", "最佳"],
    "health_claim": [r"\bcures?\b", r"\bheals?\b", r"\bclinically proven\b", r"\bfda\b", r"\bprevents? (disease|illness|cancer)\b",
                     r"\bboosts? (your )?immun", r"\bweight loss\b", r"\bmedical grade\b",
                     r"\bhealthier\b", r"\bwell[- ]being\b", r"\bwellness\b", "治疗", "治愈", "药效"],
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ESConfig(_Section):
    # None means the embedded noida-db server that `shopgen dev up` manages.
    url: list[str] | str | None = None
    cloud_id: str | None = None
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    # Secrets may also come from files (e.g. mounted Kubernetes/Docker secrets); the file wins.
    api_key_file: Path | None = None
    password_file: Path | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    max_retries: int = 3
    alias: str = "products"
    # Bulk writer: chunk limits and retry policy for 429/5xx.
    bulk_chunk_docs: int = 500
    bulk_chunk_bytes: int = 10 * 1024 * 1024
    bulk_max_retries: int = 5
    bulk_initial_backoff: float = 1.0
    # Retries of a bulk window on 429/502/503/504 and connection errors, with exponential backoff.
    bulk_max_backoff: float = 60.0
    # Gate before the alias swap: the share of docs the bulk may fail on.
    max_error_rate: float = Field(default=0.0, ge=0, le=1)
    keep_indices: int = Field(default=3, ge=1)
    # Settings the index gets once the bulk load is done (it is built with 0 replicas, refresh -1).
    shards: int = Field(default=1, ge=1)
    replicas: int = Field(default=1, ge=0)
    refresh_interval: str = "1s"
    health_status: Literal["green", "yellow"] = "yellow"  # waited for after the build
    health_timeout: str = "60s"
    # Chinese text analyzer: auto picks smartcn or ik when the cluster has the plugin, else cjk.
    chinese_analyzer: Literal["auto", "smartcn", "ik", "cjk", "standard"] = "auto"
    vector_index_type: Literal["int8_hnsw", "hnsw", "int4_hnsw", "bbq_hnsw", "flat", "int8_flat"] = "int8_hnsw"
    hnsw_m: int = Field(default=16, ge=2)
    hnsw_ef_construction: int = Field(default=100, ge=4)
    # hybrid search: server = the RRF retriever, client = fusion in shopgen, auto = server when licensed.
    hybrid: Literal["auto", "server", "client"] = "auto"
    rrf_rank_constant: int = Field(default=60, ge=1)
    rrf_window: int = Field(default=100, ge=1)

    @property
    def embedded(self) -> bool:
        return not self.url and not self.cloud_id


class SearchConfig(_Section):
    """How `search` ranks (the defaults every index starts from); `shopgen tune-search` stores a
    tuned mode and fusion with the index (its `_meta.search`), which then win over these."""

    # bm25: the title's own match, a phrase boost and typo-tolerant title terms (worth less than
    # exact ones), plus one BM25F combined_fields clause over the other fields, weighted per field.
    title_boost: float = Field(default=2.0, ge=0)
    phrase_boost: float = Field(default=1.0, ge=0)
    phrase_slop: int = Field(default=1, ge=0)
    fuzzy_boost: float = Field(default=0.3, ge=0)  # 0 turns typo tolerance off
    # fallback: the typo-tolerant terms join only when the exact query finds fewer products than asked
    # for (a typo finds something; a correct query keeps its exact ranking); always; off.
    fuzzy: Literal["fallback", "always", "off"] = "fallback"
    fuzzy_min_hits: int = Field(default=10, ge=1)  # fallback: fewer exact matches than min(k, this)
    fuzziness: str = "AUTO"
    fuzzy_prefix_length: int = Field(default=1, ge=0)
    fields_boost: float = Field(default=1.0, ge=0)
    # Weights of the other fields inside combined_fields (below 1 counts as 1; 0 turns a field off);
    # None: the built-in ones.
    field_weights: dict[str, Annotated[float, Field(ge=0)]] | None = None
    knn_candidates: int = Field(default=200, ge=1)  # kNN num_candidates (at least 2 x the hits asked for)
    # num_candidates also grows with the index: this share of its documents (at most 10000).
    knn_candidates_share: float = Field(default=0.01, ge=0, le=1)
    # Exact rescoring of the approximate kNN candidates: auto = when the vectors are quantized, by the
    # cluster (rescore_vector) where it can, else in shopgen over the top k x knn_oversample.
    knn_rescore: Literal["auto", "server", "client", "off"] = "auto"
    knn_oversample: float = Field(default=3.0, ge=1, le=10)  # Elasticsearch's rescore_vector allows 1-10
    # hybrid before tuning: rrf (reciprocal rank) or linear (weighted sum of normalised scores).
    fusion: Literal["rrf", "linear"] = "rrf"
    bm25_weight: float = Field(default=1.0, ge=0)
    knn_weight: float = Field(default=1.0, ge=0)
    normalizer: Literal["minmax", "l2_norm"] = "minmax"
    # Units after a number, rewritten to one word in the index and the query ({canonical: [aliases]},
    # e.g. {"inch": ["in.", "in", "\""]}); None: the built-in list (shopgen/core/units.py). Applies to
    # indices built after the change.
    units: dict[str, list[str]] | None = None
    # ltr (shopgen train-ranker, search --mode ltr): the hybrid candidates the ranker reorders.
    ltr_candidates: int = Field(default=100, ge=2, le=1000)
    # Solr-format synonym rules for the text analyzer ("tee, t-shirt", "hoody => hoodie").
    synonyms: list[str] = Field(default_factory=list)
    # tune-search: queries held out (by query hash) from tuning, and the cross-validation folds.
    heldout_fraction: float = Field(default=0.3, gt=0, lt=1)
    split_seed: int = 0
    folds: int = Field(default=5, ge=2)

    @field_validator("units")
    @classmethod
    def _units(cls, v: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        from shopgen.core.units import validate_units

        return None if v is None else validate_units(v)

    @field_validator("synonyms")
    @classmethod
    def _synonyms(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if not r.strip() or "\n" in r or len(r) > 500]
        if bad:
            raise ValueError(f"search.synonyms: rules must be one non-empty line each (at most 500 characters): {bad[:3]}")
        return [r.strip() for r in v]


class GateConfig(_Section):
    """Checks a freshly built index must pass before the alias moves to it."""

    # Largest allowed drop in doc count against the live index (0.1 = 10%).
    max_doc_drop: float = Field(default=0.10, ge=0, le=1)
    # Absolute floor: losing up to this many docs is always allowed, so on a small catalog one
    # legitimate deletion does not stop the nightly (the refusal needs > max(share, floor) docs).
    max_doc_drop_min_docs: int = Field(default=5, ge=0)
    # Queries that must each return at least one hit; empty = a few product titles from the input.
    smoke_queries: list[str] = Field(default_factory=list)
    smoke_samples: int = Field(default=5, ge=0)
    # A query,sku,grade CSV: the new index's NDCG@10 may not fall below the live one's by more than the tolerance.
    judgments: str | None = None
    judgments_mode: Literal["bm25", "knn", "hybrid"] = "hybrid"
    ndcg_tolerance: float = Field(default=0.02, ge=0)
    # Behaviour lists are published only when last night's predicted tonight's held-out sessions with a
    # Recall@20 at least this times popularity's (0 turns the check off); recommend/holdout.py.
    recs_min_ratio: float = Field(default=1.0, ge=0)
    # Fewer held-out predictions than this: too few to judge, the lists are published.
    recs_min_cases: int = Field(default=200, ge=1)
    # The most sampled events the check reads from tonight's new files (one session in 16).
    recs_holdout_events: int = Field(default=20000, ge=100)


class RelatedConfig(_Section):
    # Top-K most similar products stored as related_skus (0 turns the stage off).
    k: int = Field(default=8, ge=0, le=100)
    # Attributes naming a product's variant group (same group = not related); first present wins.
    variant_keys: list[str] = Field(default_factory=lambda: ["parent_sku", "variant_of", "group_id"])
    # Up to this many products the driver computes them in-process instead of a Ray Data pipeline.
    local_max_rows: int = Field(default=20000, ge=0)
    # Products matched per batch (one Ray task); each batch streams every candidate's vector once.
    batch_size: int = Field(default=2048, ge=1, le=65536)
    # Candidate vectors read and scored at a time: memory is batch_size x chunk_rows scores.
    chunk_rows: int = Field(default=4096, ge=64, le=262144)


EVENT_KINDS = ("view", "click", "cart", "purchase")


class RecommendConfig(_Section):
    """Recommendations from shopper behaviour (shopgen/recommend): co-occurrence within sessions, the
    order of views, content similarity and category popularity, blended per product."""

    # Behaviour log for the nightly: .jsonl/.csv/.parquet, a folder, or an s3:// prefix (--events).
    events: str | None = None
    # Key of the salted hash that replaces session_id and user_id before anything is stored or written.
    # Unset: a random key is made once and kept in <home>/secrets/recommend_id_salt (mode 0600).
    id_salt: SecretStr | None = None
    # The shop's own event names for view, click, cart and purchase (case-insensitive).
    event_aliases: dict[str, str] = Field(default_factory=lambda: {
        "detail": "view", "pageview": "view", "page_view": "view", "product_view": "view",
        "add_to_cart": "cart", "addtocart": "cart", "add-to-cart": "cart", "basket": "cart",
        "transaction": "purchase", "order": "purchase", "buy": "purchase", "checkout": "purchase"})
    # How much one event says about interest in the product; a session keeps each product's strongest.
    weights: dict[str, float] = Field(default_factory=lambda: {"view": 1.0, "click": 1.0, "cart": 3.0,
                                                               "purchase": 5.0})
    # A session's contribution halves every this many days (of event time).
    half_life_days: float = Field(default=30.0, gt=0)
    # A session splits where the shopper was idle this long.
    session_gap_minutes: float = Field(default=30.0, gt=0)
    # Products per session counted (the first ones seen): a crawler's session adds no O(n^2) pairs.
    max_session_items: int = Field(default=50, ge=2, le=1000)
    # Decayed, weighted co-occurrence a pair needs before it is recommended.
    min_support: float = Field(default=1.0, ge=0)
    # Pair score from the co-occurrence C(a,b) and each product's total C(a), C(b). jaccard: best Recall@20
    # of the three on the 10x synthetic catalog, within 0.002 of cosine on the bundled one (bench/recs.py).
    similarity: Literal["cosine", "jaccard", "lift"] = "jaccard"
    # Length of each list written into the index (also_viewed, bought_together, recommended).
    k: int = Field(default=12, ge=0, le=100)
    # A night whose new event files total at most this many MB folds them in the driver's process;
    # a larger one on Ray Data (one session per group), never holding the log.
    local_max_mb: int = Field(default=32, ge=0)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(EVENT_KINDS) or any(w <= 0 for w in v.values()):
            raise ValueError(f"weights: one positive weight for each of {', '.join(EVENT_KINDS)}")
        return v

    @field_validator("event_aliases")
    @classmethod
    def _aliases(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {k: x for k, x in v.items() if x not in EVENT_KINDS}
        if bad:
            raise ValueError(f"event_aliases: {bad} must map to one of {', '.join(EVENT_KINDS)}")
        return {k.strip().lower(): x for k, x in v.items()}


class S3Config(_Section):
    endpoint_url: str | None = None
    region: str | None = None
    # Credentials normally come from the standard AWS environment/profile chain.
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None


class ModelsConfig(_Section):
    # A model reference: a built-in name, a local HF folder, or an s3:// prefix holding one.
    generator: str = "smollm2-135m-instruct"
    embedder: str = "all-minilm-l6-v2"
    cache_dir: Path | None = None  # default: <home>/models
    # Model registry: a local folder or an s3:// prefix (default: <home>/registry).
    registry: str | None = None
    # Generate with the registry's promoted version when there is one (--model turns this off).
    use_promoted: bool = True
    # Where each node keeps the models its actors load (s3:// downloads, the converted built-in);
    # $SHOPGEN_NODE_CACHE on a node wins. Default: the model cache folder, <home>/models.
    node_cache_dir: Path | None = None
    # The languages the generator writes, as primary language subtags (en, zh) matched against a
    # product's locale (en-US -> en). Products in other languages are not sent to the LLM (their
    # copy is `none` with the reason unsupported_language) but are still indexed. None: the known
    # languages of models.generator's family (KNOWN_LANGUAGES; an unknown model: [en], since every
    # locale but zh-* gets the English prompt). A shop with a multilingual generator sets [en, zh].
    generator_languages: list[str] | None = None

    # Model families (a pattern in the generator reference, case-insensitive) -> the languages their
    # copy is written in; the first match wins.
    KNOWN_LANGUAGES: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = (
        (r"smollm", ("en",)),
        (r"qwen", ("en", "zh")),
    )
    UNKNOWN_LANGUAGES: ClassVar[tuple[str, ...]] = ("en",)
    # The per-type copy reason of a product whose language the generator does not write.
    UNSUPPORTED_LANGUAGE: ClassVar[str] = "unsupported_language"

    @field_validator("generator_languages", mode="before")
    @classmethod
    def _languages(cls, v: Any) -> Any:
        """A list or a comma-separated string; each a language tag reduced to its primary subtag."""
        if v is None:
            return None
        items = v.split(",") if isinstance(v, str) else list(v)
        out: list[str] = []
        for item in items:
            lang = cls.language_of(str(item))
            if not re.fullmatch(r"[a-z]{2,8}", lang):
                raise ValueError(f"{item!r} is not a language (a primary subtag such as en or zh)")
            if lang not in out:
                out.append(lang)
        if not out:
            raise ValueError("name at least one language (e.g. [en])")
        return out

    def languages(self) -> tuple[str, ...]:
        """The languages the generator writes: generator_languages, else its family's known ones."""
        if self.generator_languages is not None:
            return tuple(self.generator_languages)
        for pattern, langs in self.KNOWN_LANGUAGES:
            if re.search(pattern, self.generator, re.IGNORECASE):
                return langs
        return self.UNKNOWN_LANGUAGES

    @staticmethod
    def language_of(locale: str | None) -> str:
        """A locale's primary language subtag: en-US -> en, zh-Hans-CN -> zh."""
        return (locale or "").strip().replace("_", "-").split("-")[0].lower()

    def writes(self, locale: str | None) -> bool:
        """Whether the generator writes copy in this locale's language."""
        return self.language_of(locale) in self.languages()


class EnginePool(_Section):
    """How a stage's actors are placed on the Ray cluster (as in ray.data.llm's processor config)."""

    # Actors: a fixed pool size, or [min, max] for a pool that autoscales with the cluster.
    concurrency: int | tuple[int, int] = 1
    # Where each actor runs: auto = a GPU when the Ray cluster has one, else a CPU.
    accelerator: Literal["auto", "gpu", "cpu"] = "auto"
    # A GPU of this type (Ray's accelerator_type, e.g. L4, A10G, H100); implies a GPU per actor.
    accelerator_type: str | None = None
    # Extra Ray resources each actor needs, e.g. {"gen_node": 1} to pin actors to labelled nodes.
    resources: dict[str, float] = Field(default_factory=dict)
    # Batches queued on one actor at a time (Ray Data's max_tasks_in_flight_per_actor; unset: Ray's default).
    max_concurrent_batches: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _sizes(self) -> "EnginePool":
        lo, hi = (self.concurrency, self.concurrency) if isinstance(self.concurrency, int) else self.concurrency
        if lo < 1 or hi < lo:
            raise ValueError(f"concurrency must be >= 1, or [min, max] with 1 <= min <= max; got {self.concurrency}")
        return self


class GenerationConfig(EnginePool):
    # Content types generated when --content is not given.
    content: list[str] = Field(default_factory=lambda: ["description", "ad_copy", "bullets"])
    batch_size: int = 32
    # Sampling for every content type; unset (the default), each type uses its own tuned value,
    # and content.<type>.<key> overrides both.
    max_tokens: int | None = Field(default=None, ge=16)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float = 0.9
    repetition_penalty: float | None = Field(default=None, gt=0)
    seed: int = 0
    # A row whose output fails the checks is regenerated with a new seed, then quarantined.
    max_attempts: int = 3
    # Restarts of a generator whose vLLM engine died (each retries the batch), before the run fails.
    engine_restarts: int = 2
    # auto: bfloat16 on a GPU, and on a CPU with bf16 instructions (AVX512-BF16, AMX); else float32,
    # since a CPU without them emulates bf16 matmuls several times slower than it runs fp32.
    dtype: str = "auto"
    max_model_len: int = 2048
    kv_cache_gib: int = 2  # CPU only: GiB of RAM reserved for vLLM's KV cache
    enforce_eager: bool = True
    # Where vLLM runs its engine core and model: in separate processes (its default) or inside the
    # generator's own process. auto: inline on a CPU, where the two extra processes cost about 30 s of
    # start-up each night and buy nothing (vLLM turns off async scheduling on CPU); separate on a GPU.
    engine_process: Literal["auto", "inline", "separate"] = "auto"
    gpu_memory_utilization: float = 0.85  # GPU only
    max_num_seqs: int = 64
    max_lora_rank: int = 64
    cpu_threads: int | None = None  # CPU only: threads for vLLM kernels (default: all cores)
    # Passed to vllm.LLM as they are, after shopgen's own (e.g. {"tensor_parallel_size": 2, "quantization": "fp8"}).
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    # Prompt: grounded (facts list, style guide, the shop's own copy as examples) or v2 (the
    # prompt before it, kept to measure against: bench/copy_quality.py).
    # A fine-tuned version whose manifest names its own prompt (finetune.prompt) is served with that one.
    prompt: Literal["grounded", "v2", "facts"] = "grounded"
    # Human-written texts of the same type and category shown as examples of the shop's voice, for
    # every type (0: none); unset, each type uses its measured default (bench/copy_quality.py: bullets 1, others 0).
    few_shot: int | None = Field(default=None, ge=0, le=3)
    # Decoding constraints per request (shopgen/generate/constraints.py): digits only as the product's own
    # numbers and no braces, brackets, tags or '#' (a grammar), and the banned-claim words blocked (bad_words).
    constrain: bool = True
    block_banned_words: bool = True
    # With constrain: English copy may use only the product's own words and a closed list of function
    # and neutral copy words (shopgen/generate/lexicon.py), so no material, origin, channel or praise
    # the input lacks can be written. Off by default: on SmolLM2-135M it did not raise the accepted rate
    # (bench/copy_quality.py, arm lexicon); the model copies the seller's words in the wrong places instead.
    # lexicon_words adds the shop's own neutral words to the list.
    lexicon: bool = False
    lexicon_words: list[str] = Field(default_factory=list)
    # Retries tell the model what failed in its previous answer. Off by default: on SmolLM2-135M it
    # lowered the accepted rate (bench/copy_quality.py); a larger model may use it.
    feedback: bool = False


class ContentLimits(_Section):
    """Per content type: length limits, sampling and a style line, configurable per shop
    (content.description.min_words: 20). A change to any of them regenerates that type only."""

    # Prose types (description, faq answers): words; CJK characters count as words.
    min_words: int | None = Field(default=None, ge=1)
    max_words: int | None = Field(default=None, ge=1)
    # List types (bullets, ad headlines, faq pairs): how many items.
    min_items: int | None = Field(default=None, ge=1)
    max_items: int | None = Field(default=None, ge=1)
    # Per item or per text, characters (e.g. Google ads: 30 per headline).
    max_chars: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1)
    # Worked examples from the shop's own copy for this type (overrides generation.few_shot).
    few_shot: int | None = Field(default=None, ge=0, le=3)
    # Extra style guidance appended to the type's built-in guide (the shop's voice).
    style: str | None = None
    # Best-of-n: samples drawn per request in one engine call; every one is gated and the best
    # accepted one is published (shopgen.generate.engine.candidate_score).
    candidates: int | None = Field(default=None, ge=1, le=16)


class QAConfig(_Section):
    # Banned-claim patterns by category (regexes, case-insensitive). Replace the whole mapping to customise.
    banned_claims: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_BANNED.items()})
    # Jaccard similarity (word 3-shingles) at which copy for two SKUs counts as a near-duplicate.
    near_duplicate_threshold: float = Field(default=0.9, gt=0, le=1)
    # Claims that need evidence in the product's own data (claim -> regexes, English and Chinese).
    # None: the built-in vocabulary (shopgen.checks.claims.DEFAULT_CLAIMS); {} turns the check off.
    claims: dict[str, list[str]] | None = None


class AnswersConfig(_Section):
    """Shoppers' questions answered from the catalog (shopgen answer / ask / eval-answers / serve answers)."""

    # The nightly answers these questions (a file, folder or s3:// prefix of JSONL, CSV or Parquet):
    # the new ones, and those whose product's facts changed since they were last answered.
    questions: str | None = None
    # The shop's policies, a Markdown file (local or s3://) whose `## Section`s answers may cite as
    # policies#<section>. Without it, policy questions are not answered.
    policies: str | None = None
    # LLM drafts per question (best-of-n, one engine call); each is gated like the extractive draft.
    candidates: int = Field(default=2, ge=0, le=8)
    # When no LLM draft passes the gate, publish the answer composed from the cited facts themselves
    # (`drafted_by: extractive`); false: the question goes to needs_human.
    extractive: bool = True
    # Which passing draft is published: `extractive` first, `llm` first, or `auto` (the LLM's first only
    # when a fine-tuned answerer is promoted). With the extractive one first, the LLM drafts only the
    # questions whose extractive answer fails the gate.
    prefer: Literal["auto", "extractive", "llm"] = "auto"
    max_tokens: int = Field(default=96, ge=16, le=512)
    temperature: float = Field(default=0.3, ge=0, le=2)
    # Rows per Ray Data batch handed to one answering engine.
    batch_size: int = Field(default=64, ge=1)
    # A question without a SKU names its product when the best title's words are at least this share
    # in the question, and the runner-up's share is at least `match_margin` lower.
    match_min: float = Field(default=0.75, gt=0, le=1)
    match_margin: float = Field(default=0.15, ge=0, le=1)
    # The languages questions are answered in (primary subtags); None: the generator's (models.languages()).
    languages: list[str] | None = None
    # Extra question words per fact-name word ({"wattage": ["watts", "power"]}), added to the built-in ones.
    cues: dict[str, list[str]] = Field(default_factory=dict)
    # `shopgen serve answers`: requests one replica handles at once, and how many may wait before a 503.
    serve_max_ongoing: int = Field(default=8, ge=1)
    serve_max_queued: int = Field(default=64, ge=0)


class EmbeddingConfig(EnginePool):
    # Rows per Ray Data batch handed to one embedding actor.
    batch_size: int = Field(default=4096, ge=1)
    # Encoder batch size; "auto" measures a few sizes on the first real batches and keeps the fastest.
    encode_batch_size: int | Literal["auto"] = "auto"
    # Vectors are cached by (embedding-text hash, model version) under <home>/cache/embeddings.
    cache: bool = True
    # A folder or s3:// prefix; on a multi-node cluster use s3:// (or a shared folder) so every actor sees it.
    cache_dir: str | None = None
    # What a product's vector represents, in this order (title first: it says what the product is).
    # Known parts: title, brand, category, attributes, description (the generated one, else the shop's).
    text_fields: list[Literal["title", "brand", "category", "attributes", "description"]] = Field(
        default_factory=lambda: ["title", "brand", "category", "attributes", "description"])
    # Attributes the text names (in this order); None: all of them, in the catalog's order.
    text_attributes: list[str] | None = None
    # Prefixes some embedders need ("query: " / "passage: " for E5); auto: the model's own prompts
    # (sentence-transformers' `prompts`), else the known ones of its family, else none.
    query_prefix: str = "auto"
    document_prefix: str = "auto"


class FinetuneConfig(_Section):
    """Supervised fine-tuning on the shop's own copy (shopgen finetune)."""

    method: Literal["lora", "full"] = "lora"
    # Content types trained; a product contributes a pair per type whose target it has (every type by default).
    content: list[str] = Field(default_factory=lambda: ["description", "bullets", "seo_title", "ad_copy", "faq"])
    # Where targets come from: catalog (the shop's own texts that pass the gate) and accepted (copy the
    # gate accepted in earlier nightly runs, read from finetune.accepted_state or --from-accepted STATE).
    sources: list[Literal["catalog", "accepted"]] = Field(default_factory=lambda: ["catalog"])
    accepted_state: str | None = None  # a nightly state prefix (folder or s3://, e.g. <workdir>/state/<alias>)
    # Texts people approved or edited on the review page (`shopgen review export --train`, JSONL, local
    # or s3://): trained on as they are (a person judged them publishable); held-out products left out.
    reviewed: str | None = None
    # The prompt the fine-tuned model is trained and served with: facts (the product's facts and the
    # task only: no system guide, style guide or examples) or grounded (the base's full prompt).
    prompt: Literal["facts", "grounded"] = "facts"
    # Test-split evaluation: serving (the candidate and the base in vLLM with the serving grammar,
    # constraints, best-of-n, retries and full gate: what the promotion gate reads) or hf (greedy
    # transformers output scored by ROUGE-L; never promotes).
    eval: Literal["serving", "hf"] = "serving"
    # Pairs whose target states facts missing from the input: drop them, or keep and flag them.
    unsupported: Literal["drop", "flag"] = "drop"
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    test_fraction: float = Field(default=0.1, ge=0, lt=1)
    split_seed: int = 0
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    learning_rate: float | None = Field(default=None, gt=0)  # default: 2e-4 for LoRA, 2e-5 for full
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=4, ge=1)  # per worker
    max_seq_len: int = Field(default=512, ge=32)
    epochs: int = Field(default=3, ge=1)
    max_steps: int | None = Field(default=None, ge=1)  # overrides epochs
    seed: int = 0
    # Validation (loss, plus ROUGE-L / coverage / unsupported rate on a fixed sample) every N steps.
    eval_every: int = Field(default=50, ge=1)
    eval_samples: int = Field(default=8, ge=0)
    test_samples: int = Field(default=32, ge=0)  # test-split products (hf: pairs) scored for base and fine-tuned
    max_new_tokens: int = Field(default=256, ge=8)
    # Early stopping: evaluations without improvement of select_metric before training stops.
    patience: int = Field(default=3, ge=1)
    select_metric: Literal["val_loss", "rouge_l"] = "val_loss"
    keep_checkpoints: int = Field(default=2, ge=1)
    max_failures: int = Field(default=3, ge=0)  # worker failures Ray Train recovers from
    # Ray Train storage for checkpoints: a folder or s3:// prefix (default: <home>/finetune).
    storage_path: str | None = None
    workers: int = Field(default=1, ge=1)
    gpu: bool = False
    # A GPU of this type per worker (Ray's accelerator_type, e.g. L4, A100); implies gpu.
    accelerator_type: str | None = None
    # Extra Ray resources each worker needs, e.g. {"train_node": 1} to pin workers to labelled nodes.
    resources: dict[str, float] = Field(default_factory=dict)
    cpu_threads: int | None = None  # per CPU worker (default: cores / workers)
    merge: bool = False  # also register LoRA weights merged into the base
    # Promote the new version right away when it passes the gate (serving eval: a higher accepted rate
    # than the base on every trained type, and no check failing more often).
    auto_promote: bool = False


class SearchFinetuneConfig(_Section):
    """Contrastive fine-tuning of the embedder on graded or click-log judgments (shopgen finetune-search)."""

    learning_rate: float = Field(default=2e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    # (query, product) pairs per worker step; the other pairs' products are the in-batch negatives.
    batch_size: int = Field(default=32, ge=2)
    # Tokens per text in training (the saved model keeps the base's own limit for serving).
    max_seq_len: int = Field(default=256, ge=16)
    epochs: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1)  # overrides epochs
    # Share of the queries held out (by a sha256 of the normalised query) to score base and fine-tuned;
    # unset: search.heldout_fraction and search.split_seed, so tune-search's held-out queries stay unseen.
    test_fraction: float | None = Field(default=None, gt=0, lt=1)
    split_seed: int | None = None
    # Pairs need a grade of at least this.
    min_grade: float = Field(default=1.0, gt=0)
    # Hard negatives per pair: zero-grade judgments of its query first, then lexical (BM25) hits over the
    # products among the top negative_depth that the query has not judged at all.
    hard_negatives: int = Field(default=1, ge=0)
    negative_depth: int = Field(default=30, ge=1)
    # A pair's hard negatives also take its query's lower-graded products (after the zero grades), and
    # in the batch only products graded at least as high as the pair's are kept out of its negatives.
    graded_negatives: bool = True
    scale: float = Field(default=20.0, gt=0)  # 1/temperature of the InfoNCE softmax over cosine scores
    seed: int = 0
    log_every: int = Field(default=10, ge=1)  # steps between progress lines (and metrics reports)
    checkpoint_every: int = Field(default=200, ge=1)  # steps between checkpoints (and one at the end)
    max_failures: int = Field(default=3, ge=0)  # worker failures Ray Train recovers from
    # Ray Train storage: a folder or s3:// prefix (default: <home>/finetune-search).
    storage_path: str | None = None
    workers: int = Field(default=1, ge=1)
    gpu: bool = False
    accelerator_type: str | None = None  # a GPU of this Ray accelerator type per worker; implies gpu
    resources: dict[str, float] = Field(default_factory=dict)  # extra Ray resources per worker
    cpu_threads: int | None = None  # per CPU worker (default: cores / workers)
    # Promote the new embedder right away when its held-out NDCG@10 beats the base's.
    auto_promote: bool = False

    @model_validator(mode="after")
    def _absolute_storage(self) -> "SearchFinetuneConfig":
        if self.storage_path and "://" not in self.storage_path:  # Ray workers run in another directory
            self.storage_path = str(Path(self.storage_path).expanduser().absolute())
        return self


class NightlyConfig(_Section):
    """Incremental nightly runs (shopgen nightly)."""

    # Where per-SKU state, committed outputs and run reports live: a folder or s3:// prefix
    # (default: <workdir>/state); one sub-prefix per alias.
    state: str | None = None
    # The run lock expires this long after its last heartbeat (heartbeats every third of it).
    lock_ttl_s: float = Field(default=900.0, ge=5)
    # Regenerating more than this share of the catalog builds a new index (gate + swap) instead of upserting.
    rebuild_fraction: float = Field(default=0.5, ge=0, le=1)
    # A content type whose copy failed is retried on later nights while its facts are unchanged, with
    # backoff: the n-th retry is due 2^(n-1) nights after the last failed attempt (1, 2, 4 ...; the
    # wait is capped at copy_retry_nights), at most copy_retry_attempts retries, then it waits for the
    # product to change.
    copy_retry_attempts: int = Field(default=3, ge=0)
    copy_retry_nights: int = Field(default=7, ge=1)
    # At most this share of the valid products (rounded up) is retried per night, oldest failures
    # first; due retries beyond it are deferred to a later night (not counted as attempts).
    copy_retry_budget: float = Field(default=0.05, ge=0, le=1)
    # true: copy that failed is generated again every night, whatever the bounds above say
    # (no backoff, no attempt limit, no budget).
    retry_quarantined: bool = False


class ReviewConfig(_Section):
    """The review page (shopgen review): people approve, reject or edit published copy."""

    # Share of accepted texts drawn as a uniform random audit sample (by a hash of the text, so the
    # draw is stable): their decisions estimate the gate's precision without the queue's risk order.
    audit_share: float = Field(default=0.05, ge=0, le=1)
    # Reviewers who may sign in when the page is bound beyond loopback: name -> password hash
    # (`shopgen review hash-password`). Without users, a token is generated and printed once.
    users: dict[str, SecretStr] = Field(default_factory=dict)
    # Where decisions are kept (append-only): default review.sqlite in the alias's state folder, or
    # review/ objects under the state prefix when the state is on s3://.
    store: str | None = None
    # The queue's address, for report.html's link (e.g. http://review.internal:8765); none: no link.
    url: str | None = None
    # Who decides when nobody signs in (a page on loopback, `review decide`).
    reviewer: str = "local"


class CatalogLimits(_Section):
    max_sku_chars: int = 128
    max_title_chars: int = 500
    max_text_chars: int = 20_000
    max_attributes: int = 100
    max_attribute_chars: int = 2_000


class RayConfig(_Section):
    # None: a local Ray (or the cluster when run under `ray job submit`, via RAY_ADDRESS).
    address: str | None = None
    num_cpus: int | None = None
    object_store_memory_mb: int = 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPGEN_", env_nested_delimiter="__", extra="forbid")

    home: Path = Field(default=Path(".shopgen"), description="local state: embedded ES, model cache")
    es: ESConfig = ESConfig()
    s3: S3Config = S3Config()
    models: ModelsConfig = ModelsConfig()
    generation: GenerationConfig = GenerationConfig()
    qa: QAConfig = QAConfig()
    answers: AnswersConfig = AnswersConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    gate: GateConfig = GateConfig()
    search: SearchConfig = SearchConfig()
    related: RelatedConfig = RelatedConfig()
    recommend: RecommendConfig = RecommendConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    search_finetune: SearchFinetuneConfig = SearchFinetuneConfig()
    content: dict[str, ContentLimits] = Field(default_factory=dict)
    nightly: NightlyConfig = NightlyConfig()
    review: ReviewConfig = ReviewConfig()
    catalog: CatalogLimits = CatalogLimits()
    ray: RayConfig = RayConfig()

    @model_validator(mode="after")
    def _absolute_paths(self) -> "Settings":
        """Local paths become absolute when the config loads: Ray workers run in another directory,
        where a relative '.shopgen/models/...' would be taken for a hub id."""
        def fix(v: Any) -> Any:
            if v is None or (isinstance(v, str) and "://" in v):
                return v
            return type(v)(Path(v).expanduser().absolute()) if isinstance(v, (str, Path)) else v

        self.home = fix(self.home)
        self.models.cache_dir = fix(self.models.cache_dir)
        self.models.registry = fix(self.models.registry)
        self.models.node_cache_dir = fix(self.models.node_cache_dir)
        self.embedding.cache_dir = fix(self.embedding.cache_dir)
        self.finetune.storage_path = fix(self.finetune.storage_path)
        self.finetune.accepted_state = fix(self.finetune.accepted_state)
        self.finetune.reviewed = fix(self.finetune.reviewed)
        self.nightly.state = fix(self.nightly.state)
        self.gate.judgments = fix(self.gate.judgments)
        self.answers.questions = fix(self.answers.questions)
        self.answers.policies = fix(self.answers.policies)
        self.review.store = fix(self.review.store)
        return self

    @model_validator(mode="after")
    def _content_limits(self) -> "Settings":
        """content.<type> must name a content type, and its limits must leave room for an output."""
        from shopgen.core.content import CONTENT_TYPES

        for name, over in self.content.items():
            if name not in CONTENT_TYPES:
                raise ValueError(f"content.{name}: unknown content type; choose from {', '.join(CONTENT_TYPES)}")
            lim = CONTENT_TYPES[name].effective(over)
            for lo, hi in (("min_words", "max_words"), ("min_items", "max_items")):
                if lim.get(lo) and lim.get(hi) and lim[lo] > lim[hi]:
                    raise ValueError(f"content.{name}: {lo} {lim[lo]} > {hi} {lim[hi]} (set both)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls), file_secret_settings)

    @property
    def model_cache(self) -> Path:
        return Path(self.models.cache_dir or self.home / "models")

    @property
    def registry_uri(self) -> str:
        return str(self.models.registry or self.home / "registry")

    @property
    def finetune_storage(self) -> str:
        return str(self.finetune.storage_path or (self.home / "finetune").absolute())

    @property
    def embedding_cache(self) -> str:
        return str(self.embedding.cache_dir or self.home / "cache" / "embeddings")

    def redacted(self) -> dict[str, Any]:
        """The config as plain data with every secret masked, safe to print or write to reports."""
        data = self.model_dump(mode="json")  # SecretStr dumps as '**********'
        urls = data["es"]["url"]
        if urls:  # credentials inside a URL (https://user:pass@host) are masked too
            masked = [re.sub(r"//[^/@]*@", "//**********@", u) for u in ([urls] if isinstance(urls, str) else urls)]
            data["es"]["url"] = masked[0] if isinstance(urls, str) else masked
        for k in ("endpoint_url",):
            if data["s3"][k]:
                data["s3"][k] = re.sub(r"//[^/@]*@", "//**********@", data["s3"][k])
        return data


def apply_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """settings with dotted keys set ({"finetune.epochs": 2}), validated as a config file is: a bad
    key or value raises pydantic's ValidationError, and relative paths become absolute. A key that
    goes through a value (generation.seed.x) raises ValueError."""
    if not overrides:
        return settings
    data = settings.model_dump()  # python mode: secrets stay SecretStr, never plain text
    for key, value in overrides.items():
        *sections, leaf = key.split(".")
        node = data
        for i, part in enumerate(sections):
            if node.get(part) is None:  # e.g. content.description or search.field_weights, unset so far
                node[part] = {}
            elif not isinstance(node[part], dict):
                raise ValueError(f"{'.'.join(sections[:i + 1])} is a value, not a section")
            node = node[part]
        node[leaf] = value
    return type(settings).model_validate(data)  # no __init__: file and env are not read again


CONFIG_TEXT_ENV = "SHOPGEN_CONFIG_YAML"


def load_settings(config_file: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    path = config_file or os.environ.get("SHOPGEN_CONFIG")
    if not path and os.environ.get(CONFIG_TEXT_ENV):
        # `shopgen submit --config FILE` ships the file's text to the cluster in this variable.
        import tempfile

        fd, path = tempfile.mkstemp(prefix="shopgen-config-", suffix=".yaml")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(os.environ[CONFIG_TEXT_ENV])
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"config file not found: {path}")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": path})

    return _FromFile(**overrides)
