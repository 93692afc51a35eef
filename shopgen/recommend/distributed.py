"""The behaviour aggregates on Ray Data: the same fold as shopgen/recommend/cooc.py, one session per
group, so the driver holds one chunk of events at a time and never the log or the pair table.

The driver streams and validates the log (shopgen/recommend/events.py: every format, line numbers,
reasons) and hands it to Ray as Arrow chunks in the object store. Each session's events, with its open
segment from last night, fold into delta rows (`tag`, `a`, `b`, `v`); last night's aggregates, decayed
to tonight, join them and one group-by sums them. The result is the new aggregate rows and the
sessions still open, streamed to a folder on the driver (shopgen.adapters.raysupport.collect)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from shopgen.core.config import RecommendConfig
from shopgen.core.records import Quarantined
from shopgen.recommend.cooc import DAY_S, Aggregates, Segment, fold_session, still_open
from shopgen.recommend.events import Event

OPEN = "__open__"  # an open segment travelling with its session's events
EVENT_SCHEMA = pa.schema([("session", pa.string()), ("user", pa.string()), ("sku", pa.string()),
                          ("kind", pa.string()), ("ts", pa.float64()), ("payload", pa.string())])
AGG_SCHEMA = pa.schema([("tag", pa.string()), ("a", pa.string()), ("b", pa.string()), ("v", pa.float64()),
                        ("payload", pa.string())])
TABLES = ("items", "pairs", "bought", "trans")


@dataclass(frozen=True)
class Folded:
    """What one night's fold leaves: the aggregate rows (a folder of Parquet) and its figures."""

    folder: Path
    ref: float
    events: int
    sessions: float


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


def fold_group(group: pa.Table, cfg: RecommendConfig, ref: float) -> pa.Table:
    """One session's rows -> its delta rows (decayed to `ref`) and, if it may continue, its open segment."""
    rows = group.to_pylist()
    seg = None
    events = []
    for r in rows:
        if r["kind"] == OPEN:
            seg = segment_of(r["payload"])
        else:
            events.append(Event(r["session"], r["user"], r["sku"], r["kind"], r["ts"]))
    session = rows[0]["session"]
    local = Aggregates(ref=ref)
    if events:
        seg = fold_session(local, events, seg, cfg)
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
    if seg is not None and still_open(seg, ref, cfg):
        add("open", session, "", 0.0, segment_json(seg))
    return pa.table(out, schema=AGG_SCHEMA)


def fold_night(chunks: Iterable[pa.Table], previous: Path | None, prev_ref: float, cfg: RecommendConfig,
               out: Path, ref: Callable[[], float]) -> Folded:
    """Tonight's events (chunks) folded into last night's rows (`previous`: the `out` of the night
    before, or None) on Ray Data; the new rows go to `out` (sums/ and open/). `ref()` is tonight's
    reference time, known once the chunks have been read: the latest event time seen."""
    import ray
    from ray.data.expressions import col

    from shopgen.adapters.raysupport import collect

    refs, n = [], 0
    for t in chunks:
        refs.append(ray.put(t))
        n += t.num_rows
    tonight = max(ref(), prev_ref)
    f = 2.0 ** (-(tonight - prev_ref) / (cfg.half_life_days * DAY_S)) if prev_ref else 1.0
    # Last night's open segments rejoin their sessions' events; its sums, decayed to tonight, join the deltas.
    events = _dataset(refs + _refs(previous, "open", open_rows), EVENT_SCHEMA)
    carried = _dataset(_refs(previous, "sums", lambda t: _decayed(t, f)), AGG_SCHEMA)
    deltas = (events.groupby("session").map_groups(fold_group, batch_format="pyarrow",
                                                   fn_kwargs={"cfg": cfg, "ref": tonight})
              .union(carried).materialize())
    summed = (deltas.filter(expr=col("tag") != "open").groupby(["tag", "a", "b"]).sum("v")
              .rename_columns({"sum(v)": "v"}))
    collect(summed, out / "sums")
    collect(deltas.filter(expr=col("tag") == "open"), out / "open")
    sessions = 0.0
    for t in _tables(out / "sums"):
        sessions += pc.sum(t.filter(pc.equal(t["tag"], "sessions"))["v"]).as_py() or 0.0
    return Folded(out, tonight, n, sessions)


def _decayed(t: pa.Table, factor: float) -> pa.Table:
    t = t.select(["tag", "a", "b", "v"])
    t = t.set_column(3, "v", pc.multiply(t["v"], factor))
    return t.append_column("payload", pa.nulls(t.num_rows, pa.string())).cast(AGG_SCHEMA)


def _refs(previous: Path | None, sub: str, convert: Callable[[pa.Table], pa.Table]) -> list[Any]:
    """Last night's rows of one kind, a batch at a time into the object store."""
    import ray

    if previous is None or not (previous / sub).is_dir():
        return []
    refs = []
    for f in sorted((previous / sub).glob("*.parquet")):
        for batch in pads.dataset(str(f), format="parquet").to_batches(batch_size=65536):
            if batch.num_rows:
                refs.append(ray.put(convert(pa.Table.from_batches([batch]))))
    return refs


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
