"""The vLLM engine dies mid-run (we SIGKILL its EngineCore process): the batch fails fast, Ray
restarts the generator with a fresh engine and retries the batch; nothing hangs, no row is lost.
The engine runs in its own processes here (generation.engine_process=separate, as on a GPU), which is
the path the watchdog guards. On a CPU it runs inside the generator by default; the death of that
inline engine is not tested here."""

import json
import signal
import subprocess
import threading
import time

import psutil
import pytest
from conftest import SAMPLE

pytestmark = pytest.mark.slow


def _engine_cores(root: int) -> list[psutil.Process]:
    """The EngineCore processes under the driver (its local Ray's workers): never another run's."""
    out = []
    try:
        procs = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        try:
            if "EngineCore" in p.name() or "EngineCore" in " ".join(p.cmdline()):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _drain(stream, lines: list[str]) -> threading.Thread:
    """Read a pipe as it fills, so the driver never blocks on a full one while the test polls."""
    def read():
        for line in stream:
            lines.append(line)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def test_engine_killed_mid_generation_is_retried(tmp_path, env, shopgen_bin):
    products = [json.loads(l) for l in SAMPLE.read_text().splitlines()[:6]]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(p) for p in products) + "\n")
    out = tmp_path / "out"
    # Three batches of 2 products, one description each (long enough texts that the engine is still busy):
    # once the first batch reaches the driver, the engine has started and is on the next ones. (Its CPU time said so on an idle machine; under the other xdist worker's load the
    # engine was still starting when it was killed. With two batches, both had finished by then.)
    proc = subprocess.Popen([shopgen_bin, "generate", "--catalog", str(tmp_path / "c.jsonl"), "--out", str(out),
                             "--content", "description"],
                            env={**env, "SHOPGEN_GENERATION__MAX_ATTEMPTS": "1", "SHOPGEN_GENERATION__BATCH_SIZE": "2",
                                 "SHOPGEN_GENERATION__ENGINE_PROCESS": "separate"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    readers = [_drain(proc.stderr, err_lines), _drain(proc.stdout, [])]
    try:
        deadline, victim = time.time() + 600, None
        while time.time() < deadline and victim is None and proc.poll() is None:
            cores = _engine_cores(proc.pid)
            if cores and (out / "stages" / "generated" / "part-00000.parquet").exists():
                victim = cores[0]
            time.sleep(0.2)
        assert victim is not None, "the engine never finished a batch"
        generator = victim.parent()  # the Ray actor that runs the engine (and its watchdog)
        assert generator is not None and generator.pid != proc.pid
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        # The watchdog's job: the generator notices the death and exits within seconds (Ray then
        # restarts it with a fresh engine), instead of waiting on a dead engine for ever.
        while _alive(generator) and time.time() - killed_at < 60:
            time.sleep(0.2)
        exited_after = time.time() - killed_at
        proc.wait(timeout=900)
        for r in readers:
            r.join(timeout=30)
    finally:
        if proc.poll() is None:  # SIGINT lets the driver shut its local Ray down
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    err = "".join(err_lines)
    assert proc.returncode == 0, err[-4000:]
    assert "vLLM engine died" in err
    # Regenerating the batch afterwards takes as long as the cores allow (the other xdist worker shares them).
    assert exited_after < 30, f"the generator was still alive {exited_after:.0f}s after its engine died"
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    c = report["counts"]
    assert c["enriched"] == len(products)  # every product kept, whatever its copy did
