"""Run reports: report.json as a typed model (model.py), rendered as report.html and the terminal
summary of `shopgen report` (render.py)."""

from shopgen.core.report import ReportError, RunReport

__all__ = ["ReportError", "RunReport"]
