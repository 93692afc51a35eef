"""Committing generated batches where they are made.

Each row the generator gets carries its plan (`plan` column: tonight's key per content type and
the previous entry of each type it regenerates), so a batch can be settled and committed without
the driver: the Parquet first, then its manifest (the commit point). With the state on an object
store the generator actors do it themselves (on any node); with a local state folder, which only
the driver can see, the driver applies the same committer to each batch as it arrives. Either
way the driver receives per row only its settled entries and QA columns (COMMITTED_COLUMNS)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from shopgen import state as st8
from shopgen.core.config import S3Config
from shopgen.core.copy import CopyEntry, decode, encode, entry
from shopgen.generate.stage import QA_COLUMNS, copy_of_row

# What a committed batch returns to the driver: the QA columns, the engine that made each row, the
# settled per-type entries (JSON) and the batch file that holds the texts.
COMMITTED_COLUMNS = [*QA_COLUMNS, "gen_engine", "gen_engine_start_s", "types", "batch"]


def row_plan(keys: dict[str, str], previous: Mapping[str, CopyEntry], todo: list[str]) -> str:
    """The `plan` a generator row carries: every type's key tonight, and the last entry of each
    type it regenerates (settle needs it to keep accepted copy)."""
    return json.dumps({"keys": keys, "previous": {t: entry(previous, t).model_dump() for t in todo}}, sort_keys=True)


@dataclass
class BatchCommitter:
    """A batch function (GENERATED_SCHEMA rows with `plan`) -> COMMITTED_COLUMNS. Picklable: the
    store is opened in the process that runs it."""

    prefix: str
    s3: S3Config
    run_id: str
    _store: st8.StateStore | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None}

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self._store is None:
            self._store = st8.StateStore(self.prefix, self.s3)
        # Named by time, so the newest batch wins when a retried batch was committed twice.
        seq = f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"
        uri = st8.batch_uri(self.run_id, seq)
        plans = [json.loads(p) for p in batch["plan"].to_pylist()]
        out = batch.select([c for c in COMMITTED_COLUMNS if c in batch.column_names])
        recs = out.to_pylist()
        entries, types = [], []
        for r, p, h in zip(recs, plans, batch["content_hash"].to_pylist()):
            previous = decode(p["previous"])
            settled = {t: st8.settle(entry(previous, t), p["keys"][t], h, self.run_id, v.status == "fresh", uri,
                                     v.reasons) for t, v in copy_of_row(r).items()}
            types.append(encode(settled))
            entries.append({"sku": r["sku"], "key": st8.combined_key(p["keys"]),
                            "reason": "; ".join(r["gen_errors"] or []) or None, "types": settled})
        st8.commit_batch(self._store, self.run_id, seq, batch.drop_columns(["plan"]), entries)
        return (out.append_column("types", pa.array(types, pa.string()))
                .append_column("batch", pa.array([uri] * batch.num_rows, pa.string())))
