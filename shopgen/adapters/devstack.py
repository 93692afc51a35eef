"""The embedded local stack: a noida-db Elasticsearch-API server on 127.0.0.1, data under <home>/es.

We start the noida-db binary itself in its own session and stop it by its recorded pid; the
`noida-db` console script is a wrapper whose death would leave the binary running."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _state_file(home: Path) -> Path:
    return Path(home) / "es" / "server.json"


def binary() -> Path:
    spec = importlib.util.find_spec("noida_db")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("noida-db is not installed; run `make setup` (or pip install 'shopgen[local]')")
    return Path(list(spec.submodule_search_locations)[0]) / "noida-db"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie child of ours: reap it
            _reap(pid)
            return False
        return "noida" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


def status(home: Path) -> dict[str, Any]:
    f = _state_file(home)
    if not f.exists():
        return {"running": False}
    st = json.loads(f.read_text())
    st["running"] = _alive(st["pid"])
    st["reachable"] = st["running"] and _reachable(st["url"])
    return st


def up(home: Path, timeout: float = 60.0) -> dict[str, Any]:
    st = status(home)
    if st.get("running") and st.get("reachable"):
        return st
    if st.get("running"):  # alive but not answering: restart it
        down(home)
    es_dir = Path(home).resolve() / "es"
    (es_dir / "data").mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(es_dir / "server.log", "ab")
    cmd = [str(binary()), "start", "--only", "elasticsearch", "--elasticsearch-port", str(port),
           "--data-dir", str(es_dir / "data"), "--host", "127.0.0.1"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{port}"
    st = {"pid": proc.pid, "port": port, "url": url, "data_dir": str(es_dir / "data"),
          "log": str(es_dir / "server.log"), "started_at": time.time()}
    _state_file(home).write_text(json.dumps(st))
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"noida-db exited with code {proc.returncode}; see {st['log']}")
        if _reachable(url):
            return {**st, "running": True, "reachable": True}
        time.sleep(0.2)
    down(home)
    raise RuntimeError(f"noida-db did not answer on {url} within {timeout:.0f}s; see {st['log']}")


def down(home: Path, timeout: float = 10.0) -> bool:
    """Stop the server by its pid. Returns False when none was running."""
    f = _state_file(home)
    if not f.exists():
        return False
    pid = json.loads(f.read_text())["pid"]
    was = _alive(pid)
    if was:
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline and _alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            _reap(pid)
    f.unlink(missing_ok=True)
    return was


def ensure(home: Path, echo: Callable[[str], None] = print) -> str:
    """URL of the embedded server, starting it (and saying so) when it is not running."""
    st = status(home)
    if st.get("running") and st.get("reachable"):
        return st["url"]
    echo("embedded Elasticsearch-API server (noida-db) is not running: starting it")
    st = up(home)
    echo(f"embedded server up at {st['url']} (pid {st['pid']}); stop it with `shopgen dev down`")
    return st["url"]
