"""The one path for config-backed command-line values: `--set KEY=VALUE` on the shopgen group and a
command's own options (--workers, --storage, ...) both become dotted settings keys, merged into the
loaded config and validated by the settings model (core.config.apply_overrides).

Error messages name the key, never the value: a value may be a secret (es.password, ...)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import click
import yaml
from pydantic import ValidationError

from shopgen.core.config import Settings, apply_overrides

SET_HELP = ("Set a config key on top of the config file and SHOPGEN_* env vars, e.g. generation.max_attempts=2 or "
            "finetune.content=[seo_title,description] (a YAML value; repeatable; validated like the file).")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*")


def parse_set(pairs: Iterable[str]) -> dict[str, str]:
    """KEY=VALUE pairs as key -> the value's text; a message names at most the key."""
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, text = p.partition("=")
        key = key.strip()
        if not sep:  # the whole argument might be a value: do not show it
            raise click.BadParameter("expects KEY=VALUE (an argument without '=' was given)", param_hint="--set")
        if not _KEY.fullmatch(key):
            raise click.BadParameter(f"expects KEY=VALUE with KEY a dotted config key such as "
                                     f"generation.max_attempts (got key {key[:64]!r})", param_hint="--set")
        out[key] = text
    return out


def _value(text: str) -> Any:
    """A YAML scalar or flow collection: 2, true, null, [a, b], {k: v}; else the text itself."""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return text


def set_values(texts: Mapping[str, str]) -> dict[str, Any]:
    return {k: _value(t) for k, t in texts.items()}


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The options that were given: click's None (and an empty string) mean 'not on the command line'."""
    return {k: v for k, v in values.items() if v is not None and v != ""}


def _failed(e: ValidationError, keys: Iterable[str]) -> set[str]:
    locs = {".".join(map(str, x["loc"])) for x in e.errors(include_input=False) if x["loc"]}
    return {k for k in keys for loc in locs if loc == k or loc.startswith(k + ".") or k.startswith(loc + ".")}


def _message(e: ValidationError) -> str:
    parts = []
    for x in e.errors(include_input=False):  # never the input: it may be a secret
        msg = x["msg"].removeprefix("Value error, ")
        parts.append(f"{'.'.join(map(str, x['loc']))}: {msg}" if x["loc"] else msg)
    return "; ".join(parts)


def override(s: Settings, values: Mapping[str, Any], given_as: str | None = None,
             texts: Mapping[str, str] | None = None) -> Settings:
    """s with dotted keys set and validated; a bad key or value is a usage error (exit 2) naming the
    key. given_as names the option in the message (--set); texts are --set's raw values, tried as
    plain strings where a YAML scalar does not fit the key (es.alias=2024, es.password=123)."""
    ctx = click.get_current_context(silent=True)
    try:
        return apply_overrides(s, values)
    except ValidationError as e:
        retry = {k: texts[k] for k in _failed(e, values)
                 if texts and k in texts and not isinstance(values[k], (str, list, dict))}
        if retry:
            try:
                return apply_overrides(s, {**values, **retry})
            except ValidationError:
                pass  # the first reading's error says more (e.g. a fractional number for an int)
        raise click.BadParameter(_message(e), ctx=ctx, param_hint=given_as) from None
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param_hint=given_as) from None
