"""Writes documents into a new versioned index and swaps the alias atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError, helpers

from indexing.docs import es_doc
from indexing.mapping import index_body
from shopgen.config import ESConfig


def new_index_name(alias: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{alias}-{now:%Y%m%d-%H%M%S-%f}"


def create_index(es: Elasticsearch, name: str, dims: int) -> None:
    body = index_body(dims)
    es.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])


@dataclass
class BulkResult:
    ok: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def bulk_index(es: Elasticsearch, index: str, rows: Iterable[dict[str, Any]], cfg: ESConfig,
               progress: Callable[[int], None] | None = None) -> BulkResult:
    """streaming_bulk with explicit _ids; 429s are retried with backoff by the helper, transport
    errors (502/503/504, connection) by the client; what still fails is captured per item."""
    now = datetime.now(timezone.utc).isoformat()
    actions = ({"_index": index, "_id": r["sku"], "_source": es_doc(r, now)} for r in rows)
    res = BulkResult()
    for ok, item in helpers.streaming_bulk(
        es, actions, chunk_size=cfg.bulk_chunk_docs, max_chunk_bytes=cfg.bulk_chunk_bytes,
        max_retries=cfg.bulk_max_retries, initial_backoff=cfg.bulk_initial_backoff, max_backoff=60,
        raise_on_error=False, raise_on_exception=False, yield_ok=True,
    ):
        info = next(iter(item.values()))
        if ok:
            res.ok += 1
        else:
            err = info.get("error")
            res.errors.append({"sku": info.get("_id"), "status": info.get("status"),
                               "reason": err if isinstance(err, str) else (err or {}).get("reason") or str(err)})
        if progress:
            progress(1)
    es.indices.refresh(index=index)
    return res


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


def prune_indices(es: Elasticsearch, alias: str, keep: int) -> list[str]:
    """Delete all but the newest `keep` versioned indices of alias that the alias does not use."""
    live = set(alias_targets(es, alias))
    names = sorted(es.indices.get(index=f"{alias}-*", expand_wildcards="open").keys(), reverse=True)
    doomed = [n for n in names[keep:] if n not in live]
    for n in doomed:
        es.indices.delete(index=n)
    return doomed
