"""Runs last (file order): after the real-stack modules tore down, nothing of theirs may remain."""

import time

from conftest import PREEXISTING, matching_processes


def test_no_orphaned_server_ray_or_vllm_processes():
    deadline = time.time() + 30
    left = {}
    while time.time() < deadline:
        left = {pid: cmd for pid, cmd in matching_processes().items() if pid not in PREEXISTING}
        if not left:
            break
        time.sleep(1)
    assert not left, f"orphaned processes: {left}"
