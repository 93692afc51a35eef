"""Nightly state: what was generated for each SKU, committed output batches, and the run lock.

Layout under a state prefix (a folder or s3:// prefix), one per alias:
    skus.parquet                 one row per SKU of the last finished run (STATE_SCHEMA)
    journal/<batch>.json         manifest of a committed output batch not yet folded into skus.parquet
    outputs/gen/<batch>.parquet  generated rows (GENERATED_SCHEMA)
    outputs/emb/<run>.parquet    vectors computed by a run (embedding_hash, embedding)
    runs/<run_id>/               report.json, report.html, quarantine.jsonl
    lock.json                    the run lock

A batch is committed when its manifest exists (the Parquet is written first), so a run that dies
loses at most the batch in flight; the next run reuses every committed batch whose keys still match."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shopgen.adapters.storage import is_s3, resolve
from shopgen.core.config import ModelsConfig, S3Config

STATE_SCHEMA = pa.schema([
    ("sku", pa.string()),
    ("key", pa.string()),            # generation key: content hash x prompt version x model version x settings
    ("content_hash", pa.string()),
    ("prompt_version", pa.string()),
    ("model_version", pa.string()),
    ("status", pa.string()),         # ok: valid and indexed with what its copy has
    ("reason", pa.string()),         # the failure reasons of its copy, if any
    ("output_uri", pa.string()),     # the batch file holding its last generated row
    ("embedding_hash", pa.string()),
    ("embedding_uri", pa.string()),  # the file holding that vector
    ("embedding_model", pa.string()),
    ("doc_hash", pa.string()),       # fingerprint of the indexed document
    ("indexed_version", pa.string()),  # the index it was last written to
    ("run_id", pa.string()),         # the run that generated it
    ("copy", pa.string()),           # JSON: content type -> CopyEntry (per-type key, status, accepted text's file)
    # Every content type has accepted copy for `key`: while the key holds, the plan carries the row
    # as stored without parsing `copy` (null in states written before it: the plan parses them).
    ("fresh", pa.bool_()),
])


def generation_key(content_hash: str, prompt_version: str, model_version: str, settings_hash: str,
                   unsupported: str | None = None) -> str:
    """A type's key. `unsupported`: the product's language when the generator does not write it
    (models.generator_languages); such a product gets a key of its own, so lifting the limit later
    changes its key and it is generated. Products the generator writes keep the key they had."""
    blob = f"{content_hash}|{prompt_version}|{model_version}|{settings_hash}"
    if unsupported is not None:
        blob += f"|unsupported_language:{unsupported}"
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def settings_hash(content: Iterable[str], gen: dict[str, Any], banned: dict[str, list[str]],
                  extra: dict[str, Any] | None = None) -> str:
    """What else changes an output or its verdict: content types, sampling, the banned claims, and
    `extra` (a type's limits, claims, prompt mode)."""
    keep = {k: gen[k] for k in ("max_tokens", "temperature", "top_p", "repetition_penalty", "max_attempts",
                                "max_model_len", "feedback") if k in gen}
    blob = json.dumps({"content": sorted(content), "gen": keep, "banned": banned, **(extra or {})}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


COPY_STATUSES = ("fresh", "kept", "none")
UNSUPPORTED_LANGUAGE = ModelsConfig.UNSUPPORTED_LANGUAGE


@dataclass
class CopyPolicy:
    """How copy that failed is retried while the product is unchanged: the n-th retry is due
    2^(n-1) nights after the last failed attempt (1, 2, 4 ...; the wait capped at `nights`), at most
    `attempts` retries, and at most `budget` of the valid products (rounded up) retried per night."""

    attempts: int = 3  # retries after the first failed night, then it waits for the product to change
    nights: int = 7  # the longest wait between two retries
    budget: float = 0.05  # share of tonight's valid products whose failed copy may be retried
    always: bool = False  # nightly.retry_quarantined: every night, no backoff, no limit, no budget

    def slots(self, valid: int) -> int | None:
        """Products that may be retried tonight (None: no limit)."""
        return None if self.always else math.ceil(round(self.budget * valid, 9))

    def wait(self, failures: int) -> int:
        """Nights from the `failures`-th failed attempt to the next retry."""
        return min(2 ** max(0, failures - 1), self.nights)


def _night(run_id: str) -> str:
    return f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"


def _days(a: str, b: str) -> int:
    return (date.fromisoformat(b) - date.fromisoformat(a)).days


def last_failed(entry: dict[str, Any]) -> str | None:
    """The night of a type's last failed attempt. An entry written before `last_failed` existed
    was retried every night: its first failure plus one night per further failure."""
    if entry.get("last_failed"):
        return entry["last_failed"]
    first = entry.get("first_failed")
    if not first:
        return None
    return (date.fromisoformat(first) + timedelta(days=max(0, int(entry.get("failures") or 1) - 1))).isoformat()


def retry_status(entry: dict[str, Any], key: str, policy: CopyPolicy, night: str) -> str:
    """What tonight does with a type that has no accepted copy for `key` (budget aside):
    `new` (never attempted for this key: generated, not a retry), `due` (a retry whose wait is
    over), `wait` (backoff), `gave_up` (copy_retry_attempts retries used)."""
    if entry.get("attempt_key") != key:
        return "new"
    if policy.always:
        return "due"
    failures = max(1, int(entry.get("failures") or 0))
    if failures - 1 >= policy.attempts:
        return "gave_up"
    last = last_failed(entry) or night
    return "due" if _days(last, night) >= policy.wait(failures) else "wait"


def retry_due(entry: dict[str, Any], key: str, policy: CopyPolicy, night: str) -> bool:
    """Whether a type without accepted copy for `key` may be sent to the model tonight, before the
    night's retry budget (plan() applies it)."""
    return retry_status(entry, key, policy, night) in ("new", "due")


@dataclass
class Plan:
    """How tonight's products relate to the last finished run, per content type (pure; see plan())."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # facts (content hash) changed
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    regenerate: dict[str, list[str]] = field(default_factory=dict)  # sku -> content types sent to the LLM
    carried: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # sku -> type -> entry kept as is
    resumed: list[str] = field(default_factory=list)  # with a type reused from a dead run's committed batch
    retried: list[str] = field(default_factory=list)  # unchanged, with a type that failed before and is retried
    # Due retries over tonight's budget (carried as they are: retried on a later night, no attempt used).
    retry_deferred: list[str] = field(default_factory=list)
    retry_gave_up: list[str] = field(default_factory=list)  # with a type whose retries are used up
    retry_slots: int | None = None  # products the budget allowed to retry tonight (None: no limit)
    # In a language the generator does not write: not sent to the LLM, each type carried with the
    # reason unsupported_language (its last accepted text kept while its facts are unchanged).
    unsupported: list[str] = field(default_factory=list)
    previous: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # sku -> type -> last entry
    # Unchanged, same key, every type accepted (the state's `fresh`): carried as stored. Neither
    # `carried` nor `previous` holds them, so an unchanged catalog costs no parsed entries.
    settled: set[str] = field(default_factory=set)

    @property
    def reuse(self) -> list[str]:
        skip = set(self.regenerate) | set(self.unsupported)
        return [s for s in self.carried if s not in skip] + sorted(self.settled)

    def counts(self) -> dict[str, int]:
        return {"new": len(self.new), "changed": len(self.changed), "unchanged": len(self.unchanged),
                "deleted": len(self.deleted), "regenerated": len(self.regenerate), "reused": len(self.reuse),
                "resumed": len(self.resumed), "retried": len(self.retried),
                "retry_deferred": len(self.retry_deferred), "retry_gave_up": len(self.retry_gave_up),
                "unsupported_language": len(self.unsupported),
                "copy_requests": sum(map(len, self.regenerate.values()))}


def copy_entries(row: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return json.loads(row["copy"]) if row and row.get("copy") else {}


def plan(keys: dict[str, dict[str, str]], hashes: dict[str, str], previous: Mapping[str, dict[str, Any]],
         journal: dict[str, dict[str, Any]], run_id: str, full: bool = False, present: Iterable[str] = (),
         policy: CopyPolicy | None = None, unsupported: Iterable[str] = ()) -> Plan:
    """keys: sku -> content type -> tonight's generation key. hashes: sku -> content hash.
    previous: the last finished run's state rows (a StateRows or a dict). journal: rows committed
    by a run that did not finish (their `types` say what each batch produced). present: SKUs in the
    catalog that failed validation (kept, not deleted). unsupported: SKUs in a language the
    generator does not write (never sent to the LLM, --full included). A type is carried over when
    its accepted copy has tonight's key, or when it failed for tonight's key and its retry is not
    due, used up, or over tonight's budget (CopyPolicy); else it is regenerated."""
    policy = policy or CopyPolicy()
    night = _night(run_id)
    skip = set(unsupported)
    p = Plan()
    due: dict[str, list[str]] = {}
    cols = {c: column(previous, c) for c in ("content_hash", "key", "fresh")}
    for sku, tkeys in keys.items():
        h = cols["content_hash"].get(sku, _MISSING)
        (p.new if h is _MISSING else p.unchanged if h == hashes[sku] else p.changed).append(sku)
        if (not full and sku not in journal and sku not in skip and h == hashes[sku] and cols["fresh"].get(sku)
                and cols["key"].get(sku) == combined_key(tkeys)):
            p.settled.add(sku)
            continue
        entries = copy_entries(previous.get(sku))
        p.previous[sku] = entries
        if sku in skip:
            p.unsupported.append(sku)
            p.carried[sku] = {t: unsupported_entry(entries.get(t) or {}, k, hashes[sku])
                              for t, k in tkeys.items()}
            continue
        todo, carried, due[sku] = _plan_types(sku, tkeys, entries, journal.get(sku) or {}, full, policy, night, p)
        if todo:
            p.regenerate[sku] = todo
        p.carried[sku] = carried
    _budget(p, keys, {s: ts for s, ts in due.items() if ts}, policy, night)
    p.deleted = sorted(set(previous) - set(keys) - set(present))
    return p


_MISSING = object()


def _plan_types(sku: str, tkeys: dict[str, str], entries: dict[str, dict[str, Any]], done: dict[str, Any],
                full: bool, policy: CopyPolicy, night: str,
                p: Plan) -> tuple[list[str], dict[str, dict[str, Any]], list[str]]:
    """One product's content types: regenerated (todo), carried, and carried for now but due for a
    retry (due: the budget decides, in _budget)."""
    todo, carried, due = [], {}, []
    for t, k in tkeys.items():
        e = entries.get(t) or {}
        j = (done.get("types") or {}).get(t)
        if j is not None and j.get("attempt_key") == k:
            carried[t] = j
            if sku not in p.resumed:
                p.resumed.append(sku)
        elif full:
            todo.append(t)
        elif e.get("key") == k and e.get("status") == "fresh":
            carried[t] = e
        else:
            status = retry_status(e, k, policy, night)
            if status == "new":
                todo.append(t)
                continue
            carried[t] = e
            if status == "due":
                due.append(t)
            elif status == "gave_up" and sku not in p.retry_gave_up:
                p.retry_gave_up.append(sku)
    return todo, carried, due


def _budget(p: Plan, keys: dict[str, dict[str, str]], due: dict[str, list[str]], policy: CopyPolicy,
            night: str) -> None:
    """Tonight's retries: the due ones, products whose facts changed first (a changed product's
    keys are new, so it is regenerated as changed, never here, unless a key ignores the content),
    then the oldest failures, up to the budget; the rest are deferred as they are."""
    changed = set(p.changed)

    def age(sku: str) -> tuple[Any, ...]:
        es = [p.carried[sku][t] for t in due[sku]]
        return (sku not in changed, min(e.get("first_failed") or night for e in es),
                min(last_failed(e) or night for e in es), sku)

    p.retry_slots = policy.slots(len(keys))
    for i, sku in enumerate(sorted(due, key=age)):
        if p.retry_slots is not None and i >= p.retry_slots:
            p.retry_deferred.append(sku)
            continue
        for t in due[sku]:
            p.carried[sku].pop(t)
        todo = set(p.regenerate.get(sku, ())) | set(due[sku])
        p.regenerate[sku] = [t for t in keys[sku] if t in todo]
        p.retried.append(sku)


def all_fresh(entries: dict[str, dict[str, Any]], keys: dict[str, str]) -> bool:
    """The state's `fresh`: every type tonight has accepted copy for its key."""
    return bool(keys) and all((entries.get(t) or {}).get("status") == "fresh" and entries[t].get("key") == k
                              for t, k in keys.items())


def _kept(previous: dict[str, Any], content_hash: str) -> dict[str, Any]:
    """The last accepted text of a type that has none tonight: kept while the facts are unchanged."""
    keep = previous.get("uri") and previous.get("accepted_hash") == content_hash
    return {"key": previous.get("key") if keep else None, "status": "kept" if keep else "none",
            "uri": previous.get("uri") if keep else None,
            "accepted_hash": previous.get("accepted_hash") if keep else None,
            "run_id": previous.get("run_id") if keep else None}


def settle(previous: dict[str, Any], key: str, content_hash: str, run_id: str, ok: bool,
           uri: str | None, reasons: list[str]) -> dict[str, Any]:
    """The new entry of one type after tonight's attempt (pure). Accepted: fresh. Failed: the last
    accepted text is kept while the facts are unchanged, else the type has none; `failures` counts
    the failed nights for this key, `first_failed`/`last_failed` the first and the latest."""
    if ok:
        return {"key": key, "attempt_key": key, "status": "fresh", "uri": uri, "accepted_hash": content_hash,
                "run_id": run_id, "reasons": [], "failures": 0, "first_failed": None, "last_failed": None}
    same = previous.get("attempt_key") == key
    return {**_kept(previous, content_hash), "attempt_key": key, "reasons": reasons[:20],
            "failures": (int(previous.get("failures") or 0) + 1) if same else 1,
            "first_failed": (previous.get("first_failed") or _night(run_id)) if same else _night(run_id),
            "last_failed": _night(run_id)}


def unsupported_entry(previous: dict[str, Any], key: str, content_hash: str) -> dict[str, Any]:
    """The entry of a type of a product in a language the generator does not write (pure): no
    attempt, the reason unsupported_language, the last accepted text kept while the facts are
    unchanged. Settled for `key`: the same entry comes back every night until the key changes."""
    if previous.get("attempt_key") == key and previous.get("reasons") == [UNSUPPORTED_LANGUAGE]:
        return previous
    return {**_kept(previous, content_hash), "attempt_key": key, "reasons": [UNSUPPORTED_LANGUAGE],
            "failures": 0, "first_failed": None, "last_failed": None}


class StateStore:
    """Byte-level access to a state prefix, local or s3:// (pyarrow.fs; boto3 for conditional writes)."""

    def __init__(self, prefix: str, s3: S3Config | None = None):
        self.prefix = prefix.rstrip("/") if is_s3(prefix) else os.path.abspath(prefix)
        self.s3cfg = s3 or S3Config()
        self.fs, self.root = resolve(self.prefix, self.s3cfg)

    def uri(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self._path(rel)).type != pafs.FileType.NotFound

    def read(self, rel: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self._path(rel)) as f:
                return f.read()
        except (FileNotFoundError, OSError) as e:
            if isinstance(e, FileNotFoundError) or "NoSuchKey" in str(e) or "not found" in str(e).lower():
                return None
            raise

    def write(self, rel: str, data: bytes) -> None:
        """Whole-object write: atomic on S3; on a local disk a temporary file renamed into place."""
        path = self._path(rel)
        if is_s3(self.prefix):  # no folders on S3: creating markers would only cost requests
            with self.fs.open_output_stream(path) as f:
                f.write(data)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def write_table(self, rel: str, table: pa.Table, row_group_size: int | None = None) -> str:
        """Returns rel: the state refers to its files relative to the prefix, so a moved or
        re-spelled prefix still finds them. Small row groups keep a filtered read of a large file
        (all of a night's vectors) from decoding it whole."""
        buf = io.BytesIO()
        pq.write_table(table, buf, row_group_size=row_group_size)
        self.write(rel, buf.getvalue())
        return rel

    def read_table(self, rel: str, **kw: Any) -> pa.Table:
        return pq.read_table(self._path(rel), filesystem=self.fs, **kw)

    def read_where(self, rel: str, key: str, ids: Iterable[str], columns: list[str] | None = None) -> pa.Table:
        """The rows of a Parquet file whose `key` is in ids, read a row group at a time and only
        the row groups that hold one: a few rows of a large file (a night's vectors) cost little."""
        want = pa.array(sorted(set(ids)), pa.string())
        with self.fs.open_input_file(self._path(rel)) as f:
            pf = pq.ParquetFile(f, pre_buffer=False)
            cols = columns or pf.schema_arrow.names
            parts = []
            for i in range(pf.num_row_groups):
                mask = pc.is_in(pf.read_row_group(i, columns=[key])[key], value_set=want)
                if pc.any(mask).as_py():
                    parts.append(pf.read_row_group(i, columns=cols).filter(mask))
            return pa.concat_tables(parts) if parts else pf.schema_arrow.empty_table().select(cols)

    def list(self, rel: str) -> list[str]:
        """Relative names of the files directly under a folder (sorted); [] when it does not exist."""
        sel = pafs.FileSelector(self._path(rel), allow_not_found=True)
        return sorted(os.path.basename(i.path) for i in self.fs.get_file_info(sel) if i.type == pafs.FileType.File)

    def delete(self, rel: str) -> None:
        try:
            self.fs.delete_file(self._path(rel))
        except FileNotFoundError:
            pass

    # --- conditional writes for the lock ---------------------------------------------------

    def _boto(self):
        import boto3

        c = self.s3cfg
        kw: dict[str, Any] = {"endpoint_url": c.endpoint_url, "region_name": c.region}
        if c.access_key_id and c.secret_access_key:
            kw.update(aws_access_key_id=c.access_key_id, aws_secret_access_key=c.secret_access_key.get_secret_value())
        return boto3.client("s3", **{k: v for k, v in kw.items() if v is not None})

    def _bucket_key(self, rel: str) -> tuple[str, str]:
        bucket, _, key = self._path(rel).partition("/")
        return bucket, key

    def create_exclusive(self, rel: str, data: bytes) -> str | None:
        """Create rel only if it does not exist. Returns a token of the written object (its ETag on
        S3), or None when it already existed."""
        if is_s3(self.prefix):
            from botocore.exceptions import ClientError

            bucket, key = self._bucket_key(rel)
            try:
                return self._boto().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")["ETag"]
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return None
                raise
        path = self._path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Written aside, then hard-linked into place: the link is the atomic create, and a reader
        # never sees a half-written lock.
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return None
        finally:
            os.unlink(tmp)
        return hashlib.md5(data).hexdigest()

    def replace_if(self, rel: str, data: bytes, token: str) -> str | None:
        """Overwrite rel only if it still is the object `token` names; the new token, or None."""
        if is_s3(self.prefix):
            from botocore.exceptions import ClientError

            bucket, key = self._bucket_key(rel)
            try:
                return self._boto().put_object(Bucket=bucket, Key=key, Body=data, IfMatch=token)["ETag"]
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "NoSuchKey",
                                                                 "ConditionalRequestConflict"):
                    return None
                raise
        import fcntl

        path = self._path(rel)
        with open(f"{path}.guard", "a+") as guard:  # compare-and-swap under a host-wide file lock
            fcntl.flock(guard, fcntl.LOCK_EX)
            cur = self.read(rel)
            if cur is None or hashlib.md5(cur).hexdigest() != token:
                return None
            self.write(rel, data)
        return hashlib.md5(data).hexdigest()

    def token(self, rel: str) -> tuple[bytes, str] | None:
        """(content, token) of rel, or None."""
        if is_s3(self.prefix):
            from botocore.exceptions import ClientError

            bucket, key = self._bucket_key(rel)
            try:
                r = self._boto().get_object(Bucket=bucket, Key=key)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            return r["Body"].read(), r["ETag"]
        data = self.read(rel)
        return None if data is None else (data, hashlib.md5(data).hexdigest())


# --- the state table ---------------------------------------------------------------------------

class StateRows(Mapping):
    """The last finished run's state (STATE_SCHEMA), kept as Arrow columns: a row becomes a dict
    only when asked for, so an unchanged catalog costs an index entry per SKU, not a dict."""

    def __init__(self, table: pa.Table):
        for f in STATE_SCHEMA:  # a state written before a column existed reads it as null
            if f.name not in table.column_names:
                table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
        self.table = table.select(STATE_SCHEMA.names).cast(STATE_SCHEMA)
        self.index = {s: i for i, s in enumerate(self.table["sku"].to_pylist())}

    def __getitem__(self, sku: str) -> dict[str, Any]:
        return self.table.slice(self.index[sku], 1).to_pylist()[0]

    def __iter__(self):
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, sku: object) -> bool:
        return sku in self.index

    def take(self, skus: Iterable[str]) -> pa.Table:
        """The stored rows of these SKUs, as Arrow (no Python row per SKU)."""
        return self.table.take(pa.array(sorted(self.index[s] for s in skus), pa.int64()))


def column(previous: Mapping[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """sku -> one state column, without a dict per row when `previous` is a StateRows."""
    if isinstance(previous, StateRows):
        return dict(zip(previous.index, previous.table[name].to_pylist()))
    return {s: r.get(name) for s, r in previous.items()}


def load_state(store: StateStore) -> StateRows:
    if not store.exists("skus.parquet"):
        return StateRows(STATE_SCHEMA.empty_table())
    return StateRows(store.read_table("skus.parquet"))


def pass_nights(store: StateStore, nights: int = 1) -> int:
    """Moves every failed attempt the state records `nights` back, as if those nights had passed:
    the retry backoff counts nights, and a bench's or a test's "next night" runs the same day.
    Returns the number of entries moved."""
    if not store.exists("skus.parquet"):
        return 0
    t, moved = store.read_table("skus.parquet"), 0

    def shift(c: str | None) -> str | None:
        nonlocal moved
        if not c:
            return c
        es = json.loads(c)
        for e in es.values():
            for k in ("first_failed", "last_failed"):
                if e.get(k):
                    e[k] = (date.fromisoformat(e[k]) - timedelta(days=nights)).isoformat()
                    moved += k == "last_failed"
        return json.dumps(es)

    col = pa.array([shift(c) for c in t["copy"].to_pylist()], pa.string())
    store.write_table("skus.parquet", t.set_column(t.schema.get_field_index("copy"), "copy", col))
    return moved


def load_journal(store: StateStore) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Rows committed by runs that did not finish (the newest batch wins), and their manifest names."""
    rows: dict[str, dict[str, Any]] = {}
    names = [n for n in store.list("journal") if n.endswith(".json")]
    for name in names:
        data = store.read(f"journal/{name}")
        if data is None:
            continue
        m = json.loads(data)
        for r in m["rows"]:
            types = {**(rows.get(r["sku"]) or {}).get("types", {}), **(r.get("types") or {})}
            rows[r["sku"]] = {**r, "types": types, "output_uri": m["output_uri"], "run_id": m["run_id"]}
    return rows, names


def _batch_name(run_id: str, seq: int | str) -> str:
    return f"{run_id}-{seq:06d}" if isinstance(seq, int) else f"{run_id}-{seq}"


def batch_uri(run_id: str, seq: int | str) -> str:
    return f"outputs/gen/{_batch_name(run_id, seq)}.parquet"


def combined_key(keys: dict[str, str]) -> str:
    """A product's generation key over all its content types (the state's `key`)."""
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:32]


def commit_batch(store: StateStore, run_id: str, seq: int | str, table: pa.Table, rows: list[dict[str, Any]]) -> str:
    """Writes one batch of generated rows, then its manifest (the commit point)."""
    name = _batch_name(run_id, seq)
    rel = batch_uri(run_id, seq)
    store.write_table(rel, table)
    manifest = {"batch": name, "run_id": run_id, "output_uri": rel, "committed_at": _now(), "rows": rows}
    store.write(f"journal/{name}.json", json.dumps(manifest).encode())
    return rel


def save_state(store: StateStore, rows: Iterable[dict[str, Any]], journal_names: list[str],
               carry: pa.Table | None = None) -> dict[str, int]:
    """Replace skus.parquet with `rows` plus `carry` (stored rows kept as they are, in Arrow), drop
    the folded manifests, then delete output files nobody references."""
    table = pa.Table.from_pylist(list(rows), schema=STATE_SCHEMA)
    if carry is not None and carry.num_rows:
        table = pa.concat_tables([table, carry.select(STATE_SCHEMA.names).cast(STATE_SCHEMA)])
    table = table.take(pc.sort_indices(table, [("sku", "ascending")]))
    store.write_table("skus.parquet", table)
    for name in journal_names:
        store.delete(f"journal/{name}")
    # Files a manifest still names stay too: the lock should rule out another writer, but a GC
    # must never break a resume.
    pending, still = load_journal(store)
    live = {*table["output_uri"].to_pylist(), *table["embedding_uri"].to_pylist(),
            *(r.get("output_uri") for r in pending.values()),
            *(e.get("uri") for r in pending.values() for e in _entries(r).values())}
    for i in range(0, table.num_rows, 4096):  # parsed a slice at a time, never all at once
        for c in table["copy"].slice(i, 4096).to_pylist():
            live.update(e.get("uri") for e in json.loads(c or "{}").values())
    removed = 0
    for sub in ("outputs/gen", "outputs/emb"):
        for name in store.list(sub):
            if f"{sub}/{name}" not in live:
                store.delete(f"{sub}/{name}")
                removed += 1
    return {"state_rows": table.num_rows, "outputs_removed": removed, "journal_left": len(still)}


def _entries(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-type entries of a state row (a JSON string) or of a journal row (a dict)."""
    c = row.get("copy") or row.get("types")
    return json.loads(c) if isinstance(c, str) else (c or {})


def read_copy(store: "StateStore", entries: dict[str, dict[str, dict[str, Any]]],
              fields: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """sku -> the accepted output fields of each type, read from the files the entries name
    (one read per file). fields: content type -> its output field names."""
    by_file: dict[str, dict[str, set[str]]] = {}
    for sku, types in entries.items():
        for t, e in types.items():
            if e.get("uri") and e.get("status") in ("fresh", "kept"):
                by_file.setdefault(e["uri"], {}).setdefault(sku, set()).update(fields[t])
    out: dict[str, dict[str, Any]] = {}
    for uri, want in sorted(by_file.items()):
        cols = sorted({c for cs in want.values() for c in cs})
        t = store.read_where(uri, "sku", want, ["sku", *cols])
        for r in t.to_pylist():
            out.setdefault(r["sku"], {}).update({c: r[c] for c in want[r["sku"]]})
    return out


def read_rows(store: StateStore, where: dict[str, str], columns: list[str] | None = None,
              key_column: str = "sku") -> Iterable[pa.Table]:
    """For {id: file uri}, yields the matching rows of each file (one read per file)."""
    by_file: dict[str, list[str]] = {}
    for k, uri in where.items():
        by_file.setdefault(uri, []).append(k)
    for uri, ids in sorted(by_file.items()):
        yield store.read_where(uri, key_column, ids, columns)


# --- the lock ----------------------------------------------------------------------------------

class LockedError(RuntimeError):
    pass


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


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
        return json.dumps({**self.owner, "acquired_at": self.owner.get("acquired_at") or _now(),
                           "heartbeat_at": _now(), "expires_at_epoch": now + self.ttl,
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
        self.owner["acquired_at"] = _now()
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
