"""Fine-tuning the embedder on search judgments (`shopgen finetune-search`): the pure data core
(split, pairs, hard negatives, BM25), the click-log loader, the loss, the registry's embedder kind
and its promotion into every place that resolves models.embedder; and one run on the real stack
(Ray Train, MiniLM, the embedded Elasticsearch-API server) that `index build` then uses."""

import json
import random
import subprocess

import pytest
from conftest import SAMPLE

from indexing.evaluate import load_judgments
from shopgen.searchtune import data as stdata

ROOT = SAMPLE.parent.parent
JUDGMENTS = ROOT / "data" / "judgments.csv"


def _csv(tmp_path, text, name="j.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---- the split ---------------------------------------------------------------------------------

def test_split_is_tune_searchs_query_hash_split_stable_and_order_free():
    from indexing.tune import split_queries

    j = load_judgments(JUDGMENTS)
    a = stdata.split_judgments(j, 0.3)
    shuffled = dict(random.Random(3).sample(list(j.items()), len(j)))
    b = stdata.split_judgments(shuffled, 0.3)
    assert {s: set(a[s]) for s in stdata.SPLITS} == {s: set(b[s]) for s in stdata.SPLITS}
    assert not set(a["train"]) & set(a["test"]) and len(a["test"]) == 11
    # The queries tune-search holds out are held out here too (same fraction), and stay so.
    assert set(a["test"]) == set(split_queries(j, 0.3)[1])
    assert set(stdata.split_judgments(j, 0.1)["test"]) <= set(a["test"])
    grown = stdata.split_judgments({**j, "new query": {"X": 1.0}}, 0.3)
    assert set(a["test"]) <= set(grown["test"])
    side = "test" if "sleeping bag" in a["test"] else "train"  # case and spacing do not make a new query
    assert list(stdata.split_judgments({"Sleeping  Bag ": {"X": 1.0}}, 0.3)[side]) == ["Sleeping  Bag "]
    assert set(stdata.split_judgments(j, 0.3, seed=1)["test"]) != set(a["test"])


# ---- pairs and hard negatives -------------------------------------------------------------------

def test_lexical_bm25_ranks_term_matches_and_splits_cjk():
    docs = {"A": "green backpack 30 l", "B": "blue rain jacket", "C": "green green tent", "D": "双人帐篷 轻量"}
    lex = stdata.Lexical(docs)
    assert lex.top("green backpack", 3) == ["A", "C"]
    assert lex.top("帐篷", 5) == ["D"]
    assert stdata.tokens("Ultra-Light 帐篷") == ["ultra", "light", "帐", "篷"]
    assert lex.top("nothing matches", 5) == []


def test_pairs_carry_grade_weights_and_hard_negatives_from_each_source():
    j = {"tent": {"T1": 3.0, "T2": 1.0, "T3": 0.0}, "lamp": {"L1": 2.0}}
    texts = {"T1": "tent 3 person", "T2": "tent footprint", "T3": "tent stakes", "T4": "tent repair kit",
             "L1": "desk lamp", "L2": "floor lamp"}
    pairs, used = stdata.build_pairs(j, stdata.Lexical(texts), hard_negatives=2, depth=10)
    by = {(p.query, p.sku): p for p in pairs}
    assert set(by) == {("tent", "T1"), ("tent", "T2"), ("lamp", "L1")}  # grade 0 is never a positive
    assert by["tent", "T1"].weight == 1.0 and by["lamp", "L1"].weight == pytest.approx(2 / 3)
    # zero grade first, then the lower-graded product, then lexical misses (never a judged product)
    assert by["tent", "T1"].negatives == ("T3", "T2")
    assert by["tent", "T2"].negatives == ("T3", "T4")  # nothing graded lower than 1
    assert by["lamp", "L1"].negatives == ("L2",)
    assert by["tent", "T1"].at_least == ("T1",) and by["tent", "T2"].at_least == ("T1", "T2")
    assert used == {"zero_grade": 2, "lower_grade": 1, "lexical": 2}
    flat, _ = stdata.build_pairs(j, None, hard_negatives=2, graded=False, min_grade=2)
    assert [(p.sku, p.negatives, p.at_least) for p in flat] == [("T1", ("T3",), ("T1", "T2")), ("L1", (), ("L1",))]
    row = by["tent", "T1"].as_row(texts)
    assert row["positive"] == "tent 3 person" and row["negative_texts"] == ["tent stakes", "tent footprint"]
    assert stdata.data_hash([row]) == stdata.data_hash([dict(row)]) != stdata.data_hash([{**row, "weight": 0.5}])


def test_judged_skus_missing_from_the_products_are_counted_and_dropped():
    kept, fig = stdata.restrict({"a": {"X": 1, "GONE": 2}, "b": {"GONE": 3, "GONE2": 1}}, {"X"})
    assert kept == {"a": {"X": 1}}
    assert fig == {"dropped_pairs": 3, "unknown_skus": 2, "unknown_sample": ["GONE", "GONE2"], "dropped_queries": 1}


def test_prepare_reports_drops_and_refuses_when_nothing_is_left(tmp_path):
    from shopgen.core.config import load_settings
    from shopgen.searchtune.recipe import prepare

    s = load_settings(home=tmp_path)
    extra = "".join(f"nowhere,NOPE-{i},2\n" for i in range(3))
    d = prepare(str(SAMPLE), str(_csv(tmp_path, JUDGMENTS.read_text(encoding="utf-8") + extra)), s)
    assert d["stats"]["dropped_pairs"] == 3 and d["stats"]["dropped_queries"] == 1
    assert d["stats"]["train_pairs"] == len(d["rows"]) > 500 and len(d["skus"]) == 324
    assert "nowhere" not in d["test"] and all(any(g > 0 for g in j.values()) for j in d["test"].values())
    with pytest.raises(ValueError, match=r"none of the 3 judgments .* names a product .*NOPE-0"):
        prepare(str(SAMPLE), str(_csv(tmp_path, "query,sku,grade\n" + extra, "none.csv")), s)


# ---- the loss ------------------------------------------------------------------------------------

def test_in_batch_mask_and_weighted_info_nce():
    import torch
    import torch.nn.functional as F

    from shopgen.searchtune.recipe import excluded, info_nce

    rows = [{"at_least": ["A", "B"]}, {"at_least": ["B"]}]
    # documents: the two positives (A, B), then hard negatives (B again as another row's, C)
    mask = excluded(rows, ["A", "B", "B", "C"])
    assert mask == [[False, True, True, False], [False, False, True, False]]
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    d = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    m = torch.tensor(mask)
    loss = info_nce(q, d, torch.tensor([1.0, 1.0]), m, 20.0)
    manual = [F.cross_entropy((20 * q[i] @ d.T).masked_fill(m[i], float("-inf"))[None], torch.tensor([i]))
              for i in range(2)]
    assert float(loss) == pytest.approx(float(sum(manual) / 2), rel=1e-5)
    assert float(info_nce(q, d, torch.tensor([1.0, 0.0]), m, 20.0)) == pytest.approx(float(manual[0]), rel=1e-5)


# ---- click logs ----------------------------------------------------------------------------------

def test_click_log_with_impressions_is_graded_by_smoothed_ctr(tmp_path):
    p = _csv(tmp_path, "query,sku,clicks,impressions\n"
                       "tent,A,30,60\n"       # ctr 30/65 -> 3
                       "tent,B,5,40\n"        # 5/45 -> 2
                       "tent,C,1,40\n"        # any click -> 1
                       "tent,D,0,25\n"        # seen often, never clicked -> 0
                       "tent,E,0,3\n"         # too few impressions: left out
                       "tent,A,0,5\n"         # rows of one pair are summed: 30/70 -> still 3
                       "lamp,X,2,2\n"         # 2/7 -> 2: a few impressions never make a top grade
                       "quiet,Y,0,1\n")       # a query with nothing left is left out
    assert load_judgments(p) == {"tent": {"A": 3.0, "B": 2.0, "C": 1.0, "D": 0.0}, "lamp": {"X": 2.0}}


def test_click_log_without_impressions_is_graded_against_the_querys_top_product(tmp_path):
    p = _csv(tmp_path, "query,sku,clicks\ntent,A,40\ntent,B,20\ntent,C,8\ntent,D,1\ntent,E,0\nlamp,X,3\n")
    assert load_judgments(p) == {"tent": {"A": 3.0, "B": 3.0, "C": 2.0, "D": 1.0, "E": 0.0}, "lamp": {"X": 3.0}}


@pytest.mark.parametrize("header, row, message", [
    ("query,sku,clicks,impressions", "tent,A,5,3", "clicks 5 > impressions 3"),
    ("query,sku,clicks,impressions", "tent,A,2,", "impressions '' is not a number"),
    ("query,sku,clicks", "tent,A,many", "clicks 'many' is not a number"),
    ("query,sku,clicks", "tent,A,-1", "clicks '-1' must be a finite number >= 0"),
    ("query,sku,clicks", ",A,1", "empty query"),
])
def test_click_log_errors_name_file_and_line(tmp_path, header, row, message):
    p = _csv(tmp_path, f"{header}\ntent,B,1{',9' if 'impr' in header else ''}\n{row}\n", "log.csv")
    with pytest.raises(ValueError, match=rf"log\.csv: line 3: {message}"):
        load_judgments(p)


def test_click_log_missing_column_and_unknown_header(tmp_path):
    with pytest.raises(ValueError, match=r"line 1: missing column\(s\) sku; a click log needs"):
        load_judgments(_csv(tmp_path, "query,clicks\ntent,3\n"))
    with pytest.raises(ValueError, match=r"missing column\(s\) grade; .*or a click log: query,sku,clicks"):
        load_judgments(_csv(tmp_path, "query,sku,score\ntent,A,3\n"))


# ---- the registry: an embedder kind with its own gate and pointer --------------------------------

def _fake_model(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384, "tag": name}))
    return d


def _register_embedder(reg, tmp_path, base_ndcg, ft_ndcg, tag):
    from shopgen.adapters.registry import new_version_id

    v = new_version_id(tag)
    m = {"n": 9, "recall@100": 0.9, "mrr": 0.9, "skipped": 0}
    reg.register({"model": _fake_model(tmp_path, tag)}, {
        "version": v, "kind": "embedder", "run": tag, "base": "all-minilm-l6-v2", "method": "contrastive",
        "data_hash": tag, "metrics": {"base": {**m, "ndcg@10": base_ndcg}, "finetuned": {**m, "ndcg@10": ft_ndcg}}})
    return v


def test_embedder_versions_have_their_own_gate_and_promoted_pointer(tmp_path):
    from click.testing import CliRunner

    from shopgen.adapters import models
    from shopgen.adapters.registry import Registry, embedder_gate, gate
    from shopgen.cli.main import main
    from shopgen.core.config import load_settings

    assert embedder_gate({"base": {"n": 9, "ndcg@10": 0.7}, "finetuned": {"n": 9, "ndcg@10": 0.69}}) == (
        False, ["held-out NDCG@10 0.6900 does not beat the base's 0.7000 (9 queries)"])
    assert gate({"base": {"n": 2, "ndcg@10": 0.5}, "finetuned": {"n": 2, "ndcg@10": 0.6}}, "embedder") == (True, [])
    assert not embedder_gate({})[0]

    s = load_settings(home=tmp_path)
    reg = Registry(s.registry_uri)
    worse = _register_embedder(reg, tmp_path, 0.70, 0.65, "worse")
    better = _register_embedder(reg, tmp_path, 0.60, 0.66, "better")
    base_version = models.resolve("all-minilm-l6-v2", s).version
    assert models.resolve(s.models.embedder, s).version == base_version  # nothing promoted yet
    ok, reasons = reg.promote(worse)
    assert not ok and "NDCG@10 0.6500 does not beat" in reasons[0] and reg.promoted("embedder") is None
    refused = CliRunner().invoke(main, ["models", "promote", worse, "--registry", s.registry_uri])
    assert refused.exit_code == 1 and "gate refused" in refused.output and "held-out NDCG@10 0.6500" in refused.output
    assert reg.promote(better) == (True, [])
    assert reg.promoted("embedder") == better and reg.promoted() is None  # the generator's pointer is untouched
    assert not (tmp_path / "registry" / "promoted.json").exists()
    assert json.loads((tmp_path / "registry" / "promoted-embedder.json").read_text())["kind"] == "embedder"
    listed = {v["version"]: (v["kind"], v["status"]) for v in reg.versions()}
    assert listed == {worse: ("embedder", "candidate"), better: ("embedder", "promoted")}
    assert reg.versions("generator") == []

    # Builds (index build, nightly, models prepare) embed with embedding_ref: the promoted one.
    assert models.embedding_ref(s) == better
    ref = models.resolve(models.embedding_ref(s), s)
    assert ref.version.endswith(f"+{better}") and ref.base == reg.version_uri(better, "model")
    assert models.resolve(s.models.embedder, s).version == base_version  # a plain reference stays itself
    assert models.generation_ref(s) == s.models.generator
    off = s.model_copy(update={"models": s.models.model_copy(update={"use_promoted": False})})
    assert models.embedding_ref(off) == off.models.embedder
    assert reg.promote(worse, force=True) == (True, [reasons[0]])
    assert models.resolve(models.embedding_ref(s), s).version.endswith(f"+{worse}")


def test_a_new_embedder_makes_the_next_nightly_re_embed_and_build_a_new_index(tmp_path):
    """The nightly compares each SKU's stored embedding_model with tonight's models.embedder, which
    now resolves to the promoted version: a full build (gate + swap), and no stored vector reused."""
    import pyarrow as pa

    from shopgen import state as st8
    from shopgen.adapters import models
    from shopgen.adapters.registry import Registry
    from shopgen.core.config import load_settings
    from shopgen.nightly.steps import rebuild_reason

    s = load_settings(home=tmp_path)
    before = models.resolve(models.embedding_ref(s), s).version
    table = st8.STATE_SCHEMA.empty_table().to_pylist()
    rows = [{**dict.fromkeys(st8.STATE_SCHEMA.names), "sku": f"S{i}", "embedding_model": before,
             "indexed_version": "products-1"} for i in range(3)]
    previous = st8.StateRows(pa.Table.from_pylist(table + rows, schema=st8.STATE_SCHEMA))
    args = dict(live="products-1", previous=previous, was_indexed={"S0", "S1", "S2"}, regenerated=0, total=3,
                fraction=0.5)
    assert rebuild_reason(False, embedding_model=before, **args) is None  # same embedder: an in-place update
    reg = Registry(s.registry_uri)
    reg.promote(_register_embedder(reg, tmp_path, 0.5, 0.6, "new"))
    after = models.resolve(models.embedding_ref(s), s).version  # what the nightly resolves
    assert after != before
    assert rebuild_reason(False, embedding_model=after, **args) == "a new embedding model"
    # A stored vector is reused only when its SKU's embedding_model is tonight's (nightly.recipe).
    assert not [sku for sku, m in st8.column(previous, "embedding_model").items() if m == after]


# ---- the real stack -------------------------------------------------------------------------------

@pytest.mark.slow
def test_finetune_search_registers_an_embedder_that_index_build_uses(tmp_path, env, shopgen_bin):
    """finetune-search on the bundled judgments for a few steps (real Ray Train and MiniLM), then its
    promotion (forced when a few steps do not beat the base) and an index build that embeds with it."""
    from shopgen.adapters import models
    from shopgen.core.config import load_settings

    reg = tmp_path / "reg"
    env = {**env, "SHOPGEN_MODELS__REGISTRY": str(reg), "SHOPGEN_SEARCH_FINETUNE__MAX_SEQ_LEN": "64",
           "SHOPGEN_SEARCH_FINETUNE__LOG_EVERY": "1"}
    p = subprocess.run([shopgen_bin, "finetune-search", "--catalog", str(SAMPLE), "--judgments", str(JUDGMENTS),
                        "--max-steps", "3", "--batch-size", "8", "--storage", str(tmp_path / "runs"), "--json"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-6000:]
    rep = json.loads(p.stdout)
    assert p.stderr.count("step 3/3") == 1 and "scoring base and fine-tuned on 11 held-out queries" in p.stderr
    version, m = rep["version"], rep["metrics"]
    manifest = json.loads((reg / "versions" / version / "manifest.json").read_text())
    assert manifest["kind"] == "embedder" and manifest["files"] == ["model"] and manifest["training"]["step"] == 3
    for who in ("base", "finetuned"):
        assert manifest["metrics"][who]["n"] == 11 and 0 < manifest["metrics"][who]["ndcg@10"] <= 1
    assert manifest["metrics"] == m and manifest["data"]["train_pairs"] > 500
    assert json.loads((tmp_path / "runs" / rep["run"] / "shopgen" / "report.json").read_text())["version"] == version
    print(f"held-out NDCG@10 base {m['base']['ndcg@10']} fine-tuned {m['finetuned']['ndcg@10']}")

    promote = subprocess.run([shopgen_bin, "models", "promote", version], env=env, capture_output=True, text=True,
                             timeout=120)
    if m["finetuned"]["ndcg@10"] > m["base"]["ndcg@10"]:
        assert promote.returncode == 0, promote.stderr
    else:
        assert promote.returncode != 0 and "held-out NDCG@10" in promote.stderr and "does not beat" in promote.stderr
        promote = subprocess.run([shopgen_bin, "models", "promote", version, "--force"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert promote.returncode == 0 and "despite the gate" in promote.stdout
    listed = json.loads(subprocess.run([shopgen_bin, "models", "list", "--json"], env=env, capture_output=True,
                                       text=True, check=True).stdout)
    assert [(v["version"], v["status"]) for v in listed] == [(version, "promoted")]

    s = load_settings(home=env["SHOPGEN_HOME"], models={"registry": str(reg)})
    expected = models.resolve(version, s).version
    assert expected.endswith(f"+{version}") and rep["model_version"] == expected
    b = subprocess.run([shopgen_bin, "index", "build", "--input", str(SAMPLE), "--limit", "40", "--alias", "ftsearch",
                        "--workdir", str(tmp_path / "build")], env=env, capture_output=True, text=True, timeout=600)
    assert b.returncode == 0, b.stderr[-4000:]
    rows = json.loads(subprocess.run([shopgen_bin, "index", "list", "--alias", "ftsearch", "--json"], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    assert rows[0]["live"] and rows[0]["embedding_model"] == expected
    hits = json.loads(subprocess.run([shopgen_bin, "search", "sleeping bag", "--alias", "ftsearch", "--mode", "knn",
                                      "--json"], env=env, capture_output=True, text=True, check=True).stdout)
    assert hits and hits[0]["sku"].startswith("SG-SLB")
