"""The languages a generator writes (models.generator_languages): products in other locales are not
sent to the LLM, carry `unsupported_language` on every content type, stay indexed, and are not
retried every night; lifting the limit changes their keys, so they are generated then."""

import contextlib
import json

import pyarrow.dataset as pads
import pytest

from shopgen.core.config import load_settings
from shopgen.core.copy import CopyEntry, encode
from shopgen.core.records import Product
from shopgen.generate.engine import generate_with_retries
from shopgen.generate.stage import UNSUPPORTED_LANGUAGE, coverage, unsupported_copy, unsupported_languages
from shopgen.state import CopyPolicy, generation_key, plan, unsupported_entry

EN = Product(sku="E1", title="Trail Jacket", category="Jackets", brand="Northpine", locale="en-US")
ZH = Product(sku="Z1", title="北松 岭风 双人超轻帐篷", category="Tents", brand="Northpine", locale="zh-CN")
DE = Product(sku="D1", title="Wanderjacke", category="Jackets", locale="de-DE")


def recording_engine(sent: list[str]):
    """A fake engine whose every answer fails the gate; it records the locale of each request.
    Takes the engine's call either way: engine(requests, attempt) -> samples per request, or the
    earlier engine(messages, cts, attempt, locales) -> (text, tokens) per request."""

    def engine(*args):
        if len(args) == 2:
            from shopgen.generate.engine import Sample

            sent.extend(r.product.locale for r in args[0])
            return [[Sample("{bad", 3)] * getattr(r, "n", 1) for r in args[0]]
        messages, _, _, locales = args
        sent.extend(locales)
        return [("{bad", 3)] * len(messages)

    return engine


def test_smollm2_writes_english_by_default_and_a_shop_can_declare_more():
    s = load_settings()
    assert s.models.generator_languages is None and s.models.languages() == ("en",)
    assert s.models.writes("en-US") and s.models.writes("en") and not s.models.writes("zh-CN")
    two = load_settings(models={"generator_languages": ["en", "zh"]}).models
    assert two.languages() == ("en", "zh") and two.writes("zh-CN") and two.writes("zh-Hans-CN")
    # tags are reduced to their primary subtag; a comma-separated value (an env var) works too
    assert load_settings(models={"generator_languages": ["en-US", "zh_CN", "EN"]}).models.languages() == ("en", "zh")
    assert load_settings(models={"generator_languages": "en, zh"}).models.languages() == ("en", "zh")
    # the known families; an unknown model writes what every non-zh locale is prompted in: English
    assert load_settings(models={"generator": "s3://m/Qwen2.5-1.5B-Instruct"}).models.languages() == ("en", "zh")
    assert load_settings(models={"generator": "/models/SmolLM2-360M-Instruct"}).models.languages() == ("en",)
    assert load_settings(models={"generator": "/models/my-shop-model"}).models.languages() == ("en",)
    for bad in ([], ["english!"], [""]):
        with pytest.raises(ValueError):
            load_settings(models={"generator_languages": bad})


def test_env_var_declares_the_languages(monkeypatch):
    monkeypatch.setenv("SHOPGEN_MODELS__GENERATOR_LANGUAGES", '["en", "zh"]')
    assert load_settings().models.languages() == ("en", "zh")


def test_products_in_an_undeclared_language_never_reach_the_engine():
    requests: list[str] = []
    products = [EN, ZH, DE]
    foreign = unsupported_languages(((p.sku, p.locale) for p in products), load_settings())
    assert foreign == {"Z1": "zh", "D1": "de"}
    todo = [p for p in products if p.sku not in foreign]
    generate_with_retries(todo, ["seo_title", "description"], recording_engine(requests), max_attempts=2)
    assert requests and set(requests) == {"en-US"}
    assert unsupported_copy(["seo_title"]) == {"seo_title": CopyEntry(status="none", reasons=["unsupported_language"])}
    # declared: zh-CN goes through; de-DE still does not
    both = load_settings(models={"generator_languages": ["en", "zh"]})
    assert unsupported_languages(((p.sku, p.locale) for p in products), both) == {"D1": "de"}


def test_coverage_counts_products_in_unsupported_languages():
    copy = {"E1": {"seo_title": CopyEntry(status="fresh")}, "Z1": unsupported_copy(["seo_title"])}
    cov = coverage(3, 3, copy, ["seo_title"], all_fresh=1)
    assert cov.unsupported_language == 1 and cov.types["seo_title"].none == 1
    from shopgen.core.report import RunReport

    rep = RunReport.model_validate({"coverage": cov, "counts": {"unsupported_language": 1, "retry_deferred": 2}})
    assert rep.coverage.unsupported_language == 1 and rep.to_dict()["counts"]["retry_deferred"] == 2


def test_shopgen_generate_skips_them_and_still_enriches_them(tmp_path, monkeypatch):
    """run_generate with the model, Ray and the actor pool replaced by a recording fake engine."""
    from shopgen.adapters import models
    from shopgen.generate import stage
    from shopgen.generate.engine import GENERATED_SCHEMA, generated_row, product_row

    sent: list[str] = []

    def fake_stage(products, model, settings, out_dir, content):
        import pyarrow as pa
        import pyarrow.parquet as pq

        outs = generate_with_retries(products, list(content), recording_engine(sent), settings.generation.max_attempts)
        rows = [generated_row(product_row(p), o, list(content), model.version) for p, o in zip(products, outs)]
        out_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=GENERATED_SCHEMA), out_dir / "part-0.parquet")

    monkeypatch.setattr(models, "generation_ref", lambda s: "fake")
    monkeypatch.setattr(models, "resolve", lambda ref, s: models.ModelRef(ref, ref, version="fake@1"))
    monkeypatch.setattr(stage, "ray_session", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(stage, "generate_stage", fake_stage)
    catalog = tmp_path / "c.jsonl"
    catalog.write_text("".join(json.dumps(p.model_dump(), ensure_ascii=False) + "\n" for p in (EN, ZH)),
                       encoding="utf-8")

    rep = stage.run_generate(str(catalog), tmp_path / "w", load_settings(home=tmp_path), content="seo_title")
    assert set(sent) == {"en-US"}
    assert rep["counts"]["unsupported_language"] == 1 and rep["counts"]["enriched"] == 2
    assert rep["coverage"]["unsupported_language"] == 1 and rep["coverage"]["searchable"] == 2
    rows = {r["sku"]: r for r in pads.dataset(str(tmp_path / "w" / "enriched")).to_table().to_pylist()}
    assert set(rows) == {"E1", "Z1"} and rows["Z1"]["title"] == ZH.title and rows["Z1"]["seo_title"] is None
    assert json.loads(rows["Z1"]["copy"]) == {"seo_title": {"status": "none", "reasons": [UNSUPPORTED_LANGUAGE]}}
    assert UNSUPPORTED_LANGUAGE not in json.loads(rows["E1"]["copy"])["seo_title"]["reasons"]
    failures = (tmp_path / "w" / "copy_failures.jsonl").read_text().splitlines()
    assert {json.loads(f)["sku"] for f in failures} == {"E1"}

    sent.clear()
    both = load_settings(home=tmp_path, models={"generator_languages": ["en", "zh"]})
    rep = stage.run_generate(str(catalog), tmp_path / "w2", both, content="seo_title")
    assert set(sent) == {"en-US", "zh-CN"} and rep["counts"]["unsupported_language"] == 0


def _keys(unsupported: str | None, types=("seo_title", "description")) -> dict[str, str]:
    return {t: generation_key("h", f"p-{t}", "m@1", "s", unsupported) for t in types}


def test_the_nightly_plan_carries_them_settled_for_their_key():
    # a key of their own: products the generator writes keep the key they always had
    assert generation_key("h", "p", "m", "s") == generation_key("h", "p", "m", "s", None) != \
        generation_key("h", "p", "m", "s", "zh")
    keys = {"E1": _keys(None), "Z1": _keys("zh")}
    hashes = {"E1": "h", "Z1": "h"}
    p = plan(keys, hashes, {}, {}, "20261202T010000000000Z", unsupported={"Z1": "zh"})
    assert p.regenerate == {"E1": ["seo_title", "description"]} and p.unsupported == ["Z1"]
    assert {t: (e.status, e.reasons) for t, e in p.carried["Z1"].items()} == {
        "seo_title": ("none", [UNSUPPORTED_LANGUAGE]), "description": ("none", [UNSUPPORTED_LANGUAGE])}
    c = p.counts()
    assert (c["unsupported_language"], c["regenerated"], c["reused"], c["retried"]) == (1, 1, 0, 0)
    # --full never sends them either
    assert "Z1" not in plan(keys, hashes, {}, {}, "20261202T010000000000Z", full=True, unsupported={"Z1"}).regenerate

    # the next nights: the same entries come back (no retry, no budget, the document unchanged)
    prev = {"Z1": {"content_hash": "h", "copy": encode(p.carried["Z1"]), "fresh": False}}
    for night in ("20261203", "20261210", "20270101"):
        q = plan({"Z1": keys["Z1"]}, {"Z1": "h"}, prev, {}, f"{night}T010000000000Z", unsupported={"Z1"},
                 policy=CopyPolicy(budget=0.0))
        assert q.regenerate == {} and q.carried["Z1"] == q.previous["Z1"] == p.carried["Z1"]
        assert q.retry_deferred == [] and q.retry_gave_up == []

    # the shop declares zh: new keys, so the product is generated (as new copy, not a retry)
    lifted = plan({"Z1": _keys(None)}, {"Z1": "h"}, prev, {}, "20261204T010000000000Z",
                  policy=CopyPolicy(budget=0.0))
    assert lifted.regenerate == {"Z1": ["seo_title", "description"]} and lifted.retried == []


def test_accepted_copy_is_kept_while_the_facts_are_unchanged():
    accepted = CopyEntry(key="k-old", attempt_key="k-old", status="fresh", uri="outputs/gen/r0.parquet",
                         accepted_hash="h", run_id="r0")
    e = unsupported_entry(accepted, "k-zh", "h")  # e.g. written before the limit, by the same model
    assert (e.status, e.uri, e.key, e.attempt_key, e.reasons) == (
        "kept", accepted.uri, "k-old", "k-zh", [UNSUPPORTED_LANGUAGE])
    assert unsupported_entry(e, "k-zh", "h") is e
    dropped = unsupported_entry(accepted, "k-zh2", "h2")  # its facts changed: the stale text goes
    assert dropped.status == "none" and dropped.uri is None and dropped.key is None
