"""The review queue: one item per (product, content type) of the alias, kept in a local SQLite
cache that follows the state (only products whose document changed are fetched again from the
index) and the decisions, so a page of 50 costs one indexed query at any catalog size.

Order, by risk: texts the gate accepted narrowly first (numbers or names no fact backs), then texts
whose product's facts changed since a person decided on it, then the uniform audit sample, then
the rest. The audit sample (review.audit_share) is drawn by a hash of the text, independent of
risk, so its decisions estimate the gate's precision without bias."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from shopgen.core.content import CONTENT_TYPES, texts_of
from shopgen.core.copy import decode
from shopgen.review.highlight import product_facts, unbacked
from shopgen.review.records import Decision, text_hash
from shopgen.review.store import Decisions, last_human
from shopgen.state.store import StateStore, load_state

PAGE = 50
FILTERS = ("type", "locale", "category", "status", "run", "decision")
BUCKETS = {0: "narrow", 1: "changed", 2: "audit", 3: "other", 4: "no text"}
_COLS = ("sku", "type", "status", "text", "text_hash", "run", "locale", "category", "title", "risk", "unbacked",
         "bucket", "audit", "changed", "decision", "seq", "content_hash")


def type_fields(doc: dict[str, Any], t: str) -> dict[str, Any]:
    return {f: doc.get(f) for f in CONTENT_TYPES[t].fields()}


def has_text(fields: dict[str, Any]) -> bool:
    return any(v for v in fields.values())


def in_audit(sku: str, t: str, th: str, share: float) -> bool:
    """A uniform, stable draw: the text's hash against the share."""
    h = int(hashlib.sha256(f"{sku}\x00{t}\x00{th}".encode()).hexdigest()[:12], 16)
    return h / 16 ** 12 < share


@dataclass
class Item:
    sku: str
    type: str
    status: str  # published | edited | rejected_by_review | none
    text: dict[str, Any]
    text_hash: str
    run: str | None
    locale: str | None
    category: str | None
    title: str | None
    risk: float
    unbacked: list[str]
    bucket: int
    audit: bool
    changed: bool
    decision: str  # pending, or the action a person took on this text
    seq: int  # the item's newest entry (a decision on this view writes seq + 1)
    content_hash: str | None
    doc: dict[str, Any] = field(default_factory=dict)

    @property
    def bucket_name(self) -> str:
        return BUCKETS[self.bucket]


def classify(sku: str, t: str, doc: dict[str, Any], run: str | None, last: Decision | None, seq: int,
             share: float) -> dict[str, Any]:
    """One item's queue row from its product document and its newest human decision (pure)."""
    fields = type_fields(doc, t)
    status = ((doc.get("copy") or {}).get(t) or {}).get("status") or "none"
    status = "published" if status in ("fresh", "kept") else status
    if status == "published" and not has_text(fields):
        status = "none"
    th = text_hash(fields) if has_text(fields) else ""
    bad = unbacked(texts_of(fields), product_facts(doc)) if th else []
    decided = last is not None and (last.text_hash == th or (last.edited is not None and text_hash(last.edited) == th)
                                    or (last.action == "reject" and status == "rejected_by_review"))
    changed = bool(last is not None and th and not decided)
    audit = status == "published" and in_audit(sku, t, th, share)
    if status not in ("published", "edited"):
        bucket = 4
    elif bad:
        bucket = 0
    elif changed:
        bucket = 1
    elif audit:
        bucket = 2
    else:
        bucket = 3
    return {"sku": sku, "type": t, "status": status, "text": json.dumps(fields, ensure_ascii=False), "text_hash": th,
            "run": run, "locale": doc.get("locale"), "category": doc.get("category"), "title": doc.get("title"),
            "risk": float(len(bad)), "unbacked": json.dumps(bad, ensure_ascii=False), "bucket": bucket,
            "audit": int(audit), "changed": int(changed), "decision": last.action if decided else "pending",
            "seq": seq, "content_hash": doc.get("content_hash")}


class Queue:
    """The cache (a local SQLite file) and how it is brought up to date."""

    def __init__(self, path: str, store: StateStore, decisions: Decisions, fetch, audit_share: float):
        """fetch(skus) -> {sku: document} from the live index (embedding left out)."""
        self.path, self.store, self.decisions, self.fetch, self.share = path, store, decisions, fetch, audit_share
        # Counts and filter menus scan the cache: kept until the cache changes (this process is its only writer).
        self._memo: dict[Any, Any] = {}
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with closing(self._db()) as db, db:
            db.executescript("""
                CREATE TABLE IF NOT EXISTS products (sku TEXT PRIMARY KEY, doc_hash TEXT, doc TEXT, runs TEXT);
                CREATE TABLE IF NOT EXISTS items (sku TEXT, type TEXT, status TEXT, text TEXT, text_hash TEXT,
                  run TEXT, locale TEXT, category TEXT, title TEXT, risk REAL, unbacked TEXT, bucket INTEGER,
                  audit INTEGER, changed INTEGER, decision TEXT, seq INTEGER, content_hash TEXT,
                  PRIMARY KEY (sku, type));
                CREATE INDEX IF NOT EXISTS items_order ON items (decision, bucket, risk DESC, sku, type);
                CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);""")

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def _meta(self, db: sqlite3.Connection, k: str, default: str) -> str:
        r = db.execute("SELECT v FROM meta WHERE k=?", (k,)).fetchone()
        return r[0] if r else default

    # --- bringing it up to date --------------------------------------------------------------------

    def sync(self) -> dict[str, int]:
        """Products whose document hash in the state changed are fetched again; items with
        decisions since the last sync are classified again."""
        info = self.store.fs.get_file_info(f"{self.store.root}/skus.parquet")
        sig = f"{info.mtime_ns}:{info.size}"
        with closing(self._db()) as db:
            mark = self._meta(db, "mark", "")
            same = self._meta(db, "state", "") == sig
        new, mark2 = self.decisions.since(mark)
        if same and not new:  # the common case on every page: nothing to read
            return {"fetched": 0, "removed": 0, "decided": 0}
        now: dict[str, str] = {}
        runs: dict[str, str | None] = {}
        have: dict[str, str] = {}
        if not same:
            t = load_state(self.store).table
            now = dict(zip(t["sku"].to_pylist(), (h or "" for h in t["doc_hash"].to_pylist())))
            runs = dict(zip(t["sku"].to_pylist(), t["copy"].to_pylist()))
            with closing(self._db()) as db:
                have = dict(db.execute("SELECT sku, doc_hash FROM products").fetchall())
        todo = [s for s, h in now.items() if have.get(s) != h]
        gone = [s for s in have if s not in now]
        touched = {d.sku for d in new} - set(todo)
        for i in range(0, len(todo), 500):
            part = todo[i:i + 500]
            docs = self.fetch(part)
            self._write(part, docs, {s: now[s] for s in part}, {s: runs[s] for s in part})
        if touched:  # decided on elsewhere (another page, a script): their documents again from the index
            with closing(self._db()) as db:
                rows = db.execute(f"SELECT sku, doc_hash, runs FROM products WHERE sku IN "
                                  f"({','.join('?' * len(touched))})", tuple(touched)).fetchall()
            part = [r["sku"] for r in rows]
            self._write(part, self.fetch(part), {r["sku"]: r["doc_hash"] for r in rows},
                        {r["sku"]: r["runs"] for r in rows})
        self.forget()
        with closing(self._db()) as db, db:
            db.executemany("DELETE FROM products WHERE sku=?", [(s,) for s in gone])
            db.executemany("DELETE FROM items WHERE sku=?", [(s,) for s in gone])
            db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('mark', ?)", (mark2,))
            db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('state', ?)", (sig,))
        return {"fetched": len(todo), "removed": len(gone), "decided": len(touched)}

    def _write(self, skus: list[str], docs: dict[str, dict[str, Any]], hashes: dict[str, str],
               runs: dict[str, str | None]) -> None:
        with closing(self._db()) as db, db:
            for s in skus:
                if s in docs:
                    db.execute("INSERT OR REPLACE INTO products (sku, doc_hash, doc, runs) VALUES (?, ?, ?, ?)",
                               (s, hashes[s], json.dumps(docs[s], ensure_ascii=False), runs[s]))
                else:  # not in the index (its document was refused): nothing to review
                    db.execute("DELETE FROM products WHERE sku=?", (s,))
                    db.execute("DELETE FROM items WHERE sku=?", (s,))
        self._items([(s, docs[s], runs[s]) for s in skus if s in docs])

    def _items(self, products: Iterable[tuple[str, dict[str, Any], str | None]]) -> None:
        products = list(products)
        # Many products (a night's sync): every decision read once; a few (a page's own write): per item.
        every = self.decisions.all() if len(products) > 20 else None
        human, seqs = (last_human(every), {}) if every is not None else ({}, {})
        for d in every or ():
            seqs[(d.sku, d.type)] = max(seqs.get((d.sku, d.type), 0), d.seq)
        rows = []
        for sku, doc, copy in products:
            entries = decode(copy)
            for t in (doc.get("copy") or {}):
                if t not in CONTENT_TYPES:
                    continue
                if every is None:
                    hist = self.decisions.history(sku, t)
                    last, seq = last_human(hist).get((sku, t)), max((d.seq for d in hist), default=0)
                else:
                    last, seq = human.get((sku, t)), seqs.get((sku, t), 0)
                e = entries.get(t)
                rows.append(classify(sku, t, doc, e.run_id if e else None, last, seq, self.share))
        self.forget()
        with closing(self._db()) as db, db:
            db.executemany(f"INSERT OR REPLACE INTO items ({','.join(_COLS)}) VALUES ({','.join('?' * len(_COLS))})",
                           [tuple(r[c] for c in _COLS) for r in rows])

    def refresh(self, sku: str, doc: dict[str, Any]) -> None:
        """After the page wrote a product's document itself (an edit or a rejection)."""
        with closing(self._db()) as db, db:
            db.execute("UPDATE products SET doc=? WHERE sku=?", (json.dumps(doc, ensure_ascii=False), sku))
            runs = db.execute("SELECT runs FROM products WHERE sku=?", (sku,)).fetchone()
        self._items([(sku, doc, runs[0] if runs else None)])

    # --- reading ----------------------------------------------------------------------------------------

    @staticmethod
    def _where(filters: dict[str, str]) -> tuple[str, list[str]]:
        clauses, args = [], []
        for k in FILTERS:
            v = filters.get(k)
            if v:
                clauses.append(f"{k} = ?")
                args.append(v)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def page(self, filters: dict[str, str], page: int = 0) -> tuple[list[Item], int]:
        where, args = self._where(filters)
        total = self._cached(("count", where, *args), lambda db: db.execute(f"SELECT COUNT(*) FROM items{where}",
                                                                            args).fetchone()[0])
        with closing(self._db()) as db:
            rows = db.execute(f"SELECT * FROM items{where} ORDER BY bucket, risk DESC, sku, type LIMIT ? OFFSET ?",
                              [*args, PAGE, page * PAGE]).fetchall()
        return [self._item(r) for r in rows], total

    def at(self, filters: dict[str, str], i: int) -> Item | None:
        """The i-th item of a filtered queue (next and previous on the item page)."""
        if i < 0:
            return None
        where, args = self._where(filters)
        with closing(self._db()) as db:
            r = db.execute(f"SELECT * FROM items{where} ORDER BY bucket, risk DESC, sku, type LIMIT 1 OFFSET ?",
                           [*args, i]).fetchone()
        return self._item(r) if r else None

    def get(self, sku: str, t: str) -> Item | None:
        with closing(self._db()) as db:
            r = db.execute("SELECT * FROM items WHERE sku=? AND type=?", (sku, t)).fetchone()
            d = db.execute("SELECT doc FROM products WHERE sku=?", (sku,)).fetchone()
        if r is None:
            return None
        it = self._item(r)
        it.doc = json.loads(d[0]) if d else {}
        return it

    def entries(self, sku: str) -> dict[str, Any]:
        """The product's copy entries as the state had them at the last sync."""
        with closing(self._db()) as db:
            r = db.execute("SELECT runs FROM products WHERE sku=?", (sku,)).fetchone()
        return decode(r[0]) if r else {}

    def values(self, column: str) -> list[str]:
        """The distinct values of a filter column, for the filter menus."""
        if column not in FILTERS:
            raise ValueError(column)
        return self._cached(("values", column), lambda db: [v for (v,) in db.execute(
            f"SELECT DISTINCT {column} FROM items WHERE {column} IS NOT NULL ORDER BY {column} LIMIT 500")])

    def counts(self) -> dict[str, int]:
        return self._cached(("counts",), lambda db: dict(db.execute(
            "SELECT decision, COUNT(*) FROM items WHERE status != 'none' GROUP BY decision")))

    def forget(self) -> None:
        """Drop the cached counts and menus (the cache changed)."""
        self._memo.clear()

    def _cached(self, key: Any, compute) -> Any:
        if key not in self._memo:
            with closing(self._db()) as db:
                self._memo[key] = compute(db)
        return self._memo[key]

    def brands(self) -> list[str]:
        with closing(self._db()) as db:
            return sorted({json.loads(d).get("brand") for (d,) in db.execute("SELECT doc FROM products")} - {None})

    @staticmethod
    def _item(r: sqlite3.Row) -> Item:
        d = dict(r)
        return Item(**{**d, "text": json.loads(d["text"] or "{}"), "unbacked": json.loads(d["unbacked"] or "[]"),
                       "audit": bool(d["audit"]), "changed": bool(d["changed"])})
