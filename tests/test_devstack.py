"""`shopgen dev up|status|down` against the real noida-db binary."""

import json
import subprocess

import psutil


def test_dev_up_status_down(tmp_path, shopgen_bin):
    import os

    env = {**os.environ, "SHOPGEN_HOME": str(tmp_path)}

    def sg(*args):
        p = subprocess.run([shopgen_bin, "dev", *args], env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert "not running" in sg("status")
    assert "running at http://127.0.0.1:" in sg("up")
    st = json.loads(sg("status", "--json"))
    assert st["running"] and st["reachable"] and st["url"].startswith("http://127.0.0.1:")
    assert (tmp_path / "es" / "server.json").exists() and str(tmp_path) in st["data_dir"]
    assert "running at" in sg("up")  # idempotent: same server
    assert json.loads(sg("status", "--json"))["pid"] == st["pid"]
    assert "stopped" in sg("down")
    assert not psutil.pid_exists(st["pid"]) or psutil.Process(st["pid"]).status() == psutil.STATUS_ZOMBIE
    assert "not running" in sg("down")
