"""The vLLM engine dies mid-run (we SIGKILL its EngineCore process): the batch fails fast, Ray
restarts the generator with a fresh engine and retries the batch; nothing hangs, no row is lost.
The engine runs in its own processes here (generation.engine_process=separate, as on a GPU), which is
the path the watchdog guards. On a CPU it runs inside the generator by default; the death of that
inline engine is not tested here."""

import json
import signal
import subprocess
import time

import psutil
import pytest
from conftest import SAMPLE

pytestmark = pytest.mark.slow


def _engine_cores() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if "EngineCore" in (p.info["name"] or "") or "EngineCore" in " ".join(p.info["cmdline"] or []):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def _cpu_s(p: psutil.Process) -> float:
    total = 0.0
    for q in [p, *p.children(recursive=True)]:
        try:
            total += sum(q.cpu_times()[:2])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def test_engine_killed_mid_generation_is_retried(tmp_path, env, shopgen_bin):
    # Enough work that the engine is still generating well after its start-up.
    products = [json.loads(l) for l in SAMPLE.read_text().splitlines()[:12]]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(p) for p in products) + "\n")
    before = {p.pid for p in _engine_cores()}
    # Three attempts (the suite's default is one): most texts fail the gate, so the engine keeps working.
    proc = subprocess.Popen([shopgen_bin, "generate", "--catalog", str(tmp_path / "c.jsonl"), "--out",
                             str(tmp_path / "out"), "--content", "description,bullets"],
                            env={**env, "SHOPGEN_GENERATION__MAX_ATTEMPTS": "3",
                                 "SHOPGEN_GENERATION__ENGINE_PROCESS": "separate"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, victim = time.time() + 300, None
        while time.time() < deadline and victim is None and proc.poll() is None:
            cores = [p for p in _engine_cores() if p.pid not in before]
            # generating once the engine has burned CPU beyond its start-up; the model runs in the
            # engine core's worker process (VLLM::Worker), so its children's CPU counts too
            if cores and _cpu_s(cores[0]) > 45:
                victim = cores[0]
            time.sleep(0.5)
        assert victim is not None, "engine never reached generation"
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:  # SIGINT lets the driver shut its local Ray down
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert proc.returncode == 0, err[-4000:]
    assert "vLLM engine died" in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    c = report["counts"]
    assert c["enriched"] == len(products)  # every product kept, whatever its copy did
    # Well inside the 600 s that communicate() allows: the watchdog turns the death into a fast restart.
    assert time.time() - killed_at < 300
