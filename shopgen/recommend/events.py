"""Shopper behaviour events: validation (pure), the salted hash that replaces personal ids, and a
streamed reader over a file, a folder or an s3:// prefix.

A row is `session_id`, an optional `user_id`, `sku`, `event` (view, click, cart, purchase or one of
recommend.event_aliases) and `ts` (ISO-8601, naive = UTC, or epoch seconds or milliseconds). A bad
row is set aside with a reason; its ids are hashed there too, so quarantine.jsonl never holds them."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shopgen.adapters.storage import input_files
from shopgen.catalog.load import READERS, RawRow, read_catalog
from shopgen.core.config import EVENT_KINDS, RecommendConfig, S3Config, Settings
from shopgen.core.records import Quarantined

MAX_ID_CHARS = 256
MAX_SKU_CHARS = 200
# Events before this are taken for a broken clock or a unit mix-up (seconds read as milliseconds).
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp()
FUTURE_SLACK_S = 86400.0
KIND_ORDER = {k: i for i, k in enumerate(EVENT_KINDS)}


@dataclass(frozen=True, slots=True)
class Event:
    session: str  # salted hash of session_id
    user: str | None  # salted hash of user_id
    sku: str
    kind: str  # view | click | cart | purchase
    ts: float  # epoch seconds, UTC


def hash_id(key: bytes, value: str) -> str:
    """A keyed hash (HMAC-SHA256, 16 hex digits): stable for one key, not reversible by guessing ids."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def salt_key(settings: Settings) -> bytes:
    """recommend.id_salt, or a random key made once under <home>/secrets and kept there (0600)."""
    if settings.recommend.id_salt is not None:
        return settings.recommend.id_salt.get_secret_value().encode("utf-8")
    path = Path(settings.home) / "secrets" / "recommend_id_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def _text(v: Any, name: str, limit: int, required: bool = True) -> tuple[str | None, str | None]:
    """(value, None) or (None, reason)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None, (f"missing or empty {name}" if required else None)
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        return None, f"wrong type for {name}: {type(v).__name__}"
    s = str(v).strip()
    if len(s) > limit:
        return None, f"oversize {name}: {len(s)} chars > {limit}"
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in s):
        return None, f"control characters in {name}"
    return s, None


def parse_ts(v: Any, now: float) -> tuple[float | None, str | None]:
    if v is None or v == "":
        return None, "missing ts"
    if isinstance(v, bool):
        return None, "wrong type for ts: bool"
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            return None, "ts is not a finite number"
        t = float(v) / 1000.0 if abs(v) > 1e11 else float(v)  # milliseconds
    elif isinstance(v, datetime):
        t = (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).timestamp()
    elif isinstance(v, str):
        s = v.strip()
        try:
            t = float(s)
            t = t / 1000.0 if abs(t) > 1e11 else t
        except ValueError:
            try:
                d = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                return None, f"ts is not ISO-8601 or epoch seconds: {s[:40]!r}"
            t = (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).timestamp()
        if not math.isfinite(t):
            return None, "ts is not a finite number"
    else:
        return None, f"wrong type for ts: {type(v).__name__}"
    if t < EARLIEST:
        return None, "ts before 2000-01-01"
    if t > now + FUTURE_SLACK_S:
        return None, "ts in the future"
    return t, None


def parse_event(data: dict[str, Any], cfg: RecommendConfig, key: bytes, now: float) -> Event | str:
    """One row -> an Event, or the reason it is set aside."""
    session, why = _text(data.get("session_id"), "session_id", MAX_ID_CHARS)
    if why:
        return why
    user, why = _text(data.get("user_id"), "user_id", MAX_ID_CHARS, required=False)
    if why:
        return why
    sku, why = _text(data.get("sku"), "sku", MAX_SKU_CHARS)
    if why:
        return why
    raw_kind = data.get("event")
    if not isinstance(raw_kind, str) or not raw_kind.strip():
        return "missing or empty event"
    kind = raw_kind.strip().lower()
    kind = kind if kind in KIND_ORDER else cfg.event_aliases.get(kind, "")
    if not kind:
        return f"unknown event {raw_kind.strip()[:40]!r}: use {', '.join(EVENT_KINDS)} or recommend.event_aliases"
    ts, why = parse_ts(data.get("ts"), now)
    if why:
        return why
    return Event(hash_id(key, session), hash_id(key, user) if user else None, sku, kind, ts)


def _private(raw: Any, key: bytes) -> Any:
    """A bad row as it may be kept: session_id and user_id hashed, the rest as read. A line that did
    not parse could hold ids anywhere: only its size and digest are kept (source and line point to it)."""
    if not isinstance(raw, dict):
        text = raw if isinstance(raw, str) else json.dumps(raw, default=str)
        return {"unparsed_chars": len(text), "sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()}
    out = dict(raw)
    for k in ("session_id", "user_id"):
        if out.get(k) not in (None, ""):
            out[k] = "hash:" + hash_id(key, str(out[k]))
    return out


def validate_events(rows: Iterable[RawRow], cfg: RecommendConfig, key: bytes,
                    now: float | None = None) -> Iterator[Event | Quarantined]:
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    for r in rows:
        if r.data is None:
            yield Quarantined(stage="events", reason=r.error or "unreadable row", source=r.source, line=r.line,
                              raw=_private(r.raw, key))
            continue
        ev = parse_event(r.data, cfg, key, now)
        if isinstance(ev, str):
            sku = r.data.get("sku") if isinstance(r.data.get("sku"), str) else None
            yield Quarantined(stage="events", reason=ev, sku=sku, source=r.source, line=r.line,
                              raw=_private(r.data, key))
        else:
            yield ev


def event_files(uri: str, s3: S3Config | None = None) -> list[str]:
    """The readable files behind a file, a folder or an s3:// prefix, in name order."""
    return input_files(uri, s3, tuple(READERS), what="events")


def read_events(uri: str, settings: Settings, now: float | None = None) -> Iterator[Event | Quarantined]:
    """Every event of a file, folder or prefix, streamed a block at a time: never the whole log."""
    key = salt_key(settings)
    for f in event_files(uri, settings.s3):
        yield from validate_events(read_catalog(f, settings.s3), settings.recommend, key, now)
