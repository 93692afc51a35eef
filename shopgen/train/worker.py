"""What runs inside a Ray Train worker, for any recipe: the base model, the rows, a deterministic
shard per step, and the checkpoint round trip (trainer state, model, optimizer and scheduler)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopgen.adapters import models, storage
from shopgen.core.config import S3Config

STATE_FILE = "trainer_state.json"
OPTIM_FILE = "optim.pt"


def base_path(cfg: dict[str, Any]) -> str:
    """The base model on this worker's node (fetched into its cache once; later calls are cheap)."""
    return models.fetch_model(models.ModelRef(**cfg["base"]), cfg["model_cache"], S3Config(**cfg["s3"])).path


def read_rows(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The training rows the driver wrote to the run's storage (driver.write_rows)."""
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(storage.read_bytes(cfg["data_uri"], S3Config(**cfg["s3"])))).to_pylist()


def shard_batch(n_train: int, step: int, steps_per_epoch: int, batch_size: int, rank: int, world: int,
                seed: int) -> list[int]:
    """Indices of one worker's batch at a global step: a per-epoch permutation, strided by rank.
    Pure function of the step, so a resumed run continues with exactly the batches it had left."""
    import torch

    epoch, i = divmod(step, steps_per_epoch)
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    return perm[rank::world][i * batch_size:(i + 1) * batch_size]


def restore(fresh: dict[str, Any], load: Callable[[str | None], Any]) -> tuple[dict[str, Any], Any, Any]:
    """(trainer state, model, optimizer state) from Ray Train's latest checkpoint, or (`fresh`,
    load(None), None). load(folder) builds the model from a checkpoint folder. The state's `starts`
    counts the worker group's starts, this one included."""
    import ray.train
    import torch

    ckpt = ray.train.get_checkpoint()
    if not ckpt:
        state, model, optim_state = dict(fresh), load(None), None
    else:
        with ckpt.as_directory() as d:
            state = json.loads(Path(d, STATE_FILE).read_text())
            model = load(d)
            optim_state = torch.load(os.path.join(d, OPTIM_FILE), weights_only=False)
    return {**state, "starts": state.get("starts", 0) + 1}, model, optim_state


def resume_optimizer(opt: Any, sched: Any, optim_state: Any) -> None:
    if optim_state:
        opt.load_state_dict(optim_state["optimizer"])
        sched.load_state_dict(optim_state["scheduler"])


def save_state(out: str, opt: Any, sched: Any, state: dict[str, Any]) -> None:
    """The part of a checkpoint restore() reads besides the model."""
    import torch

    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, os.path.join(out, OPTIM_FILE))
    Path(out, STATE_FILE).write_text(json.dumps(state))


def report(metrics: dict[str, Any], save: Callable[[str], None] | None = None) -> None:
    """ray.train.report; with `save` (rank 0 only), also a checkpoint: the folder save(folder) fills."""
    import ray.train

    if save is None:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as d:
        save(d)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
