"""report.json as a RunReport: what the pipeline writes, what report.html and `shopgen report` read."""

import copy
import json

import pytest
from click.testing import CliRunner
from rich.console import Console
from test_report import REPORT

from shopgen.cli.main import main
from shopgen.core.config import load_settings
from shopgen.core.report import GateCheck, ReportError, RunReport
from shopgen.core.run import INVALID_REPORT, Report, running, start_run
from shopgen.report import render as R

QUIET = Console(quiet=True)


def _keys(x, at=""):
    """Every key path of nested dicts (list items by index)."""
    if isinstance(x, dict):
        return {p for k, v in x.items() for p in {f"{at}.{k}", *_keys(v, f"{at}.{k}")}}
    if isinstance(x, list):
        return {p for i, v in enumerate(x) for p in _keys(v, f"{at}[{i}]")}
    return set()


def _written(tmp_path, data) -> tuple[Report, dict]:
    rep = Report()
    rep.data = data
    rep.write(tmp_path / "report.json")
    return rep, json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))


def test_a_partial_report_renders():
    part = {"run_id": "r1", "status": "failed"}
    for r in (part, RunReport.model_validate(part)):
        page = R.render_html(r)
        assert "r1" in page and '<span class="status bad">failed</span>' in page and "<svg" not in page
        assert "no counts recorded (the run stopped early)" in page
        assert R.summary(r).splitlines() == ["run r1  job=?  status=failed"]


def test_a_full_report_round_trips(tmp_path):
    _, back = _written(tmp_path, copy.deepcopy(REPORT))
    assert back == REPORT and _keys(back) == _keys(REPORT)  # every key as written, no key added
    loaded = RunReport.load(tmp_path / "report.json", strict=True)
    assert loaded.to_dict() == REPORT and not loaded.dropped
    assert RunReport.load((tmp_path / "report.json").read_bytes()).to_dict() == REPORT
    # Typed where report.html reads it, stage-specific figures passed through.
    assert loaded.stages["generate"].tokens_per_s == 101.45 and loaded.stages["generate"].model_extra["tokens"] == 51358
    assert isinstance(loaded.stages["index"].gate.checks[2], GateCheck) and loaded.stages["index"].gate.checks[2].new == 0.8123
    assert loaded.qa.checks["faithfulness"].pass_rate == 0.8611 and loaded.outputs.run_prefix.endswith(REPORT["run_id"])
    assert R.render_html(loaded) == R.render_html(REPORT) and R.summary(loaded) == R.summary(REPORT)


def test_keys_set_to_none_and_new_keys_are_kept(tmp_path):
    data = {"run_id": "r", "status": "running", "limit": None, "stages": {"generate": {"tokens_per_s": None,
            "engines": {"a": 2}}}, "something_new": {"x": [1]}, "where": tmp_path}
    _, back = _written(tmp_path, data)
    assert back == {**data, "where": str(tmp_path)} and "errors" not in back


def test_a_wrongly_typed_report_is_written_as_it_is_with_the_error(tmp_path):
    data = copy.deepcopy(REPORT)
    data["counts"]["valid"] = "many"
    data["stages"]["embed"]["seconds"] = "slow"
    data["status"] = "exploded"
    rep, back = _written(tmp_path, data)
    assert back["counts"]["valid"] == "many" and back["status"] == "exploded"  # nothing lost
    note = back["errors"][-1]
    assert note.startswith(INVALID_REPORT) and "counts.valid" in note and "stages.embed.seconds" in note
    assert "status" in note and rep.data["errors"] == back["errors"]
    rep.write(tmp_path / "again.json")  # the nightly writes it twice: one note
    assert json.loads((tmp_path / "again.json").read_text())["errors"] == back["errors"]

    with pytest.raises(ReportError, match=r"report\.json: not a valid run report: .*counts\.valid"):
        RunReport.load(tmp_path / "report.json", strict=True)
    got = RunReport.load(tmp_path / "report.json")  # read leniently: the rest is there
    assert got.counts["new"] == 5 and "valid" not in got.counts and got.status is None
    assert {d.split(":")[0] for d in got.dropped} == {"counts.valid", "stages.embed.seconds", "status"}
    assert "unreadable in the report (3, left out)" in R.summary(got) and "Counts" in R.render_html(got)


def test_a_failed_run_writes_its_partial_report(tmp_path):
    settings = load_settings(home=tmp_path)
    rep, qpath, rpath = start_run("generate", tmp_path / "w", settings, content=["description"], limit=None)
    with pytest.raises(RuntimeError), running(rep, qpath, rpath, QUIET):
        with rep.stage("validate", QUIET) as st:
            st.update(valid=0, invalid=2)
        raise RuntimeError("no valid products")
    back = json.loads(rpath.read_text())
    assert back["status"] == "failed" and back["errors"] == ["RuntimeError: no valid products"]
    assert back["counts"] == {"quarantined": 0} and back["stages"]["validate"]["invalid"] == 2
    assert set(back) >= {"run_id", "job", "workdir", "started_at", "finished_at", "config", "outputs", "limit"}
    assert RunReport.load(rpath, strict=True).to_dict() == back
    assert "status=failed" in R.summary(back)


def test_lenient_drops_only_what_does_not_fit():
    checks = [{"check": "ndcg@10", "new": "x", "live": 0.5, "passed": True}, "not a check",
              {"check": "doc_count", "passed": True, "count": 3},
              {"check": "smoke", "passed": "perhaps"}, {"check": "doc_drop", "passed": False}]
    data = {"run_id": 1, "status": "succeeded", "errors": ["a", {"b": 1}],
            "counts": {"new": None, "changed": "7", "valid": float("nan")},
            "stages": {"generate": None, "index": {"gate": {"passed": True, "checks": checks}}}}
    before = copy.deepcopy(data)
    r = RunReport.lenient(data)
    assert data["counts"]["new"] is None and data["stages"] == before["stages"]  # the input is not changed
    assert r.run_id is None and r.counts == {"changed": 7} and "generate" not in r.stages
    assert r.errors == ["a", '{"b": 1}']
    got = r.stages["index"].gate.checks
    assert [c.check for c in got] == ["ndcg@10", "doc_count", "smoke", "doc_drop"]  # only the bad values go
    assert got[0].new is None and got[0].live == 0.5 and got[1].model_extra == {"count": 3}
    assert got[2].passed is None and got[3].passed is False
    assert {d.split(":")[0] for d in r.dropped} == {
        "run_id", "counts.new", "counts.valid", "stages.generate", "stages.index.gate.checks.0.new",
        "stages.index.gate.checks.1", "stages.index.gate.checks.3.passed"}
    assert RunReport.lenient(["not", "a", "dict"]).model_dump(exclude_unset=True) == {}


@pytest.mark.parametrize("body, why", [(b"{not json", "not a JSON report"), (b"\xff\xfe", "not a JSON report"),
                                       (b"[1, 2]", "not a JSON object")])
def test_load_refuses_what_is_no_report(tmp_path, body, why):
    p = tmp_path / "report.json"
    p.write_bytes(body)
    with pytest.raises(ReportError, match=f"{p}: {why}"):
        RunReport.load(p)
    with pytest.raises(ReportError, match=why):
        RunReport.load(body)


def _cli(tmp_path, *args):
    env = {"SHOPGEN_HOME": str(tmp_path / "home"), "SHOPGEN_CONFIG": None}
    return CliRunner().invoke(main, ["report", *args], env=env)


def test_cli_report_reads_through_the_model(tmp_path):
    d = tmp_path / "runs" / REPORT["run_id"]
    d.mkdir(parents=True)
    (d / "report.json").write_text(json.dumps(REPORT))
    res = _cli(tmp_path, str(d))
    assert res.exit_code == 0, res.output
    assert "status=succeeded" in res.output and "gate: passed, alias moved" in res.output
    res = _cli(tmp_path, str(d / "report.json"), "--json")
    assert res.exit_code == 0 and json.loads(res.output) == REPORT


@pytest.mark.parametrize("body", [b"{\"run_id\": \"x\", ", b"\x00\x01binary", b"\"a string\""])
def test_cli_report_on_a_corrupt_report_is_a_clear_error(tmp_path, body):
    p = tmp_path / "report.json"
    p.write_bytes(body)
    res = _cli(tmp_path, str(p))
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit)
    assert f"Error: {p}: not a JSON" in res.output and "Traceback" not in res.output


def test_load_report_fills_in_where_it_was_read(tmp_path):
    d = tmp_path / "state" / "runs" / "20261128T010000000000Z"
    d.mkdir(parents=True)
    (d / "report.json").write_text(json.dumps({"run_id": "20261128T010000000000Z", "status": "succeeded"}))
    got = R.load_report("latest", [str(tmp_path / "state")])
    assert isinstance(got, RunReport) and got.outputs.report == str(d / "report.json")
    assert R.find_report("latest", [str(tmp_path / "state")]) == {
        "run_id": "20261128T010000000000Z", "status": "succeeded", "outputs": {"report": str(d / "report.json")}}
