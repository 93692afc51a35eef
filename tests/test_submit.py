"""`shopgen submit` / `shopgen jobs`: the pure helpers, the CLI over a stand-in job client, and (slow) a real
local Ray head started with `ray start --head`, a nightly job submitted through its job API."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner
from conftest import MODEL_CACHE, ROOT
from raynodes import stop_tree

from shopgen.adapters.devstack import free_port
from shopgen.cli import launcher
from shopgen.cli.jobs import jobs, submit
from shopgen.cli.launcher import LauncherError
from shopgen.core.config import CONFIG_TEXT_ENV

SECRET = "sk-do-not-print-4711"


# ---- pure helpers -----------------------------------------------------------------------------

def test_runtime_env_ships_the_project_and_env():
    env = launcher.runtime_env(ROOT, "es:\n  api_key: x\n", {"SHOPGEN_HOME": "/data/sg", "HF_HUB_OFFLINE": "0"})
    assert env["working_dir"] == str(ROOT)
    assert {".venv", ".shopgen", ".git", "__pycache__", "*.pyc", ".pytest_cache"} <= set(env["excludes"])
    assert env["env_vars"][CONFIG_TEXT_ENV] == "es:\n  api_key: x\n"
    assert env["env_vars"]["SHOPGEN_HOME"] == "/data/sg"
    assert env["env_vars"]["HF_HUB_OFFLINE"] == "0"  # the user's --env wins over the defaults
    assert CONFIG_TEXT_ENV not in launcher.runtime_env(ROOT)["env_vars"]
    assert (ROOT / "pyproject.toml").is_file() and launcher.project_root() == ROOT


def test_entrypoint():
    assert launcher.entrypoint("nightly", False, ["--limit", "3", "--content", "seo_title"], ROOT) == \
        "python jobs/nightly.py --limit 3 --content seo_title"
    assert launcher.entrypoint("embed-index", True, [], ROOT) == "python jobs/embed_index.py"
    assert launcher.entrypoint("generate", False, ["--catalog", "a b.jsonl"]) == "python jobs/generate.py --catalog 'a b.jsonl'"
    assert launcher.entrypoint("finetune", False, ["--config", "/etc/prod.yaml"]).endswith("--config /etc/prod.yaml")
    with pytest.raises(LauncherError, match="not both"):
        launcher.entrypoint("nightly", True, ["--config=/etc/prod.yaml"])
    assert launcher.entrypoint("nightly", False, [], ROOT, "/opt/shopgen/bin/python") == \
        "/opt/shopgen/bin/python jobs/nightly.py"
    assert launcher.job_python("http://127.0.0.1:8265") == sys.executable
    assert launcher.job_python("http://10.1.2.3:8265") == "python"
    assert launcher.job_python("http://127.0.0.1:8265", "/usr/bin/python3") == "/usr/bin/python3"
    with pytest.raises(LauncherError, match="unknown job 'nightlyy'; choose one of: finetune, generate"):
        launcher.entrypoint("nightlyy", False, [])
    for job in launcher.JOBS:
        assert (ROOT / "jobs" / f"{job}.py").is_file()


def test_address_and_env_parsing(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert launcher.resolve_address(None) == "http://127.0.0.1:8265"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # a GCS address is not the job API
    assert launcher.resolve_address(None) == "http://127.0.0.1:8265"
    monkeypatch.setenv("RAY_ADDRESS", "https://head.example:8265/")
    assert launcher.resolve_address(None) == "https://head.example:8265"
    assert launcher.resolve_address("head:8265") == "http://head:8265"
    with pytest.raises(LauncherError):
        launcher.resolve_address("ray://head:10001")
    assert launcher.is_loopback("http://127.0.0.1:8265") and not launcher.is_loopback("http://10.0.0.5:8265")
    assert launcher.parse_env(["A=1", "B_2=x=y", "C="]) == {"A": "1", "B_2": "x=y", "C": ""}
    for bad in (SECRET, f"1BAD={SECRET}", f"A B={SECRET}"):
        with pytest.raises(LauncherError, match="KEY=VALUE") as e:
            launcher.parse_env([bad])
        assert SECRET not in str(e.value)


def test_unreachable_address_is_a_clear_error():
    with pytest.raises(LauncherError, match=r"cannot reach the Ray job API at http://127\.0\.0\.1:\d+: .*ray start --head"):
        launcher.connect(f"http://127.0.0.1:{free_port()}")


def test_job_dict_leaves_out_the_runtime_env():
    info = _details("raysubmit_1", "SUCCEEDED")
    d = launcher.job_dict(info)
    assert d["status"] == "SUCCEEDED" and d["submission_id"] == "raysubmit_1" and d["shopgen_job"] == "nightly"
    assert SECRET not in json.dumps(d)


# ---- the CLI over a stand-in client -----------------------------------------------------------
# A stand-in for JobSubmissionClient keeps these CLI checks (output contract, secrets never shown,
# user errors) to milliseconds; the real job API is exercised by test_submit_nightly_to_a_real_ray_head.

def _details(sid: str, status: str, message: str = "done"):
    return SimpleNamespace(submission_id=sid, job_id="01000000", status=status, entrypoint="python jobs/nightly.py",
                           message=message, error_type=None, start_time=1_700_000_000_000,
                           end_time=1_700_000_060_000, metadata={"shopgen_job": "nightly"}, driver_exit_code=0,
                           runtime_env={"env_vars": {CONFIG_TEXT_ENV: f"api_key: {SECRET}"}})


class FakeClient:
    def __init__(self, final: str = "SUCCEEDED"):
        self.final, self.submitted = final, []

    def submit_job(self, **kw):
        self.submitted.append(kw)
        return kw.get("submission_id") or "raysubmit_fake"

    def get_job_info(self, sid):
        if sid != "raysubmit_fake":
            raise RuntimeError(f"Request failed with status code 404: Job {sid} does not exist.")
        return _details(sid, self.final, "boom" if self.final == "FAILED" else "done")

    async def tail_job_logs(self, sid):
        for chunk in ("stage generate\n", "report: /tmp/x/report.json\n"):
            yield chunk

    def get_job_logs(self, sid):
        return "stage generate\nreport: /tmp/x/report.json\n"

    def list_jobs(self):
        return [_details("raysubmit_fake", self.final)]

    def stop_job(self, sid):
        return False


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """The two commands on a bare group, a stand-in client, and the local home pointed at tmp_path."""
    fake = FakeClient()
    monkeypatch.setattr(launcher, "connect", lambda address, timeout=10.0: fake)
    monkeypatch.setenv("SHOPGEN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SHOPGEN_CONFIG", raising=False)

    @click.group()
    def main():
        pass

    main.add_command(submit)
    main.add_command(jobs)
    return SimpleNamespace(fake=fake, run=lambda *a: CliRunner().invoke(main, list(a)))


def test_submit_ships_the_config_as_text_and_never_prints_it(cli, tmp_path):
    cfg = tmp_path / "prod.yaml"
    cfg.write_text(f"es:\n  url: https://es.example:9200\n  api_key: {SECRET}\n")
    r = cli.run("submit", "nightly", "--config", str(cfg), "--address", "http://10.1.2.3:8265", "--env",
                f"MY_TOKEN={SECRET}", "--submission-id", "raysubmit_fake", "--wait", "--", "--limit", "3")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["raysubmit_fake", "SUCCEEDED"]
    assert "report: /tmp/x/report.json" in r.stderr  # the streamed logs
    assert SECRET not in r.output
    (job,) = cli.fake.submitted
    assert job["entrypoint"] == "python jobs/nightly.py --limit 3"  # no --config: it travels as text
    assert job["runtime_env"]["env_vars"][CONFIG_TEXT_ENV] == cfg.read_text()
    assert job["runtime_env"]["env_vars"]["MY_TOKEN"] == SECRET
    assert "SHOPGEN_HOME" not in job["runtime_env"]["env_vars"]  # a remote cluster: no local path
    assert job["submission_id"] == "raysubmit_fake" and job["metadata"] == {"shopgen_job": "nightly"}


def test_submit_to_a_local_cluster_shares_the_local_home(cli, tmp_path):
    r = cli.run("submit", "generate", "--address", "http://127.0.0.1:8265")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "raysubmit_fake"
    env = cli.fake.submitted[0]["runtime_env"]["env_vars"]
    assert env["SHOPGEN_HOME"] == str((tmp_path / "home").resolve()) and CONFIG_TEXT_ENV not in env
    r = cli.run("submit", "generate", "--address", "http://127.0.0.1:8265", "--env", "SHOPGEN_HOME=/elsewhere")
    assert cli.fake.submitted[1]["runtime_env"]["env_vars"]["SHOPGEN_HOME"] == "/elsewhere"


def test_submit_wait_fails_unless_succeeded(cli):
    cli.fake.final = "FAILED"
    r = cli.run("submit", "nightly", "--wait")
    assert r.exit_code == 1
    assert r.stdout.splitlines()[-1] == "FAILED" and "boom" in r.stderr


def test_submit_user_errors(cli, tmp_path):
    cases = [(["submit", "nightlyy"], "unknown job 'nightlyy'"),
             (["submit", "nightly", "--env", SECRET], "KEY=VALUE"),
             (["submit", "nightly", "--config", str(tmp_path / "missing.yaml")], "config file not found"),
             (["submit", "nightly", "--config", str(_bad_config(tmp_path))], "invalid configuration"),
             (["jobs", "status", "raysubmit_nope"], "no job 'raysubmit_nope'")]
    for args, msg in cases:
        r = cli.run(*args)
        assert r.exit_code != 0 and msg in r.output, (args, r.output)
        assert SECRET not in r.output
    assert not cli.fake.submitted


def _bad_config(tmp_path: Path) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(f"es:\n  api_keyy: {SECRET}\n")
    return p


def test_jobs_commands(cli):
    r = cli.run("jobs", "status", "raysubmit_fake")
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "SUCCEEDED" and "message:" in r.stdout
    st = json.loads(cli.run("jobs", "status", "raysubmit_fake", "--json").stdout)
    assert st["status"] == "SUCCEEDED" and "runtime_env" not in st
    rows = json.loads(cli.run("jobs", "list", "--json").stdout)
    assert [x["submission_id"] for x in rows] == ["raysubmit_fake"] and SECRET not in json.dumps(rows)
    assert "raysubmit_fake" in cli.run("jobs", "list").stdout
    assert "report: /tmp/x/report.json" in cli.run("jobs", "logs", "raysubmit_fake").stdout
    assert "report: /tmp/x/report.json" in cli.run("jobs", "logs", "raysubmit_fake", "--follow").stdout
    r = cli.run("jobs", "stop", "raysubmit_fake")
    assert r.exit_code == 0 and "is not running (SUCCEEDED)" in r.stdout


@pytest.mark.parametrize("job", ["generate", "embed_index"])
def test_job_entrypoints_parse_their_options(job, capsys, monkeypatch):
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "jobs"))  # as when Python runs jobs/<job>.py as a script
    spec = importlib.util.spec_from_file_location(f"job_{job}", ROOT / "jobs" / f"{job}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for opt in {"generate": ("--catalog", "--out", "--limit", "--content", "--model"),
                "embed_index": ("--input", "--alias", "--workdir", "--limit", "--incremental")}[job]:
        assert opt in out


def test_job_command_lines_are_the_clis():
    import importlib.util

    spec = importlib.util.spec_from_file_location("jobrunner", ROOT / "jobs" / "jobrunner.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sample = str(ROOT / "data" / "sample_catalog.jsonl")
    assert mod.command_line(["nightly"], ["--limit", "3", "--config", "/etc/p.yaml"], "--catalog") == \
        ["--config", "/etc/p.yaml", "nightly", "--limit", "3", "--catalog", sample]
    assert mod.command_line(["index", "build"], ["--input=s3://b/c.jsonl", "--incremental"], "--input") == \
        ["index", "build", "--input=s3://b/c.jsonl", "--incremental"]
    assert mod.command_line(["generate"], ["--help"], "--catalog") == ["generate", "--help"]


def test_a_job_under_an_interpreter_without_shopgen_says_so(tmp_path):
    """The job started by a bare system python: a clear message and exit 2, not a traceback."""
    import shutil

    py = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    p = subprocess.run([py, "-E", "-s", str(ROOT / "jobs" / "nightly.py"), "--limit", "1"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "must run under the interpreter of the cluster's shopgen install" in p.stderr


# ---- slow: a real Ray head and a real job -----------------------------------------------------

def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ray start exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:  # 401 under token auth: the server is up
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the Ray dashboard did not answer on {url} within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def ray_head(env):
    """A real local Ray head (GCS, raylet, dashboard with the job API) on free ports; its URL."""
    ray = Path(sys.executable).with_name("ray")
    # Short: Ray's unix sockets live under it, and socket paths may not exceed 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="sgray-", dir="/tmp"))
    dash = free_port()
    # As a new user would: `.venv/bin/ray start --head` from a shell without the venv on PATH, where a
    # bare `python` is the system one. No drain on SIGTERM: nothing to save.
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    e = {**env, "PATH": path, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    for k in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        e.pop(k, None)
    cmd = [str(ray), "start", "--head", "--block", "--disable-usage-stats", "--num-cpus", "2",
           "--object-store-memory", str(1024 ** 3), "--port", str(free_port()),
           "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
           "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
           "--metrics-export-port", str(free_port()), "--temp-dir", str(tmp)]
    log = tmp / "ray-start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=e, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        url = f"http://127.0.0.1:{dash}"
        _wait_http(f"{url}/api/version", proc, log)
        yield url
    finally:
        stop_tree(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _cli(shopgen_bin, env, *args, timeout=120):
    e = {k: v for k, v in env.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    return subprocess.run([shopgen_bin, *args], env=e, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_submit_nightly_to_a_real_ray_head(ray_head, shopgen_bin, env, home):
    addr = ["--address", ray_head]
    p = _cli(shopgen_bin, env, "submit", "nightly", *addr, "--wait", "--env", f"SHOPGEN_HOME={home}",
             "--env", f"SHOPGEN_MODELS__CACHE_DIR={MODEL_CACHE}", "--", "--limit", "3", "--content", "seo_title",
             timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-6000:]
    lines = p.stdout.strip().splitlines()
    assert lines[-1] == "SUCCEEDED" and len(lines) == 2, p.stdout
    sid = lines[0]
    assert "report: " in p.stderr  # the job's logs were streamed while waiting

    st = _cli(shopgen_bin, env, "jobs", "status", sid, *addr)
    assert st.returncode == 0 and st.stdout.splitlines()[0] == "SUCCEEDED", st.stdout + st.stderr
    st = json.loads(_cli(shopgen_bin, env, "jobs", "status", sid, "--json", *addr).stdout)
    # A loopback head: the job runs under the submitting interpreter, not whatever `python` is on its PATH.
    assert st["entrypoint"] == f"{sys.executable} jobs/nightly.py --limit 3 --content seo_title"

    logs = _cli(shopgen_bin, env, "jobs", "logs", sid, *addr)
    m = re.search(r"report: (\S+report\.json)", logs.stdout)
    assert logs.returncode == 0 and m, logs.stdout[-3000:] + logs.stderr
    report = json.loads(Path(m.group(1)).read_text())  # a local cluster: the job wrote into our home
    assert Path(m.group(1)).is_relative_to(home)
    assert report["status"] == "succeeded"

    ls = _cli(shopgen_bin, env, "jobs", "list", "--json", *addr)
    assert ls.returncode == 0 and sid in [j["submission_id"] for j in json.loads(ls.stdout)]

    bad = _cli(shopgen_bin, env, "submit", "nightlyy", *addr)
    assert bad.returncode != 0 and "unknown job 'nightlyy'" in bad.stderr
    missing = _cli(shopgen_bin, env, "jobs", "status", "raysubmit_nosuchjob", *addr)
    assert missing.returncode != 0 and "no job 'raysubmit_nosuchjob'" in missing.stderr
