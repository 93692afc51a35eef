"""report.html and the `shopgen report` summary; finding a run's report.json locally and on S3."""

import copy
import json
import re

import pytest

from shopgen.core.config import S3Config
from shopgen.report import render as R

RUN_ID = "20261129T015553087259Z"

# A trimmed nightly report in the shape the pipeline writes (incremental run, judgments configured).
REPORT = {
    "run_id": RUN_ID,
    "job": "nightly",
    "mode": "incremental",
    "started_at": "2026-11-29T01:47:07.057285+00:00",
    "finished_at": "2026-11-29T01:55:53.223579+00:00",
    "catalog": "s3://shop/in/catalog.jsonl",
    "alias": "products",
    "prompt_version": "copy-v2",
    "content": ["description", "ad_copy", "bullets"],
    "config": {"es": {"api_key": "**********", "url": "https://es.internal:9200"}},
    "outputs": {"report": f"s3://shop/state/products/runs/{RUN_ID}/report.json",
                "report_html": f"s3://shop/state/products/runs/{RUN_ID}/report.html",
                "run_prefix": f"s3://shop/state/products/runs/{RUN_ID}"},
    "status": "succeeded",
    "resumed_batches": [3, 4],
    "counts": {"valid": 60, "invalid": 1, "new": 5, "changed": 7, "unchanged": 47, "deleted": 2,
               "quarantined": 3, "regenerated": 12, "reused": 47, "resumed": 4, "generated": 11,
               "generation_failed": 1, "embedded": 11, "embeddings_reused": 47, "indexed": 57},
    "stages": {
        "validate": {"valid": 60, "invalid": 1, "seconds": 0.012},
        "plan": {"seconds": 0.31},
        "models": {"seconds": 0.002},
        "generate": {"rows": 12, "ok": 11, "failed": 1, "tokens": 51358, "seconds": 506.229,
                     "tokens_per_s": 101.45, "startup_s": 41.2},
        "embed": {"docs": 11, "computed": 11, "cached": 47, "seconds": 12.646, "docs_per_s": 2.85},
        "related": {"k": 8, "docs": 58, "seconds": 1.852},
        "index": {
            "index": "products-20261129-015553-087259", "alias": "products", "docs": 57, "errors": 0,
            "gate": {"passed": True, "reasons": [], "checks": [
                {"check": "doc_count", "passed": True, "detail": "57 docs in the new index, 57 expected",
                 "count": 57, "expected": 57},
                {"check": "doc_drop", "passed": True, "detail": "57 docs vs 58 live: drop of 1.7%",
                 "count": 57, "live_count": 58, "drop": 0.0172},
                {"check": "ndcg@10", "passed": True, "detail": "NDCG@10 0.8123 vs live 0.7900 (tolerance 0.02)",
                 "new": 0.8123, "live": 0.79, "mode": "hybrid"},
            ]},
            "swapped": True, "seconds": 0.437, "docs_per_s": 82.38,
        },
    },
    "errors": [],
    "model_version": "smollm2-135m-instruct@40765ca569",
    "embedding_model": "all-minilm-l6-v2@b4a11deb94",
    "qa": {"checks": {
        "schema": {"checked": 36, "passed": 36, "pass_rate": 1.0},
        "banned_claims": {"checked": 36, "passed": 34, "pass_rate": 0.9444},
        "faithfulness": {"checked": 36, "passed": 31, "pass_rate": 0.8611},
    }},
}

FAILED = {"run_id": "x", "status": "failed", "errors": ["boom"]}


def _sections(page: str) -> dict[str, str]:
    """h2 title -> the section's HTML."""
    return {m.group(1): m.group(2) for m in re.finditer(r"<section><h2>(.*?)</h2>(.*?)</section>", page, re.DOTALL)}


def assert_self_contained(page: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE), "external reference"
    assert not re.search(r"<script\b", page, re.IGNORECASE)
    assert not re.search(r"<link\b", page, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", page, re.IGNORECASE)


def test_render_html_full_report():
    page = R.render_html(copy.deepcopy(REPORT))
    assert page.startswith("<!DOCTYPE html>")
    assert_self_contained(page)
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    sections = _sections(page)
    for title in ("Changes: new, changed and reused products", "Stage timings", "Throughput",
                  "QA pass rate per check", "Search evaluation (judgments)"):
        assert "<svg" in sections[title], title
    assert page.count("<svg") == 5
    # The counts table carries every count.
    counts = sections["Counts"]
    for k, v in REPORT["counts"].items():
        assert re.search(rf"<th>{k}</th><td class=\"n\">{v}</td>", counts), k
    # Header and text of the plots.
    for s in (RUN_ID, "incremental", "products-20261129-015553-087259", "smollm2-135m-instruct@40765ca569",
              "s3://shop/in/catalog.jsonl", "2 batch(es)", "8m46s", "41.2 s"):
        assert s in page, s
    for s in ("faithfulness", "86.1%", "generate (tokens/s)", "0.8123", "0.7900", "regenerated"):
        assert s in page, s
    # The (redacted) config is not rendered.
    assert "es.internal" not in page and "api_key" not in page
    # No duplicate element ids across the inlined figures.
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_render_html_escapes_report_strings():
    r = copy.deepcopy(REPORT)
    evil = "<script>alert(1)</script>"
    r.update(catalog=evil, run_id='"><img src=x onerror=alert(1)>', status="failed",
             errors=[f"RuntimeError: {evil}"])
    r["qa"]["checks"][evil] = {"checked": 1, "passed": 0, "pass_rate": 0.0}
    r["stages"][evil] = {"seconds": 1.0}
    r["stages"]["index"]["gate"]["checks"][0]["detail"] = evil
    page = R.render_html(r)
    assert "<script" not in page.lower()
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert_self_contained(page)


def test_render_html_autoescapes_skus_and_reasons():
    # Catalog-derived strings reach every table and list of the page: a SKU in an error, a gate
    # reason, a content type, a count key, a header field. Autoescape must cover each of them.
    evil = "<script>alert(1)</script>"
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    r = copy.deepcopy(REPORT)
    r.update(errors=[f"generation failed for SKU {evil}"], alias=evil, prompt_version=evil, content=[evil],
             coverage={"valid": 60, "searchable": 57, "searchable_share": 0.95,
                       "types": {evil: {"fresh_share": 0.5, "kept_share": 0.25, "none_share": 0.25}}})
    r["counts"][evil] = 1
    gate = r["stages"]["index"]["gate"]
    gate.update(passed=False, reasons=[f"SKU {evil} missing from the new index"])
    gate["checks"][1].update(check=evil, passed=False)
    page = R.render_html(r)
    assert "<script" not in page.lower()
    assert_self_contained(page)
    sections = _sections(page)
    assert f"<li>generation failed for SKU {escaped}</li>" in page
    assert f"<li>SKU {escaped} missing from the new index</li>" in page
    assert f"<th>{escaped}</th><td>50.0%</td>" in sections["Coverage"]
    assert f'<th>{escaped}</th><td class="n">1</td>' in sections["Counts"]
    assert f'<th>{escaped}</th><td><span class="status bad">FAIL</span>' in sections["Index gate"]
    assert f"<th>prompt version</th><td>{escaped}</td>" in page and f"<th>content</th><td>{escaped}</td>" in page


def test_the_report_template_fails_on_a_missing_field():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        R._templates().get_template("report.html.j2").render({})


def test_render_html_partial_reports_do_not_crash():
    page = R.render_html(FAILED)
    assert "boom" in page and "failed" in page and "<svg" not in page
    assert_self_contained(page)
    assert "search evaluation not configured" in page
    # Odd types where numbers or dicts are expected, NaN, no judgments.
    odd = {"run_id": 1, "counts": {"new": None, "changed": "7", "valid": float("nan")},
           "stages": {"generate": None, "embed": {"seconds": "slow"}, "index": {"gate": {"checks": "x"}}},
           "qa": {"checks": {"schema": {"checked": 4, "passed": 3}}}, "errors": "one string", "started_at": "bad"}
    page = R.render_html(odd)
    assert "one string" in page and "75.0%" in page
    for r in (odd, {}, {"stages": {"index": {"gate": {"checks": [{"check": "ndcg@10", "new": 0.5, "live": None}]}}}}):
        R.render_html(r)
        R.summary(r)
    assert "no live index" in R.render_html(
        {"stages": {"index": {"gate": {"checks": [{"check": "ndcg@10", "new": 0.5, "live": None}]}}}})


def test_summary():
    text = R.summary(REPORT)
    for s in (RUN_ID, "status=succeeded", "mode=incremental", "(8m46s)", "new=5", "changed=7", "unchanged=47",
              "deleted=2", "quarantined=3", "regenerated=12", "reused=47", "generate=8m26s",
              "faithfulness=86.1%", "products-20261129-015553-087259", "gate: passed, alias moved",
              "ndcg@10 new=0.8123 live=0.7900", REPORT["outputs"]["report"], REPORT["outputs"]["report_html"]):
        assert s in text, s
    failed = R.summary(FAILED)
    assert "status=failed" in failed and "boom" in failed


def test_write_html_local(tmp_path):
    out = tmp_path / "deep" / "report.html"
    R.write_html(REPORT, str(out))
    assert out.read_text(encoding="utf-8") == R.render_html(REPORT)


def _write_run(prefix, run_id, **extra):
    d = prefix / "runs" / run_id
    d.mkdir(parents=True)
    (d / "report.json").write_text(json.dumps({"run_id": run_id, "status": "succeeded", **extra}))
    return d


def test_find_report_local(tmp_path, monkeypatch):
    a, b = tmp_path / "state" / "products", tmp_path / "state" / "other"
    d1 = _write_run(a, "20261128T010000000000Z")
    _write_run(a, "20261129T010000000000Z")
    _write_run(b, "20261130T010000000000Z")
    (b / "runs" / "20261201T010000000000Z").mkdir()  # a crashed run with no report yet

    assert R.find_report(str(d1), [])["run_id"] == "20261128T010000000000Z"  # a folder
    got = R.find_report(str(d1 / "report.json"), [])  # a file
    assert got["run_id"] == "20261128T010000000000Z"
    assert got["outputs"]["report"] == str(d1 / "report.json")
    assert R.find_report("20261129T010000000000Z", [str(a), str(b)])["run_id"] == "20261129T010000000000Z"
    assert R.find_report("20261130T010000000000Z", [str(a), str(b)])["run_id"] == "20261130T010000000000Z"
    assert R.find_report("latest", [str(a)])["run_id"] == "20261129T010000000000Z"
    assert R.find_report("latest", [str(a), str(b)])["run_id"] == "20261130T010000000000Z"
    assert R.list_runs(str(b)) == ["20261130T010000000000Z", "20261201T010000000000Z"]
    monkeypatch.chdir(d1.parent)  # a relative folder name
    assert R.find_report("20261128T010000000000Z", [])["run_id"] == "20261128T010000000000Z"

    with pytest.raises(FileNotFoundError, match=r"20991231T000000000000Z.*" + re.escape(str(a / "runs"))):
        R.find_report("20991231T000000000000Z", [str(a), str(b)])
    with pytest.raises(FileNotFoundError, match="no run with a report.json found under"):
        R.find_report("latest", [str(tmp_path / "empty")])
    with pytest.raises(FileNotFoundError, match="no report.json in"):
        R.find_report(str(b / "runs" / "20261201T010000000000Z"), [str(b)])
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        R.find_report(str(tmp_path / "nope" / "report.json"), [str(a)])
    with pytest.raises(FileNotFoundError, match="no state prefix"):
        R.find_report("20991231T000000000000Z", [])


def test_find_report_and_write_html_on_s3(s3_server):
    import boto3

    cfg = S3Config(endpoint_url=s3_server, region="us-east-1")
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    s3.create_bucket(Bucket="shop")
    prefix = "s3://shop/state/products"
    for rid in ("20261128T010000000000Z", "20261129T010000000000Z"):
        s3.put_object(Bucket="shop", Key=f"state/products/runs/{rid}/report.json",
                      Body=json.dumps({"run_id": rid, "status": "succeeded"}).encode())
    s3.put_object(Bucket="shop", Key="state/products/runs/20261130T010000000000Z/batches/0.json", Body=b"{}")

    assert R.find_report("latest", [prefix], cfg)["run_id"] == "20261129T010000000000Z"
    assert R.find_report("20261128T010000000000Z", [prefix], cfg)["run_id"] == "20261128T010000000000Z"
    run_dir = f"{prefix}/runs/20261128T010000000000Z"
    assert R.find_report(run_dir, [], cfg)["run_id"] == "20261128T010000000000Z"
    assert R.find_report(run_dir + "/", [], cfg)["run_id"] == "20261128T010000000000Z"
    got = R.find_report(run_dir + "/report.json", [], cfg)
    assert got["outputs"]["report"] == run_dir + "/report.json"
    with pytest.raises(FileNotFoundError, match="s3://shop/state/products/runs/nope/report.json"):
        R.find_report("nope", [prefix], cfg)
    with pytest.raises(FileNotFoundError, match="no report.json in"):
        R.find_report(f"{prefix}/runs/20261130T010000000000Z", [prefix], cfg)

    R.write_html(REPORT, f"{run_dir}/report.html", cfg)
    body = s3.get_object(Bucket="shop", Key="state/products/runs/20261128T010000000000Z/report.html")["Body"].read()
    assert body.decode("utf-8") == R.render_html(REPORT)
