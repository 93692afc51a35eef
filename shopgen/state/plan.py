"""The night's plan against the state (pure): which product's content types are regenerated,
carried as stored, retried (with backoff and a budget) or settled, and the generation keys that
decide it."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from shopgen.core.config import ModelsConfig
from shopgen.core.copy import COPY_STATUSES, CopyEntry, Entries, decode, entry
from shopgen.state.store import column

__all__ = ["COPY_STATUSES", "UNSUPPORTED_LANGUAGE", "CopyPolicy", "Plan", "all_fresh", "combined_key", "copy_entries",
           "generation_key", "last_failed", "night_of", "plan", "retry_due", "retry_status", "settings_hash", "settle",
           "unsupported_entry"]


def generation_key(content_hash: str, prompt_version: str, model_version: str, settings_hash: str,
                   unsupported: str | None = None) -> str:
    """A type's key. `unsupported`: the product's language when the generator does not write it
    (models.generator_languages); such a product gets a key of its own, so lifting the limit later
    changes its key and it is generated. Products the generator writes keep the key they had."""
    blob = f"{content_hash}|{prompt_version}|{model_version}|{settings_hash}"
    if unsupported is not None:
        blob += f"|unsupported_language:{unsupported}"
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def settings_hash(content: Iterable[str], gen: dict[str, Any], banned: dict[str, list[str]],
                  extra: dict[str, Any] | None = None) -> str:
    """What else changes an output or its verdict: content types, sampling, the banned claims, and
    `extra` (a type's limits, claims, prompt mode)."""
    keep = {k: gen[k] for k in ("max_tokens", "temperature", "top_p", "repetition_penalty", "max_attempts",
                                "max_model_len", "feedback") if k in gen}
    blob = json.dumps({"content": sorted(content), "gen": keep, "banned": banned, **(extra or {})}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


UNSUPPORTED_LANGUAGE = ModelsConfig.UNSUPPORTED_LANGUAGE


@dataclass
class CopyPolicy:
    """How copy that failed is retried while the product is unchanged: the n-th retry is due
    2^(n-1) nights after the last failed attempt (1, 2, 4 ...; the wait capped at `nights`), at most
    `attempts` retries, and at most `budget` of the valid products (rounded up) retried per night."""

    attempts: int = 3  # retries after the first failed night, then it waits for the product to change
    nights: int = 7  # the longest wait between two retries
    budget: float = 0.05  # share of tonight's valid products whose failed copy may be retried
    always: bool = False  # nightly.retry_quarantined: every night, no backoff, no limit, no budget

    def slots(self, valid: int) -> int | None:
        """Products that may be retried tonight (None: no limit)."""
        return None if self.always else math.ceil(round(self.budget * valid, 9))

    def wait(self, failures: int) -> int:
        """Nights from the `failures`-th failed attempt to the next retry."""
        return min(2 ** max(0, failures - 1), self.nights)


def night_of(run_id: str) -> str:
    """The night (YYYY-MM-DD) of a run id (YYYYMMDDTHHMMSS...Z)."""
    return f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"


def _days(a: str, b: str) -> int:
    return (date.fromisoformat(b) - date.fromisoformat(a)).days


def last_failed(e: CopyEntry) -> str | None:
    """The night of a type's last failed attempt. An entry written before `last_failed` existed
    was retried every night: its first failure plus one night per further failure."""
    if e.last_failed:
        return e.last_failed
    if not e.first_failed:
        return None
    return (date.fromisoformat(e.first_failed) + timedelta(days=max(0, (e.failures or 1) - 1))).isoformat()


def retry_status(e: CopyEntry, key: str, policy: CopyPolicy, night: str) -> str:
    """What tonight does with a type that has no accepted copy for `key` (budget aside):
    `new` (never attempted for this key: generated, not a retry), `due` (a retry whose wait is
    over), `wait` (backoff), `gave_up` (copy_retry_attempts retries used)."""
    if e.attempt_key != key:
        return "new"
    if policy.always:
        return "due"
    failures = max(1, e.failures)
    if failures - 1 >= policy.attempts:
        return "gave_up"
    last = last_failed(e) or night
    return "due" if _days(last, night) >= policy.wait(failures) else "wait"


def retry_due(e: CopyEntry, key: str, policy: CopyPolicy, night: str) -> bool:
    """Whether a type without accepted copy for `key` may be sent to the model tonight, before the
    night's retry budget (plan() applies it)."""
    return retry_status(e, key, policy, night) in ("new", "due")


@dataclass
class Plan:
    """How tonight's products relate to the last finished run, per content type (pure; see plan())."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # facts (content hash) changed
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    regenerate: dict[str, list[str]] = field(default_factory=dict)  # sku -> content types sent to the LLM
    carried: dict[str, Entries] = field(default_factory=dict)  # sku -> type -> entry kept as is
    resumed: list[str] = field(default_factory=list)  # with a type reused from a dead run's committed batch
    retried: list[str] = field(default_factory=list)  # unchanged, with a type that failed before and is retried
    # Due retries over tonight's budget (carried as they are: retried on a later night, no attempt used).
    retry_deferred: list[str] = field(default_factory=list)
    retry_gave_up: list[str] = field(default_factory=list)  # with a type whose retries are used up
    retry_slots: int | None = None  # products the budget allowed to retry tonight (None: no limit)
    # In a language the generator does not write: not sent to the LLM, each type carried with the
    # reason unsupported_language (its last accepted text kept while its facts are unchanged).
    unsupported: list[str] = field(default_factory=list)
    previous: dict[str, Entries] = field(default_factory=dict)  # sku -> type -> last entry
    # Unchanged, same key, every type accepted (the state's `fresh`): carried as stored. Neither
    # `carried` nor `previous` holds them, so an unchanged catalog costs no parsed entries.
    settled: set[str] = field(default_factory=set)

    @property
    def reuse(self) -> list[str]:
        skip = set(self.regenerate) | set(self.unsupported)
        return [s for s in self.carried if s not in skip] + sorted(self.settled)

    def counts(self) -> dict[str, int]:
        return {"new": len(self.new), "changed": len(self.changed), "unchanged": len(self.unchanged),
                "deleted": len(self.deleted), "regenerated": len(self.regenerate), "reused": len(self.reuse),
                "resumed": len(self.resumed), "retried": len(self.retried),
                "retry_deferred": len(self.retry_deferred), "retry_gave_up": len(self.retry_gave_up),
                "unsupported_language": len(self.unsupported),
                "copy_requests": sum(map(len, self.regenerate.values()))}


def copy_entries(row: Mapping[str, Any] | None) -> Entries:
    """A state row's entries (its `copy` column)."""
    return decode(row.get("copy")) if row else {}


def plan(keys: dict[str, dict[str, str]], hashes: dict[str, str], previous: Mapping[str, dict[str, Any]],
         journal: dict[str, dict[str, Any]], run_id: str, full: bool = False, present: Iterable[str] = (),
         policy: CopyPolicy | None = None, unsupported: Iterable[str] = ()) -> Plan:
    """keys: sku -> content type -> tonight's generation key. hashes: sku -> content hash.
    previous: the last finished run's state rows (a StateRows or a dict). journal: rows committed
    by a run that did not finish (their `types` say what each batch produced). present: SKUs in the
    catalog that failed validation (kept, not deleted). unsupported: SKUs in a language the
    generator does not write (never sent to the LLM, --full included). A type is carried over when
    its accepted copy has tonight's key, or when it failed for tonight's key and its retry is not
    due, used up, or over tonight's budget (CopyPolicy); else it is regenerated."""
    policy = policy or CopyPolicy()
    night = night_of(run_id)
    skip = set(unsupported)
    p = Plan()
    due: dict[str, list[str]] = {}
    cols = {c: column(previous, c) for c in ("content_hash", "key", "fresh")}
    for sku, tkeys in keys.items():
        h = cols["content_hash"].get(sku, _MISSING)
        (p.new if h is _MISSING else p.unchanged if h == hashes[sku] else p.changed).append(sku)
        if (not full and sku not in journal and sku not in skip and h == hashes[sku] and cols["fresh"].get(sku)
                and cols["key"].get(sku) == combined_key(tkeys)):
            p.settled.add(sku)
            continue
        entries = copy_entries(previous.get(sku))
        p.previous[sku] = entries
        if sku in skip:
            p.unsupported.append(sku)
            p.carried[sku] = {t: unsupported_entry(entry(entries, t), k, hashes[sku])
                              for t, k in tkeys.items()}
            continue
        todo, carried, due[sku] = _plan_types(sku, tkeys, entries, journal.get(sku) or {}, full, policy, night, p)
        if todo:
            p.regenerate[sku] = todo
        p.carried[sku] = carried
    _budget(p, keys, {s: ts for s, ts in due.items() if ts}, policy, night)
    p.deleted = sorted(set(previous) - set(keys) - set(present))
    return p


_MISSING = object()


def _plan_types(sku: str, tkeys: dict[str, str], entries: Entries, done: dict[str, Any],
                full: bool, policy: CopyPolicy, night: str, p: Plan) -> tuple[list[str], Entries, list[str]]:
    """One product's content types: regenerated (todo), carried, and carried for now but due for a
    retry (due: the budget decides, in _budget)."""
    todo, carried, due = [], {}, []
    committed = decode(done.get("types"))
    for t, k in tkeys.items():
        e = entry(entries, t)
        j = committed.get(t)
        if j is not None and j.attempt_key == k:
            carried[t] = j
            if sku not in p.resumed:
                p.resumed.append(sku)
        elif full:
            todo.append(t)
        elif e.fresh_for(k):
            carried[t] = e
        else:
            status = retry_status(e, k, policy, night)
            if status == "new":
                todo.append(t)
                continue
            carried[t] = e
            if status == "due":
                due.append(t)
            elif status == "gave_up" and sku not in p.retry_gave_up:
                p.retry_gave_up.append(sku)
    return todo, carried, due


def _budget(p: Plan, keys: dict[str, dict[str, str]], due: dict[str, list[str]], policy: CopyPolicy,
            night: str) -> None:
    """Tonight's retries: the due ones, products whose facts changed first (a changed product's
    keys are new, so it is regenerated as changed, never here, unless a key ignores the content),
    then the oldest failures, up to the budget; the rest are deferred as they are."""
    changed = set(p.changed)

    def age(sku: str) -> tuple[Any, ...]:
        es = [p.carried[sku][t] for t in due[sku]]
        return (sku not in changed, min(e.first_failed or night for e in es),
                min(last_failed(e) or night for e in es), sku)

    p.retry_slots = policy.slots(len(keys))
    for i, sku in enumerate(sorted(due, key=age)):
        if p.retry_slots is not None and i >= p.retry_slots:
            p.retry_deferred.append(sku)
            continue
        for t in due[sku]:
            p.carried[sku].pop(t)
        todo = set(p.regenerate.get(sku, ())) | set(due[sku])
        p.regenerate[sku] = [t for t in keys[sku] if t in todo]
        p.retried.append(sku)


def all_fresh(entries: Mapping[str, CopyEntry], keys: dict[str, str]) -> bool:
    """The state's `fresh`: every type tonight has accepted copy for its key."""
    return bool(keys) and all(entry(entries, t).fresh_for(k) for t, k in keys.items())


def _kept(previous: CopyEntry, content_hash: str) -> dict[str, Any]:
    """The last accepted text of a type that has none tonight: kept while the facts are unchanged."""
    if previous.uri and previous.accepted_hash == content_hash:
        return {"key": previous.key, "status": "kept", "uri": previous.uri, "accepted_hash": previous.accepted_hash,
                "run_id": previous.run_id}
    return {"status": "none"}


def settle(previous: CopyEntry, key: str, content_hash: str, run_id: str, ok: bool,
           uri: str | None, reasons: list[str]) -> CopyEntry:
    """The new entry of one type after tonight's attempt (pure). Accepted: fresh. Failed: the last
    accepted text is kept while the facts are unchanged, else the type has none; `failures` counts
    the failed nights for this key, `first_failed`/`last_failed` the first and the latest."""
    if ok:
        return CopyEntry(key=key, attempt_key=key, status="fresh", uri=uri, accepted_hash=content_hash, run_id=run_id)
    same = previous.attempt_key == key
    night = night_of(run_id)
    return CopyEntry(**_kept(previous, content_hash), attempt_key=key, reasons=reasons[:20],
                     failures=previous.failures + 1 if same else 1,
                     first_failed=(previous.first_failed or night) if same else night, last_failed=night)


def unsupported_entry(previous: CopyEntry, key: str, content_hash: str) -> CopyEntry:
    """The entry of a type of a product in a language the generator does not write (pure): no
    attempt, the reason unsupported_language, the last accepted text kept while the facts are
    unchanged. Settled for `key`: the same entry comes back every night until the key changes."""
    if previous.attempt_key == key and previous.reasons == [UNSUPPORTED_LANGUAGE]:
        return previous
    return CopyEntry(**_kept(previous, content_hash), attempt_key=key, reasons=[UNSUPPORTED_LANGUAGE])


def combined_key(keys: dict[str, str]) -> str:
    """A product's generation key over all its content types (the state's `key`)."""
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:32]
