"""Recommendations from behaviour, measured on the synthetic log (data/make_events.py):

1. eval-recs figures (time-split replay, Recall/MRR/NDCG@20 and coverage) for the blend and the
   baselines, for each similarity (cosine, jaccard, lift: the default is the best of them here), on the
   bundled catalog and on a 10x catalog (clones of it: bigger categories, harder to guess);
2. the aggregation's throughput (events/s) against a plain pandas co-occurrence (self-join of each
   session's products, group-by count) on the same validated events, one process, same machine;
3. with --scale: the nightly's Ray Data path (read and validate the file a chunk at a time, fold_night,
   neighbour_table) on a 500k-event / 5k-product log and a 5M-event / 50k-product one, each in its own
   process: its events/s, and the driver's peak memory (VmHWM) against the same process's after
   imports and Ray's start, which must not grow with the log.

    .venv/bin/python bench/recs.py [--sessions 3000] [--scale] [--json]

With --json the last line is one JSON object."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _make(out: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "data" / "make_events.py"), "--out", str(out), *args], check=True,
                   capture_output=True)


def _clone_catalog(src: Path, dest: Path, n: int) -> None:
    """The bundled catalog cloned to n SKUs, as make_events --products numbers them."""
    rows = [json.loads(x) for x in src.read_text(encoding="utf-8").splitlines() if x.strip()]
    with dest.open("w", encoding="utf-8") as f:
        for i in range(n):
            r = dict(rows[i % len(rows)])
            if i >= len(rows):
                r["sku"] = f"{r['sku']}-{i // len(rows)}"
                r["title"] = f"{r['title']} ({i // len(rows)})"
            f.write(json.dumps(r) + "\n")


def _pandas_cooc(events) -> tuple[float, int]:
    import pandas as pd

    t = time.perf_counter()
    df = pd.DataFrame({"session": [e.session for e in events], "sku": [e.sku for e in events]}).drop_duplicates()
    pairs = df.merge(df, on="session")
    pairs = pairs[pairs.sku_x < pairs.sku_y]
    counts = pairs.groupby(["sku_x", "sku_y"]).size()
    return time.perf_counter() - t, len(counts)


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, it starts again at exec, so a
    child of a big parent does not inherit the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def scale_run(log: Path, out: Path) -> dict:
    """One process: Ray up, then the nightly's read -> fold_night -> neighbour_table on `log`."""
    from datetime import datetime, timezone

    from shopgen.adapters.raysupport import ray_session
    from shopgen.core.config import load_settings
    from shopgen.recommend.distributed import fold_night, neighbour_table, read_files, split_rows
    from shopgen.recommend.events import salt_key

    s = load_settings(home=out / "home", ray={"num_cpus": 2})
    with ray_session(s):
        base = _peak_mb()
        bad = [0]
        t = time.perf_counter()
        rows = read_files([str(log)], s, salt_key(s), datetime.now(timezone.utc).timestamp())
        good, ref = split_rows(rows, lambda q: bad.__setitem__(0, bad[0] + 1))
        folded = fold_night(good, None, 0.0, s.recommend, out / "folded", ref)
        t_fold = time.perf_counter() - t
        tot = neighbour_table(folded.folder, s.recommend, out / "neighbours")
        t_all = time.perf_counter() - t
    return {"events": folded.events, "products_seen": len(tot.items), "fold_s": round(t_fold, 1),
            "total_s": round(t_all, 1), "events_per_s": round(folded.events / t_all), "bad_rows": bad[0],
            "driver_base_mb": round(base),
            "driver_peak_mb": round(_peak_mb()), "driver_growth_mb": round(_peak_mb() - base)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=3000)
    ap.add_argument("--scale", action="store_true", help="also the Ray Data path at 500k and 5M events")
    ap.add_argument("--scale-run", nargs=2, metavar=("LOG", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.scale_run:
        print(json.dumps(scale_run(Path(a.scale_run[0]), Path(a.scale_run[1]))))
        return

    from shopgen.core.config import load_settings
    from shopgen.recommend.cooc import Aggregates, add_events
    from shopgen.recommend.events import Event, read_events
    from shopgen.recommend.stage import run_eval_recs

    tmp = Path(tempfile.mkdtemp(prefix="bench-recs-"))
    s = load_settings(home=tmp / "home")
    res: dict = {"sessions": a.sessions}
    sample = ROOT / "data" / "sample_catalog.jsonl"
    big = tmp / "catalog10x.jsonl"
    _clone_catalog(sample, big, 3240)
    logs = {"sample": (sample, tmp / "events.jsonl", []),
            "catalog10x": (big, tmp / "events10x.jsonl", ["--products", "3240"])}
    for name, (catalog, log, extra) in logs.items():
        _make(log, "--sessions", str(a.sessions), *extra)
        for sim in ("cosine", "jaccard", "lift"):
            ss = s.model_copy(update={"recommend": s.recommend.model_copy(update={"similarity": sim})})
            t = time.perf_counter()
            rep = run_eval_recs(str(log), ss, None, str(catalog), 20, None)
            res[f"{name}.{sim}"] = {k: v for k, v in rep.items() if "@" in k or k.startswith("coverage.")}
            res[f"{name}.{sim}"]["seconds"] = round(time.perf_counter() - t, 1)
            res[f"{name}.cases"] = rep["cases"]
            r = res[f"{name}.{sim}"]
            print(f"{name:10s} {sim:8s} recall@20 blend {r['recall@20.blend']:.4f}  popularity "
                  f"{r['recall@20.popularity']:.4f}  cooc {r['recall@20.cooc']:.4f}  content {r['recall@20.content']:.4f}"
                  f"  (blend/popularity {r['recall@20.blend'] / max(r['recall@20.popularity'], 1e-9):.2f}x, "
                  f"blend/cooc {r['recall@20.blend'] / max(r['recall@20.cooc'], 1e-9):.2f}x)", file=sys.stderr)

    # Throughput, same events, same process.
    big_log = tmp / "events-throughput.jsonl"
    _make(big_log, "--sessions", str(a.sessions * 10), "--products", "3240")
    events = [e for e in read_events(str(big_log), s) if isinstance(e, Event)]
    t = time.perf_counter()
    agg = add_events(Aggregates(), events, s.recommend)
    ours = time.perf_counter() - t
    theirs, n_pairs = _pandas_cooc(events)
    res["throughput"] = {"events": len(events), "shopgen_events_per_s": round(len(events) / ours),
                         "pandas_events_per_s": round(len(events) / theirs), "ratio_vs_pandas": round(theirs / ours, 3),
                         "shopgen_pairs": len(agg.pairs), "pandas_pairs": n_pairs,
                         "note": "shopgen also computes weights, decay, purchases together and transitions"}
    print(f"throughput: shopgen {res['throughput']['shopgen_events_per_s']} events/s, pandas "
          f"{res['throughput']['pandas_events_per_s']} events/s (ratio {res['throughput']['ratio_vs_pandas']}x) on "
          f"{len(events)} events", file=sys.stderr)
    if a.scale:
        for name, events, products in (("500k_5k", 500_000, 5_000), ("5m_50k", 5_000_000, 50_000)):
            log = tmp / f"{name}.jsonl"
            _make(log, "--events", str(events), "--products", str(products), "--days", "90")
            p = subprocess.run([sys.executable, __file__, "--scale-run", str(log), str(tmp / name)], capture_output=True,
                               text=True)
            if p.returncode:
                raise SystemExit(p.stderr[-3000:])
            res[f"scale.{name}"] = json.loads(p.stdout.strip().splitlines()[-1])
            if name == "500k_5k":  # the same events through a plain pandas co-occurrence, this process
                evs = [e for e in read_events(str(log), s) if isinstance(e, Event)]
                took, _ = _pandas_cooc(evs)
                res[f"scale.{name}"]["pandas_events_per_s"] = round(len(evs) / took)
                res[f"scale.{name}"]["ratio_vs_pandas"] = round(res[f"scale.{name}"]["events_per_s"] * took / len(evs), 3)
                del evs
            log.unlink()
            print(f"ray data path, {name}: {res[f'scale.{name}']}", file=sys.stderr)
        small, big = res["scale.500k_5k"], res["scale.5m_50k"]
        res["scale.peak_ratio_5m_vs_500k"] = round(big["driver_peak_mb"] / small["driver_peak_mb"], 3)
        print(f"driver peak: {small['driver_peak_mb']} MB at 500k events, {big['driver_peak_mb']} MB at 5M "
              f"({res['scale.peak_ratio_5m_vs_500k']}x)", file=sys.stderr)
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
