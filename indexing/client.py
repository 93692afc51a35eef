"""Elasticsearch client from config: the embedded server by default, or a real cluster by URL(s)
or cloud id, with API key or basic auth and a CA bundle. Secrets never leave this module."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from indexing.mapping import CHINESE_PLUGINS, chinese_analyzer
from shopgen.adapters import devstack
from shopgen.core.config import ESConfig, Settings


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _secret(value: Any, file: Path | None, what: str) -> str | None:
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ValueError(f"cannot read es.{what}_file {file}: {e.strerror}") from None
    return value.get_secret_value() if value is not None else None


def make_client(settings: Settings, echo: Callable[[str], None] = _err) -> Elasticsearch:
    es = settings.es
    common = dict(request_timeout=es.request_timeout, max_retries=es.max_retries, retry_on_timeout=True)
    if es.embedded:
        return Elasticsearch(devstack.ensure(settings.home, echo), **common)
    kw: dict[str, Any] = dict(common, verify_certs=es.verify_certs)
    if es.cloud_id:
        kw["cloud_id"] = es.cloud_id
    else:
        kw["hosts"] = [es.url] if isinstance(es.url, str) else list(es.url)
    api_key = _secret(es.api_key, es.api_key_file, "api_key")
    if api_key:
        kw["api_key"] = api_key
    elif es.username:
        kw["basic_auth"] = (es.username, _secret(es.password, es.password_file, "password") or "")
    if es.ca_certs:
        kw["ca_certs"] = es.ca_certs
    if not es.verify_certs:
        echo("WARNING: TLS certificate verification is OFF for Elasticsearch (es.verify_certs=false)")
        kw["ssl_show_warn"] = False
        warnings.filterwarnings("ignore", message=".*verify_certs=False.*")
    return Elasticsearch(**kw)


def plugins(es: Elasticsearch) -> set[str]:
    try:
        nodes = es.nodes.info(metric="plugins")["nodes"].values()
    except ApiError:
        return set()
    return {p["name"] for n in nodes for p in n.get("plugins", [])}


def rrf_available(es: Elasticsearch) -> tuple[bool, str]:
    """Whether the RRF retriever runs here: the license when the cluster reports one, else a probe."""
    try:  # reported only: which tier licenses RRF changed across versions, so a probe decides
        lic = es.license.get()["license"]
    except ApiError:
        lic = None
    try:
        es.search(index="*", size=1, allow_no_indices=True, ignore_unavailable=True, retriever={"rrf": {
            "retrievers": [{"standard": {"query": {"match_none": {}}}}, {"standard": {"query": {"match_none": {}}}}]}})
        return True, f"licensed ({lic['type']})" if lic else "available"
    except ApiError as e:
        return False, f"not available: {e.message if hasattr(e, 'message') else e}"


def server_check(es: Elasticsearch, cfg: ESConfig) -> dict[str, Any]:
    """What the startup check reports: server version, analyzer plugins, RRF retriever licence."""
    info = es.info()
    found = plugins(es)
    rrf_ok, rrf_detail = rrf_available(es)
    return {
        "version": info["version"]["number"],
        "distribution": info["version"].get("distribution", "elasticsearch"),
        "cluster": info.get("cluster_name"),
        "plugins": sorted(found),
        "chinese_plugins": sorted(p for p in CHINESE_PLUGINS if p in found),
        "chinese_analyzer": chinese_analyzer(cfg.chinese_analyzer, found),
        "rrf_retriever": rrf_ok,
        "rrf_detail": rrf_detail,
        "hybrid": cfg.hybrid if cfg.hybrid != "auto" else ("server" if rrf_ok else "client"),
    }
