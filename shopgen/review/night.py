"""What people decided, as the nightly applies it (pure functions over the decisions, plus the
load and the note the nightly writes back).

- approve / edit: the text is locked. While the product's facts are unchanged it is never sent to
  the LLM, and an edit is what the document shows (status `edited`). Once the facts change, the
  type is generated again and the new text comes back to the queue, flagged as changed.
- reject: a text whose hash was rejected is never published (status `rejected_by_review`). The
  type is generated again once, on the next night (the nightly notes `regenerated`); after that it
  is left to a person."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shopgen.core.copy import CopyEntry, Entries, entry
from shopgen.review.records import Decision, text_hash
from shopgen.review.store import Conflict, Decisions, last_human, latest, open_decisions
from shopgen.state.plan import Plan, copy_entries
from shopgen.state.store import StateStore, now_iso

Key = tuple[str, str]


@dataclass(frozen=True)
class Review:
    last: dict[Key, Decision] = field(default_factory=dict)  # newest entry per item (the nightly's too)
    human: dict[Key, Decision] = field(default_factory=dict)  # newest decision by a person
    rejected: dict[Key, frozenset[str]] = field(default_factory=dict)  # text hashes ever rejected
    touched: frozenset[str] = frozenset()  # SKUs decided on since the nightly last looked
    mark: str = ""
    seen: str = ""  # the store's position when this night read it
    store: Decisions | None = None

    def locked(self, sku: str, t: str, content_hash: str | None) -> Decision | None:
        """The approval or edit that holds this type, while the facts it was made on hold."""
        d = self.human.get((sku, t))
        return d if d is not None and d.locks and d.content_hash == content_hash else None

    def regenerate(self, hashes: Mapping[str, str]) -> dict[str, list[str]]:
        """sku -> types rejected since their last regeneration (generated once more tonight)."""
        out: dict[str, list[str]] = {}
        for (s, t), d in sorted(self.last.items()):
            if d.action == "reject" and s in hashes:
                out.setdefault(s, []).append(t)
        return out

    def left(self, sku: str, t: str, content_hash: str | None) -> bool:
        """Regenerated once after a rejection, facts unchanged since: a person's turn, not the LLM's."""
        d = self.last.get((sku, t))
        h = self.human.get((sku, t))
        return d is not None and d.action == "regenerated" and h is not None and h.content_hash == content_hash


NO_REVIEW = Review()


def load_review(store: StateStore, where: str | None = None) -> Review:
    dec = open_decisions(store, where)
    mark = dec.get_meta("nightly_mark") or ""
    new, seen = dec.since(mark)
    allof = dec.all()
    rejected: dict[Key, set[str]] = {}
    for d in allof:
        if d.action == "reject" and d.text_hash:
            rejected.setdefault((d.sku, d.type), set()).add(d.text_hash)
    return Review(latest(allof), last_human(allof), {k: frozenset(v) for k, v in rejected.items()},
                  frozenset(d.sku for d in new if d.action != "regenerated"), mark, seen, dec)


def apply_to_plan(pl: Plan, r: Review, hashes: Mapping[str, str], previous: Mapping[str, dict[str, Any]],
                  types: Iterable[str]) -> dict[str, list[str]]:
    """Changes tonight's plan in place: locked and left types are carried, not generated; rejected
    types are generated (without the rejected text to fall back on). Returns the rejected ones."""
    types = tuple(types)
    for sku, todo in list(pl.regenerate.items()):
        keep = [t for t in todo if not (r.locked(sku, t, hashes.get(sku)) or r.left(sku, t, hashes.get(sku)))]
        for t in set(todo) - set(keep):
            pl.carried.setdefault(sku, {})[t] = entry(pl.previous.get(sku) or {}, t)
        if keep:
            pl.regenerate[sku] = keep
        else:
            del pl.regenerate[sku]
    # Not for a product in a language the generator does not write: its rejected text is only kept out.
    skip = set(pl.unsupported)
    rejected = {s: [t for t in ts if t in types] for s, ts in r.regenerate(hashes).items() if s not in skip}
    rejected = {s: ts for s, ts in rejected.items() if ts}
    for sku, ts in rejected.items():
        if sku in pl.settled:
            pl.settled.discard(sku)
            pl.previous[sku] = copy_entries(previous.get(sku))
            pl.carried[sku] = dict(pl.previous[sku])
        prev = pl.previous.setdefault(sku, {})
        for t in ts:
            pl.carried.get(sku, {}).pop(t, None)
            # The rejected text is not the fallback if tonight's attempt fails.
            prev[t] = entry(prev, t).model_copy(update={"status": "none", "uri": None, "key": None})
        pl.regenerate[sku] = [t for t in types if t in set(pl.regenerate.get(sku, ())) | set(ts)]
    return rejected


def overlay(sku: str, content_hash: str | None, texts: dict[str, Any], fields: Mapping[str, list[str]],
            r: Review) -> tuple[dict[str, Any], dict[str, str]]:
    """A product's texts as the document shows them: edits in, rejected texts out. Returns the
    texts and the status of each type a decision sets."""
    out = dict(texts)
    status: dict[str, str] = {}
    for t, names in fields.items():
        d = r.locked(sku, t, content_hash)
        pub = d.published if d is not None else None
        if pub is not None and (d.action == "edit" or text_hash({n: out.get(n) for n in names}) != d.text_hash):
            out.update(pub)  # an edit, or an approval of an edited text
            status[t] = "edited"
            continue
        bad = r.rejected.get((sku, t))
        if bad and text_hash({n: out.get(n) for n in names}) in bad:
            for n in names:
                out[n] = None
            status[t] = "rejected_by_review"
    return out, status


def note_regenerated(r: Review, done: Mapping[str, list[str]], settled: Mapping[str, Entries]) -> int:
    """After the night: one `regenerated` entry per rejected type generated tonight, then the mark
    that says which decisions this night has seen. Returns the entries written."""
    if r.store is None:
        return 0
    n = 0
    for sku, ts in done.items():
        for t in ts:
            last = r.last[(sku, t)]
            e: CopyEntry = entry(settled.get(sku) or {}, t)
            try:
                r.store.append(Decision(sku=sku, type=t, seq=last.seq + 1, action="regenerated", reviewer="nightly",
                                        text_hash="", content_hash=last.content_hash, at=now_iso(),
                                        note=f"copy {e.status}"))
                n += 1
            except Conflict:  # a person decided again during the night: theirs stands
                continue
    # Decisions made while this night ran stay after the mark: the next night rewrites their products.
    r.store.set_meta("nightly_mark", r.seen)
    return n


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None, float | None]:
    """A proportion and its 95% Wilson interval."""
    if n == 0:
        return None, None, None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return round(p, 4), round(max(0.0, c - h), 4), round(min(1.0, c + h), 4)


def review_figures(r: Review, published: int) -> dict[str, Any]:
    """The report's review counts and the gate's precision measured by people on the audit sample
    (approved / decided; an edit or a rejection counts against the gate)."""
    acts = [d.action for d in r.human.values()]
    audit = [d for d in r.human.values() if d.audit and d.gate_accepted]
    p, lo, hi = wilson(sum(d.action == "approve" for d in audit), len(audit))
    locked = sum(1 for d in r.human.values() if d.locks)
    return {"approved": acts.count("approve"), "rejected": acts.count("reject"), "edited": acts.count("edit"),
            "waiting": max(0, published - locked), "audit_decided": len(audit),
            "gate_precision": p, "gate_precision_ci95": [lo, hi] if p is not None else None}
