"""Recommendations from behaviour, measured on the synthetic log (data/make_events.py):

1. eval-recs figures (time-split replay, Recall/MRR/NDCG@20 and coverage) for the blend and the
   baselines, for each similarity (cosine, jaccard, lift: the default is the best of them here), on the
   bundled catalog and on a 10x catalog (clones of it: bigger categories, harder to guess);
2. the aggregation's throughput (events/s) against a plain pandas co-occurrence (self-join of each
   session's products, group-by count) on the same validated events, one process, same machine.
   Both are in-process here; the Ray Data stage and its driver-memory figures come with the nightly
   stage (issue 23, part 2).

    .venv/bin/python bench/recs.py [--sessions 3000] [--json]

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=3000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

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
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
