"""The run lock: one nightly run at a time per state prefix and alias; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any

from shopgen.state.store import StateStore, now_iso


class LockedError(RuntimeError):
    pass


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


class Lock:
    """One run at a time per state prefix (= per alias). Created with a conditional write; kept
    fresh by a heartbeat thread; stale when its TTL passed or its process on this host is gone."""

    NAME = "lock.json"

    def __init__(self, store: StateStore, owner: dict[str, Any], ttl_s: float = 900.0,
                 echo=lambda s: None):
        self.store, self.ttl, self.echo = store, ttl_s, echo
        self.owner = {**owner, "host": socket.gethostname(), "pid": os.getpid()}
        self.token: str | None = None
        self.lost = False
        self.beat_at = 0.0  # monotonic time of the last successful write of the lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        now = time.time()
        return json.dumps({**self.owner, "acquired_at": self.owner.get("acquired_at") or now_iso(),
                           "heartbeat_at": now_iso(), "expires_at_epoch": now + self.ttl,
                           "expires_at": datetime.fromtimestamp(now + self.ttl, timezone.utc).isoformat()}).encode()

    def holder(self) -> dict[str, Any] | None:
        cur = self.store.token(self.NAME)
        return None if cur is None else {**json.loads(cur[0]), "_token": cur[1]}

    @staticmethod
    def stale_reason(h: dict[str, Any], now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        if h.get("expires_at_epoch", 0) < now:
            return f"its TTL ran out at {h.get('expires_at')}"
        if h.get("host") == socket.gethostname() and isinstance(h.get("pid"), int) and not _pid_alive(h["pid"]):
            return f"its process {h['pid']} on this host is gone"
        return None

    def acquire(self, force: bool = False) -> dict[str, Any] | None:
        """Takes the lock; returns the previous holder when it took over a stale or forced lock."""
        self.owner["acquired_at"] = now_iso()
        taken = None
        for _ in range(3):
            self.token = self.store.create_exclusive(self.NAME, self._body())
            if self.token:
                break
            h = self.holder()
            if h is None:
                continue  # released in between: try again
            why = "--force-unlock" if force else self.stale_reason(h)
            if why is None:
                raise LockedError(
                    f"another nightly run holds the lock {self.store.uri(self.NAME)}: run {h.get('run_id')} "
                    f"(catalog {h.get('catalog')}, alias {h.get('alias')}) on {h.get('host')} pid {h.get('pid')}, "
                    f"started {h.get('acquired_at')}, last heartbeat {h.get('heartbeat_at')}, expires "
                    f"{h.get('expires_at')}. Wait for it, or clear it with --force-unlock if it is dead.")
            self.echo(f"taking over the lock of run {h.get('run_id')} ({why})")
            self.token = self.store.replace_if(self.NAME, self._body(), h["_token"])
            if self.token:
                taken = {k: v for k, v in h.items() if k != "_token"}
                break
        if not self.token:
            raise LockedError(f"could not take the lock {self.store.uri(self.NAME)}: another run raced for it")
        self.beat_at = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name="shopgen-lock-heartbeat", daemon=True)
        self._thread.start()
        return taken

    def _beat(self) -> None:
        while not self._stop.wait(max(1.0, self.ttl / 3)):
            try:
                tok = self.store.replace_if(self.NAME, self._body(), self.token) if self.token else None
            except Exception as e:  # a flaky store: try again next beat; check() stops the run if it lasts
                self.echo(f"[yellow]lock heartbeat failed ({type(e).__name__}: {e}); retrying[/]")
                continue
            if tok is None:
                self.lost = True
                self.echo("[red]lost the nightly lock: another run took it over[/]")
                return
            self.token, self.beat_at = tok, time.monotonic()

    def check(self) -> None:
        """Raises when another run may hold the lock by now: taken over, or not renewed for a TTL."""
        if self.lost:
            raise LockedError("another run took over this run's lock; stopping before writing more state")
        if self.token and time.monotonic() - self.beat_at > self.ttl:
            raise LockedError(f"this run's lock was not renewed for {self.ttl:.0f}s (nightly.lock_ttl_s), so "
                              "another run may hold it; stopping before writing more state")

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        cur = self.store.token(self.NAME)
        if cur is not None and self.token and cur[1] == self.token:
            self.store.delete(self.NAME)
        self.token = None

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def force_unlock(store: StateStore) -> dict[str, Any] | None:
    """Deletes the lock whoever holds it; returns what it said."""
    cur = store.token(Lock.NAME)
    if cur is None:
        return None
    store.delete(Lock.NAME)
    return json.loads(cur[0])
