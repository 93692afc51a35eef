"""Real Ray nodes for tests: `ray start --block` processes on loopback, each stopped by its own tree
(`ray stop` would stop every Ray of this user)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    e = {k: v for k, v in env.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    # The venv's python first, and no drain on SIGTERM: nothing to save.
    e.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}", RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")
    with log.open("wb") as out:
        return subprocess.Popen([str(RAY), "start", "--block", "--disable-usage-stats", *args], env=e, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_nodes(address: str, n: int, procs: list[subprocess.Popen], logs: list[Path], env: dict[str, str],
               timeout: float = 120) -> list[dict]:
    """Polls the cluster (from a short-lived driver process) until it has n alive nodes; their records."""
    import json

    probe = ("import json, ray; ray.init(address=%r, logging_level='ERROR'); "
             "print(json.dumps([{'id': x['NodeID'], 'resources': x['Resources']} for x in ray.nodes() if x['Alive']]))"
             % address)
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p, log in zip(procs, logs):
            if p.poll() is not None:
                raise RuntimeError(f"ray start exited with {p.returncode}:\n{log.read_text()[-3000:]}")
        r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                           env={k: v for k, v in env.items() if k != "RAY_ADDRESS"})
        if r.returncode == 0:
            nodes = json.loads(r.stdout.strip().splitlines()[-1])
            if len(nodes) >= n:
                return nodes
        time.sleep(1)
    raise RuntimeError(f"the cluster did not reach {n} nodes within {timeout:.0f}s: {r.stderr[-2000:]}")


def stop_tree(proc: subprocess.Popen) -> None:
    """SIGTERM to `ray start --block`, which shuts its node down, then SIGKILL whatever is left."""
    import psutil

    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    _, alive = psutil.wait_procs(tree, timeout=20)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the node's session group: stragglers that were reparented
