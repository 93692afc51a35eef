"""indexing.evaluate: metrics against hand-computed values, judgment CSV parsing, and data/judgments.csv."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from indexing.evaluate import evaluate, load_judgments, ndcg_at, recall_at, reciprocal_rank

ROOT = Path(__file__).resolve().parents[1]
JUDGMENTS = ROOT / "data" / "judgments.csv"
CATALOG = ROOT / "data" / "sample_catalog.jsonl"


# --- ndcg_at -----------------------------------------------------------------------------

def test_ndcg_perfect_ranking_is_one():
    judged = {"a": 3, "b": 2, "c": 1}
    assert ndcg_at(["a", "b", "c"], judged, 10) == pytest.approx(1.0)
    assert ndcg_at(["c", "b", "a"], judged, 10) < 1.0


def test_ndcg_three_doc_example_by_hand():
    # ranked a(1), b(unjudged), c(2); x(3) is judged but not retrieved.
    # DCG  = (2^1-1)/log2(2) + 0/log2(3) + (2^2-1)/log2(4) = 1 + 0 + 1.5 = 2.5
    # IDCG = (2^3-1)/log2(2) + (2^2-1)/log2(3) + (2^1-1)/log2(4) = 7 + 1.8927892607 + 0.5 = 9.3927892607
    judged = {"a": 1, "c": 2, "x": 3}
    assert ndcg_at(["a", "b", "c"], judged, 3) == pytest.approx(0.2661616193664992)
    # k=1: DCG = 1, IDCG = 7 (the ideal list is cut at k too)
    assert ndcg_at(["a", "b", "c"], judged, 1) == pytest.approx(1 / 7)


def test_ndcg_unjudged_docs_count_as_zero():
    # DCG = 0 + 1/log2(3); IDCG = 1
    assert ndcg_at(["u1", "a"], {"a": 1}, 2) == pytest.approx(0.6309297535714575)


def test_ndcg_zero_when_nothing_relevant():
    assert ndcg_at(["a", "b"], {"a": 0, "b": 0}, 10) == 0.0
    assert ndcg_at(["a"], {}, 10) == 0.0
    assert ndcg_at([], {"a": 2}, 10) == 0.0


def test_ndcg_repeated_sku_earns_gain_once():
    # DCG = 1 (second "a" earns nothing); IDCG = 1 + 1/log2(3)
    assert ndcg_at(["a", "a"], {"a": 1, "b": 1}, 2) == pytest.approx(0.6131471927654584)


def test_ndcg_rejects_nonpositive_k():
    with pytest.raises(ValueError):
        ndcg_at(["a"], {"a": 1}, 0)


# --- recall_at / reciprocal_rank ------------------------------------------------------------

def test_recall_at():
    judged = {"a": 2, "b": 1, "c": 0, "d": 1}  # relevant: a, b, d
    ranked = ["c", "a", "x", "b", "d"]
    assert recall_at(ranked, judged, 2) == pytest.approx(1 / 3)
    assert recall_at(ranked, judged, 4) == pytest.approx(2 / 3)
    assert recall_at(ranked, judged, 5) == 1.0
    assert recall_at(ranked, judged, 100) == 1.0
    assert recall_at(ranked, {"c": 0}, 10) == 0.0


def test_reciprocal_rank():
    judged = {"b": 1, "c": 0}
    assert reciprocal_rank(["x", "c", "b"], judged) == pytest.approx(1 / 3)
    assert reciprocal_rank(["b"], judged) == 1.0
    assert reciprocal_rank(["x", "c"], judged) == 0.0
    assert reciprocal_rank([], judged) == 0.0


# --- evaluate ------------------------------------------------------------------------------

JUDGED = {
    "q1": {"a": 2, "b": 1},
    "q2": {"c": 1, "d": 0},
    "q3": {"e": 0},  # no relevant sku: skipped
    "q4": {},  # nothing judged: skipped
}
RESULTS = {"q1": ["a", "b"], "q2": ["d", "c"], "q3": ["e"], "q4": ["z"]}


def recording_run(results):
    calls = []

    def run(query, size):
        calls.append((query, size))
        return results[query]

    return run, calls


def test_evaluate_means_and_skips():
    run, calls = recording_run(RESULTS)
    out = evaluate(run, JUDGED)
    assert set(out) == {"ndcg@10", "recall@100", "mrr", "queries", "skipped", "per_query"}
    # q1 is perfect (ndcg 1, rr 1); q2 has its only relevant doc at rank 2: ndcg 1/log2(3), rr 1/2
    assert out["ndcg@10"] == 0.8155
    assert out["recall@100"] == 1.0
    assert out["mrr"] == 0.75
    assert out["queries"] == 2
    assert out["skipped"] == 2
    assert calls == [("q1", 100), ("q2", 100)]
    pq = {q["query"]: q for q in out["per_query"]}
    assert list(pq) == ["q1", "q2"]
    assert set(pq["q2"]) == {"query", "ndcg@10", "recall@100", "rr"}
    assert pq["q2"]["ndcg@10"] == pytest.approx(0.6309297535714575)
    assert pq["q2"]["rr"] == 0.5


def test_evaluate_other_k_and_depth():
    run, calls = recording_run(RESULTS)
    out = evaluate(run, JUDGED, k=5, depth=20)
    assert set(out) == {"ndcg@10", "ndcg@5", "recall@20", "mrr", "queries", "skipped", "per_query"}
    assert out["ndcg@5"] == 0.8155
    assert "recall@20" in out["per_query"][0]
    assert [s for _, s in calls] == [20, 20]

    run, calls = recording_run(RESULTS)
    evaluate(run, JUDGED, k=30, depth=20)
    assert [s for _, s in calls] == [30, 30]  # size = max(depth, k)


def test_evaluate_cuts_results_to_size():
    # q2's relevant doc is at rank 2; a run that ignores size must not get credit for it at depth 1.
    run, _ = recording_run(RESULTS)
    out = evaluate(run, {"q2": JUDGED["q2"]}, k=1, depth=1)
    assert out["recall@1"] == 0.0
    assert out["mrr"] == 0.0


def test_evaluate_raises_when_nothing_evaluable():
    run, calls = recording_run(RESULTS)
    with pytest.raises(ValueError, match="no judged query has a relevant sku"):
        evaluate(run, {"q3": JUDGED["q3"], "q4": {}})
    assert calls == []
    with pytest.raises(ValueError, match="no judged query has a relevant sku"):
        evaluate(run, {})


# --- load_judgments ------------------------------------------------------------------------

def write(tmp_path, text, name="j.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_text(text, encoding=encoding)
    return p


def test_load_judgments_reads_grades_in_query_order(tmp_path):
    p = write(tmp_path, "note, grade ,sku,query\n"
                        "x,2, SG-1 , tent \n"
                        "y,0.5,SG-2,sleeping bag\n"
                        "\n"
                        "z,0,SG-3,tent\n"
                        "w,2,SG-1,tent\n")  # same pair, same grade: fine
    j = load_judgments(p)
    assert j == {"tent": {"SG-1": 2.0, "SG-3": 0.0}, "sleeping bag": {"SG-2": 0.5}}
    assert list(j) == ["tent", "sleeping bag"]


def test_load_judgments_accepts_bom_and_unicode(tmp_path):
    p = write(tmp_path, "query,sku,grade\n睡袋,SG-SLB-0027,3\n", encoding="utf-8-sig")
    assert load_judgments(p) == {"睡袋": {"SG-SLB-0027": 3.0}}


def test_load_judgments_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_judgments(tmp_path / "nope.csv")


def test_load_judgments_missing_column(tmp_path):
    p = write(tmp_path, "query,sku,score\ntent,SG-1,2\n", name="bad.csv")
    with pytest.raises(ValueError, match=r"bad\.csv: line 1: missing column\(s\) grade"):
        load_judgments(p)
    with pytest.raises(ValueError, match=r"empty\.csv: line 1: missing column"):
        load_judgments(write(tmp_path, "", name="empty.csv"))


@pytest.mark.parametrize("row, message", [
    (" ,SG-9,1", "empty query"),
    ("tent,  ,1", "empty sku"),
    ("tent,SG-9,", "is not a number"),
    ("tent,SG-9,high", "is not a number"),
    ("tent,SG-9,-1", "must be a finite number >= 0"),
    ("tent,SG-9,nan", "must be a finite number >= 0"),
    ("tent,SG-9", "is not a number"),  # short row: grade missing
])
def test_load_judgments_bad_row_names_file_and_line(tmp_path, row, message):
    p = write(tmp_path, f"query,sku,grade\ntent,SG-1,2\ntent,SG-2,1\n{row}\n", name="bad.csv")
    with pytest.raises(ValueError, match=rf"bad\.csv: line 4: .*{message}"):
        load_judgments(p)


def test_load_judgments_conflicting_duplicate(tmp_path):
    p = write(tmp_path, "query,sku,grade\ntent,SG-1,2\ntent,SG-2,1\ntent,SG-1,1\n", name="dup.csv")
    with pytest.raises(ValueError, match=r"dup\.csv: line 4: .*'SG-1'.*graded 1 here but 2 on line 2"):
        load_judgments(p)


# --- the bundled judgments ----------------------------------------------------------------

def load_script():
    spec = importlib.util.spec_from_file_location("make_judgments", ROOT / "data" / "make_judgments.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bundled_judgments_are_regenerated_exactly():
    mod = load_script()
    assert mod.render(mod.build(mod.load_catalog())) == JUDGMENTS.read_text(encoding="utf-8")


def test_bundled_judgments_are_consistent_with_catalog():
    catalog = {r["sku"]: r for r in map(json.loads, CATALOG.read_text(encoding="utf-8").splitlines())}
    with JUDGMENTS.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["query", "sku", "grade"]
    j = load_judgments(JUDGMENTS)
    assert len(j) >= 40
    assert all(any(g > 0 for g in judged.values()) for judged in j.values())
    assert {sku for judged in j.values() for sku in judged} <= set(catalog)
    assert {g for judged in j.values() for g in judged.values()} == {1.0, 2.0, 3.0}
    # listing-language rule: the zh-CN sleeping bag is exact for the Chinese query, one lower for English
    assert catalog["SG-SLB-0027"]["locale"] == "zh-CN"
    assert j["睡袋"]["SG-SLB-0027"] == 3.0 and j["sleeping bag"]["SG-SLB-0027"] == 2.0
    assert j["睡袋"]["SG-SLB-0001"] == 2.0 and j["sleeping bag"]["SG-SLB-0001"] == 3.0


def test_bundled_judgments_oracle_scores_one_and_reverse_scores_less():
    j = load_judgments(JUDGMENTS)

    def oracle(query, size):
        return sorted(j[query], key=lambda s: (-j[query][s], s))[:size]

    def worst_first(query, size):
        return sorted(j[query], key=lambda s: (j[query][s], s))[:size]

    best = evaluate(oracle, j)
    assert (best["ndcg@10"], best["recall@100"], best["mrr"]) == (1.0, 1.0, 1.0)
    assert best["queries"] == len(j) and best["skipped"] == 0
    assert evaluate(worst_first, j)["ndcg@10"] < 0.9
