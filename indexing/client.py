"""Elasticsearch client from config: the embedded server by default, or a real cluster by URL(s)
or cloud id, with API key or basic auth and a CA bundle. Secrets never leave this function."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

from elasticsearch import Elasticsearch

from shopgen import devstack
from shopgen.config import Settings


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def make_client(settings: Settings, echo: Callable[[str], None] = _err) -> Elasticsearch:
    es = settings.es
    common = dict(request_timeout=es.request_timeout, max_retries=es.max_retries, retry_on_timeout=True)
    if es.embedded:
        return Elasticsearch(devstack.ensure(settings.home, echo), **common)
    kw = dict(common, verify_certs=es.verify_certs)
    if es.cloud_id:
        kw["cloud_id"] = es.cloud_id
    else:
        kw["hosts"] = [es.url] if isinstance(es.url, str) else list(es.url)
    if es.api_key:
        kw["api_key"] = es.api_key.get_secret_value()
    elif es.username:
        kw["basic_auth"] = (es.username, es.password.get_secret_value() if es.password else "")
    if es.ca_certs:
        kw["ca_certs"] = es.ca_certs
    if not es.verify_certs:
        echo("WARNING: TLS certificate verification is OFF for Elasticsearch (es.verify_certs=false)")
        kw["ssl_show_warn"] = False
        warnings.filterwarnings("ignore", message=".*verify_certs=False.*")
    return Elasticsearch(**kw)
