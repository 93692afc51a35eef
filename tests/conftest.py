import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample_catalog.jsonl"
# Share the converted base model with `make setup` so tests don't convert it again.
MODEL_CACHE = ROOT / ".shopgen" / "models"


# Seconds per real-stack module, measured serially on 2 cores (`--durations`, 2026-12-05); every other
# module takes a few seconds. They order a serial run (costliest first) and plan the xdist workers.
# Seconds per module on two xdist workers (junit sums, 2 cores, the engine in float32), for the plan.
SECONDS = {"test_nightly": 373, "test_finetune": 285, "test_cluster": 267, "test_finetune_walkthrough": 248,
           "test_e2e": 241, "test_indexing": 375, "test_engine_failure": 148, "test_finetune_search": 119,
           "test_e2e_generate": 105, "test_answers": 330, "test_review": 150, "test_recommend": 55, "test_submit": 52,
           "test_copy_audit": 13}
SMALL_MODULE_S = 3


def pytest_collection_modifyitems(session, config, items):
    # stable: a module keeps its own order
    items.sort(key=lambda it: -SECONDS.get(it.path.stem, SMALL_MODULE_S))


def plan_workers(costs: dict[str, float], workers: int) -> list[list[str]]:
    """Longest first, each to the least-loaded worker (LPT): within 4/3 of the best split."""
    load, plan = [0.0] * workers, [[] for _ in range(workers)]
    for name in sorted(costs, key=lambda n: -costs[n]):
        i = load.index(min(load))
        plan[i].append(name)
        load[i] += costs[name]
    return plan


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under `make test` (xdist, --dist loadfile): each worker gets its whole list of modules up front,
    planned from SECONDS. xdist's own loadfile scheduler hands a worker its next module as soon as the
    current one is down to its last tests, so a one-test module (the walkthrough, the engine-death test)
    queued the next long module behind it while the other worker ran out of work."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Planned(LoadFileScheduling):
        def _assign_work_unit(self, node):
            if not getattr(self, "_plan", None):
                costs = {scope: SECONDS.get(Path(scope.split("::")[0]).stem, SMALL_MODULE_S) for scope in self.workqueue}
                self._plan = dict(zip(self.nodes, plan_workers(costs, len(self.nodes))))
            mine = [s for s in self._plan.get(node, []) if s in self.workqueue] or [next(iter(self.workqueue))]
            assigned = self.assigned_work.setdefault(node, {})
            collection = self.registered_collections[node]
            indexes = []
            for scope in mine:
                unit = self.workqueue.pop(scope)
                assigned[scope] = unit
                indexes += [collection.index(nodeid) for nodeid, done in unit.items() if not done]
            node.send_runtest_some(indexes)

    return Planned(config, log)


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
