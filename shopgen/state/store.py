"""Nightly state: what was generated for each SKU and committed output batches.

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
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shopgen.adapters.storage import is_s3, resolve
from shopgen.core.config import S3Config
from shopgen.core.copy import CopyEntry, decode, encode

STATE_SCHEMA = pa.schema([
    ("sku", pa.string()),
    ("key", pa.string()),            # generation key: content hash x prompt version x model version x settings
    ("content_hash", pa.string()),
    ("prompt_version", pa.string()),
    ("model_version", pa.string()),
    ("reason", pa.string()),         # the failure reasons of its copy, if any
    ("embedding_hash", pa.string()),
    ("embedding_uri", pa.string()),  # the file holding that vector
    ("embedding_model", pa.string()),
    ("doc_hash", pa.string()),       # fingerprint of the indexed document
    ("indexed_version", pa.string()),  # the index it was last written to
    ("run_id", pa.string()),         # the run that generated it
    ("copy", pa.string()),           # JSON: content type -> shopgen.core.copy.CopyEntry (copy.ENTRIES)
    # Every content type has accepted copy for `key`: while the key holds, the plan carries the row
    # as stored without parsing `copy` (null in states written before it: the plan parses them).
    ("fresh", pa.bool_()),
    ("recs_hash", pa.string()),      # the behaviour lists in its document (shopgen.recommend), if any
])
# Columns of states written before they were dropped (ignored on reading).
DROPPED_COLUMNS = ("status", "output_uri")


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
        es = decode(c)
        for t, e in es.items():
            back = {k: (date.fromisoformat(v) - timedelta(days=nights)).isoformat()
                    for k in ("first_failed", "last_failed") if (v := getattr(e, k))}
            moved += "last_failed" in back
            es[t] = e.model_copy(update=back)
        return encode(es)

    col = pa.array([shift(c) for c in t["copy"].to_pylist()], pa.string())
    store.write_table("skus.parquet", t.set_column(t.schema.get_field_index("copy"), "copy", col))
    return moved


def load_journal(store: StateStore) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Rows committed by runs that did not finish (the newest batch wins), and their manifest names.
    A row's `types` are its settled entries (content type -> CopyEntry)."""
    rows: dict[str, dict[str, Any]] = {}
    names = [n for n in store.list("journal") if n.endswith(".json")]
    for name in names:
        data = store.read(f"journal/{name}")
        if data is None:
            continue
        m = json.loads(data)
        for r in m["rows"]:
            types = {**(rows.get(r["sku"]) or {}).get("types", {}), **decode(r.get("types"))}
            rows[r["sku"]] = {**r, "types": types, "output_uri": m["output_uri"], "run_id": m["run_id"]}
    return rows, names


def _batch_name(run_id: str, seq: int | str) -> str:
    return f"{run_id}-{seq:06d}" if isinstance(seq, int) else f"{run_id}-{seq}"


def batch_uri(run_id: str, seq: int | str) -> str:
    return f"outputs/gen/{_batch_name(run_id, seq)}.parquet"


def commit_batch(store: StateStore, run_id: str, seq: int | str, table: pa.Table, rows: list[dict[str, Any]]) -> str:
    """Writes one batch of generated rows, then its manifest (the commit point). rows: sku, key,
    reason and `types` (content type -> CopyEntry) per row."""
    name = _batch_name(run_id, seq)
    rel = batch_uri(run_id, seq)
    store.write_table(rel, table)
    rows = [{**r, "types": {t: e.model_dump() for t, e in r["types"].items()}} for r in rows]
    manifest = {"batch": name, "run_id": run_id, "output_uri": rel, "committed_at": now_iso(), "rows": rows}
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
    live = {*table["embedding_uri"].to_pylist(), *(r.get("output_uri") for r in pending.values()),
            *(e.uri for r in pending.values() for e in r["types"].values())}
    for i in range(0, table.num_rows, 4096):  # parsed a slice at a time, never all at once
        for c in table["copy"].slice(i, 4096).to_pylist():
            live.update(e.uri for e in decode(c).values())
    removed = 0
    for sub in ("outputs/gen", "outputs/emb"):
        for name in store.list(sub):
            if f"{sub}/{name}" not in live:
                store.delete(f"{sub}/{name}")
                removed += 1
    return {"state_rows": table.num_rows, "outputs_removed": removed, "journal_left": len(still)}


def read_copy(store: StateStore, entries: Mapping[str, Mapping[str, CopyEntry]],
              fields: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """sku -> the accepted output fields of each type, read from the files the entries name
    (one read per file). fields: content type -> its output field names."""
    by_file: dict[str, dict[str, set[str]]] = {}
    for sku, types in entries.items():
        for t, e in types.items():
            if e.has_text:
                by_file.setdefault(e.uri, {}).setdefault(sku, set()).update(fields[t])
    out: dict[str, dict[str, Any]] = {}
    for uri, want in sorted(by_file.items()):
        cols = sorted({c for cs in want.values() for c in cs})
        t = store.read_where(uri, "sku", want, ["sku", *cols])
        for r in t.to_pylist():
            out.setdefault(r["sku"], {}).update({c: r[c] for c in want[r["sku"]]})
    return out


def read_rows(store: StateStore, where: dict[str, str], columns: list[str] | None = None,
              key_column: str = "sku", on_error: Callable[[str, list[str], Exception], None] | None = None
              ) -> Iterable[pa.Table]:
    """For {id: file uri}, yields the matching rows of each file (one read per file). With `on_error`,
    a file that cannot be read is reported (uri, its ids, the error) and skipped instead of raising."""
    by_file: dict[str, list[str]] = {}
    for k, uri in where.items():
        by_file.setdefault(uri, []).append(k)
    for uri, ids in sorted(by_file.items()):
        try:
            t = store.read_where(uri, key_column, ids, columns)
        except (OSError, pa.ArrowInvalid) as e:
            if on_error is None:
                raise
            on_error(uri, ids, e)
            continue
        yield t


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
