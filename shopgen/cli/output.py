"""Printing shared by the CLI's commands."""

from __future__ import annotations

from typing import Any

import click


def guard(fn: Any, s: Any, *more: type[Exception]) -> Any:
    """Runs a job; user-facing failures become one clear error line."""
    from elasticsearch import ApiError, TransportError

    try:
        return fn(s)
    except (FileNotFoundError, ValueError, RuntimeError, *more) as e:
        raise click.ClickException(str(e)) from None
    except (ApiError, TransportError) as e:
        raise click.ClickException(f"Elasticsearch: {e}") from None


def fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)


def echo_training(rep: dict[str, Any], split: str, what: str = "version") -> None:
    """A fine-tuning run's summary: base and fine-tuned figures on `split`, the gate, the version."""
    m = rep.get("metrics") or {}
    for who in ("base", "finetuned"):
        if m.get(who):
            click.echo(f"{split} {who:9s}: " + "  ".join(f"{k}={fmt(v)}" for k, v in m[who].items() if k != "by_type"))
            for t, f in (m[who].get("by_type") or {}).items():  # serving-path figures per content type
                click.echo(f"  {t:12s} " + "  ".join(f"{k}={fmt(f.get(k))}" for k in (
                    "accepted", "publishable", "unsupported_number_rate", "tokens_per_accepted", "prompt_tokens",
                    "schema_pass_rate")))
    if rep.get("gate"):
        g = rep["gate"]
        click.echo("gate: " + ("pass" if g["passed"] else "fail: " + "; ".join(g["reasons"])))
    click.echo(f"{what} {rep['version']} ({'promoted' if rep.get('promoted') else 'candidate'}) in {rep['registry']}"
               + (f"; report {rep['report']}" if rep.get("report") else ""))
