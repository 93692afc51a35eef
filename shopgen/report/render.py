"""The run report: a self-contained report.html (plots inlined as SVG) and the terminal summary of
`shopgen report RUN`, both built from a run's report.json; plus finding that report.json.

Every renderer is pure and tolerant: a run that failed early writes a partial report, so any key
may be missing or of an unexpected type, and rendering never raises on it."""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
from datetime import datetime
from typing import Any

from shopgen.adapters import storage
from shopgen.core.config import S3Config

REPORT_NAME = "report.json"
RUNS_DIR = "runs"

# Counts shown first (in this order) in the counts table; any other count follows.
COUNT_ORDER = ("valid", "invalid", "new", "changed", "unchanged", "deleted", "quarantined", "regenerated",
               "reused", "resumed", "retried", "copy_requests", "generated", "generation_failed", "copy_fresh",
               "copy_kept", "copy_none", "embedded", "embeddings_reused", "indexed")
# The change-plan bars: what changed in the catalog and what the run did about it.
CHANGE_KEYS = ("new", "changed", "unchanged", "deleted", "quarantined", "regenerated", "reused", "resumed", "retried")
CHANGE_COLORS = {"new": "#2ca02c", "changed": "#ff7f0e", "unchanged": "#7f7f7f", "deleted": "#d62728",
                 "quarantined": "#9467bd", "regenerated": "#1f77b4", "reused": "#17becf", "resumed": "#bcbd22",
                 "retried": "#e377c2"}
THROUGHPUT = (("generate", "tokens_per_s", "tokens/s"), ("embed", "docs_per_s", "docs/s"),
              ("index", "docs_per_s", "docs/s"))


# ---------------------------------------------------------------------------------------------
# Tolerant accessors


def _d(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _fmt(x: Any) -> str:
    """A number the way a person reads it: ints as ints, floats to a few places."""
    v = _num(x)
    if v is None:
        return "—" if x is None else str(x)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.1f}"


def _secs(x: Any) -> str:
    v = _num(x)
    if v is None:
        return "—"
    if v < 60:
        return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"
    m, s = divmod(round(v), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _time(ts: Any) -> datetime | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        return datetime.fromisoformat(ts)
    except ValueError:
        return None


def duration_s(report: dict) -> float | None:
    """Wall time of the run (finished_at − started_at), or None when either is missing."""
    a, b = _time(report.get("started_at")), _time(report.get("finished_at"))
    if a is None or b is None or (a.tzinfo is None) != (b.tzinfo is None):
        return None
    return (b - a).total_seconds()


def _errors(report: dict) -> list[str]:
    errs = report.get("errors")
    if errs is None:
        return []
    if not isinstance(errs, list):
        errs = [errs]
    return [e if isinstance(e, str) else json.dumps(e, default=str, ensure_ascii=False) for e in errs]


def _counts(report: dict) -> list[tuple[str, Any]]:
    counts = _d(report.get("counts"))
    keys = [k for k in COUNT_ORDER if k in counts] + [k for k in counts if k not in COUNT_ORDER]
    return [(str(k), counts[k]) for k in keys]


def _stage_seconds(report: dict) -> list[tuple[str, float]]:
    out = []
    for name, st in _d(report.get("stages")).items():
        v = _num(_d(st).get("seconds"))
        if v is not None:
            out.append((str(name), v))
    return out


def _throughput(report: dict) -> list[tuple[str, float]]:
    stages = _d(report.get("stages"))
    out = []
    for stage, key, unit in THROUGHPUT:
        v = _num(_d(stages.get(stage)).get(key))
        if v is not None:
            out.append((f"{stage} ({unit})", v))
    return out


def _qa(report: dict) -> list[tuple[str, float, Any, Any]]:
    """(check, pass_rate, passed, checked) per QA check with a numeric pass rate."""
    out = []
    for name, c in _d(_d(report.get("qa")).get("checks")).items():
        c = _d(c)
        rate = _num(c.get("pass_rate"))
        if rate is None and _num(c.get("checked")):
            p = _num(c.get("passed"))
            rate = p / c["checked"] if p is not None else None
        if rate is not None:
            out.append((str(name), rate, c.get("passed"), c.get("checked")))
    return out


def _changes(report: dict) -> list[tuple[str, float]]:
    counts = _d(report.get("counts"))
    return [(k, v) for k in CHANGE_KEYS if (v := _num(counts.get(k))) is not None]


def _index(report: dict) -> dict:
    return _d(_d(report.get("stages")).get("index"))


def _gate(report: dict) -> dict:
    return _d(_index(report).get("gate"))


def _gate_checks(report: dict) -> list[dict]:
    checks = _gate(report).get("checks")
    return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []


def is_search_eval_check(check: dict) -> bool:
    """A gate check that scores relevance on judgments (gate.ndcg: `ndcg@10` with new/live figures)."""
    name = str(check.get("check", "")).lower()
    return "ndcg" in name or "judg" in name or "relevance" in name


def search_eval(report: dict) -> list[dict]:
    """Relevance figures of the gate: [{check, metric, new, live, mode, passed, detail}], one per metric.
    `new`/`live` may be plain numbers (gate.ndcg) or metric dicts ({"ndcg@10": …, "mrr": …})."""
    out = []
    for c in _gate_checks(report):
        if not is_search_eval_check(c):
            continue
        new, live = c.get("new"), c.get("live")
        base = {"check": str(c.get("check")), "mode": c.get("mode"), "passed": c.get("passed"),
                "detail": c.get("detail")}
        if isinstance(new, dict):
            live = _d(live)
            for metric, v in new.items():
                if _num(v) is not None:
                    out.append({**base, "metric": str(metric), "new": _num(v), "live": _num(live.get(metric))})
        elif _num(new) is not None:
            out.append({**base, "metric": str(c.get("check")), "new": _num(new), "live": _num(live)})
    return out


def _gate_verdict(report: dict) -> str | None:
    g = _gate(report)
    if "passed" not in g:
        return None
    idx = _index(report)
    verdict = "passed" if g["passed"] else "REFUSED"
    if "swapped" in idx:
        verdict += ", alias moved" if idx["swapped"] else ", alias NOT moved"
    return verdict


def _resumed(report: dict) -> str | None:
    rb = report.get("resumed_batches")
    if rb in (None, [], 0):
        return None
    return f"{len(rb)} batch(es)" if isinstance(rb, (list, tuple, dict)) else str(rb)


def _outputs(report: dict) -> list[tuple[str, str]]:
    outs = _d(report.get("outputs"))
    labels = (("report", "report.json"), ("report_html", "report.html"), ("run_prefix", "run folder"))
    return [(label, str(outs[k])) for k, label in labels if outs.get(k)]


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib, object API: no pyplot, no global backend switch; the SVG backend draws)


_RC = {"svg.fonttype": "none", "text.parse_math": False, "font.family": "sans-serif",
       "font.sans-serif": ["DejaVu Sans"], "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
_SVG_IDS = re.compile(r' id="[\w.]+_\d+"')  # figure_1, axes_1, patch_3 ...: repeat in every figure


def _svg(fig, name: str) -> str:
    import matplotlib as mpl

    buf = io.StringIO()
    # A salt per plot keeps the referenced ids (clip paths, markers) unique between the figures of
    # one page and the output deterministic (the same report renders to the same bytes).
    with mpl.rc_context({**_RC, "svg.hashsalt": f"shopgen-{name}"}):
        fig.savefig(buf, format="svg", bbox_inches="tight",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.find("<svg"):]  # drop the XML prolog and DOCTYPE
    # The unreferenced per-figure ids would clash between the figures of one page.
    return _SVG_IDS.sub("", svg)


def _figure(n_rows: int, width: float = 6.4):
    import matplotlib as mpl
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(width, 0.9 + 0.32 * max(n_rows, 1)))
        ax = fig.add_subplot()
    return fig, ax


def _hbars(name: str, items: list[tuple[str, float]], labels: list[str], xlabel: str, colors: Any = "#1f77b4",
           xlim: tuple[float, float] | None = None) -> str:
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig, ax = _figure(len(items))
        names = [n for n, _ in items]
        vals = [v for _, v in items]
        ys = list(range(len(items)))
        ax.barh(ys, vals, color=colors, height=0.6)
        ax.set_yticks(ys, names)
        ax.invert_yaxis()  # first item on top
        ax.set_xlabel(xlabel)
        top = max([v for v in vals if v > 0] or [1.0])
        ax.set_xlim(*(xlim or (0, top * 1.22)))
        if xlim:  # room on the right for the labels, ticks only over the data range
            ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        span = (xlim[1] - xlim[0]) if xlim else top * 1.22
        for y, v, lab in zip(ys, vals, labels):
            ax.text(max(v, 0) + span * 0.01, y, lab, va="center", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        return _svg(fig, name)


def plot_stage_timings(report: dict) -> str | None:
    items = _stage_seconds(report)
    return _hbars("timings", items, [_secs(v) for _, v in items], "seconds") if items else None


def plot_throughput(report: dict) -> str | None:
    items = _throughput(report)
    colors = ["#ff7f0e" if "tokens" in n else "#1f77b4" for n, _ in items]
    return _hbars("throughput", items, [_fmt(round(v, 2)) for _, v in items], "per second", colors) if items else None


def plot_qa(report: dict) -> str | None:
    rows = _qa(report)
    if not rows:
        return None
    items = [(n, r) for n, r, _, _ in rows]
    labels = [f"{r:.1%}" + (f"  ({_fmt(p)}/{_fmt(c)})" if _num(p) is not None and _num(c) is not None else "")
              for _, r, p, c in rows]
    colors = ["#2ca02c" if r >= 1 else "#ff7f0e" for _, r in items]
    return _hbars("qa", items, labels, "pass rate", colors, xlim=(0, 1.3))


def plot_changes(report: dict) -> str | None:
    items = _changes(report)
    if not items:
        return None
    return _hbars("changes", items, [_fmt(v) for _, v in items], "products", [CHANGE_COLORS[k] for k, _ in items])


def plot_search_eval(report: dict) -> str | None:
    rows = search_eval(report)
    if not rows:
        return None
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig, ax = _figure(2 * len(rows))
        ys, h = list(range(len(rows))), 0.38
        new = [r["new"] for r in rows]
        live = [r["live"] for r in rows]
        ax.barh([y - h / 2 for y in ys], new, h, color="#1f77b4", label="new index")
        ax.barh([y + h / 2 for y in ys], [v or 0 for v in live], h, color="#7f7f7f", label="live index")
        for y, n, lv in zip(ys, new, live):
            ax.text(n + 0.01, y - h / 2, f"{n:.4f}", va="center", fontsize=8)
            ax.text((lv or 0) + 0.01, y + h / 2, f"{lv:.4f}" if lv is not None else "no live index",
                    va="center", fontsize=8)
        names = [r["metric"] + (f" ({r['mode']})" if r.get("mode") else "") for r in rows]
        ax.set_yticks(ys, names)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.25)
        ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_xlabel("score")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        return _svg(fig, "search-eval")


# ---------------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:980px;
 color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;border-bottom:1px solid #eee;
 text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f6f6f6}.status{font-weight:bold;padding:.1em .5em;border-radius:3px}
.ok{background:#d9f2d9;color:#1a5e1a}.bad{background:#f8d7d7;color:#8a1a1a}.warn{background:#fdebd0}
.na{color:#777;font-style:italic}.errors li{color:#8a1a1a;white-space:pre-wrap;font-family:monospace}
.plot svg{max-width:100%;height:auto}code{font-size:.95em}
"""


def _e(x: Any) -> str:
    return html.escape(x if isinstance(x, str) else ("—" if x is None else str(x)), quote=True)


def _status_class(status: Any) -> str:
    s = str(status).lower()
    return "ok" if s in ("succeeded", "success", "ok", "passed") else "bad" if s in ("failed", "error") else "warn"


def _table(rows: list[tuple[str, str]], numeric: bool = False, head: tuple[str, str] | None = None) -> str:
    cls = ' class="n"' if numeric else ""
    h = f"<tr><th>{_e(head[0])}</th><th>{_e(head[1])}</th></tr>" if head else ""
    body = "".join(f"<tr><th>{_e(k)}</th><td{cls}>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{h}{body}</table>"


def _section(title: str, svg: str | None, missing: str, extra: str = "") -> str:
    body = f'<div class="plot">{svg}</div>' if svg else f'<p class="na">{_e(missing)}</p>'
    return f"<section><h2>{_e(title)}</h2>{body}{extra}</section>"


def _header_rows(report: dict) -> list[tuple[str, str]]:
    idx = _index(report)
    rows = [
        ("job", report.get("job")),
        ("mode", report.get("mode")),
        ("catalog", report.get("catalog")),
        ("alias", report.get("alias") or idx.get("alias")),
        ("index", idx.get("index")),
        ("gate", _gate_verdict(report)),
        ("model version", report.get("model_version")),
        ("embedding model", report.get("embedding_model")),
        ("prompt version", report.get("prompt_version")),
        ("content", ", ".join(map(str, report["content"])) if isinstance(report.get("content"), list) else None),
        ("resumed", _resumed(report)),
        ("started", report.get("started_at")),
        ("finished", report.get("finished_at")),
        ("duration", _secs(duration_s(report)) if duration_s(report) is not None else None),
    ]
    return [(k, str(v)) for k, v in rows if v not in (None, "")]


def render_html(report: dict) -> str:
    """A self-contained HTML page for one run: no external scripts, styles, fonts or images; the
    plots are inline SVG. Every string taken from the report is HTML-escaped; the config is not shown."""
    report = _d(report)
    run_id, status = report.get("run_id"), report.get("status")
    errs = _errors(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>shopgen run {_e(run_id)}</title><style>{_CSS}</style></head><body>",
        (f"<h1>shopgen run <code>{_e(run_id)}</code> "
         f'<span class="status {_status_class(status)}">{_e(status or "unknown")}</span></h1>'),
        _table(_header_rows(report)),
    ]
    if errs:
        parts.append('<h2>Errors</h2><ul class="errors">' + "".join(f"<li>{_e(e)}</li>" for e in errs) + "</ul>")
    gate = _gate(report)
    if _d(gate) and gate.get("reasons"):
        parts.append('<h2>Gate refused</h2><ul class="errors">'
                     + "".join(f"<li>{_e(r)}</li>" for r in gate["reasons"]) + "</ul>")

    counts = _counts(report)
    parts.append("<section><h2>Counts</h2>"
                 + (_table([(k, _fmt(v)) for k, v in counts], numeric=True) if counts
                    else '<p class="na">no counts recorded (the run stopped early)</p>') + "</section>")

    parts.append(_section("Changes: new, changed and reused products", plot_changes(report),
                          "no change counts recorded"))
    parts.append(_section("Stage timings", plot_stage_timings(report), "no stage timings recorded"))
    startup = _num(_d(_d(report.get("stages")).get("generate")).get("startup_s"))
    parts.append(_section("Throughput", plot_throughput(report), "no throughput recorded",
                          f"<p>LLM engine startup: {_e(_secs(startup))}</p>" if startup is not None else ""))
    parts.append(_section("QA pass rate per check", plot_qa(report), "no QA results recorded"))
    cov = coverage_rows(report)
    if cov:
        head = _d(report.get("coverage"))
        rows = "".join(f"<tr><th>{_e(t)}</th>" + "".join(f"<td>{_e(v)}</td>" for v in vals) + "</tr>" for t, *vals in cov)
        parts.append(f"<section><h2>Coverage</h2><p>searchable: {_e(head.get('searchable'))} of "
                     f"{_e(head.get('valid'))} valid products ({_e(_pct(head.get('searchable_share')))})</p>"
                     f"<table><tr><th>content type</th><th>fresh</th><th>kept</th><th>none</th></tr>{rows}</table>"
                     "</section>")

    checks = _gate_checks(report)
    if checks:
        rows = "".join(
            f"<tr><th>{_e(c.get('check'))}</th><td><span class=\"status {'ok' if c.get('passed') else 'bad'}\">"
            f"{'pass' if c.get('passed') else 'FAIL'}</span></td><td>{_e(c.get('detail'))}</td></tr>"
            for c in checks)
        parts.append(f"<section><h2>Index gate</h2><table>{rows}</table></section>")

    parts.append(_section("Search evaluation (judgments)", plot_search_eval(report),
                          "search evaluation not configured (no gate.judgments) or the index stage did not run"))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(report: dict, uri: str, s3: S3Config | None = None) -> None:
    """Render the report and write it to a local path or an s3:// URI."""
    storage.write_bytes(uri, render_html(report).encode("utf-8"), s3)


# ---------------------------------------------------------------------------------------------
# Terminal summary


def _pct(x: Any) -> str:
    return f"{x:.1%}" if isinstance(x, (int, float)) else "—"


def coverage_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """Per content type: the shares of valid products with fresh, kept and no copy."""
    types = _d(_d(report.get("coverage")).get("types"))
    return [(t, *(_pct(_d(v).get(f"{k}_share")) for k in ("fresh", "kept", "none"))) for t, v in types.items()]


def summary(report: dict) -> str:
    """A plain-text, multi-line summary of a run for the terminal."""
    report = _d(report)
    lines = [f"run {report.get('run_id', '?')}  job={report.get('job', '?')}  status={report.get('status', '?')}"
             + (f"  mode={report['mode']}" if report.get("mode") else "")]
    dur = duration_s(report)
    when = " → ".join(str(report[k]) for k in ("started_at", "finished_at") if report.get(k))
    if when or dur is not None:
        lines.append(f"  time: {when}" + (f"  ({_secs(dur)})" if dur is not None else ""))
    for label, key in (("catalog", "catalog"), ("model", "model_version"), ("embedder", "embedding_model")):
        if report.get(key):
            lines.append(f"  {label}: {report[key]}")
    if (r := _resumed(report)):
        lines.append(f"  resumed: {r} from an earlier crashed run")

    counts = _d(report.get("counts"))
    change = [f"{k}={_fmt(counts[k])}" for k in CHANGE_KEYS if k in counts]
    if change:
        lines.append("  changes: " + "  ".join(change))
    other = [f"{k}={_fmt(v)}" for k, v in _counts(report) if k not in CHANGE_KEYS]
    if other:
        lines.append("  counts: " + "  ".join(other))

    timings = _stage_seconds(report)
    if timings:
        lines.append("  stages: " + "  ".join(f"{n}={_secs(s)}" for n, s in timings))
    tput = _throughput(report)
    if tput:
        lines.append("  throughput: " + "  ".join(f"{n.replace(' (', ' ').rstrip(')')}={_fmt(round(v, 2))}"
                                                 for n, v in tput))
    cov = _d(report.get("coverage"))
    if cov:
        lines.append(f"  coverage: searchable {_fmt(cov.get('searchable'))}/{_fmt(cov.get('valid'))} "
                     f"({_pct(cov.get('searchable_share'))})  "
                     + "  ".join(f"{t}: fresh {f} kept {k} none {n}" for t, f, k, n in coverage_rows(report)))
    qa = _qa(report)
    if qa:
        lines.append("  qa pass rate: " + "  ".join(f"{n}={r:.1%}" for n, r, _, _ in qa))

    idx = _index(report)
    alias = report.get("alias") or idx.get("alias")
    if idx.get("index") or alias:
        lines.append(f"  index: {idx.get('index', '—')} (alias {alias or '—'})"
                     + (f"  gate: {v}" if (v := _gate_verdict(report)) else ""))
    for reason in _gate(report).get("reasons") or []:
        lines.append(f"    gate: {reason}")
    for r in search_eval(report):
        live = f"{r['live']:.4f}" if r["live"] is not None else "—"
        lines.append(f"  search eval: {r['metric']} new={r['new']:.4f} live={live}"
                     + (f" ({r['mode']})" if r.get("mode") else ""))

    errs = _errors(report)
    if errs:
        lines.append(f"  errors ({len(errs)}):")
        lines.extend(f"    - {e}" for e in errs)
    for label, path in _outputs(report):
        lines.append(f"  {label}: {path}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Finding a run's report.json


def _join(prefix: str, *parts: str) -> str:
    return "/".join([str(prefix).rstrip("/"), *parts])


def _load(uri: str, s3: S3Config | None) -> dict:
    data = storage.read_bytes(uri, s3)
    try:
        report = json.loads(data)
    except ValueError as e:
        raise ValueError(f"{uri}: not a JSON report ({e})") from None
    if not isinstance(report, dict):
        raise ValueError(f"{uri}: not a JSON object")
    report.setdefault("outputs", {})
    if isinstance(report["outputs"], dict):
        report["outputs"].setdefault("report", uri)
    return report


def _kind(uri: str, s3: S3Config | None) -> str:
    """'file', 'dir' or 'missing'."""
    import pyarrow.fs as pafs

    fs, path = storage.resolve(uri, s3)
    t = fs.get_file_info(path).type
    return "file" if t == pafs.FileType.File else "dir" if t == pafs.FileType.Directory else "missing"


def _looks_like_path(run: str) -> bool:
    return storage.is_s3(run) or "/" in run or os.sep in run or run.endswith(".json") or run in (".", "..")


def list_runs(prefix: str, s3: S3Config | None = None) -> list[str]:
    """The run ids under `<prefix>/runs/`, oldest first (run ids sort by time)."""
    import pyarrow.fs as pafs

    fs, path = storage.resolve(_join(prefix, RUNS_DIR), s3)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(os.path.basename(i.path.rstrip("/")) for i in infos if i.type == pafs.FileType.Directory)


def find_report(run: str, state_prefixes: list[str], s3: S3Config | None = None) -> dict:
    """Load a run's report.json. RUN is one of
    - a path or s3:// URI of a report.json (or of any JSON report file);
    - a folder or s3:// prefix holding report.json (a run folder);
    - a run id, looked up as `<prefix>/runs/<run_id>/report.json` under each state prefix, in order;
    - `latest`: the newest run (by run id) holding a report.json under any of the state prefixes.
    Raises FileNotFoundError naming every place it looked."""
    run = str(run).strip()
    prefixes = [str(p) for p in (state_prefixes or []) if p]
    if not run:
        raise ValueError("no run given: pass a run id, 'latest', a run folder or a report.json path")

    if run != "latest" and (_looks_like_path(run) or os.path.exists(run)):
        kind = _kind(run, s3)
        if kind == "file":
            return _load(run, s3)
        if kind == "dir":
            inside = _join(run, REPORT_NAME)
            if _kind(inside, s3) == "file":
                return _load(inside, s3)
            raise FileNotFoundError(f"no {REPORT_NAME} in {run} (looked for {inside})")
        if _looks_like_path(run):
            raise FileNotFoundError(f"no run report at {run}: no such file or folder")

    if not prefixes:
        raise FileNotFoundError(f"cannot look up run {run!r}: no state prefix to search "
                                f"(pass a report.json path or a run folder instead)")

    if run == "latest":
        candidates: list[tuple[str, str]] = []  # (run_id, report uri)
        for p in prefixes:
            candidates += [(rid, _join(p, RUNS_DIR, rid, REPORT_NAME)) for rid in list_runs(p, s3)]
        for _rid, uri in sorted(candidates, reverse=True):
            if _kind(uri, s3) == "file":
                return _load(uri, s3)
        where = ", ".join(_join(p, RUNS_DIR) for p in prefixes)
        raise FileNotFoundError(f"no run with a {REPORT_NAME} found under {where}"
                                + (f" ({len(candidates)} run folder(s) without one)" if candidates else ""))

    tried = []
    for p in prefixes:
        uri = _join(p, RUNS_DIR, run, REPORT_NAME)
        tried.append(uri)
        if _kind(uri, s3) == "file":
            return _load(uri, s3)
    raise FileNotFoundError(f"no report for run {run!r}; looked at: " + ", ".join(tried))
