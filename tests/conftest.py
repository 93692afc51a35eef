import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample_catalog.jsonl"
# Share the converted base model with `make setup` so tests don't convert it again.
MODEL_CACHE = ROOT / ".shopgen" / "models"


# The real-stack modules, costliest first (measured with --durations). Under `make test TEST_WORKERS=2`
# (xdist, --dist loadfile, --no-loadscope-reorder) starting the long ones first keeps both workers busy.
SLOWEST_FIRST = ("test_finetune_walkthrough", "test_nightly", "test_finetune", "test_e2e_generate", "test_indexing",
                 "test_cluster", "test_engine_failure", "test_e2e", "test_finetune_search", "test_submit",
                 "test_copy_audit")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda it: rank.get(it.path.stem, len(rank)))  # stable: a module keeps its own order


@pytest.fixture(scope="session")
def shopgen_bin() -> str:
    exe = Path(sys.executable).with_name("shopgen")
    assert exe.exists(), "shopgen console script missing: run `make setup`"
    return str(exe)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An isolated shopgen home (embedded ES data, runs); stops its ES server afterwards."""
    from shopgen.adapters import devstack

    h = tmp_path_factory.mktemp("home")
    yield h
    devstack.down(h)


BEST_OF_ONE = {f"SHOPGEN_CONTENT__{t.upper()}__CANDIDATES": "1" for t in ("description", "bullets", "ad_copy", "faq")}
# One attempt per request: under the copy audit's gate most of the 135M model's texts fail, so three
# attempts tripled every real-engine run. tests/test_e2e_generate.py and the retry tests set their own.
ONE_ATTEMPT = {"SHOPGEN_GENERATION__MAX_ATTEMPTS": "1"}


@pytest.fixture(scope="module")
def env(home):
    e = dict(os.environ)
    e.update(SHOPGEN_HOME=str(home), SHOPGEN_MODELS__CACHE_DIR=str(MODEL_CACHE), HF_HUB_OFFLINE="1")
    # One sample per request keeps the suite's many real-engine runs within its time budget on 2 cores;
    # tests/test_e2e_generate.py drops these and runs best-of-n with the defaults.
    e.update(BEST_OF_ONE)
    e.update(ONE_ATTEMPT)
    e.pop("SHOPGEN_CONFIG", None)
    return e


@pytest.fixture(scope="module")
def settings(home):
    from shopgen.core.config import load_settings

    return load_settings(home=home, models={"cache_dir": MODEL_CACHE}, generation={"max_attempts": 1},
                         content={t: {"candidates": 1} for t in ("description", "bullets", "ad_copy", "faq")})


@pytest.fixture
def s3_server():
    """A real S3 API over HTTP on loopback (moto server)."""
    from moto.server import ThreadedMotoServer

    from shopgen.adapters.devstack import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# Processes that a run of ours may start; any still alive at the end that were not there when the
# session began are orphans.
ORPHAN_PATTERNS = ("raylet", "gcs_server", "noida-db", "EngineCore", "VllmWorker", "ray::", "default_worker.py",
                   "dashboard", "log_monitor.py")


def matching_processes() -> dict[int, str]:
    import psutil

    out = {}
    for p in psutil.process_iter(["pid", "cmdline", "name"]):
        try:
            cmd = " ".join(p.info["cmdline"] or []) or (p.info["name"] or "")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(pat in cmd for pat in ORPHAN_PATTERNS) and p.pid != os.getpid():
            out[p.pid] = cmd[:200]
    return out


PREEXISTING = set(matching_processes())


def pytest_sessionfinish(session, exitstatus):
    """Once every module has torn its stack down (on every xdist worker), nothing of ours may remain:
    a search server, a Ray node or a vLLM engine still alive that was not there at the start fails
    the run. The controller checks, after its workers have finished; a worker does not."""
    if hasattr(session.config, "workerinput") or session.config.option.collectonly:
        return
    deadline, left = time.time() + 30, {}
    while time.time() < deadline:
        left = {pid: cmd for pid, cmd in matching_processes().items() if pid not in PREEXISTING}
        if not left:
            return
        time.sleep(1)
    session.config.get_terminal_writer().line(f"FAILED: orphaned processes after the run: {left}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
