"""Unit tests of the pure search core: the bm25 query's shape (title first, phrase boost, typo
tolerance, Chinese routing, uninformative fields left out), the fusions, the field statistics,
the embedding text and prefixes, and tune-search's choosing and splitting."""

import pytest

from indexing.docs import FieldStats
from indexing.search import (
    DEFAULT_FIELD_WEIGHTS,
    Filters,
    SearchProfile,
    bm25_query,
    fuse,
    hybrid_body,
    linear,
    normalize,
    rrf,
    text_query,
)
from indexing.tune import Candidate, candidates, choose, cross_validate, split_queries
from shopgen.adapters.encoder import document_key, document_text, embedding_text, encode_queries, model_prompt
from shopgen.core.config import load_settings


def _clauses(q):
    return q["bool"]["should"]


def _by_kind(q):
    out = {}
    for c in _clauses(q):
        (kind, body), = c.items()
        field, spec = next(iter(body.items())) if kind != "combined_fields" else ("*", body)
        out[(kind, "fuzzy" if "fuzziness" in spec else "exact")] = (field, spec)
    return out


def test_bm25_is_title_first_with_a_phrase_boost_and_fuzzy_terms_worth_less():
    assert ("match", "fuzzy") not in _by_kind(text_query("merino sokcs"))  # fallback: the exact query first
    assert ("match", "fuzzy") in _by_kind(text_query("merino sokcs", SearchProfile(fuzzy="always")))
    with pytest.raises(ValueError, match="unknown fuzzy"):
        SearchProfile(fuzzy="sometimes")
    q = text_query("merino sokcs", fuzzy=True)
    k = _by_kind(q)
    title, exact = k[("match", "exact")]
    _, fuzzy = k[("match", "fuzzy")]
    _, phrase = k[("match_phrase", "exact")]
    assert title == "title" and exact["boost"] > fuzzy["boost"] > 0
    assert fuzzy["fuzziness"] == "AUTO" and fuzzy["prefix_length"] == 1
    assert phrase["boost"] > 0 and phrase["slop"] == 1
    assert q["bool"]["minimum_should_match"] == 1
    _, comb = k[("combined_fields", "exact")]
    assert comb["fields"][0].startswith("category.text") and "title" not in [f.split("^")[0] for f in comb["fields"]]
    assert all(float(f.split("^")[1]) >= 1 for f in comb["fields"] if "^" in f)  # combined_fields needs >= 1


def test_chinese_queries_search_the_zh_fields_without_fuzziness():
    q = text_query("保暖睡袋", fuzzy=True)
    k = _by_kind(q)
    assert k[("match", "exact")][0] == "title.zh" and k[("match_phrase", "exact")][0] == "title.zh"
    assert ("match", "fuzzy") not in k
    fields = k[("combined_fields", "exact")][1]["fields"]
    assert fields and all(f.split("^")[0].endswith(".zh") for f in fields)
    assert not any(f.startswith(("category", "brand")) for f in fields)  # no Chinese sub-field there...
    kw = next(c["multi_match"] for c in _clauses(q) if "multi_match" in c)  # ...so they get their own clause
    assert sorted(f.split("^")[0] for f in kw["fields"]) == ["brand.text", "category.text"]
    assert not any("multi_match" in c for c in _clauses(text_query("sleeping bag")))


def test_uninformative_fields_add_nothing_and_filters_stay_filters():
    p = SearchProfile(uninformative=tuple(f for f in DEFAULT_FIELD_WEIGHTS if f not in ("attributes_text", "description")))
    q = bm25_query("wool", Filters(brand="Acme"), p)
    comb = next(c["combined_fields"] for c in _clauses(q["bool"]["must"][0]) if "combined_fields" in c)
    assert sorted(f.split("^")[0] for f in comb["fields"]) == ["attributes_text", "description"]
    assert q["bool"]["filter"] == [{"term": {"brand": "Acme"}}]
    none = text_query("wool", SearchProfile(uninformative=tuple(DEFAULT_FIELD_WEIGHTS)))
    assert not any("combined_fields" in c for c in _clauses(none))
    no_faq = text_query("wool", SearchProfile(field_weights={**DEFAULT_FIELD_WEIGHTS, "faq_text": 0}))
    assert not any("faq_text" in f for c in _clauses(no_faq) for f in c.get("combined_fields", {}).get("fields", []))
    off = text_query("wool", SearchProfile(fuzzy_boost=0), fuzzy=True)
    assert not any("fuzziness" in next(iter(c.values())).get("title", {}) for c in _clauses(off))


def test_field_stats_drop_empty_and_constant_fields():
    st = FieldStats(DEFAULT_FIELD_WEIGHTS)
    docs = [{"brand": "Luma", "category": "Tees", "description": "a"}, {"brand": "Luma", "category": "Pants"},
            {"brand": "Luma", "category": "Tees", "description": "b"}]
    list(st.watch(docs))
    assert set(st.informative()) == {"category.text", "description"}
    assert "brand.text" in st.uninformative() and "faq_text" in st.uninformative()


def test_weighted_rrf_and_linear_fusion():
    a = [{"_id": "x", "_score": 9.0}, {"_id": "y", "_score": 1.0}]
    b = [{"_id": "y", "_score": 0.9}, {"_id": "z", "_score": 0.8}]
    assert [h["_id"] for h in rrf([a, b], 3)] == ["y", "x", "z"]
    c, d = [{"_id": "x"}, {"_id": "w"}], [{"_id": "y"}, {"_id": "z"}]
    heavy = rrf([c, d], 4, weights=[3.0, 1.0])
    assert [h["_id"] for h in heavy] == ["x", "w", "y", "z"] and heavy[0]["_score"] == pytest.approx(3 / 61)
    assert [h["_id"] for h in rrf([c, d], 4, weights=[1.0, 3.0])] == ["y", "z", "x", "w"]
    assert normalize([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5] and normalize([5.0, 5.0]) == [1.0, 1.0]
    assert normalize([3.0, 4.0], "l2_norm") == pytest.approx([0.6, 0.8])
    lin = linear([a, b], 3, [0.5, 0.5])
    assert [h["_id"] for h in lin] == ["x", "y", "z"] and lin[0]["_score"] == pytest.approx(0.5)
    # A weight of 0 leaves a side's order untouched: the fusion cannot lose what bm25 alone had.
    only_a = fuse(a, b, 2, SearchProfile(fusion="linear", weights=(1.0, 0.0)))
    assert [h["_id"] for h in only_a] == ["x", "y"]


def test_hybrid_body_uses_plain_rrf_only_for_equal_weights():
    plain = hybrid_body("tent", [1.0, 0.0], 10)["retriever"]["rrf"]
    assert "standard" in plain["retrievers"][0] and plain["rank_constant"] == 60
    weighted = hybrid_body("tent", [1.0, 0.0], 10, p=SearchProfile(weights=(2.0, 1.0)))["retriever"]["rrf"]
    assert weighted["retrievers"][0]["weight"] == 2.0 and "retriever" in weighted["retrievers"][0]
    lin = hybrid_body("tent", [1.0, 0.0], 10, p=SearchProfile(fusion="linear", normalizer="l2_norm"))
    assert lin["retriever"]["linear"]["retrievers"][1]["normalizer"] == "l2_norm"


def test_profile_round_trips_through_index_meta_and_rejects_nonsense():
    p = SearchProfile(mode="hybrid", fusion="linear", weights=(0.7, 0.3), uninformative=("description",))
    assert SearchProfile.from_meta(p.to_meta()) == p
    assert SearchProfile.from_meta({"mode": "knn", "future_key": 1}).mode == "knn"
    with pytest.raises(ValueError, match="fusion"):
        SearchProfile(fusion="max")
    with pytest.raises(ValueError, match="weights"):
        SearchProfile(weights=(0.0, 0.0))


def test_split_is_by_query_hash_and_stable():
    j = {f"query {i}": {"A": 1.0} for i in range(200)}
    tune, held = split_queries(j, 0.3, 0)
    assert set(tune) | set(held) == set(j) and not set(tune) & set(held)
    assert 40 < len(held) < 80
    assert split_queries({"Query 7 ": {"A": 1}}, 0.3, 0)[1].keys() == ({"Query 7 "} if "query 7" in held else set())
    assert split_queries(j, 0.3, 1)[1] != held  # another seed, another split


def test_choose_picks_on_tuning_queries_and_cross_validates():
    cands = [Candidate("bm25"), Candidate("knn"), Candidate("hybrid"), Candidate("hybrid", "linear", (0.7, 0.3))]
    qs = [f"q{i}" for i in range(20)]
    table = {"bm25": {q: 0.5 for q in qs}, "knn": {q: 0.4 for q in qs},
             "rrf:1/1": {q: 0.45 for q in qs}, "linear-minmax:0.7/0.3": {q: 0.6 for q in qs}}
    r = choose(table, cands, qs[:15], qs[15:], folds=5)
    assert r["mode"] == "hybrid" and r["hybrid"].weights == (0.7, 0.3) and r["heldout"]["chosen"] == 0.6
    assert r["cv"]["chosen"]["ndcg@10"] == 0.6 and r["queries"] == {"tuning": 15, "heldout": 5}
    tie = {**table, "linear-minmax:0.7/0.3": {q: 0.5 for q in qs}}
    assert choose(tie, cands, qs, [], folds=5)["mode"] == "bm25"  # a tie goes to the simpler mode
    assert cross_validate(table, ["bm25"], ["only"], folds=5)["ndcg@10"] is None
    assert {c.name for c in candidates()} >= {"bm25", "knn", "rrf:1/1", "linear-minmax:1/0", "linear-l2_norm:0/1"}


def test_embedding_text_is_title_first_and_configurable():
    row = {"title": "Kelda Cork Mat", "brand": "Kelda", "category": "Yoga Mats", "description": "Grippy.",
           "attributes": {"material": "cork", "thickness_mm": 4}}
    assert embedding_text(row).splitlines() == ["Kelda Cork Mat", "Kelda", "Yoga Mats",
                                                "material: cork; thickness mm: 4", "Grippy."]
    cfg = load_settings(embedding={"text_fields": ["title", "attributes"], "text_attributes": ["thickness_mm"],
                                   "document_prefix": "passage: "}).embedding
    assert document_text(row, cfg) == "passage: Kelda Cork Mat\nthickness mm: 4"
    with pytest.raises(ValueError):
        load_settings(embedding={"text_fields": ["title", "colour"]})


class _Model:
    def __init__(self, prompts=None):
        self.prompts = prompts or {}
        self.seen = []

    def encode(self, texts, **kw):
        self.seen += texts
        return [[1.0]] * len(texts)


def test_query_prefix_comes_from_the_model_or_the_config():
    cfg = load_settings().embedding
    m = _Model({"query": "query: ", "document": "passage: "})
    encode_queries(m, ["wool socks"], cfg)
    assert m.seen == ["query: wool socks"] and model_prompt(m, "document") == "passage: "
    plain = _Model()
    encode_queries(plain, ["wool socks"], cfg)
    assert plain.seen == ["wool socks"]
    explicit = load_settings(embedding={"query_prefix": "search_query: "}).embedding
    encode_queries(plain, ["tent"], explicit)
    assert plain.seen[-1] == "search_query: tent"


def test_the_cache_key_changes_with_the_prefix_setting():
    auto = load_settings().embedding
    empty = load_settings(embedding={"document_prefix": ""}).embedding
    assert document_key("Kelda Cork Mat", auto) != document_key("Kelda Cork Mat", empty)
    assert document_key("Kelda Cork Mat", auto) == document_key("Kelda Cork Mat", load_settings().embedding)


class _Named(_Model):
    def __init__(self, name):
        super().__init__()
        self.name = name

    def __getitem__(self, i):
        cfg = type("C", (), {"_name_or_path": self.name})
        return type("M", (), {"auto_model": type("A", (), {"config": cfg})})


def test_family_prompts_match_the_model_name():
    assert model_prompt(_Named("intfloat/e5-small-v2"), "document") == "passage: "
    assert model_prompt(_Named("BAAI/bge-small-en-v1.5"), "query").startswith("Represent this sentence")
    assert model_prompt(_Named("BAAI/bge-m3"), "query") == ""  # not an English v1 bge: no instruction
    assert model_prompt(_Named("sentence-transformers/all-MiniLM-L6-v2"), "query") == ""


def test_knn_candidates_grow_with_the_index_and_rescoring_is_asked_for():
    from indexing.search import knn_spec, num_candidates

    p = SearchProfile()
    assert num_candidates(10, p) == 200 and num_candidates(150, p) == 300  # the floor, then 2 x k
    assert num_candidates(10, SearchProfile(docs=100_000)) == 1000
    assert num_candidates(10, SearchProfile(docs=50_000_000)) == 10_000  # Elasticsearch's cap
    assert "rescore_vector" not in knn_spec([1.0, 0.0], 10, p=p)
    assert knn_spec([1.0, 0.0], 10, p=SearchProfile(knn_oversample=4.0), rescore=True)["rescore_vector"] == {
        "oversample": 4.0}
    with pytest.raises(ValueError, match="knn_rescore"):
        SearchProfile(knn_rescore="sometimes")


def test_exact_rescore_orders_by_full_precision_cosine():
    from indexing.search import exact_rescore

    q = [1.0, 0.0]
    hits = [{"_id": "a", "_score": 0.99, "fields": {"embedding": [0.6, 0.8]}},  # the approximate order was wrong
            {"_id": "b", "_score": 0.98, "fields": {"embedding": [0.8, 0.6]}},
            {"_id": "c", "_score": 0.97, "fields": {"embedding": [8.0, 6.0]}},  # not normalised: same cosine as b
            {"_id": "d", "_score": 0.5}]  # no vector came back: its own score
    out = exact_rescore(hits, q, 3)
    assert [h["_id"] for h in out] == ["b", "c", "a"] and out[0]["_score"] == pytest.approx(0.9)
    assert all("fields" not in h for h in out)


def test_rescore_mode_follows_the_profile_and_the_cluster():
    from indexing import search as s

    class _Node:
        base_url = "http://probe-cluster:9200"

    class _ES:
        class transport:
            class node_pool:
                @staticmethod
                def all():
                    return [_Node()]

    es = _ES()
    assert s.rescore_mode(es, SearchProfile(quantized=False)) == "off"
    assert s.rescore_mode(es, SearchProfile(knn_rescore="client", quantized=False)) == "client"
    assert s.rescore_mode(es, SearchProfile()) == "server"
    s._REFUSED.add((s._cluster_key(es), "rescore_vector"))
    try:
        assert s.rescore_mode(es, SearchProfile()) == "client"
        assert s.rescore_mode(es, SearchProfile(knn_rescore="server")) == "server"  # asked for: its error shows
    finally:
        s._REFUSED.discard((s._cluster_key(es), "rescore_vector"))


# ---- numbers and units, and the ranker's features (shopgen/core/units.py, indexing/ltr.py) ----

def test_units_after_a_number_read_as_one_canonical_word():
    from shopgen.core.units import analysis, normalise, quantities, quantity_tokens

    for t in ('1/2 in. copper pipe', '1/2-inch Copper Pipe', '1/2" copper pipe', '1/2 inches copper pipe'):
        assert normalise(t).lower().split() == ["1/2", "inch", "copper", "pipe"], t
        assert quantities(t) == {(0.5, "inch")}
    assert quantities("3 cu. ft. mulch") == quantities("3 cubic feet of mulch") == {(3.0, "cubic feet")}
    assert quantities("6 ft ladder") == quantities("6-foot ladder") == {(6.0, "feet")}
    assert quantities("60W bulb") == quantities("60 watt bulb") == quantities("60-Watt") == {(60.0, "watt")}
    assert quantities("1-1/2 in. PVC") == {(1.5, "inch")} and quantities("5,000 mAh") == {(5000.0, "mah")}
    assert normalise("10x20 tarp").split() == normalise("10 X 20 tarp").split() == ["10", "x", "20", "tarp"]
    assert quantities('2"x4" board') == {(2.0, "inch"), (4.0, "inch")} and quantities("4'x8'") == {(4.0, "feet"),
                                                                                                 (8.0, "feet")}
    # One letter, or a bare `in`, is a unit only glued to its number: sizes and words are left alone.
    for t in ("size 10 M", "3 in 1 jacket", "2 v-neck tees", "60 W"):
        assert quantities(t) == set() and normalise(t) == t, t
    assert quantities("10M cable") == {(10.0, "meter")} and quantities("2in pipe") == {(2.0, "inch")}
    import time

    t = time.perf_counter()
    normalise("1" + " " * 5000 + "z")  # no backtracking blow-up on a long run of spaces
    assert time.perf_counter() - t < 0.5
    # A letter after the alias means it was a word, not a unit; no number, no unit.
    assert quantities("size 6 mo") == set() and normalise("Women's W Wide shoe") == "Women's W Wide shoe"
    assert quantity_tokens('1/2" x 10 ft. ; 3 cu. ft.') == ("0.5_inch 3_cubic_feet 10_feet", "inch cubic_feet feet")
    a = analysis(synonyms=["tee, t-shirt"])
    chain = a["analyzer"]["shopgen_text"]
    assert chain["tokenizer"] == "standard" and chain["filter"][1] == "lowercase" and "shopgen_text_synonyms" in chain[
        "filter"] and chain["filter"][-1] == "shopgen_text_stemmer"
    assert all(c["type"] == "pattern_replace" for c in a["char_filter"].values())


def test_shop_units_and_synonyms_are_validated():
    from shopgen.core.units import normalise

    s = load_settings(search={"units": {"inch": ["zoll"]}, "synonyms": ["tee, t-shirt"]})
    assert normalise("3 zoll", s.search.units) == "3 inch " and normalise("3 in.", s.search.units) == "3 in."
    with pytest.raises(ValueError, match="lower-case"):
        load_settings(search={"units": {"Inch!": ["in"]}})
    with pytest.raises(ValueError, match="one non-empty line"):
        load_settings(search={"synonyms": ["a, b\nc => d"]})


def test_feature_builder_numbers_units_missing_fields_and_chinese():
    from indexing.ltr import FEATURES, QUERY_FEATURES, QueryParams, cosine, feature_rows, feature_searches, rerank

    q = QueryParams.of("1/2 in. copper pipe 10 ft")
    assert (q.quantities, q.units, q.zh) == ("0.5_inch 10_feet", "inch feet", False)
    named = dict(feature_searches(q, ["a", "b"]))
    assert set(named) == set(QUERY_FEATURES) - {"price_within"}  # no price limit asked
    cheap = QueryParams.of("rain jacket under $50")
    assert QueryParams.of("tv under 1,299.99").max_price == 1299.99
    assert cheap.max_price == 50.0 and dict(feature_searches(cheap, ["a"]))["price_within"]["query"]["bool"][
        "should"] == [{"constant_score": {"filter": {"range": {"price": {"lte": 50.0}}}}}]
    assert QueryParams.of("ladder under 8 ft").max_price is None  # a size, not a price
    body = named["quantity_match"]
    assert body["query"]["bool"]["filter"] == [{"ids": {"values": ["a", "b"]}}] and body["size"] == 2
    assert body["query"]["bool"]["should"] == [{"match": {"quantities": "0.5_inch 10_feet"}}]
    plain = dict(feature_searches(QueryParams.of("rain jacket"), ["a"]))
    assert "quantity_match" not in plain and "unit_match" not in plain  # no sizes asked: those features are 0
    zh = QueryParams.of("保暖睡袋")
    zq = dict(feature_searches(zh, ["a"]))
    assert zh.zh and "title_fuzzy" not in zq
    assert zq["title_bm25"]["query"]["bool"]["should"] == [{"match": {"title.zh": "保暖睡袋"}}]
    # A product missing from a feature's hits (a field it lacks) or without a vector scores 0 there.
    rows = feature_rows(["a", "b"], {"title_bm25": {"a": 2.5}, "brand_bm25": {}}, {"a": [1.0, 0.0]}, [0.6, 0.8],
                        [0.03, 0.01], {"a": 40.0, "b": None}, {"b": 3.0})
    f = {name: [r[i] for r in rows] for i, name in enumerate(FEATURES)}
    assert len(rows[0]) == len(FEATURES) and f["title_bm25"] == [2.5, 0.0] and f["brand_bm25"] == [0.0, 0.0]
    assert f["knn_cosine"] == pytest.approx([0.6, 0.0]) and f["knn_cosine_rel"] == pytest.approx([0.0, -0.6])
    assert f["title_bm25_rel"] == [1.0, 0.0] and f["hybrid_rank"] == [1.0, 0.5]
    assert f["hybrid_score_rel"] == pytest.approx([1.0, 1 / 3]) and f["copy_bm25_rel"] == [0.0, 0.0]
    assert "hybrid_score" not in f  # its scale depends on the fusion: only relative
    assert f["price_rel"] == [1.0, 0.0] and f["popularity"] == [0.0, 3.0] and f["popularity_rel"] == [0.0, 1.0]
    assert cosine(None, [1.0]) == 0.0 and cosine([1.0], [1.0, 0.0]) == 0.0
    hits = [{"_id": i, "_score": 1.0} for i in "abcd"]
    assert [h["_id"] for h in rerank(hits, [0.1, 0.9, 0.1], 4)] == ["b", "a", "c", "d"]  # ties keep hybrid order
    assert [h["_id"] for h in rerank(hits, [0.1, 0.9], 2)] == ["b", "a"]


def test_ltr_is_chosen_only_when_it_beats_hybrid_on_its_own_held_out_queries():
    from indexing.tune import ltr_verdict
    from shopgen.adapters.registry import gate

    assert ltr_verdict(0.61, 0.60, True)[0] and not ltr_verdict(0.60, 0.60, True)[0]
    assert "another query split" in ltr_verdict(0.9, 0.1, False)[1]
    assert not ltr_verdict(None, 0.5, True)[0]
    ok, why = gate({"ltr": {"ndcg@10": 0.5, "n": 9}, "hybrid": {"ndcg@10": 0.6, "n": 9}}, "ranker")
    assert not ok and "does not beat" in why[0]
    assert gate({"ltr": {"ndcg@10": 0.7, "n": 9}, "hybrid": {"ndcg@10": 0.6, "n": 9}}, "ranker") == (True, [])
    from indexing.gate import ltr_ranker

    ok = ltr_ranker(None)
    assert ok["passed"] and "fallback" not in ok
    stale = ltr_ranker("the ranker was trained on vectors of A; this index is embedded by B")
    assert stale["passed"] and stale["fallback"] == "hybrid" and "serves hybrid" in stale["detail"]


def test_lambdamart_learns_the_feature_that_carries_relevance_and_round_trips(tmp_path):
    import random

    from indexing.ltr import FEATURES, Ranker
    from shopgen.ranker import train

    rng = random.Random(0)
    judgments, groups = {}, []
    for qi in range(30):  # relevance follows the last feature (the cosine); the hybrid order is random
        q = f"query {qi}"
        ids = [f"{q}-{i}" for i in range(12)]
        rows = [[rng.random() for _ in FEATURES] for _ in ids]
        judgments[q] = {i: float(round(3 * r[-1])) for i, r in zip(ids, rows)}
        groups.append(train.make_group(q, ids, rows, judgments[q]))
    cv = train.cross_validate(groups, judgments, FEATURES, folds=3)
    assert cv["folds"] == 3 and len(cv["grid"]) == len(train.GRID) and cv["best"] in [dict(g) for g in train.GRID]
    assert cv["ndcg@10"] > cv["hybrid_ndcg@10"] + 0.1, cv
    for params in train.GRID:  # trees and the linear booster alike survive a save and a load
        model = train.fit(groups, params, FEATURES)
        Ranker(model.booster, list(FEATURES), 12, {"note": "x"}, model.mean, model.scale).save(tmp_path / "m")
        back = Ranker.load(tmp_path / "m")
        assert back.candidates == 12 and back.info == {"note": "x"} and back.mean == model.mean
        g = groups[0]
        assert back.scores(back.columns(g.rows)) == pytest.approx(train.predict(model, g, FEATURES), rel=1e-5)
    (tmp_path / "m" / "ranker.json").write_text('{"features": ["clicks_last_week"], "candidates": 5}')
    with pytest.raises(ValueError, match="does not compute"):
        Ranker.load(tmp_path / "m")
