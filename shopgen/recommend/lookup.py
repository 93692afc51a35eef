"""`shopgen recommend`: a product's lists as indexed, and a session's ranking from the item-to-item
table the nightly stores (<state>/<alias>/recs/<gen>/neighbours), with the same rules as the nightly's
lists: same locale, not a product of the session or one of its variants, only products in the index."""

from __future__ import annotations

import json
from typing import Any

from shopgen.core.config import Settings
from shopgen.recommend.blend import Item, allowed, behaviour_scores, blend
from shopgen.related.stage import variant_group

LISTS = ("also_viewed", "bought_together", "recommended")


def _docs(es: Any, alias: str, skus: list[str]) -> dict[str, dict[str, Any]]:
    if not skus:
        return {}
    res = es.mget(index=alias, ids=skus, source_excludes=["embedding"])
    return {d["_id"]: d["_source"] for d in res["docs"] if d.get("found")}


def product_recs(es: Any, alias: str, sku: str) -> dict[str, Any]:
    doc = _docs(es, alias, [sku]).get(sku)
    if doc is None:
        raise LookupError(f"no product {sku!r} in alias {alias!r}")
    listed = sorted({s for f in LISTS for s in doc.get(f) or []})
    titles = {s: d.get("title") for s, d in _docs(es, alias, listed).items()}
    sources = doc.get("recommended_sources") or []
    out: dict[str, list[dict[str, Any]]] = {}
    for f in LISTS:
        out[f] = [{"sku": s, "title": titles.get(s), "source": sources[i] if f == "recommended" and i < len(sources)
                   else "behaviour"} for i, s in enumerate(doc.get(f) or [])]
    return {"sku": sku, "title": doc.get("title"), "lists": out}


def _item(sku: str, doc: dict[str, Any], variant_keys: list[str]) -> Item:
    return Item(doc.get("locale") or "", doc.get("category") or "",
                variant_group(sku, json.dumps(doc.get("attributes") or {}), variant_keys))


def session_recs(es: Any, alias: str, prefix: str, skus: list[str], settings: Settings, k: int) -> dict[str, Any]:
    """Products for a shopper who saw `skus` (oldest first): behaviour from the stored table, then the
    last product's content-similar ones, then its category's popular ones (from its own list)."""
    from shopgen.recommend.distributed import stored_neighbours
    from shopgen.state import StateStore

    store = StateStore(prefix, settings.s3)
    meta = json.loads(store.read("recs/meta.json") or b"{}")
    gen = meta.get("published") or meta.get("gen")  # what the index shows, not a generation the gate held back
    if not gen or not any(x.endswith(".parquet") for x in store.list(f"recs/{gen}/neighbours")):
        raise LookupError(f"no item-to-item table under {prefix}/recs (run the nightly with --events first)")
    nb = stored_neighbours(store, gen, skus)
    seen = _docs(es, alias, skus)
    if not seen:
        raise LookupError(f"none of {', '.join(skus)} is in alias {alias!r}")
    scores = behaviour_scores([nb.get(s, {}).get("similar", []) for s in skus],
                              nb.get(skus[-1], {}).get("next", []))
    last = seen.get(skus[-1]) or next(iter(seen.values()))
    content = list(last.get("related_skus") or [])
    popular = [s for s, src in zip(last.get("recommended") or [], last.get("recommended_sources") or [])
               if src == "popular"]
    cands = [s for s, _ in scores[:200]] + content + popular
    docs = {**seen, **_docs(es, alias, [c for c in dict.fromkeys(cands) if c not in seen])}
    vk = settings.related.variant_keys
    items = {s: _item(s, d, vk) for s, d in docs.items()}
    out = blend(skus, scores, content, [(s, 0.0) for s in popular], allowed(items, skus), k)
    return {"session": skus, "lists": {"recommended": [
        {"sku": x.sku, "title": docs[x.sku].get("title"), "source": x.source, "score": x.score} for x in out]}}
