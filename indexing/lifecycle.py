"""Index lifecycle: templates -> a new `<alias>-<timestamp>` index built with 0 replicas and no
refresh -> settings restored, health awaited -> gate -> atomic alias swap -> retention. Also the
incremental upsert into the live index, rollback, and the listing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, helpers

from indexing import gate
from indexing.docs import FieldStats
from indexing.mapping import (
    BUILD_SETTINGS,
    index_template,
    mappings_component,
    settings_component,
    template_names,
    text_analyzer,
)
from indexing.search import DEFAULT_FIELD_WEIGHTS, SearchProfile, search
from indexing.writer import (
    BulkResult,
    alias_targets,
    bulk_write,
    delete_actions,
    index_actions,
    new_index_name,
    prune_indices,
    swap_alias,
    versioned_indices,
)
from shopgen.core.config import Settings


def put_templates(es: Elasticsearch, alias: str, dims: int, settings: Settings, zh_analyzer: str) -> dict[str, str]:
    names = template_names(alias)
    es.cluster.put_component_template(name=names["settings"], template=settings_component(settings.es, settings.search))
    es.cluster.put_component_template(name=names["mappings"],
                                      template=mappings_component(dims, settings.es, zh_analyzer))
    es.indices.put_index_template(name=names["index"], **index_template(alias))
    return names


def create_build_index(es: Elasticsearch, alias: str, meta: dict[str, Any]) -> str:
    """A new versioned index from the alias's template, with bulk-load settings. Its `_meta.gate`
    stays "pending" until the gate passes, so a crashed or refused build is never rolled back to."""
    name = new_index_name(alias)
    es.indices.create(index=name, settings=BUILD_SETTINGS, mappings={"_meta": {**meta, "gate": "pending"}})
    return name


def index_meta(es: Elasticsearch, name: str) -> dict[str, Any]:
    return es.indices.get_mapping(index=name)[name]["mappings"].get("_meta", {})


def update_meta(es: Elasticsearch, name: str, **values: Any) -> None:
    es.indices.put_mapping(index=name, meta={**index_meta(es, name), **values})


def set_gate(es: Elasticsearch, name: str, verdict: str) -> None:
    update_meta(es, name, gate=verdict)


def config_profile(settings: Settings) -> SearchProfile:
    """The profile every index starts from: search.* and the es.* fusion settings."""
    c = settings.search
    return SearchProfile(
        title_boost=c.title_boost, phrase_boost=c.phrase_boost, phrase_slop=c.phrase_slop, fuzzy_boost=c.fuzzy_boost,
        fuzzy=c.fuzzy, fuzzy_min_hits=c.fuzzy_min_hits, fuzziness=c.fuzziness,
        fuzzy_prefix_length=c.fuzzy_prefix_length, fields_boost=c.fields_boost,
        field_weights=dict(c.field_weights or DEFAULT_FIELD_WEIGHTS), knn_candidates=c.knn_candidates,
        knn_candidates_share=c.knn_candidates_share, knn_rescore=c.knn_rescore, knn_oversample=c.knn_oversample,
        fusion=c.fusion, weights=(c.bm25_weight, c.knn_weight), normalizer=c.normalizer,
        rank_constant=settings.es.rrf_rank_constant, window=settings.es.rrf_window, where=settings.es.hybrid)


def search_meta(es: Elasticsearch, target: str) -> dict[str, Any]:
    """`_meta.search` of an index, or of the (first) index behind an alias."""
    names = alias_targets(es, target) or [target]
    try:
        return index_meta(es, names[0]).get("search") or {}
    except NotFoundError:
        return {}


def profile_for(es: Elasticsearch, target: str, settings: Settings) -> SearchProfile:
    """The config's profile, with what the index knows: its uninformative fields and the tuned fusion."""
    meta = search_meta(es, target)
    p = SearchProfile.from_meta({"uninformative": meta.get("uninformative")}, config_profile(settings))
    # The index's own facts win over what a tuned profile recorded when it was stored.
    return replace(SearchProfile.from_meta(meta.get("tuned"), p), **vector_facts(es, target))


QUANTIZED = ("int8_", "int4_", "bbq_")


def vector_facts(es: Elasticsearch, target: str) -> dict[str, Any]:
    """The index's size (num_candidates grows with it) and whether its vectors are quantized (then
    kNN is rescored exactly); a type the mapping does not name counts as quantized."""
    try:
        docs = int(es.count(index=target)["count"])
        m = next(iter(es.indices.get_mapping(index=target).body.values()), {})
    except ApiError:
        return {}
    vec = (m.get("mappings", {}).get("properties", {}).get("embedding") or {})
    kind = str((vec.get("index_options") or {}).get("type") or "int8_")
    return {"docs": docs, "quantized": kind.startswith(QUANTIZED)}


def is_good(meta: dict[str, Any]) -> bool:
    return meta.get("gate", "passed") == "passed"  # indices from before the gate count as good


def _seconds(t: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if t.endswith(u) and t[: -len(u)].replace(".", "", 1).isdigit():
            return float(t[: -len(u)]) * units[u]
    raise ValueError(f"es.health_timeout must look like 60s or 2m, not {t!r}")


def finish_build(es: Elasticsearch, index: str, settings: Settings) -> dict[str, Any]:
    """Restore the template's replicas and refresh interval, refresh, and wait for health."""
    cfg = settings.es
    es.indices.put_settings(index=index, settings={"number_of_replicas": cfg.replicas,
                                                   "refresh_interval": cfg.refresh_interval})
    es.indices.refresh(index=index)
    # A health wait that times out answers 408; the client must wait at least that long.
    h = es.options(request_timeout=_seconds(cfg.health_timeout) + 10, ignore_status=408).cluster.health(
        index=index, wait_for_status=cfg.health_status, timeout=cfg.health_timeout)
    if h.get("timed_out"):
        raise RuntimeError(f"index {index} did not reach {cfg.health_status} health within {cfg.health_timeout} "
                           f"(status {h.get('status')}); replicas={cfg.replicas} may exceed the cluster's data nodes")
    return {"health": h.get("status")}


def count(es: Elasticsearch, target: str) -> int | None:
    try:
        return int(es.count(index=target)["count"])
    except NotFoundError:
        return None


def smoke_results(es: Elasticsearch, index: str, queries: list[str], samples: list[tuple[str, str]],
                  profile: SearchProfile | None = None) -> list[dict]:
    """Configured queries need a hit; a sampled product title must find that product in the top 10."""
    out = []
    for q in queries:
        hits = search(es, index, q, "bm25", 10, profile=profile)
        out.append({"query": q, "hits": len(hits)})
    for sku, title in samples:
        hits = search(es, index, title, "bm25", 10, profile=profile)
        out.append({"query": title, "hits": len(hits), "expect_sku": sku, "found": sku in {h["sku"] for h in hits}})
    return out


def run_gate(es: Elasticsearch, index: str, alias: str, settings: Settings, expected: int, bulk: BulkResult,
             samples: list[tuple[str, str]], encoder: Callable[[], Any] | None = None,
             ranker: Callable[[], Any] | None = None) -> dict[str, Any]:
    g = settings.gate
    live = alias_targets(es, alias)
    live_count = count(es, alias) if live else None
    n = count(es, index) or 0
    checks = [
        gate.doc_count(n, expected),
        gate.doc_drop(n, live_count, g.max_doc_drop, g.max_doc_drop_min_docs),
        gate.error_rate(len(bulk.errors), bulk.attempted, settings.es.max_error_rate),
        gate.smoke(smoke_results(es, index, g.smoke_queries, samples, profile_for(es, index, settings))),
    ]
    if g.judgments:
        checks += _relevance_checks(es, index, alias, live, settings, encoder, ranker)
    return gate.decide(checks)


def _relevance_checks(es: Elasticsearch, index: str, alias: str, live: list[str], settings: Settings,
                      encoder: Callable[[], Any] | None, ranker: Callable[[], Any] | None = None,
                      ) -> list[dict[str, Any]]:
    """NDCG of the new index vs the live one; and the chosen mode (tuned, else gate.judgments_mode)
    vs bm25 alone on the held-out queries."""
    from indexing.evaluate import load_judgments
    from indexing.tune import split_queries

    g = settings.gate
    judgments = load_judgments(g.judgments)
    meta = search_meta(es, index)
    tuned = (meta.get("tuned") or {}).get("mode")
    out = []
    if tuned == "ltr":  # auto serves the ranker: it must load, and fit this index's vectors
        out.append(gate.ltr_ranker(_ranker_problem(es, index, meta, ranker)))
        if out[-1].get("fallback"):
            tuned = out[-1]["fallback"]
            meta["tuned"] = {**meta["tuned"], "mode": tuned}
            update_meta(es, index, search=meta)
    mode = tuned or g.judgments_mode
    # The query encoder is the new index's; on a live index embedded by another model its
    # vectors mean nothing, so both sides are then compared on bm25.
    if live and mode != "bm25" and any(index_meta(es, i).get("embedding_model") !=
                                       index_meta(es, index).get("embedding_model") for i in live):
        mode = "bm25"
    new = evaluate_target(es, index, judgments, mode, settings, encoder, ranker=ranker)
    old = evaluate_target(es, alias, judgments, mode, settings, encoder, ranker=ranker) if live else None
    chk = gate.ndcg(new["ndcg@10"], old["ndcg@10"] if old else None, g.ndcg_tolerance)
    chk.update(mode=mode)
    out.insert(0, chk)
    if tuned and tuned != "bm25":  # the mode search serves (tune-search's choice) must not lose to bm25
        split = meta.get("tuning") or {}
        _, held = split_queries(judgments, split.get("heldout_fraction", settings.search.heldout_fraction),
                                split.get("split_seed", settings.search.split_seed))
        c = b = None
        if any(gr > 0 for j in held.values() for gr in j.values()):
            c = evaluate_target(es, index, held, tuned, settings, encoder, ranker=ranker)["ndcg@10"]
            b = evaluate_target(es, index, held, "bm25", settings, encoder)["ndcg@10"]
        out.append(gate.mode_vs_bm25(tuned, c, b))
    return out


def _ranker_problem(es: Elasticsearch, index: str, meta: dict[str, Any], ranker: Callable[[], Any] | None) -> str | None:
    trained_on = (meta.get("ranker") or {}).get("embedding_model")
    now = index_meta(es, index).get("embedding_model")
    if trained_on and now and trained_on != now:
        return f"the ranker was trained on vectors of {trained_on}; this index is embedded by {now}: run train-ranker again"
    if ranker is None:
        return "no ranker loader was given"
    try:
        ranker()
    except (LookupError, ValueError, KeyError, OSError) as e:
        return f"the ranker cannot be loaded: {e}"
    return None


def evaluate_target(es: Elasticsearch, target: str, judgments: dict, mode: str, settings: Settings,
                    encoder: Callable[[], Any] | None, k: int = 10, profile: SearchProfile | None = None,
                    ranker: Callable[[], Any] | None = None) -> dict[str, Any]:
    """`encoder` gives the query model and `ranker` the ltr model, loaded only when the mode needs them."""
    from indexing.evaluate import evaluate
    from shopgen.adapters.encoder import query_encoder

    p = profile or profile_for(es, target, settings)
    mode = p.mode if mode == "auto" else mode
    if mode != "bm25" and encoder is None:
        raise ValueError(f"search mode {mode} needs the query encoder")
    enc = query_encoder(encoder(), settings.embedding) if mode != "bm25" else None
    if mode == "ltr" and ranker is None:
        raise ValueError("search mode ltr needs a ranker: train one with `shopgen train-ranker`")
    model = ranker() if mode == "ltr" else None

    def run(query: str, size: int) -> list[str]:
        return [h["sku"] for h in search(es, target, query, mode, size, enc,
                                         profile=replace(p, window=max(p.window, size)), ranker=model)]

    return {"mode": mode, **evaluate(run, judgments, k=k)}


def build(es: Elasticsearch, alias: str, docs: Iterable[dict[str, Any]], total: int, dims: int, settings: Settings,
          zh_analyzer: str, meta: dict[str, Any], expected: int, samples: list[tuple[str, str]],
          progress: Callable[[int], None] | None = None, encoder: Callable[[], Any] | None = None,
          ranker: Callable[[], Any] | None = None) -> tuple[dict[str, Any], BulkResult]:
    """The full lifecycle for one new index. Returns the stage record and the bulk result; the alias
    moves only when the gate passed."""
    put_templates(es, alias, dims, settings, zh_analyzer)
    index = create_build_index(es, alias, meta)
    st: dict[str, Any] = {"index": index, "alias": alias, "zh_analyzer": zh_analyzer}
    # External versions from the start, so a later incremental run only overwrites with newer data.
    run_epoch = int(datetime.now().timestamp() * 1000)
    stats = FieldStats(config_profile(settings).field_weights)
    res = bulk_write(es, index_actions(index, stats.watch(docs), doc_version("updated_at", run_epoch)), settings.es,
                     progress)
    st.update(docs=res.ok, errors=len(res.errors), bulk_retries=res.retries)
    # What the index knows for ranking: its informative fields, and the live index's tuned fusion.
    carried = {k: v for k, v in search_meta(es, alias).items() if k in ("tuned", "tuning", "ranker")}
    st["search"] = {"informative": stats.informative(), "uninformative": stats.uninformative(), **carried}
    update_meta(es, index, search=st["search"])
    st.update(finish_build(es, index, settings))
    # Docs the bulk could not write are quarantined; the error-rate check judges how many.
    verdict = run_gate(es, index, alias, settings, expected - len(res.errors), res, samples, encoder, ranker)
    st["gate"] = verdict
    st["doc_count"] = count(es, index)
    set_gate(es, index, "passed" if verdict["passed"] else "refused")
    if verdict["passed"]:
        st["previous"] = swap_alias(es, alias, index)
        st["swapped"] = True
        st["pruned"] = prune_indices(es, alias, settings.es.keep_indices, lambda n: is_good(index_meta(es, n)))
    else:
        st["swapped"] = False
    return st, res


def epoch_ms(ts: str | None, default: int) -> int:
    if not ts:
        return default
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return default
    if t.tzinfo is None:  # the same version on every host, whatever its time zone
        t = t.replace(tzinfo=timezone.utc)
    return max(0, int(t.timestamp() * 1000))


def doc_version(version_from: str, run_epoch: int) -> Callable[[dict[str, Any]], int]:
    if version_from not in ("updated_at", "run"):
        raise ValueError(f"version_from must be updated_at or run, not {version_from!r}")
    return lambda d: run_epoch if version_from == "run" else epoch_ms(d.get("updated_at"), run_epoch)


def add_new_fields(es: Elasticsearch, index: str, mapping: dict[str, Any], dims: int, settings: Settings) -> list[str]:
    """An index built by an earlier version lacks fields added since (its mapping is strict): they are
    added to it, so an upsert that carries them (e.g. the behaviour lists) is not refused."""
    have = es.indices.get_settings(index=index)[index]["settings"]
    want = mappings_component(dims, settings.es, analyzer=text_analyzer(have))["mappings"]["properties"]
    missing = {k: v for k, v in want.items() if k not in mapping.get("properties", {})}
    if missing:
        es.indices.put_mapping(index=index, properties=missing)
    return sorted(missing)


def live_index(es: Elasticsearch, alias: str) -> str:
    targets = alias_targets(es, alias)
    if len(targets) != 1:
        raise LookupError(f"alias {alias!r} points at {len(targets)} indices; incremental mode needs exactly one "
                          "(run a full `shopgen index build` first)")
    return targets[0]


FINGERPRINT = ("content_hash", "model_version", "prompt_version", "embedding_model", "related_skus", "description", "copy",
               "also_viewed", "bought_together", "recommended", "popularity", "qa")


def incremental(es: Elasticsearch, alias: str, docs: Iterable[dict[str, Any]], settings: Settings,
                run_epoch: int, version_from: str = "updated_at", delete_missing: bool = True,
                progress: Callable[[int], None] | None = None, dims: int | None = None,
                embedding_model: str | None = None, keep: Iterable[str] = (), skus: Iterable[str] | None = None,
                delete: Iterable[str] | None = None) -> dict[str, Any]:
    """Upsert into the live index with external versions, so an older write never overwrites a
    newer one; then delete the SKUs the input no longer has (`skus`: the input's SKUs when `docs` is
    a stream; never those in `keep`, e.g. rows quarantined tonight). A doc whose content, model or related products changed while its
    updated_at did not is versioned with the run's epoch, so the change still lands.

    `delete`: the caller knows which docs changed (it sends only those) and which SKUs to delete, so
    the live index is not scanned: every sent doc is versioned as changed, and only `delete` goes."""
    index = live_index(es, alias)
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    live_dims = mapping["properties"]["embedding"].get("dims")
    live_model = mapping.get("_meta", {}).get("embedding_model")
    if dims is not None and live_dims != dims:
        raise ValueError(f"the live index {index} has {live_dims}-dim vectors but the embedder gives {dims}; "
                         "a new embedding model needs a full build")
    if embedding_model and live_model and live_model != embedding_model:
        raise ValueError(f"the live index {index} was embedded by {live_model}, not {embedding_model}; "
                         "a new embedding model needs a full build")
    add_new_fields(es, index, mapping, live_dims or dims or 1, settings)
    by_time = doc_version(version_from, run_epoch)
    if delete is not None:
        removed = sorted(set(delete) - set(keep)) if delete_missing else []
        n_live = count(es, index) if removed else 0  # only a deletion needs the live count

        def version(d: dict[str, Any]) -> int:
            return max(by_time(d), run_epoch)
    else:
        es.indices.refresh(index=index)
        live = {h["_id"]: tuple(str(h["_source"].get(k)) for k in FINGERPRINT)
                for h in helpers.scan(es, index=index, _source_includes=list(FINGERPRINT),
                                      query={"query": {"match_all": {}}})}
        n_live = len(live)

        def version(d: dict[str, Any]) -> int:
            changed = live.get(d["sku"]) not in (None, tuple(str(d.get(k)) for k in FINGERPRINT))
            return max(by_time(d), run_epoch) if changed else by_time(d)

        if skus is None:
            docs = list(docs)
            skus = {d["sku"] for d in docs}
        removed = sorted(set(live) - set(skus) - set(keep)) if delete_missing else []
    # A truncated input must not empty the live index: the deletions are checked before any write.
    check = gate.doc_drop(n_live - len(removed), n_live, settings.gate.max_doc_drop,
                          settings.gate.max_doc_drop_min_docs)
    if not check["passed"]:
        raise RuntimeError(f"incremental update refused before any write: it would delete {len(removed)} of "
                           f"{n_live} live docs ({check['drop']:.1%} > gate.max_doc_drop "
                           f"{settings.gate.max_doc_drop:.1%}, and more than gate.max_doc_drop_min_docs "
                           f"{settings.gate.max_doc_drop_min_docs})")
    st: dict[str, Any] = {"index": index, "alias": alias, "mode": "incremental"}
    up = bulk_write(es, index_actions(index, docs, version), settings.es, progress)
    st.update(upserted=up.ok, unchanged=up.skipped, errors=len(up.errors), bulk_retries=up.retries, deleted=0)
    if removed:
        dl = bulk_write(es, delete_actions(index, removed, run_epoch), settings.es)
        st.update(deleted=dl.ok, errors=st["errors"] + len(dl.errors))
        up.errors.extend(dl.errors)
    es.indices.refresh(index=index)
    # A caller that names its deletions keeps its own count (a _count is a full pass on some servers).
    st["doc_count"] = count(es, index) if delete is None else None
    st["deleted_skus"] = removed[:100]
    st["bulk_errors"] = up.errors
    return st


def rollback(es: Elasticsearch, alias: str, to: str | None = None) -> tuple[list[str], str]:
    """Point the alias back at the previous index (the newest one older than the live one), or `to`."""
    live = alias_targets(es, alias)
    names = versioned_indices(es, alias)
    if to:
        if to not in names:
            raise LookupError(f"{to!r} is not one of alias {alias!r}'s indices: {', '.join(names) or 'none'}")
        if not is_good(index_meta(es, to)):
            raise LookupError(f"{to} did not pass the gate (_meta.gate = {index_meta(es, to).get('gate')})")
        target = to
    else:
        older = [n for n in names if live and n < min(live) and is_good(index_meta(es, n))]
        if not older:
            raise LookupError(f"no index older than {', '.join(live) or 'none'} to roll alias {alias!r} back to")
        target = older[0]
    if target in live:
        raise LookupError(f"alias {alias!r} already points at {target}")
    swap_alias(es, alias, target)
    return live, target


def list_indices(es: Elasticsearch, alias: str) -> list[dict[str, Any]]:
    live = set(alias_targets(es, alias))
    out = []
    for name in versioned_indices(es, alias):
        meta = index_meta(es, name)
        out.append({"index": name, "live": name in live, "aliases": [alias] if name in live else [],
                    "gate": meta.get("gate", "passed"),
                    "docs": count(es, name), "model_version": meta.get("model_version"),
                    "embedding_model": meta.get("embedding_model"), "created_at": meta.get("created_at"),
                    "run_id": meta.get("run_id"),
                    "search_mode": ((meta.get("search") or {}).get("tuned") or {}).get("mode")})
    return out
