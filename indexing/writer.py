"""The bulk writer and alias operations. Bulk windows are retried with exponential backoff on
429/502/503/504 and connection errors; what still fails is captured per item, never dropped."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, SerializationError, TransportError, helpers

from shopgen.core.config import ESConfig

RETRYABLE = {429, 502, 503, 504}


def new_index_name(alias: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{alias}-{now:%Y%m%d-%H%M%S-%f}"


def is_versioned(alias: str, name: str) -> bool:
    """True for indices shopgen built for this alias (not for `products-eu-...` of alias `products`)."""
    return re.fullmatch(rf"{re.escape(alias)}-\d{{8}}-\d{{6}}-\d{{6}}", name) is not None


@dataclass
class BulkResult:
    ok: int = 0            # indexed or deleted
    skipped: int = 0       # external-version conflicts: the index already holds this or a newer version
    retries: int = 0       # windows re-sent after a retryable failure
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.ok + self.skipped + len(self.errors)


def _windows(it: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(it)
    while window := list(islice(it, size)):
        yield window


def _reason(info: dict[str, Any]) -> str:
    err = info.get("error")
    if isinstance(err, dict):
        return f"{err.get('type', 'error')}: {err.get('reason') or err}"
    return str(err) if err is not None else str(info.get("result"))


def _serializable(es: Elasticsearch, action: dict[str, Any]) -> bool:
    try:
        es.transport.serializers.get_serializer("application/json").dumps(action.get("_source", {}))
        return True
    except SerializationError:
        return False


def _send(es: Elasticsearch, actions: list[dict[str, Any]], cfg: ESConfig, res: BulkResult,
          progress: Callable[[int], None] | None, resent: set[str]) -> tuple[list[dict[str, Any]], str]:
    """One pass over a window: returns the actions to retry and the last retryable reason.
    `resent` holds the _ids sent before: a version conflict on one of those is our own earlier write."""
    retry: list[dict[str, Any]] = []
    last, done = "", 0
    try:
        # Results come back in action order (chunk by chunk), so position i is actions[i].
        for i, (ok, item) in enumerate(helpers.streaming_bulk(
            es, actions, chunk_size=cfg.bulk_chunk_docs, max_chunk_bytes=cfg.bulk_chunk_bytes, max_retries=0,
            raise_on_error=False, raise_on_exception=False, yield_ok=True,
        )):
            done = i + 1
            op, info = next(iter(item.items()))
            status, action = info.get("status"), actions[i]
            if ok or (op == "delete" and status == 404):
                res.ok += 1
            elif status == 409 and action.get("version_type") == "external":
                if action["_id"] in resent:
                    res.ok += 1
                else:
                    res.skipped += 1
            elif status in RETRYABLE or not isinstance(status, int):
                # The cluster pushes back: stop sending and re-send the rest after a backoff. Ops
                # carry explicit _ids, so re-sending one that landed is harmless.
                retry.extend(actions[i:])
                last = f"{status}: {_reason(info)}"
                break
            else:
                res.errors.append({"sku": info.get("_id"), "op": op, "status": status, "reason": _reason(info)})
            if progress:
                progress(1)
    except SerializationError:  # a doc that cannot be JSON: only it fails, the rest goes again
        for a in actions[done:]:
            if _serializable(es, a):
                retry.append(a)
            else:
                res.errors.append({"sku": a["_id"], "op": a.get("_op_type", "index"), "status": "serialization",
                                   "reason": "the document cannot be serialized to JSON"})
                if progress:
                    progress(1)
        last = "serialization error"
    except (TransportError, ApiError) as e:  # connection refused/reset, timeouts: the rest of the window
        retry.extend(actions[done:])
        last = f"{type(e).__name__}: {e}"
    return retry, last


def bulk_write(es: Elasticsearch, actions: Iterable[dict[str, Any]], cfg: ESConfig,
               progress: Callable[[int], None] | None = None,
               sleep: Callable[[float], None] = time.sleep) -> BulkResult:
    """streaming_bulk over bounded windows; each window is retried until every action either
    landed or failed for a reason retrying cannot fix, or the retries ran out."""
    # Our backoff owns every retry; the client's own are immediate. A retried window still goes to
    # another node when the pool has marked this one dead.
    es = es.options(max_retries=0)
    res = BulkResult()
    for window in _windows(actions, cfg.bulk_chunk_docs * 4):
        resent: set[str] = set()
        pending, last = _send(es, window, cfg, res, progress, resent)
        attempt = 0
        while pending and attempt < cfg.bulk_max_retries:
            attempt += 1
            res.retries += 1
            sleep(min(cfg.bulk_initial_backoff * 2 ** (attempt - 1), cfg.bulk_max_backoff))
            resent.update(a["_id"] for a in pending)
            pending, last = _send(es, pending, cfg, res, progress, resent)
        for a in pending:
            res.errors.append({"sku": a["_id"], "op": a.get("_op_type", "index"), "status": "gave_up",
                               "reason": f"gave up after {attempt} retries: {last}"})
            if progress:
                progress(1)
    return res


def index_actions(index: str, docs: Iterable[dict[str, Any]], version: Callable[[dict[str, Any]], int] | None = None
                  ) -> Iterator[dict[str, Any]]:
    """Index ops with explicit _ids (the SKU); with `version`, external versioning (upsert if newer)."""
    for d in docs:
        a = {"_op_type": "index", "_index": index, "_id": d["sku"], "_source": d}
        if version is not None:
            a.update(version=version(d), version_type="external")
        yield a


def delete_actions(index: str, skus: Iterable[str], version: int) -> Iterator[dict[str, Any]]:
    for s in skus:
        yield {"_op_type": "delete", "_index": index, "_id": s, "version": version, "version_type": "external"}


def alias_targets(es: Elasticsearch, alias: str) -> list[str]:
    try:
        return sorted(es.indices.get_alias(name=alias).keys())
    except NotFoundError:
        return []


def swap_alias(es: Elasticsearch, alias: str, new_index: str) -> list[str]:
    """Point alias at new_index in one atomic update_aliases call; returns the indices it left."""
    if es.indices.exists(index=alias) and not alias_targets(es, alias):
        raise RuntimeError(f"{alias!r} is a concrete index, not an alias; rename or delete it first")
    old = [i for i in alias_targets(es, alias) if i != new_index]
    actions = [{"remove": {"index": i, "alias": alias}} for i in old] + [{"add": {"index": new_index, "alias": alias}}]
    es.indices.update_aliases(actions=actions)
    return old


def versioned_indices(es: Elasticsearch, alias: str) -> list[str]:
    """This alias's versioned indices, newest first."""
    try:
        names = es.indices.get(index=f"{alias}-*", expand_wildcards="open").keys()
    except NotFoundError:
        return []
    return sorted((n for n in names if is_versioned(alias, n)), reverse=True)


def prune_indices(es: Elasticsearch, alias: str, keep: int, good: Callable[[str], bool] = lambda name: True
                  ) -> list[str]:
    """Keep the newest `keep` good indices of alias and the live one; failed builds (not `good`)
    go too, except those newer than the live index, kept for inspection."""
    live = set(alias_targets(es, alias))
    newest_live = max(live) if live else ""
    names = versioned_indices(es, alias)
    good_names = [n for n in names if good(n)]
    doomed = [n for n in names if n not in live and
              (n in good_names[keep:] or (n not in good_names and n < newest_live))]
    for n in doomed:
        es.indices.delete(index=n)
    return doomed
