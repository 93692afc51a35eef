"""A decision, from the page or `shopgen review decide`: checked, stored append-only, then applied
to the live index through the index writer (no alias swap). An edit runs through the gate's hard
checks first; a refused edit is not stored and nothing changes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shopgen.checks.banned import check_banned
from shopgen.checks.base import CheckResult
from shopgen.checks.injection import check_injection
from shopgen.checks.language import check_language
from shopgen.checks.untrusted import check_contact
from shopgen.core.config import Settings
from shopgen.core.content import CONTENT_TYPES, check_limits, texts_of
from shopgen.core.records import Product
from shopgen.review.queue import Queue
from shopgen.review.records import HUMAN_ACTIONS, REJECT_REASONS, Decision, text_hash
from shopgen.review.store import Conflict, Decisions
from shopgen.state.store import now_iso


class Refused(ValueError):
    """A decision that cannot be made as asked (bad input, or an edit the gate refuses)."""


class Unpublished(RuntimeError):
    """The decision is stored, but the live index could not be changed now: the next night applies it
    (the product counts as decided on since the last night)."""


def product_of(doc: dict[str, Any]) -> Product:
    return Product(**{k: doc.get(k) for k in ("sku", "title", "category", "brand", "price", "currency", "locale",
                                              "updated_at")},
                   attributes=doc.get("attributes") or {}, description=doc.get("source_description"))


def parse_edit(t: str, raw: dict[str, str]) -> dict[str, Any]:
    """The page's text areas (one per output field) as the type's output: a list field takes one
    item per line; a FAQ takes `Q: ...` and `A: ...` lines."""
    ct = CONTENT_TYPES[t]
    shapes = {n: f.annotation for n, f in ct.schema.model_fields.items()}
    out: dict[str, Any] = {}
    for name in ct.fields():
        v = (raw.get(name) or "").replace("\r\n", "\n").strip()
        if name in ct.records():
            out[name] = _qa_pairs(v)
        elif shapes[name] is str:
            out[name] = " ".join(v.split())
        else:
            out[name] = [" ".join(x.split()) for x in v.split("\n") if x.strip()]
    try:
        return ct.schema.model_validate(out).model_dump()
    except ValidationError as e:
        raise Refused("; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:5])) from None


def _qa_pairs(v: str) -> list[dict[str, str]]:
    """`Q:` starts a question, `A:` its answer; any other line continues the one before."""
    pairs: list[dict[str, str]] = []
    last = None
    for line in v.split("\n"):
        s = line.strip()
        head = s[:2].lower()
        if head == "q:":
            pairs.append({"question": s[2:].strip(), "answer": ""})
            last = "question"
        elif head == "a:" and pairs:
            pairs[-1]["answer"] = s[2:].strip()
            last = "answer"
        elif s and last:
            pairs[-1][last] = f"{pairs[-1][last]} {s}".strip()
        elif s:
            raise Refused(f"a FAQ starts with a line 'Q: ...': {s[:60]!r}")
    return pairs


def edit_as_text(t: str, fields: dict[str, Any]) -> dict[str, str]:
    """The inverse of parse_edit, to fill the page's text areas."""
    ct = CONTENT_TYPES[t]
    out = {}
    for name in ct.fields():
        v = fields.get(name)
        if name in ct.records():
            out[name] = "\n".join(f"Q: {x['question']}\nA: {x['answer']}" for x in v or [])
        elif isinstance(v, list):
            out[name] = "\n".join(map(str, v))
        else:
            out[name] = v or ""
    return out


def hard_checks(t: str, fields: dict[str, Any], doc: dict[str, Any], settings: Settings) -> list[CheckResult]:
    """The gate's hard checks on an edited text: the type's limits, contact details, injection,
    banned claims and the product's language."""
    p = product_of(doc)
    texts = texts_of(fields)
    limits = check_limits(CONTENT_TYPES[t], fields, settings.content.get(t))
    name = "\n".join(x for x in (p.title, p.brand) if x)
    return [CheckResult("limits", not limits, limits), check_contact(texts), check_injection(texts, p),
            check_banned(texts, name, settings.qa.banned_claims), check_language(texts, p.locale)]


@dataclass
class Desk:
    """What deciding needs: the queue, the decisions, the index and the config."""

    settings: Settings
    alias: str
    queue: Queue
    decisions: Decisions
    es: Any  # elasticsearch.Elasticsearch

    def decide(self, sku: str, t: str, action: str, *, reviewer: str, base: int | None = None,
               loaded: str | None = None, reason: str | None = None, note: str | None = None,
               edit: dict[str, Any] | None = None) -> Decision:
        """base and loaded: the item's newest entry and text hash when the person saw it (None:
        as it is now, for scripts). A decision on a view that is no longer current is a Conflict."""
        if action not in HUMAN_ACTIONS:
            raise Refused(f"unknown decision {action!r}; one of {', '.join(HUMAN_ACTIONS)}")
        item = self.queue.get(sku, t)
        if item is None:
            raise Refused(f"no item {sku}/{t} in the queue of alias {self.alias!r}")
        if item.status in ("none", "rejected_by_review") and action != "edit":
            raise Refused(f"{sku}/{t} has no published text to {action} (a person may still write one: edit)")
        if (base is not None and base != item.seq) or (loaded is not None and loaded != item.text_hash):
            raise Conflict(f"{sku}/{t} changed since you loaded it (someone decided, or a new text came); "
                           "reload to see it")
        if action == "reject" and reason not in REJECT_REASONS:
            raise Refused(f"a rejection needs a reason, one of {', '.join(REJECT_REASONS)}")
        if action == "approve" and any(d.action == "reject" and d.text_hash == item.text_hash
                                       for d in self.decisions.history(sku, t)):
            raise Refused(f"this text of {sku}/{t} was rejected before; edit it instead")
        if self.running():
            raise Refused("a nightly run is writing this alias now; decide again when it has finished")
        edited = None
        if action == "edit":
            edited = edit or {}
            failed = [c for c in hard_checks(t, edited, item.doc, self.settings) if not c.passed]
            if failed:
                raise Refused("the edit fails the gate: " + "; ".join(
                    f"{c.check}: {', '.join(c.details) or 'failed'}" for c in failed))
        d = Decision(sku=sku, type=t, seq=item.seq + 1, action=action, reason=reason if action == "reject" else None,
                     note=(note or None) and note[:500], text_hash=item.text_hash, text=item.text, edited=edited,
                     content_hash=item.content_hash, product=_facts(item.doc), reviewer=reviewer, at=now_iso(),
                     audit=item.audit, gate_accepted=item.status == "published")
        self.decisions.append(d)  # raises Conflict when another decision took this seq
        if action == "approve" and item.status != "edited":
            self.queue.refresh(sku, item.doc)
            return d
        try:
            self.queue.refresh(sku, self.publish(sku, t, d.published))
        except Exception as e:  # the index is down or the document is gone: the decision stands
            self.queue.refresh(sku, item.doc)
            raise Unpublished(f"saved, but the live index could not be changed now ({type(e).__name__}: "
                              f"{str(e)[:200]}); the next nightly run applies the decision") from None
        return d

    def running(self) -> bool:
        """A nightly run holds this alias's lock (fresh heartbeat): its index step would overwrite
        what the page writes, so decisions wait for it."""
        raw = self.queue.store.read("lock.json")
        try:
            return bool(raw) and time.time() < float(json.loads(raw)["expires_at_epoch"])
        except (ValueError, KeyError, TypeError):
            return False

    def publish(self, sku: str, t: str, fields: dict[str, Any] | None) -> dict[str, Any]:
        """Writes the product's document with this type's text replaced (an edit) or removed (None),
        through the index writer, and makes it visible to search at once."""
        from indexing.docs import copy_fields
        from indexing.writer import bulk_write, index_actions

        got = self.es.get(index=self.alias, id=sku)
        doc, index = got["_source"], got["_index"]
        names = CONTENT_TYPES[t].fields()
        row = {**doc, **{n: None for n in names}, **(fields or {})}
        for k, v in copy_fields(row).items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
        status = "edited" if fields else "rejected_by_review"
        doc.setdefault("copy", {}).setdefault(t, {"reasons": []})["status"] = status
        ms = int(time.time() * 1000)
        res = bulk_write(self.es, index_actions(index, [doc], version=lambda _d: ms), self.settings.es)
        if res.errors:
            raise RuntimeError(f"the index refused {sku}: {json.dumps(res.errors[:1])}")
        self.es.indices.refresh(index=index)
        return {k: v for k, v in doc.items() if k != "embedding"}


def _facts(doc: dict[str, Any]) -> dict[str, Any]:
    p = product_of(doc)
    return json.loads(p.model_dump_json())


__all__ = ["Conflict", "Desk", "Refused", "edit_as_text", "hard_checks", "parse_edit", "product_of",
           "text_hash"]


def open_desk(settings: Settings, alias: str, state_prefix: str, echo=print) -> Desk:
    """The queue (a local cache under <home>/review/), the decisions and the index of one alias."""
    import hashlib

    from indexing.client import make_client
    from shopgen.review.queue import Queue
    from shopgen.review.store import open_decisions
    from shopgen.state.store import StateStore

    store = StateStore(state_prefix, settings.s3)
    if not store.exists("skus.parquet"):
        raise FileNotFoundError(f"no nightly state for alias {alias!r} at {state_prefix} (run shopgen nightly first, "
                                "or pass --state)")
    es = make_client(settings, echo=echo)
    decisions = open_decisions(store, settings.review.store)

    def fetch(skus: list[str]) -> dict[str, dict[str, Any]]:
        got = es.mget(index=alias, ids=skus, source_excludes=["embedding"])
        return {d["_id"]: d["_source"] for d in got["docs"] if d.get("found")}

    tag = hashlib.sha256(store.prefix.encode()).hexdigest()[:12]
    cache = settings.home / "review" / f"{alias}-{tag}.sqlite"
    queue = Queue(str(cache), store, decisions, fetch, settings.review.audit_share)
    return Desk(settings, alias, queue, decisions, es)
