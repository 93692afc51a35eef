"""The run report: a self-contained report.html (templates/report.html.j2, plots inlined as SVG) and the
terminal summary of `shopgen report RUN`, both built from a run's report.json read as a RunReport
(shopgen.core.report); plus finding that report.json.

Every renderer is pure. The public entry points also take the report as a dict (the pipeline's
rep.data) and read it leniently: a run that failed early writes a partial report, and what does not
fit the model is left out, so rendering never raises on a report's content."""

from __future__ import annotations

import functools
import io
import os
import re
from datetime import datetime
from typing import Any

import jinja2
from markupsafe import Markup

from shopgen.adapters import storage
from shopgen.core.config import S3Config
from shopgen.core.report import GateCheck, GateReport, Outputs, RunReport, StageReport

REPORT_NAME = "report.json"
RUNS_DIR = "runs"

# Counts shown first (in this order) in the counts table; any other count follows.
COUNT_ORDER = ("valid", "invalid", "new", "changed", "unchanged", "deleted", "quarantined", "regenerated",
               "reused", "resumed", "retried", "retry_deferred", "retry_gave_up", "unsupported_language",
               "copy_requests", "generated", "generation_failed", "copy_fresh", "copy_kept", "copy_none", "embedded",
               "embeddings_reused", "indexed")
# The change-plan bars: what changed in the catalog and what the run did about it.
CHANGE_KEYS = ("new", "changed", "unchanged", "deleted", "quarantined", "regenerated", "reused", "resumed", "retried")
CHANGE_COLORS = {"new": "#2ca02c", "changed": "#ff7f0e", "unchanged": "#7f7f7f", "deleted": "#d62728",
                 "quarantined": "#9467bd", "regenerated": "#1f77b4", "reused": "#17becf", "resumed": "#bcbd22",
                 "retried": "#e377c2"}
THROUGHPUT = (("generate", "tokens_per_s", "tokens/s"), ("embed", "docs_per_s", "docs/s"),
              ("index", "docs_per_s", "docs/s"))

ReportLike = RunReport | dict[str, Any]


def as_report(report: ReportLike) -> RunReport:
    """The report as a RunReport: a dict (rep.data, a parsed report.json) is read leniently."""
    return report if isinstance(report, RunReport) else RunReport.lenient(report)


# ---------------------------------------------------------------------------------------------
# Formatting


def _fmt(x: float | None) -> str:
    """A number the way a person reads it: ints as ints, floats to a few places (the model keeps
    NaN and infinities out of a report's figures)."""
    if x is None:
        return "—"
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.3f}".rstrip("0").rstrip(".") if abs(x) < 1000 else f"{x:,.1f}"


def _secs(v: float | None) -> str:
    if v is None:
        return "—"
    if v < 60:
        return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"
    m, s = divmod(round(v), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


# ---------------------------------------------------------------------------------------------
# What the report says


def _time(ts: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(ts) if ts else None
    except ValueError:
        return None


def duration_s(report: ReportLike) -> float | None:
    """Wall time of the run (finished_at − started_at), or None when either is missing."""
    r = as_report(report)
    a, b = _time(r.started_at), _time(r.finished_at)
    if a is None or b is None or (a.tzinfo is None) != (b.tzinfo is None):
        return None
    return (b - a).total_seconds()


def _counts(r: RunReport) -> list[tuple[str, int]]:
    keys = [k for k in COUNT_ORDER if k in r.counts] + [k for k in r.counts if k not in COUNT_ORDER]
    return [(k, r.counts[k]) for k in keys]


def _stage_seconds(r: RunReport) -> list[tuple[str, float]]:
    return [(name, st.seconds) for name, st in r.stages.items() if st.seconds is not None]


def _throughput(r: RunReport) -> list[tuple[str, float]]:
    out = []
    for stage, key, unit in THROUGHPUT:
        v = getattr(r.stages.get(stage) or StageReport(), key)
        if v is not None:
            out.append((f"{stage} ({unit})", v))
    return out


def _qa(r: RunReport) -> list[tuple[str, float, int | None, int | None]]:
    """(check, pass_rate, passed, checked) per QA check with a pass rate (given, or passed/checked)."""
    out = []
    for name, c in (r.qa.checks if r.qa else {}).items():
        rate = c.pass_rate
        if rate is None and c.checked and c.passed is not None:
            rate = c.passed / c.checked
        if rate is not None:
            out.append((name, rate, c.passed, c.checked))
    return out


def _changes(r: RunReport) -> list[tuple[str, int]]:
    return [(k, r.counts[k]) for k in CHANGE_KEYS if k in r.counts]


def _index(r: RunReport) -> StageReport:
    return r.stages.get("index") or StageReport()


def _gate(r: RunReport) -> GateReport:
    return _index(r).gate or GateReport()


def is_search_eval_check(check: GateCheck | dict[str, Any]) -> bool:
    """A gate check that scores relevance on judgments (gate.ndcg: `ndcg@10` with new/live figures)."""
    name = str((check.check if isinstance(check, GateCheck) else check.get("check")) or "").lower()
    return "ndcg" in name or "judg" in name or "relevance" in name


def search_eval(report: ReportLike) -> list[dict[str, Any]]:
    """Relevance figures of the gate: [{check, metric, new, live, mode, passed, detail}], one per metric.
    `new`/`live` may be plain numbers (gate.ndcg) or metric dicts ({"ndcg@10": …, "mrr": …})."""
    out: list[dict[str, Any]] = []
    for c in _gate(as_report(report)).checks:
        if not is_search_eval_check(c):
            continue
        base = {"check": str(c.check), "mode": c.mode, "passed": c.passed, "detail": c.detail}
        if isinstance(c.new, dict):
            live = c.live if isinstance(c.live, dict) else {}
            out += [{**base, "metric": metric, "new": v, "live": live.get(metric)}
                    for metric, v in c.new.items() if v is not None]
        elif c.new is not None:
            out.append({**base, "metric": str(c.check), "new": c.new,
                        "live": c.live if not isinstance(c.live, dict) else None})
    return out


def _gate_verdict(r: RunReport) -> str | None:
    idx = _index(r)
    if idx.gate is None or idx.gate.passed is None:
        return None
    verdict = "passed" if idx.gate.passed else "REFUSED"
    if idx.swapped is not None:
        verdict += ", alias moved" if idx.swapped else ", alias NOT moved"
    return verdict


def _resumed(r: RunReport) -> str | None:
    rb = r.resumed_batches
    if rb in (None, [], 0):
        return None
    return f"{len(rb)} batch(es)" if isinstance(rb, list) else str(rb)


def _outputs(r: RunReport) -> list[tuple[str, str]]:
    if r.outputs is None:
        return []
    labels = (("report", "report.json"), ("report_html", "report.html"), ("run_prefix", "run folder"))
    return [(label, v) for k, label in labels if (v := getattr(r.outputs, k))]


def coverage_rows(report: ReportLike) -> list[tuple[str, str, str, str]]:
    """Per content type: the shares of valid products with fresh, kept and no copy."""
    cov = as_report(report).coverage
    return [(t, _pct(v.fresh_share), _pct(v.kept_share), _pct(v.none_share)) for t, v in (cov.types if cov else {}).items()]


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
        for y, v, lab in zip(ys, vals, labels, strict=True):
            ax.text(max(v, 0) + span * 0.01, y, lab, va="center", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        return _svg(fig, name)


def plot_stage_timings(report: ReportLike) -> str | None:
    items = _stage_seconds(as_report(report))
    return _hbars("timings", items, [_secs(v) for _, v in items], "seconds") if items else None


def plot_throughput(report: ReportLike) -> str | None:
    items = _throughput(as_report(report))
    colors = ["#ff7f0e" if "tokens" in n else "#1f77b4" for n, _ in items]
    return _hbars("throughput", items, [_fmt(round(v, 2)) for _, v in items], "per second", colors) if items else None


def plot_qa(report: ReportLike) -> str | None:
    rows = _qa(as_report(report))
    if not rows:
        return None
    items = [(n, r) for n, r, _, _ in rows]
    labels = [f"{r:.1%}" + (f"  ({_fmt(p)}/{_fmt(c)})" if p is not None and c is not None else "")
              for _, r, p, c in rows]
    colors = ["#2ca02c" if r >= 1 else "#ff7f0e" for _, r in items]
    return _hbars("qa", items, labels, "pass rate", colors, xlim=(0, 1.3))


def plot_changes(report: ReportLike) -> str | None:
    items = _changes(as_report(report))
    if not items:
        return None
    return _hbars("changes", items, [_fmt(v) for _, v in items], "products", [CHANGE_COLORS[k] for k, _ in items])


def plot_search_eval(report: ReportLike) -> str | None:
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
        for y, n, lv in zip(ys, new, live, strict=True):
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
# HTML: templates/report.html.j2 lays the page out; this side only shapes the report into text and rows.


@functools.cache
def _templates() -> jinja2.Environment:
    # Autoescape on for every template (all are HTML), so a report string is text wherever it lands;
    # StrictUndefined so a field the template names and the page data lacks fails instead of vanishing.
    # trim/lstrip/keep_trailing_newline: tag-only lines leave nothing on the page.
    return jinja2.Environment(loader=jinja2.PackageLoader("shopgen.report", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _text(x: Any) -> str:
    return "—" if x is None else str(x)


def _status_class(status: str | None) -> str:
    return {"succeeded": "ok", "failed": "bad"}.get(status or "", "warn")


def _header_rows(r: RunReport) -> list[tuple[str, str]]:
    idx = _index(r)
    dur = duration_s(r)
    rows = [
        ("job", r.job),
        ("mode", r.mode),
        ("catalog", r.catalog),
        ("alias", r.alias or idx.alias),
        ("index", idx.index),
        ("gate", _gate_verdict(r)),
        ("model version", r.model_version),
        ("embedding model", r.embedding_model),
        ("prompt version", r.prompt_version),
        ("content", ", ".join(r.content) if r.content is not None else None),
        ("resumed", _resumed(r)),
        ("started", r.started_at),
        ("finished", r.finished_at),
        ("duration", _secs(dur) if dur is not None else None),
    ]
    return [(k, str(v)) for k, v in rows if v not in (None, "")]


def _figures(r: RunReport) -> dict[str, Markup | None]:
    # The one markup the page takes as it is: matplotlib's SVG backend escapes the text it draws
    # (stage and check names come from the report).
    plots = {"changes": plot_changes, "timings": plot_stage_timings, "throughput": plot_throughput,
             "qa": plot_qa, "search_eval": plot_search_eval}
    return {name: Markup(svg) if (svg := plot(r)) else None for name, plot in plots.items()}


def _coverage(r: RunReport) -> dict[str, Any] | None:
    rows = coverage_rows(r)
    if not rows or r.coverage is None:
        return None
    cov = r.coverage
    return {"searchable": _text(cov.searchable), "valid": _text(cov.valid), "share": _pct(cov.searchable_share),
            "rows": rows}


def _page(r: RunReport) -> dict[str, Any]:
    """Everything report.html.j2 shows, as plain text and rows."""
    startup = (r.stages.get("generate") or StageReport()).startup_s
    return {
        "run_id": _text(r.run_id),
        "status": r.status or "unknown",
        "status_class": _status_class(r.status),
        "header": _header_rows(r),
        "errors": [_text(e) for e in r.errors],
        "gate_reasons": [_text(x) for x in _gate(r).reasons],
        "counts": [(k, _fmt(v)) for k, v in _counts(r)],
        "figures": _figures(r),
        "startup": _secs(startup) if startup is not None else None,
        "coverage": _coverage(r),
        "review": r.review,
        "gate_checks": [{"check": _text(c.check), "passed": bool(c.passed), "detail": _text(c.detail)}
                        for c in _gate(r).checks],
    }


def render_html(report: ReportLike) -> str:
    """A self-contained HTML page for one run: no external scripts, styles, fonts or images; the
    plots are inline SVG. Every string taken from the report is escaped (the templates autoescape);
    the config is not shown."""
    return _templates().get_template("report.html.j2").render(_page(as_report(report)))


def write_html(report: ReportLike, uri: str, s3: S3Config | None = None) -> None:
    """Render the report and write it to a local path or an s3:// URI."""
    storage.write_bytes(uri, render_html(report).encode("utf-8"), s3)


# ---------------------------------------------------------------------------------------------
# Terminal summary


def _summary_head(r: RunReport) -> list[str]:
    lines = [f"run {r.run_id or '?'}  job={r.job or '?'}  status={r.status or '?'}"
             + (f"  mode={r.mode}" if r.mode else "")]
    dur = duration_s(r)
    when = " → ".join(t for t in (r.started_at, r.finished_at) if t)
    if when or dur is not None:
        lines.append(f"  time: {when}" + (f"  ({_secs(dur)})" if dur is not None else ""))
    for label, value in (("catalog", r.catalog), ("model", r.model_version), ("embedder", r.embedding_model)):
        if value:
            lines.append(f"  {label}: {value}")
    if (rb := _resumed(r)):
        lines.append(f"  resumed: {rb} from an earlier crashed run")
    return lines


def _summary_figures(r: RunReport) -> list[str]:
    lines = []
    change = [f"{k}={_fmt(v)}" for k, v in _changes(r)]
    if change:
        lines.append("  changes: " + "  ".join(change))
    other = [f"{k}={_fmt(v)}" for k, v in _counts(r) if k not in CHANGE_KEYS]
    if other:
        lines.append("  counts: " + "  ".join(other))
    timings = _stage_seconds(r)
    if timings:
        lines.append("  stages: " + "  ".join(f"{n}={_secs(s)}" for n, s in timings))
    tput = _throughput(r)
    if tput:
        lines.append("  throughput: " + "  ".join(f"{n.replace(' (', ' ').rstrip(')')}={_fmt(round(v, 2))}"
                                                 for n, v in tput))
    if (cov := r.coverage) is not None:
        lines.append(f"  coverage: searchable {_fmt(cov.searchable)}/{_fmt(cov.valid)} "
                     f"({_pct(cov.searchable_share)})  "
                     + "  ".join(f"{t}: fresh {f} kept {k} none {n}" for t, f, k, n in coverage_rows(r))
                     + (f"  (unsupported language: {_fmt(cov.unsupported_language)})"
                        if cov.unsupported_language else ""))
    qa = _qa(r)
    if qa:
        lines.append("  qa pass rate: " + "  ".join(f"{n}={rate:.1%}" for n, rate, _, _ in qa))
    return lines


def _summary_index(r: RunReport) -> list[str]:
    lines = []
    idx = _index(r)
    alias = r.alias or idx.alias
    if idx.index or alias:
        lines.append(f"  index: {idx.index or '—'} (alias {alias or '—'})"
                     + (f"  gate: {v}" if (v := _gate_verdict(r)) else ""))
    lines.extend(f"    gate: {reason}" for reason in _gate(r).reasons)
    for x in search_eval(r):
        live = f"{x['live']:.4f}" if x["live"] is not None else "—"
        lines.append(f"  search eval: {x['metric']} new={x['new']:.4f} live={live}"
                     + (f" ({x['mode']})" if x.get("mode") else ""))
    return lines


def summary(report: ReportLike) -> str:
    """A plain-text, multi-line summary of a run for the terminal."""
    r = as_report(report)
    lines = [*_summary_head(r), *_summary_figures(r), *_summary_index(r)]
    if r.errors:
        lines.append(f"  errors ({len(r.errors)}):")
        lines.extend(f"    - {e}" for e in r.errors)
    if r.dropped:
        lines.append(f"  unreadable in the report ({len(r.dropped)}, left out):")
        lines.extend(f"    - {d}" for d in r.dropped)
    for label, path in _outputs(r):
        lines.append(f"  {label}: {path}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Finding a run's report.json


def _join(prefix: str, *parts: str) -> str:
    return "/".join([str(prefix).rstrip("/"), *parts])


def _load(uri: str, s3: S3Config | None) -> RunReport:
    """The report at `uri` (ReportError, a ValueError, when it is not a JSON object); its
    outputs.report says where it was read when the report does not."""
    # The core reads no storage itself (layers): the adapter fetches, the model parses.
    report = RunReport.load(storage.read_bytes(uri, s3), name=uri)
    if report.outputs is None:
        report.outputs = Outputs(report=uri)
    elif not report.outputs.report:
        report.outputs.report = uri
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


def find_report(run: str, state_prefixes: list[str], s3: S3Config | None = None) -> dict[str, Any]:
    """load_report's report as plain JSON data (the keys report.json has)."""
    return load_report(run, state_prefixes, s3).to_dict()


def load_report(run: str, state_prefixes: list[str], s3: S3Config | None = None) -> RunReport:
    """Load a run's report.json as a RunReport (see locate_report for RUN). Raises FileNotFoundError
    naming every place it looked, ReportError (a ValueError) naming the file when it is no report."""
    return _load(locate_report(run, state_prefixes, s3), s3)


def locate_report(run: str, state_prefixes: list[str], s3: S3Config | None = None) -> str:
    """Where a run's report.json is. RUN is one of
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
            return run
        if kind == "dir":
            inside = _join(run, REPORT_NAME)
            if _kind(inside, s3) == "file":
                return inside
            raise FileNotFoundError(f"no {REPORT_NAME} in {run} (looked for {inside})")
        if _looks_like_path(run):
            raise FileNotFoundError(f"no run report at {run}: no such file or folder")

    if not prefixes:
        raise FileNotFoundError(f"cannot look up run {run!r}: no state prefix to search "
                                f"(pass a report.json path or a run folder instead)")

    if run == "latest":
        return _latest(prefixes, s3)

    tried = []
    for p in prefixes:
        uri = _join(p, RUNS_DIR, run, REPORT_NAME)
        tried.append(uri)
        if _kind(uri, s3) == "file":
            return uri
    raise FileNotFoundError(f"no report for run {run!r}; looked at: " + ", ".join(tried))


def _latest(prefixes: list[str], s3: S3Config | None) -> str:
    candidates: list[tuple[str, str]] = []  # (run_id, report uri)
    for p in prefixes:
        candidates += [(rid, _join(p, RUNS_DIR, rid, REPORT_NAME)) for rid in list_runs(p, s3)]
    for _rid, uri in sorted(candidates, reverse=True):
        if _kind(uri, s3) == "file":
            return uri
    where = ", ".join(_join(p, RUNS_DIR) for p in prefixes)
    raise FileNotFoundError(f"no run with a {REPORT_NAME} found under {where}"
                            + (f" ({len(candidates)} run folder(s) without one)" if candidates else ""))
