"""`shopgen serve answers`: a Ray Serve deployment that keeps one answering engine warm and answers
POST /answer ({"question", "sku"?, "locale"?, "id"?} in, an Answer out). Concurrent requests are
batched into one engine call (serve.batch); a request beyond `answers.serve_max_queued` waiting ones
gets a 503 from Serve, a malformed one a 4xx with its reason."""

from __future__ import annotations

import json
import time
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from shopgen.answers.ondemand import MAX_BODY_BYTES, OnDemand, parse_request
from shopgen.core.config import Settings
from shopgen.core.questions import Question


class AnswerService:
    def __init__(self, settings: Settings, alias: str):
        self.od = OnDemand(settings, alias)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _answer(self, questions: list[Question]) -> list[dict[str, Any]]:
        return [a.model_dump() for a in self.od.answer(questions)]

    async def __call__(self, request: Request) -> JSONResponse:
        path = request.url.path.rstrip("/")
        if path == "/healthz":
            return JSONResponse({"ok": True})
        if path != "/answer":
            return JSONResponse({"error": f"no such endpoint {path or '/'}; POST /answer"}, status_code=404)
        if request.method != "POST":
            return JSONResponse({"error": "use POST"}, status_code=405)
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return JSONResponse({"error": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            q = parse_request(await request.body())
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        try:
            return JSONResponse(await self._answer(q))
        except Exception as e:  # the index or the engine: the request fails, the service stays up
            return JSONResponse({"error": f"could not answer: {type(e).__name__}"}, status_code=503)


def deployment(settings: Settings) -> Any:
    a = settings.answers
    return serve.deployment(AnswerService, name="answers", max_ongoing_requests=a.serve_max_ongoing,
                            max_queued_requests=a.serve_max_queued, ray_actor_options={"num_cpus": 1})


def run(settings: Settings, alias: str, host: str, port: int, ready: Any = None) -> None:
    """Starts the deployment over HTTP on host:port and serves until interrupted."""
    serve.start(http_options={"host": host, "port": port})
    app = deployment(settings).bind(settings, alias)
    serve.run(app, name="answers", route_prefix="/", blocking=False)
    if ready is not None:
        ready(f"http://{host}:{port}")
    try:
        while True:
            time.sleep(1)
    finally:
        serve.shutdown()


def post(url: str, body: dict[str, Any], timeout: float = 120.0) -> tuple[int, dict[str, Any]]:
    """POST /answer on a running service: (HTTP status, JSON body)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url.rstrip("/") + "/answer", data=json.dumps(body).encode("utf-8"),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {"error": e.reason}
    except ValueError as e:
        raise ValueError(f"the service's reply is not JSON ({e})") from None


def wait_until_up(url: str, body: dict[str, Any], proc: Any, timeout: float = 600.0) -> dict[str, Any]:
    """Polls POST /answer on a `shopgen serve answers` process until it answers 200 (the engine takes
    a while to start); the first answer. Raises RuntimeError when the process dies or time runs out."""
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"serve answers exited with {proc.returncode}")
        try:
            code, out = post(url, body, timeout=120)
            if code == 200:
                return out
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError("serve answers did not come up")
        time.sleep(3)


def stop(proc: Any, timeout: float = 60.0) -> None:
    """Stops a `shopgen serve answers` process as Ctrl-C does (Serve shuts down), killing it if it hangs."""
    import signal
    import subprocess

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
