"""The behaviour aggregates on Ray Data: the same fold as shopgen/recommend/cooc.py, so the driver
never holds the log or the pair table.

Ray tasks parse and validate the event files (read_files; a local file on the driver's node). A hash
shuffle on the session puts each session's events, with its open segment from last night, in one block;
a block folds into delta rows (`tag`, `a`, `b`, `v`); last night's aggregates, decayed to tonight, join
them and one group-by sums them. The new rows and the sessions still open are streamed to a folder on
the driver (shopgen.adapters.raysupport.collect) in bounded blocks. neighbour_table then lists each
product's best partners, one shuffle on the product. fold_local and neighbours_local do the same in
this process, for small nights."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from shopgen.adapters.raysupport import local_parquet, on_driver_node
from shopgen.core.config import RecommendConfig
from shopgen.core.records import Quarantined
from shopgen.recommend.cooc import DAY_S, Aggregates, Segment, fold_session, still_open
from shopgen.recommend.events import Event

OPEN = "__open__"  # an open segment travelling with its session's events
EVENT_SCHEMA = pa.schema([("session", pa.string()), ("user", pa.string()), ("sku", pa.string()),
                          ("kind", pa.string()), ("ts", pa.float64()), ("payload", pa.string())])
AGG_SCHEMA = pa.schema([("tag", pa.string()), ("a", pa.string()), ("b", pa.string()), ("v", pa.float64()),
                        ("payload", pa.string())])


@dataclass(frozen=True)
class Folded:
    """What one night's fold leaves: the aggregate rows (a folder of Parquet) and its figures."""

    folder: Path
    ref: float
    events: int


def event_chunks(rows: Iterable[Event | Quarantined], chunk: int, bad: Callable[[Quarantined], None],
                 seen: Callable[[Event], None] = lambda e: None) -> Iterator[pa.Table]:
    """Validated events as Arrow tables of at most `chunk` rows; bad rows go to `bad`."""
    buf: list[Event] = []
    for r in rows:
        if isinstance(r, Quarantined):
            bad(r)
            continue
        seen(r)
        buf.append(r)
        if len(buf) >= chunk:
            yield _table(buf)
            buf = []
    if buf:
        yield _table(buf)


def _table(evs: list[Event]) -> pa.Table:
    return pa.table({"session": [e.session for e in evs], "user": [e.user for e in evs], "sku": [e.sku for e in evs],
                     "kind": [e.kind for e in evs], "ts": [e.ts for e in evs], "payload": [None] * len(evs)},
                    schema=EVENT_SCHEMA)


def segment_json(seg: Segment) -> str:
    return json.dumps({"start": seg.start, "last": seg.last, "aff": list(seg.aff.items()), "bought": seg.bought,
                       "prev": seg.prev})


def segment_of(payload: str) -> Segment:
    d = json.loads(payload)
    return Segment(d["start"], d["last"], dict((k, float(v)) for k, v in d["aff"]), list(d["bought"]), d["prev"])


def open_rows(table: pa.Table) -> pa.Table:
    """Last night's open segments as rows of the events dataset."""
    n = table.num_rows
    return pa.table({"session": table["a"], "user": pa.nulls(n, pa.string()), "sku": pa.nulls(n, pa.string()),
                     "kind": pa.array([OPEN] * n, pa.string()), "ts": pa.array([0.0] * n, pa.float64()),
                     "payload": table["payload"]}, schema=EVENT_SCHEMA)


def fold_block(block: pa.Table, cfg: RecommendConfig, ref: float) -> pa.Table:
    """A block holding whole sessions (hash-partitioned by session) -> the delta rows of all of them,
    summed within the block, and the segments that may continue."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in block.to_pylist():
        by.setdefault(r["session"], []).append(r)
    local = Aggregates(ref=ref)
    opened: dict[str, Segment] = {}
    for session, rows in by.items():
        seg = None
        events = []
        for r in rows:
            if r["kind"] == OPEN:
                seg = segment_of(r["payload"])
            else:
                events.append(Event(r["session"], r["user"], r["sku"], r["kind"], r["ts"]))
        if events:
            seg = fold_session(local, events, seg, cfg)
        if seg is not None and still_open(seg, ref, cfg):
            opened[session] = seg
    return _rows(local, opened)


def _rows(local: Aggregates, opened: dict[str, Segment]) -> pa.Table:
    out: dict[str, list[Any]] = {"tag": [], "a": [], "b": [], "v": [], "payload": []}

    def add(tag: str, a: str, b: str, v: float, payload: str | None = None) -> None:
        out["tag"].append(tag)
        out["a"].append(a)
        out["b"].append(b)
        out["v"].append(v)
        out["payload"].append(payload)

    for sku, v in local.items.items():
        add("items", sku, "", v)
    for tag in ("pairs", "bought", "trans"):
        for (a, b), v in getattr(local, tag).items():
            add(tag, a, b, v)
    if local.sessions:
        add("sessions", "", "", local.sessions)
    for session, seg in opened.items():
        add("open", session, "", 0.0, segment_json(seg))
    return pa.table(out, schema=AGG_SCHEMA)


ROW_SCHEMA = pa.schema(list(EVENT_SCHEMA) + [("reason", pa.string()), ("source", pa.string()), ("line", pa.int64()),
                                              ("raw", pa.string())])


def parse_files(batch: pa.Table, s3: Any, cfg: RecommendConfig, key: bytes, now: float,
                chunk: int = 50_000) -> Iterator[pa.Table]:
    """Ray Data: event files (a `path` column) -> their validated rows, a chunk at a time; a bad row
    keeps its reason, source, line and its row with the ids hashed (`raw`, JSON)."""
    from shopgen.catalog.load import read_catalog
    from shopgen.recommend.events import validate_events

    buf: list[Event | Quarantined] = []
    for path in batch["path"].to_pylist():
        for r in validate_events(read_catalog(path, s3), cfg, key, now):
            buf.append(r)
            if len(buf) >= chunk:
                yield _parsed(buf)
                buf = []
    if buf:
        yield _parsed(buf)


def _parsed(rows: list[Event | Quarantined]) -> pa.Table:
    cols: dict[str, list[Any]] = {n: [] for n in ROW_SCHEMA.names}
    for r in rows:
        ev = isinstance(r, Event)
        for name, v in (("session", r.session if ev else None), ("user", r.user if ev else None), ("sku", r.sku),
                        ("kind", r.kind if ev else None), ("ts", r.ts if ev else None), ("payload", None),
                        ("reason", None if ev else r.reason), ("source", None if ev else r.source),
                        ("line", None if ev else r.line),
                        ("raw", None if ev else json.dumps(r.raw, default=str, ensure_ascii=False))):
            cols[name].append(v)
    return pa.table(cols, schema=ROW_SCHEMA)


def read_files(files: list[str], settings: Any, key: bytes, now: float):
    """Every row of the event files, parsed and validated by Ray tasks (a local file on the driver's
    node, where it is; an s3:// one anywhere), materialized in the object store: never on the driver."""
    import ray.data

    from shopgen.adapters.storage import is_s3

    here = {} if all(is_s3(f) for f in files) else on_driver_node()
    return (ray.data.from_items([{"path": f} for f in files], override_num_blocks=max(1, len(files)))
            .map_batches(parse_files, batch_format="pyarrow", batch_size=1, num_cpus=1,
                         fn_kwargs={"s3": settings.s3, "cfg": settings.recommend, "key": key, "now": now}, **here)
            .materialize())


def fold_night(chunks: Any, previous: Path | None, prev_ref: float, cfg: RecommendConfig,
               out: Path, ref: Callable[[], float]) -> Folded:
    """Tonight's events folded into last night's rows (`previous`: the `out` of the night before, or
    None) on Ray Data; the new rows go to `out` (sums/ and open/). `chunks`: Arrow tables of events,
    or a Ray Dataset of them (read_files, valid rows). `ref()` is tonight's reference time, known once
    the chunks have been read: the latest event time seen."""
    import ray
    import ray.data
    from ray.data.expressions import col

    from shopgen.adapters.raysupport import collect

    refs, n = [], 0
    ds = None
    if isinstance(chunks, ray.data.Dataset):
        ds, n = chunks.select_columns(EVENT_SCHEMA.names), chunks.count()
    else:
        for t in chunks:
            refs.append(ray.put(t))
            n += t.num_rows
    tonight = max(ref(), prev_ref)
    f = 2.0 ** (-(tonight - prev_ref) / (cfg.half_life_days * DAY_S)) if prev_ref else 1.0
    # Last night's open segments rejoin their sessions' events; its sums, decayed to tonight, join the deltas.
    events = _dataset(refs, EVENT_SCHEMA).union(local_parquet(_files(previous, "open"), EVENT_SCHEMA, open_rows))
    if ds is not None:
        events = ds.union(events)
    carried = local_parquet(_files(previous, "sums"), AGG_SCHEMA, partial(_decayed, factor=f))
    # Whole sessions per block (a hash shuffle on the session), then one call per block, not per session.
    deltas = (events.repartition(_blocks(n), keys=["session"])
              .map_batches(fold_block, batch_format="pyarrow", batch_size=None, fn_kwargs={"cfg": cfg, "ref": tonight})
              .union(carried).materialize())
    summed = (deltas.filter(expr=col("tag") != "open").groupby(["tag", "a", "b"]).sum("v")
              .rename_columns({"sum(v)": "v"}))
    # Blocks of bounded rows: the driver writes each one it fetches.
    collect(summed.repartition(target_num_rows_per_block=100_000), out / "sums")
    collect(deltas.filter(expr=col("tag") == "open").repartition(target_num_rows_per_block=100_000), out / "open")
    return Folded(out, tonight, n)


def _blocks(rows: int, per_block: int = 200_000) -> int:
    import os

    return max(os.cpu_count() or 1, -(-rows // per_block))


def _files(folder: Path | None, sub: str) -> list[str]:
    return sorted(str(f) for f in (folder / sub).glob("*.parquet")) if folder is not None else []


def _decayed(t: pa.Table, factor: float) -> pa.Table:
    t = t.select(["tag", "a", "b", "v"])
    t = t.set_column(3, "v", pc.multiply(t["v"], factor))
    return t.append_column("payload", pa.nulls(t.num_rows, pa.string())).cast(AGG_SCHEMA)


def _dataset(refs: list[Any], schema: pa.Schema):
    import ray.data

    return ray.data.from_arrow_refs(refs) if refs else ray.data.from_arrow(schema.empty_table())


def _tables(folder: Path) -> Iterator[pa.Table]:
    for f in sorted(folder.glob("*.parquet")):
        yield pads.dataset(str(f), format="parquet").to_table()


def load_aggregates(folder: Path, ref: float, events: int) -> Aggregates:
    """Folded rows back into an in-process Aggregates (tests, `eval-recs` and small shops)."""
    agg = Aggregates(ref=ref, events=events)
    for sub in ("sums", "open"):
        for t in _tables(folder / sub):
            for r in t.to_pylist():
                tag = r["tag"]
                if tag == "items":
                    agg.items[r["a"]] += r["v"]
                elif tag in ("pairs", "bought", "trans"):
                    getattr(agg, tag)[(r["a"], r["b"])] += r["v"]
                elif tag == "sessions":
                    agg.sessions += r["v"]
                elif tag == "open":
                    agg.open[r["a"]] = segment_of(r["payload"])
    return agg


NEIGHBOUR_SCHEMA = pa.schema([("sku", pa.string()), ("similar", pa.string()), ("together", pa.string()),
                              ("next", pa.string()), ("recs_hash", pa.string())])
LISTS = {"pairs": "similar", "bought": "together", "trans": "next"}


@dataclass(frozen=True)
class Totals:
    """The small per-product sums the scores need: each product's weight, each product's transitions
    out, and the decayed number of sessions."""

    items: dict[str, float]
    from_total: dict[str, float]
    sessions: float


def totals(folder: Path) -> Totals:
    items: dict[str, float] = {}
    from_total: dict[str, float] = {}
    sessions = 0.0
    for f in sorted((folder / "sums").glob("*.parquet")):
        for b in pads.dataset(str(f), format="parquet").to_batches(batch_size=65536):
            t = pa.Table.from_batches([b])
            for tag, a, v in zip(t["tag"].to_pylist(), t["a"].to_pylist(), t["v"].to_pylist()):
                if tag == "items":
                    items[a] = items.get(a, 0.0) + v
                elif tag == "trans":
                    from_total[a] = from_total.get(a, 0.0) + v
                elif tag == "sessions":
                    sessions += v
    return Totals(items, from_total, sessions)


def score_batch(batch: pa.Table, tot: list[Any], cfg: RecommendConfig) -> pa.Table:
    """Aggregate rows -> (sku, list, partner, score) rows (shopgen.recommend.cooc.scored)."""
    import ray

    from shopgen.recommend.cooc import scored

    t: Totals = ray.get(tot[0]) if not isinstance(tot[0], Totals) else tot[0]
    out: dict[str, list[Any]] = {"sku": [], "list": [], "partner": [], "score": []}
    for tag, a, b, v in zip(batch["tag"].to_pylist(), batch["a"].to_pylist(), batch["b"].to_pylist(),
                            batch["v"].to_pylist()):
        if tag not in LISTS:
            continue
        for x, y, s in scored(tag, a, b, v, t.items, cfg, t.sessions, t.from_total):
            out["sku"].append(x)
            out["list"].append(LISTS[tag])
            out["partner"].append(y)
            out["score"].append(s)
    return pa.table(out, schema=pa.schema([("sku", pa.string()), ("list", pa.string()), ("partner", pa.string()),
                                           ("score", pa.float64())]))


def top_group(group: pa.Table, k: int) -> pa.Table:
    """One product's scored partners -> its row of candidate lists (best k of each) and their hash."""
    import hashlib

    from shopgen.recommend.cooc import top

    by: dict[str, list[tuple[str, float]]] = {v: [] for v in LISTS.values()}
    for lst, partner, score in zip(group["list"].to_pylist(), group["partner"].to_pylist(),
                                   group["score"].to_pylist()):
        by[lst].append((partner, score))
    lists = {name: [[s, v] for s, v in top(c, k)] for name, c in by.items()}
    cols = {name: json.dumps(v) for name, v in lists.items()}
    # The order of partners, not their scores: a night that only decays the scores changes no document.
    digest = hashlib.sha256(json.dumps({n: [s for s, _ in v] for n, v in lists.items()},
                                       sort_keys=True).encode()).hexdigest()[:16]
    return pa.table({"sku": [group["sku"][0].as_py()], **{n: [cols[n]] for n in LISTS.values()},
                     "recs_hash": [digest]}, schema=NEIGHBOUR_SCHEMA)


def neighbour_table(folder: Path, cfg: RecommendConfig, out: Path, candidates: int = 100) -> Totals:
    """Each product's best partners per list, from the folded rows (`folder`), on Ray Data: one
    product per group. The driver holds the per-product totals, never the pair table."""
    import ray

    from shopgen.adapters.raysupport import collect

    tot = totals(folder)
    ref = ray.put(tot)
    pairs = local_parquet(_files(folder, "sums"), AGG_SCHEMA)
    scoredds = pairs.map_batches(score_batch, batch_format="pyarrow", fn_kwargs={"tot": [ref], "cfg": cfg})
    collect(scoredds.repartition(_blocks(len(tot.items), 2_000), keys=["sku"])
            .map_batches(top_block, batch_format="pyarrow", batch_size=None, fn_kwargs={"k": candidates}), out)
    return tot


def top_block(block: pa.Table, k: int) -> pa.Table:
    """A block holding every scored partner of its products -> one row per product (top_group)."""
    if not block.num_rows:
        return NEIGHBOUR_SCHEMA.empty_table()
    block = block.sort_by("sku")
    skus = block["sku"].to_pylist()
    parts, lo = [], 0
    for i in range(1, len(skus) + 1):
        if i == len(skus) or skus[i] != skus[lo]:
            parts.append(top_group(block.slice(lo, i - lo), k))
            lo = i
    return pa.concat_tables(parts)


def read_neighbours(folder: Path, skus: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """sku -> {similar, together, next: [(partner, score)], recs_hash}, for `skus` (or all)."""
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        return {}
    ds = pads.dataset(str(folder), format="parquet")
    t = ds.to_table(filter=pc.field("sku").isin(list(skus))) if skus is not None else ds.to_table()
    out = {}
    for r in t.to_pylist():
        out[r["sku"]] = {n: [(s, float(v)) for s, v in json.loads(r[n])] for n in LISTS.values()}
        out[r["sku"]]["recs_hash"] = r["recs_hash"]
    return out


def stored_neighbours(store: Any, gen: str, skus: Iterable[str]) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """read_neighbours from a generation in the state store (recs/<gen>/neighbours), only the
    row groups that hold one of `skus`."""
    want = sorted(set(skus))
    out: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for x in [x for x in store.list(f"recs/{gen}/neighbours") if x.endswith(".parquet")] if want else []:
        for r in store.read_where(f"recs/{gen}/neighbours/{x}", "sku", want).to_pylist():
            out[r["sku"]] = {n: [(s, float(v)) for s, v in json.loads(r[n])] for n in LISTS.values()}
    return out


# ---- the same, in this process (small logs: a Ray Data shuffle costs seconds of fixed overhead) ----

def fold_local(chunks: Iterable[pa.Table], previous: Path | None, prev_ref: float, cfg: RecommendConfig,
               out: Path, ref: Callable[[], float]) -> Folded:
    """fold_night without Ray: last night's rows and tonight's events in this process."""
    from shopgen.recommend.cooc import add_events

    agg = load_aggregates(previous, prev_ref, 0) if previous is not None else Aggregates()
    events = [Event(r["session"], r["user"], r["sku"], r["kind"], r["ts"]) for t in chunks for r in t.to_pylist()]
    tonight = max(ref(), prev_ref)
    agg.decay_to(tonight, cfg.half_life_days)
    add_events(agg, events, cfg)
    write_aggregates(agg, out)
    return Folded(out, agg.ref, len(events))


def write_aggregates(agg: Aggregates, out: Path) -> None:
    import pyarrow.parquet as pq

    rows = _rows(agg, agg.open)
    is_open = pc.equal(rows["tag"], "open")
    for sub, t in (("sums", rows.filter(pc.invert(is_open))), ("open", rows.filter(is_open))):
        (out / sub).mkdir(parents=True, exist_ok=True)
        pq.write_table(t, out / sub / "part-00000.parquet")


def neighbours_local(folder: Path, cfg: RecommendConfig, out: Path, candidates: int = 100) -> Totals:
    """neighbour_table without Ray."""
    import pyarrow.parquet as pq

    tot = totals(folder)
    rows = []
    for t in _tables(folder / "sums"):
        rows.append(score_batch(t, [tot], cfg))
    scoredt = pa.concat_tables(rows) if rows else score_batch(AGG_SCHEMA.empty_table(), [tot], cfg)
    out.mkdir(parents=True, exist_ok=True)
    if scoredt.num_rows:
        pq.write_table(top_block(scoredt, candidates), out / "part-00000.parquet")
    return tot


def split_rows(rows: Any, bad: Callable[[Quarantined], None]) -> tuple[Any, Callable[[], float]]:
    """read_files' rows -> the valid events (a Dataset) and tonight's latest event time; the bad rows
    stream to `bad` on the driver, a batch at a time."""
    from ray.data.expressions import col

    for b in rows.filter(expr=col("reason").is_not_null()).iter_batches(batch_format="pyarrow", batch_size=10_000):
        for r in b.to_pylist():
            bad(Quarantined(stage="events", reason=r["reason"], sku=r["sku"], source=r["source"], line=r["line"],
                            raw=json.loads(r["raw"]) if r["raw"] else None))
    good = rows.filter(expr=col("reason").is_null())
    return good, lambda: float(good.max("ts") or 0.0) if good.count() else 0.0
