"""The quiet console: library chatter (anything written to file descriptor 2, from Python or C) goes
to the run's logs/console.log while the run's own console still reaches the terminal; --verbose
(SHOPGEN_VERBOSE=1) redirects nothing; progress in a log is a few lines per stage. The real nightly's
console: tests/test_e2e.py."""

import io
import os
import sys

from rich.console import Console

from shopgen.core.logs import VERBOSE_ENV, quiet
from shopgen.core.run import StageProgress


def test_chatter_goes_to_the_log_and_the_console_to_the_terminal(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    console = Console(stderr=True, force_terminal=False)
    with quiet(tmp_path / "logs", console):
        os.write(2, b"[E core_worker.cc] C-level chatter\n")
        print("RayDeprecationWarning: python-level chatter", file=sys.stderr, flush=True)
        console.print("generate done in 1.0s rows=3")
    console.print("after the run")
    err = capfd.readouterr().err
    log = (tmp_path / "logs" / "console.log").read_text()
    assert "generate done in 1.0s rows=3" in err and "after the run" in err
    assert "chatter" not in err and "C-level chatter" in log and "python-level chatter" in log
    os.write(2, b"fd 2 is back\n")
    assert "fd 2 is back" in capfd.readouterr().err


def test_verbose_redirects_nothing(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with quiet(tmp_path / "logs", Console(stderr=True)):
        os.write(2, b"vllm WARNING shown\n")
    assert "vllm WARNING shown" in capfd.readouterr().err
    assert not (tmp_path / "logs" / "console.log").exists()


def test_progress_in_a_log_is_at_most_ten_lines_a_stage():
    buf = io.StringIO()
    with StageProgress(Console(file=buf, width=120), "generate", 1000, every_s=0.0) as p:
        for _ in range(1000):
            p.advance(1, tokens=25)
    lines = buf.getvalue().splitlines()
    assert 1 <= len(lines) <= 10 and all("tok/s" in x and "ETA" in x for x in lines), lines
    assert lines[0].startswith("generate: 100/1000 products")


def test_a_worker_warning_from_the_ray_logs_reaches_the_console(tmp_path, capfd, monkeypatch):
    """An engine death is written by the generator actor (a Ray worker) to its own log, which the run
    keeps under logs/ray/; its shopgen: line is shown on the console, Ray's chatter is not."""
    from shopgen.core.logs import keep_ray_logs

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    session = tmp_path / "session"
    (session / "logs").mkdir(parents=True)
    (session / "logs" / "worker-abc-01000000-4242.err").write_text(
        "INFO worker.py: Task started\nshopgen: vLLM engine died (engine process(es) [7] exited); restarting "
        "the generator and retrying its batch [retry]\n")
    console = Console(stderr=True)
    with quiet(tmp_path / "logs", console):
        keep_ray_logs(str(session))
    err = capfd.readouterr().err
    assert "warning (Ray worker 4242): vLLM engine died" in err and "[retry]" in err and "Task started" not in err
    assert (tmp_path / "logs" / "ray" / "worker-abc-01000000-4242.err").exists()
