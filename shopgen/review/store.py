"""Where decisions are kept, append-only: a SQLite file in the alias's state folder, or one object
per decision under the state prefix when the state is on s3:// (the nightly's own store).

Both write an item's entry only as its next `seq` (a UNIQUE key, or a create-if-absent object), so
two reviewers deciding on the same view cannot both win, and nothing is ever overwritten."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing

from shopgen.adapters.storage import is_s3
from shopgen.review.records import Decision
from shopgen.state.store import StateStore


class Conflict(Exception):
    """The item changed since it was loaded: another decision, or a new text."""


class SqliteDecisions:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with closing(self._db()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT NOT NULL,"
                       " type TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, UNIQUE (sku, type, seq))")
            db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA synchronous=FULL")  # a decision that was answered "saved" survives a crash
        return db

    def append(self, d: Decision) -> Decision:
        try:
            with closing(self._db()) as db, db:
                db.execute("INSERT INTO decisions (sku, type, seq, body) VALUES (?, ?, ?, ?)",
                           (d.sku, d.type, d.seq, d.model_dump_json()))
        except sqlite3.IntegrityError:
            raise Conflict(f"{d.sku}/{d.type} was decided by someone else since you loaded it") from None
        return d

    def _rows(self, sql: str, args: tuple = ()) -> list[Decision]:
        with closing(self._db()) as db:
            return [Decision.model_validate_json(b) for (b,) in db.execute(sql, args)]

    def history(self, sku: str, type_: str) -> list[Decision]:
        return self._rows("SELECT body FROM decisions WHERE sku=? AND type=? ORDER BY seq", (sku, type_))

    def all(self) -> list[Decision]:
        return self._rows("SELECT body FROM decisions ORDER BY id")

    def since(self, mark: str) -> tuple[list[Decision], str]:
        """Entries written after `mark` (an opaque position; "" for the start), and the position after them."""
        at = int(mark or 0)
        with closing(self._db()) as db:
            rows = db.execute("SELECT id, body FROM decisions WHERE id > ? ORDER BY id", (at,)).fetchall()
        return [Decision.model_validate_json(b) for _, b in rows], str(max([at, *(i for i, _ in rows)]))

    def get_meta(self, k: str) -> str | None:
        with closing(self._db()) as db:
            r = db.execute("SELECT v FROM meta WHERE k=?", (k,)).fetchone()
        return r[0] if r else None

    def set_meta(self, k: str, v: str) -> None:
        with closing(self._db()) as db, db:
            db.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (k, v))


class ObjectDecisions:
    """review/decisions/<item>/<seq>.json under a state prefix (S3: a conditional put per entry)."""

    def __init__(self, store: StateStore):
        self.store = store

    @staticmethod
    def _item(sku: str, type_: str) -> str:
        return hashlib.sha256(f"{sku}\x00{type_}".encode()).hexdigest()[:32]

    def append(self, d: Decision) -> Decision:
        rel = f"review/decisions/{self._item(d.sku, d.type)}/{d.seq:08d}.json"
        if self.store.create_exclusive(rel, d.model_dump_json().encode()) is None:
            raise Conflict(f"{d.sku}/{d.type} was decided by someone else since you loaded it")
        return d

    def history(self, sku: str, type_: str) -> list[Decision]:
        folder = f"review/decisions/{self._item(sku, type_)}"
        return [Decision.model_validate_json(self.store.read(f"{folder}/{n}") or b"{}")
                for n in self.store.list(folder) if n.endswith(".json")]

    def _written(self) -> list[tuple[str, Decision]]:
        """(when the object was written, its entry), oldest first: the store's clock, not the writer's."""
        out = []
        for info in self.store.fs.get_file_info(_selector(f"{self.store.root}/review/decisions")):
            if info.path.endswith(".json"):
                with self.store.fs.open_input_stream(info.path) as f:
                    out.append((f"{info.mtime_ns or 0:020d}|{info.path}", Decision.model_validate_json(f.read())))
        return sorted(out, key=lambda x: x[0])

    def all(self) -> list[Decision]:
        return [d for _, d in self._written()]

    def since(self, mark: str) -> tuple[list[Decision], str]:
        got = [(k, d) for k, d in self._written() if k > (mark or "")]
        return [d for _, d in got], max([mark or "", *(k for k, _ in got)])

    def get_meta(self, k: str) -> str | None:
        b = self.store.read(f"review/meta/{k}.json")
        return json.loads(b) if b else None

    def set_meta(self, k: str, v: str) -> None:
        self.store.write(f"review/meta/{k}.json", json.dumps(v).encode())


def _selector(path: str):
    import pyarrow.fs as pafs

    return pafs.FileSelector(path, recursive=True, allow_not_found=True)


Decisions = SqliteDecisions | ObjectDecisions


def open_decisions(store: StateStore, where: str | None = None) -> Decisions:
    """review.store when set (a SQLite path), else review.sqlite in a local state folder, else
    objects under the s3:// state prefix."""
    if where:
        return SqliteDecisions(where)
    if is_s3(store.prefix):
        return ObjectDecisions(store)
    return SqliteDecisions(os.path.join(store.prefix, "review.sqlite"))


def latest(decisions: Iterable[Decision]) -> dict[tuple[str, str], Decision]:
    """(sku, type) -> its newest entry."""
    out: dict[tuple[str, str], Decision] = {}
    for d in decisions:
        k = (d.sku, d.type)
        if k not in out or d.seq > out[k].seq:
            out[k] = d
    return out


def last_human(decisions: Iterable[Decision]) -> dict[tuple[str, str], Decision]:
    """(sku, type) -> its newest decision by a person."""
    return latest(d for d in decisions if d.action != "regenerated")
