"""The nightly state: per-SKU hashes and copy entries (store), tonight's plan against it (plan), and
the run lock (lock). Workflows that read what earlier nights accepted (nightly, finetune) share it."""

from shopgen.state.lock import Lock, LockedError, force_unlock
from shopgen.state.plan import (
    COPY_STATUSES,
    UNSUPPORTED_LANGUAGE,
    CopyPolicy,
    Plan,
    all_fresh,
    combined_key,
    copy_entries,
    generation_key,
    last_failed,
    night_of,
    plan,
    retry_due,
    retry_status,
    settings_hash,
    settle,
    unsupported_entry,
)
from shopgen.state.store import (
    DROPPED_COLUMNS,
    STATE_SCHEMA,
    StateRows,
    StateStore,
    batch_uri,
    column,
    commit_batch,
    load_journal,
    load_state,
    now_iso,
    pass_nights,
    read_copy,
    read_rows,
    save_state,
)

__all__ = ["COPY_STATUSES", "DROPPED_COLUMNS", "STATE_SCHEMA", "UNSUPPORTED_LANGUAGE", "CopyPolicy", "Lock",
           "LockedError", "Plan", "StateRows", "StateStore", "all_fresh", "batch_uri", "column", "combined_key",
           "commit_batch", "copy_entries", "force_unlock", "generation_key", "last_failed", "load_journal",
           "load_state", "night_of", "now_iso", "pass_nights", "plan", "read_copy", "read_rows", "retry_due",
           "retry_status", "save_state", "settings_hash", "settle", "unsupported_entry"]
