"""Retries of failed copy cost a bounded share of a night: backoff (the n-th retry is due 2^(n-1)
nights after the last failed attempt), nightly.copy_retry_budget per night (oldest failures first,
the rest deferred, not lost), and giving up after nightly.copy_retry_attempts. Pure planning only."""

from datetime import date, timedelta

import pytest

from shopgen.core.copy import CopyEntry, decode, encode
from shopgen.state import CopyPolicy, last_failed, plan, retry_status, settle

DAY0 = date(2026, 12, 1)


def _run_id(night: int) -> str:
    return (DAY0 + timedelta(days=night)).strftime("%Y%m%d") + "T010000000000Z"


def _night(night: int) -> str:
    return (DAY0 + timedelta(days=night)).isoformat()


def _failed(failures: int, first: int, last: int | None = None, key: str = "k") -> CopyEntry:
    return CopyEntry(attempt_key=key, reasons=["schema: x"], failures=failures, first_failed=_night(first),
                     last_failed=_night(first if last is None else last))


def _state(entries: dict[str, CopyEntry], h: str = "h") -> dict[str, dict]:
    return {s: {"content_hash": h, "copy": encode({"description": e})} for s, e in entries.items()}


class Shop:
    """One product type per SKU, key `k`, facts unchanged; each night plans, and every type sent
    to the model fails again (settle), as in the nightly."""

    def __init__(self, entries: dict[str, dict], policy: CopyPolicy, valid: int | None = None):
        self.entries, self.policy = dict(entries), policy
        self.skus = sorted(entries) + [f"ok{i}" for i in range((valid or len(entries)) - len(entries))]

    def night(self, n: int):
        keys = {s: {"description": "k"} for s in self.skus}
        fresh = CopyEntry(key="k", attempt_key="k", status="fresh", uri="u", accepted_hash="h")
        prev = _state({s: self.entries.get(s, fresh) for s in self.skus})
        p = plan(keys, dict.fromkeys(self.skus, "h"), prev, {}, _run_id(n), policy=self.policy)
        for sku, types in p.regenerate.items():
            assert types == ["description"]
            self.entries[sku] = settle(self.entries[sku], "k", "h", _run_id(n), False, None, ["schema: x"])
        return p


def test_backoff_retries_one_two_and_four_nights_after_each_failure_then_gives_up():
    shop = Shop({"a": _failed(1, 0)}, CopyPolicy(attempts=3, budget=1.0))
    retried, gave_up = [], []
    for n in range(1, 16):
        p = shop.night(n)
        retried += [n] * len(p.retried)
        gave_up += [n] * len(p.retry_gave_up)
        assert not p.retry_deferred
    # failed on night 0; retried 1 night later, then 2, then 4 nights after the last failure
    assert retried == [1, 3, 7]
    assert gave_up == list(range(8, 16))  # 3 retries used: it waits for the product to change
    e = shop.entries["a"]
    assert e.failures == 4 and e.first_failed == _night(0) and e.last_failed == _night(7)
    assert e.status == "none"  # carried as it is


def test_retry_status_between_retries_and_the_cap_on_the_wait():
    p = CopyPolicy(attempts=5, nights=7)
    assert [retry_status(_failed(1, 0), "k", p, _night(n)) for n in (0, 1)] == ["wait", "due"]
    assert [retry_status(_failed(2, 0, 1), "k", p, _night(n)) for n in (2, 3)] == ["wait", "due"]
    assert [retry_status(_failed(3, 0, 3), "k", p, _night(n)) for n in (4, 5, 6, 7)] == ["wait"] * 3 + ["due"]
    # the 4th retry would wait 8 nights: nightly.copy_retry_nights caps it at 7
    assert [retry_status(_failed(4, 0, 7), "k", p, _night(n)) for n in (13, 14)] == ["wait", "due"]
    assert retry_status(_failed(6, 0, 20), "k", p, _night(40)) == "gave_up"  # 5 retries used
    assert retry_status(_failed(1, 0), "another key", p, _night(0)) == "new"  # not a retry: generated
    assert retry_status(_failed(9, 0), "k", CopyPolicy(always=True), _night(0)) == "due"
    assert retry_status(_failed(1, 0), "k", CopyPolicy(attempts=0), _night(5)) == "gave_up"


def test_an_entry_from_before_last_failed_was_failing_every_night():
    old = decode('{"description": {"attempt_key": "k", "status": "none", "failures": 3, "first_failed": "2026-12-01"}}')[
        "description"]  # written before last_failed existed
    assert last_failed(old) == "2026-12-03"
    assert retry_status(old, "k", CopyPolicy(), "2026-12-06") == "wait"  # 3rd failure: 4 nights
    assert retry_status(old, "k", CopyPolicy(), "2026-12-07") == "due"


def test_the_budget_retries_the_oldest_failures_and_defers_the_rest():
    # 10 failed products among 100 valid: 5% = 5 retries a night. Failed on nights 0..9 (j failed
    # on night 9 - index), all due on night 10.
    failed = {s: _failed(1, 9 - i) for i, s in enumerate("abcdefghij")}
    shop = Shop(failed, CopyPolicy(attempts=3, budget=0.05), valid=100)
    p = shop.night(10)
    oldest = ["j", "i", "h", "g", "f"]
    assert p.retry_slots == 5 and p.retried == oldest and sorted(p.regenerate) == sorted(oldest)
    assert p.retry_deferred == ["e", "d", "c", "b", "a"]
    c = p.counts()
    assert (c["retried"], c["retry_deferred"], c["retry_gave_up"], c["copy_requests"]) == (5, 5, 0, 5)
    # deferred: carried as they were, no attempt used
    for s in p.retry_deferred:
        assert p.carried[s]["description"] == failed[s] and shop.entries[s].failures == 1
    assert all(shop.entries[s].failures == 2 for s in oldest)
    # the next night the deferred ones go first: the retried ones wait 2 nights now
    p = shop.night(11)
    assert p.retried == ["e", "d", "c", "b", "a"] and p.retry_deferred == []
    p = shop.night(12)
    assert p.retried == oldest and p.retry_deferred == []


def test_the_budget_rounds_up_zero_stops_retries_and_retry_quarantined_ignores_it():
    failed = {s: _failed(1, 0) for s in "abc"}
    keys = {s: {"description": "k"} for s in failed}
    hashes = dict.fromkeys(failed, "h")
    p = plan(keys, hashes, _state(failed), {}, _run_id(1))  # default budget 5% of 3: still 1
    assert p.retry_slots == 1 and p.retried == ["a"] and p.retry_deferred == ["b", "c"]
    p = plan(keys, hashes, _state(failed), {}, _run_id(1), policy=CopyPolicy(budget=0.0))
    assert p.retried == [] and p.regenerate == {} and p.retry_deferred == ["a", "b", "c"]
    gave_up = {**failed, "c": _failed(4, 0, 0)}
    p = plan(keys, hashes, _state(gave_up), {}, _run_id(1), policy=CopyPolicy(budget=0.0, always=True))
    assert p.retry_slots is None and p.retried == ["a", "b", "c"] and p.retry_deferred == []


def test_changed_and_new_keys_are_not_retries_and_cost_no_budget():
    failed = {s: _failed(1, 0) for s in "abc"}
    keys = {s: {"description": "k"} for s in "abc"} | {"b": {"description": "k-new-facts"},
                                                        "c": {"description": "k-new-prompt"}}
    hashes = {"a": "h", "b": "h2", "c": "h"}
    p = plan(keys, hashes, _state(failed), {}, _run_id(1), policy=CopyPolicy(budget=0.0))
    # b's facts changed and c's key moved: both are generated; only a is a retry (over a budget of 0)
    assert p.changed == ["b"] and p.regenerate == {"b": ["description"], "c": ["description"]}
    assert p.retried == [] and p.retry_deferred == ["a"]
    # even a product that gave up is generated again once its facts change
    p = plan({"a": {"description": "k2"}}, {"a": "h2"}, _state({"a": _failed(4, 0, 7)}), {}, _run_id(9))
    assert p.regenerate == {"a": ["description"]} and p.retry_gave_up == [] and p.retried == []


def test_a_retried_type_joins_the_types_regenerated_anyway_in_their_order():
    fresh = CopyEntry(key="d1", attempt_key="d1", status="fresh", uri="u", accepted_hash="h")
    prev = {"a": {"content_hash": "h", "copy": encode({"description": fresh, "bullets": _failed(1, 0, key="b1")})}}
    keys = {"a": {"bullets": "b1", "description": "d2"}}  # description re-keyed (its prompt), bullets due
    p = plan(keys, {"a": "h"}, prev, {}, _run_id(1), policy=CopyPolicy(budget=1.0))
    assert p.regenerate == {"a": ["bullets", "description"]} and p.retried == ["a"] and p.carried["a"] == {}


def test_nightly_retry_config():
    from shopgen.core.config import load_settings

    nb = load_settings().nightly
    assert (nb.copy_retry_budget, nb.copy_retry_attempts, nb.copy_retry_nights, nb.retry_quarantined) == (
        0.05, 3, 7, False)
    assert load_settings(nightly={"copy_retry_budget": 0.2, "copy_retry_attempts": 0}).nightly.copy_retry_budget == 0.2
    with pytest.raises(ValueError):
        load_settings(nightly={"copy_retry_budget": 1.5})
