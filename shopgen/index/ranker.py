"""The ranker an alias serves: `_meta.search.ranker` ({version, registry}, stored by `shopgen train-ranker
--alias`), loaded from the model registry (a local folder, or fetched once from s3:// into <home>/rankers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from elasticsearch import Elasticsearch

from indexing.lifecycle import index_meta, search_meta
from indexing.ltr import Ranker
from indexing.writer import alias_targets
from shopgen.adapters.registry import Registry
from shopgen.core.config import Settings


def load(settings: Settings, version: str, registry: str | None = None) -> Ranker:
    reg = Registry(registry or settings.registry_uri, settings.s3)
    m = reg.get(version)
    if m["kind"] != "ranker":
        raise ValueError(f"{version} is a {m['kind']}, not a ranker")
    return Ranker.load(reg.fetch(version, "model", settings.home / "rankers" / version))


def stored(es: Elasticsearch, target: str) -> dict[str, Any] | None:
    return search_meta(es, target).get("ranker") or None


def loader(settings: Settings, es: Elasticsearch, target: str, version: str | None = None) -> Callable[[], Ranker]:
    """Loads (once, when first called) `version`, else the ranker stored with the alias."""
    got: list[Ranker] = []

    def load_once() -> Ranker:
        if not got:
            ref = {"version": version} if version else stored(es, target)
            if not ref:
                raise LookupError(f"{target} has no ranker: train one with `shopgen train-ranker --judgments FILE "
                                  f"--alias {target}` (or pass --ranker VERSION)")
            model = load(settings, ref["version"], ref.get("registry") if not version else None)
            trained_on = model.info.get("embedding_model")
            names = alias_targets(es, target) or [target]
            now = index_meta(es, names[0]).get("embedding_model")
            if trained_on and now and trained_on != now:  # its cosine feature would mean something else
                raise LookupError(f"ranker {ref['version']} was trained on vectors of {trained_on}, but {target} is "
                                  f"embedded by {now}: run `shopgen train-ranker` again")
            got.append(model)
        return got[0]

    return load_once
