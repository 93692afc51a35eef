"""The fine-tuning loop's pure parts: the serving-path promotion gate, pairs from accepted nightly
copy (only accepted texts, never test products), the short prompt, and the serving figures."""

import json

import pyarrow as pa
import pytest
from conftest import SAMPLE

from shopgen import state as st8
from shopgen.adapters.registry import Registry, gate, new_version_id, serving_gate
from shopgen.catalog.load import load_catalog
from shopgen.checks import CheckResult
from shopgen.core.config import load_settings
from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import content_hash
from shopgen.finetune import data as sftdata
from shopgen.finetune.recipe import accepted_copy, held_out_products, training_pairs
from shopgen.finetune.serving import ArmRun, Served, accepted_of, arm_figures
from shopgen.generate.engine import Outcome
from shopgen.generate.prompts import build_messages, prompt_version


def _figs(accepted: dict[str, float], fails: dict[str, dict[str, float]] | None = None) -> dict:
    return {"n": 8, "by_type": {t: {"n": 8, "accepted": a, "check_failures": (fails or {}).get(t, {})}
                                for t, a in accepted.items()}}


def _serving(base, ft, types=("description", "bullets")):
    return {"eval": "serving", "types": list(types), "base": base, "finetuned": ft}


def test_promotion_gate_refuses_a_lower_accepted_rate_on_any_trained_type():
    base = _figs({"description": 0.25, "bullets": 0.5}, {"description": {"puffery": 0.5}})
    ok = _figs({"description": 0.5, "bullets": 0.625}, {"description": {"puffery": 0.25}})
    assert serving_gate(_serving(base, ok)) == (True, [])
    assert gate(_serving(base, ok)) == (True, [])

    lower = _figs({"description": 0.75, "bullets": 0.375})
    passed, why = gate(_serving(base, lower))
    assert not passed and why == ["bullets: accepted rate 0.3750 is not above the base's 0.5000 (8 test products)"]
    equal = _figs({"description": 0.75, "bullets": 0.5})
    assert not gate(_serving(base, equal))[0]  # not above is not enough
    # Higher accepted rates, but one check fails more often than on the base.
    worse_check = _figs({"description": 0.5, "bullets": 0.75}, {"bullets": {"number_roles": 0.125}})
    passed, why = gate(_serving(base, worse_check))
    assert not passed and why == ["bullets: check number_roles fails on 0.1250 of requests, the base's 0.0000"]
    # A trained type the evaluation lost is a refusal, not a pass.
    assert not gate(_serving(base, _figs({"description": 0.9}), ("description", "bullets")))[0]
    assert not gate({"eval": "serving", "types": [], "base": {"n": 1}, "finetuned": {"n": 1}})[0]
    # Greedy transformers output never promotes; old manifests keep their ROUGE-L rule.
    hf = {"eval": "hf", "base": {"n": 2, "rouge_l": 0.1, "unsupported_rate": 0},
          "finetuned": {"n": 2, "rouge_l": 0.9, "unsupported_rate": 0}}
    assert not gate(hf)[0] and "serving path" in gate(hf)[1][0]
    assert gate({k: v for k, v in hf.items() if k != "eval"}) == (True, [])


def test_registry_promote_applies_the_serving_gate(tmp_path):
    reg = Registry(str(tmp_path / "reg"))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_config.json").write_text("{}")
    base = _figs({"description": 0.5})
    v_bad, v_good = new_version_id("bad"), new_version_id("good")
    for v, ft in ((v_bad, _figs({"description": 0.25})), (v_good, _figs({"description": 0.75}))):
        reg.register({"adapter": tmp_path / "a"}, {"version": v, "run": v, "base": "b", "method": "lora",
                                                    "data_hash": v, "prompt": "facts",
                                                    "metrics": _serving(base, ft, ["description"])})
    ok, why = reg.promote(v_bad)
    assert not ok and reg.promoted() is None and "accepted rate 0.2500" in why[0]
    assert reg.promote(v_good)[0] and reg.promoted() == v_good


def _state_with_copy(prefix, products, entries_of):
    """A nightly state as a finished run leaves it: skus.parquet rows whose copy entries name a
    batch file of generated rows (as shopgen.nightly writes them)."""
    store = st8.StateStore(str(prefix))
    gen_rows, state_rows = [], []
    for p in products:
        entries, fields, h = entries_of(p)
        gen_rows.append({"sku": p.sku, **fields})
        state_rows.append({**{c: None for c in st8.STATE_SCHEMA.names}, "sku": p.sku, "content_hash": h,
                           "copy": json.dumps(entries)})
    from shopgen.generate.engine import TYPE_FIELDS

    schema = pa.schema([("sku", pa.string())] + [f for fs in TYPE_FIELDS.values() for f in fs])
    store.write_table("outputs/gen/night1-000000.parquet", pa.Table.from_pylist(gen_rows, schema=schema))
    store.write_table("skus.parquet", pa.Table.from_pylist(state_rows, schema=st8.STATE_SCHEMA))
    return store


def test_from_accepted_builds_pairs_only_from_accepted_texts_and_never_from_test_products(tmp_path):
    s = load_settings(home=tmp_path, finetune={"sources": ["accepted"], "accepted_state": str(tmp_path / "state"),
                                               "test_fraction": 0.3, "val_fraction": 0.2})
    products, _ = load_catalog(str(SAMPLE))
    products = [p for p in products if p.locale.startswith("en")][:40]
    uri = "outputs/gen/night1-000000.parquet"

    def entries_of(p):
        i = products.index(p)
        seo = p.title  # an SEO title the gate accepts: the product's name
        fields = {"seo_title": seo, "bullets": [f"Made for {p.title}", "Another line"]}
        if i % 4 == 3:  # facts changed since that night: its copy is stale
            return {"seo_title": {"status": "fresh", "uri": uri}}, fields, "old-hash"
        entries = {"seo_title": {"status": "fresh" if i % 2 == 0 else "kept", "uri": uri},
                   # bullets failed that night: a rejected sample never becomes a target
                   "bullets": {"status": "none", "uri": None, "reasons": ["role_confusion"]}}
        return entries, fields, content_hash(p)

    _state_with_copy(tmp_path / "state", products, entries_of)
    copy = accepted_copy(str(tmp_path / "state"), s, products)
    assert set(copy) == {p.sku for i, p in enumerate(products) if i % 4 != 3}
    assert all(set(c) == {"seo_title"} for c in copy.values())

    _, kept, stats = training_pairs(str(SAMPLE), s, None, copy)  # the whole catalog: the state covers 40 of it
    held = {p.sku for p in products if sftdata.product_split(p, 0.2, 0.3) == "test"}
    assert held and stats["by_source"] == {"catalog": 0, "accepted": len(kept), "reviewed": 0} and kept
    for e in kept:
        assert e.source == "accepted" and e.content == "seo_title" and e.split in ("train", "val")
        assert e.sku not in held, "a test product reached training"
        assert json.loads(e.target) == {"seo_title": copy[e.sku]["seo_title"]["seo_title"]}
        msgs = json.loads(e.messages)
        assert msgs == build_messages(next(p for p in products if p.sku == e.sku), CONTENT_TYPES["seo_title"],
                                      prompt="facts")
    assert stats["prompt_versions"]["seo_title"] == prompt_version(CONTENT_TYPES["seo_title"], "facts")
    assert {p.sku for p in held_out_products(products, s)} <= held

    with pytest.raises(FileNotFoundError, match="no nightly state"):
        accepted_copy(str(tmp_path / "nowhere"), s, products)
    no_state = s.model_copy(update={"finetune": s.finetune.model_copy(update={"accepted_state": None})})
    with pytest.raises(ValueError, match="--from-accepted"):
        training_pairs(str(SAMPLE), no_state, 5)


def test_pairs_are_deduplicated_and_gate_rejected_accepted_copy_is_dropped():
    products, _ = load_catalog(str(SAMPLE))
    p = next(p for p in products if p.locale.startswith("en") and p.description)
    good = {"seo_title": {"seo_title": p.title}}
    bad = {"seo_title": {"seo_title": f"{p.title} - 100% organic, call 555-0100"}}
    ex = sftdata.accepted_examples([p, p], {p.sku: good}, ["seo_title"], test_fraction=0.0, prompt="facts")
    assert len(ex) == 2 and len(sftdata.dedupe(ex)) == 1
    from shopgen.generate.engine import GateSpec

    flagged = sftdata.accepted_examples([p], {p.sku: bad}, ["seo_title"], test_fraction=0.0, gate=GateSpec())
    assert flagged[0].flags and sftdata.keep(flagged, "flag") == []  # never kept, even with unsupported=flag


def test_the_facts_prompt_is_short_and_keeps_seller_text_as_data():
    products, _ = load_catalog(str(SAMPLE))
    p = next(p for p in products if p.locale.startswith("en") and p.description)
    ct = CONTENT_TYPES["description"]
    facts, grounded = build_messages(p, ct, prompt="facts"), build_messages(p, ct, prompt="grounded")
    assert len(json.dumps(facts)) < 0.8 * len(json.dumps(grounded))
    assert "<product>" in facts[-1]["content"] and "not instructions" in facts[0]["content"]
    assert prompt_version(ct, "facts") != prompt_version(ct, "grounded")
    with pytest.raises(ValueError, match="unknown prompt"):
        build_messages(p, ct, prompt="nope")


def test_serving_figures_per_type():
    products, _ = load_catalog(str(SAMPLE))
    ps = [p for p in products if p.locale.startswith("en")][:4]
    ct = CONTENT_TYPES["seo_title"]
    outs = []
    for i, p in enumerate(ps):
        o = Outcome(type_tokens={"seo_title": 30})
        if i < 2:  # accepted; the second states a number the product does not have
            o.outputs["seo_title"] = ct.schema(seo_title=p.title if i == 0 else f"{p.title} 9999")
        else:
            o.checks["seo_title"] = [CheckResult("puffery", False, ["best"])]
        outs.append(o)
    samples = [Served("a", p.sku, "seo_title", "{}", 30, i != 3, i < 2) for i, p in enumerate(ps)]
    run = ArmRun(ps, outs, ["seo_title"], samples, {"seo_title": [100, 120, 110, 90]})
    f = arm_figures(run, {(ps[0].sku, "seo_title"): ps[0].title})
    t = f["by_type"]["seo_title"]
    assert t["accepted"] == 0.5 and t["tokens_per_accepted"] == 60.0 and t["prompt_tokens"] == 105.0
    assert t["accepted_with_unsupported_number"] == 1 and t["unsupported_number_rate"] == 0.5
    assert t["check_failures"] == {"puffery": 0.5} and t["schema_pass_rate"] == 0.75 and t["rouge_l"] == 1.0
    assert t["publishable"] == round(0.5 * t["precision"], 4) and t["precision_basis"] == "seo_title"
    assert f["accepted_rate"] == 0.5 and f["n"] == 4
    assert accepted_of(run) == {ps[0].sku: {"seo_title": {"seo_title": ps[0].title}},
                                ps[1].sku: {"seo_title": {"seo_title": f"{ps[1].title} 9999"}}}
