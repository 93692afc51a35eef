"""Thin adapter over Ray: start (or join) a cluster, and place engine actors on GPU or CPU."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shopgen.core import logs
from shopgen.core.config import Settings

# Workers inherit these; weights never come from a hub, and vLLM's INFO logs drown progress.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING",
              "TOKENIZERS_PARALLELISM": "false"}


@contextmanager
def ray_session(settings: Settings, dashboard: bool = False, worker_output: bool = False) -> Iterator[None]:
    """dashboard: Ray Train's placement-group cleaner polls the state API, which the dashboard serves.
    worker_output: the workers' prints reach the console (a training run's progress lines come from
    its workers); else only with --verbose."""
    import ray
    import ray.data

    if ray.is_initialized():
        yield
        return
    for k, v in WORKER_ENV.items():
        os.environ.setdefault(k, v)
    address = settings.ray.address or os.environ.get("RAY_ADDRESS")
    # Workers' own output (vLLM's warnings, tracebacks) stays in their log files unless --verbose.
    loud = logs.verbose() or worker_output
    if address:
        # No runtime_env here: under `ray job submit` it would replace the job's (working_dir).
        ctx = ray.init(address=address, log_to_driver=loud)
    else:
        # "local": a fresh Ray of our own, even where `ray start` left a cluster on this machine
        # (with no address, ray.init would join that one and refuse our num_cpus).
        ctx = ray.init(address="local", num_cpus=settings.ray.num_cpus or os.cpu_count(), include_dashboard=dashboard,
                       object_store_memory=settings.ray.object_store_memory_mb * 1024 * 1024, log_to_driver=loud)
    # Each stage shows its own progress; Ray Data's per-operator bars and log lines are chatter.
    ray.data.DataContext.get_current().enable_progress_bars = logs.verbose()
    try:
        yield
    finally:
        logs.keep_ray_logs(None if address else ctx.address_info.get("session_dir"))
        ray.shutdown()


def actor_resources(accelerator: str, accelerator_type: str | None = None) -> dict[str, Any]:
    """Ray resources for one engine actor: a whole GPU (of accelerator_type, when given) when asked,
    or auto and the cluster has one, else a CPU."""
    import ray

    if accelerator not in ("auto", "gpu", "cpu"):
        raise ValueError(f"accelerator must be auto, gpu or cpu, not {accelerator!r}")
    if accelerator == "cpu" and accelerator_type:
        raise ValueError(f"accelerator_type {accelerator_type!r} asks for a GPU, but accelerator is cpu")
    has_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    # Actor-level env_vars merge with the job's runtime_env instead of replacing it.
    env = {"runtime_env": {"env_vars": dict(WORKER_ENV)}}
    if accelerator_type:
        return {"num_gpus": 1, "accelerator_type": accelerator_type, **env}
    if accelerator == "gpu" or (accelerator == "auto" and has_gpu):
        return {"num_gpus": 1, **env}
    return {"num_cpus": 1, **env}


def pool_args(pool: Any) -> dict[str, Any]:
    """map_batches arguments for a stage's actor pool from its config (shopgen.core.config.EnginePool):
    the pool size or autoscaling range, per-actor resources and batches in flight per actor."""
    import ray

    c = pool.concurrency
    size = {"size": c} if isinstance(c, int) else {"min_size": c[0], "max_size": c[1]}
    compute = ray.data.ActorPoolStrategy(**size, max_tasks_in_flight_per_actor=pool.max_concurrent_batches)
    out = {"compute": compute, **actor_resources(pool.accelerator, pool.accelerator_type)}
    if pool.resources:
        out["resources"] = dict(pool.resources)
    return out


def engine_id() -> str:
    """The node and process of the calling actor, recorded per batch so a run shows its engines."""
    import ray

    ctx = ray.get_runtime_context()
    return f"{ctx.get_node_id()[:12]}/{os.getpid()}"


class Finished:
    """An engine actor whose every output batch then goes through `finish` in the same process."""

    def __init__(self, actor: type, finish: Any, kwargs: dict[str, Any]):
        self.inner, self.finish = actor(**kwargs), finish

    def __call__(self, batch: Any) -> Any:
        return self.finish(self.inner(batch))


def build_processor(ds: Any, pool: Any, actor: type, actor_kwargs: dict[str, Any],
                    preprocess: Any = None, postprocess: Any = None, finish: Any = None, **remote_args: Any) -> Any:
    """A stage as ray.data.llm builds one: optional preprocess -> the actor pool (one engine per
    actor, placed by `pool`, an EnginePool config) -> optional postprocess. Pre- and postprocess are
    plain batch functions and run as Ray tasks, next to the data, not on the driver. `finish` runs
    inside each actor on its output, e.g. to write the batch where it was made: unlike a
    postprocess task it needs no resources of its own, so a pool that holds every CPU cannot starve it."""
    if preprocess is not None:
        ds = ds.map_batches(preprocess, batch_format="pyarrow", batch_size=None)
    if finish is not None:
        actor, actor_kwargs = Finished, {"actor": actor, "finish": finish, "kwargs": actor_kwargs}
    ds = ds.map_batches(actor, batch_format="pyarrow", batch_size=pool.batch_size, fn_constructor_kwargs=actor_kwargs,
                        **pool_args(pool), **remote_args)
    if postprocess is not None:
        ds = ds.map_batches(postprocess, batch_format="pyarrow", batch_size=None)
    return ds


def collect(ds: Any, out_dir: Any) -> int:
    """Streams a dataset's batches into a folder on the driver: worker nodes cannot see its disk, so
    no Ray task is ever handed a driver-local path."""
    from pathlib import Path

    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, batch in enumerate(ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1)):
        if batch.num_rows:
            pq.write_table(batch, out_dir / f"part-{i:05d}.parquet")
            n += batch.num_rows
    return n


def train_worker(cfg: dict[str, Any]) -> tuple[int, int, bool, Any]:
    """A Ray Train worker's set-up: (rank, world size, whether it trains on a GPU, its device), with
    its CPU threads (`cfg["threads"]`) and seed (`cfg["seed"]`) set."""
    import ray.train
    import ray.train.torch as rtt
    import torch

    ctx = ray.train.get_context()
    gpu = bool(cfg["gpu"]) and torch.cuda.is_available()
    if not gpu:  # Ray sets OMP_NUM_THREADS=1 in workers
        torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    return ctx.get_world_rank(), ctx.get_world_size(), gpu, rtt.get_device()


def on_driver_node() -> dict[str, Any]:
    """Remote arguments that keep a task on the driver's node: the only one whose disk holds the
    driver's local files."""
    import ray

    # A label selector (every node carries its id as a label) is a hard constraint, as node affinity
    # with soft=False, and a named map_batches argument (ray_remote_args are deprecated).
    return {"label_selector": {"ray.io/node-id": ray.get_runtime_context().get_node_id()}}


def _read_files(batch: Any, convert: Any, rows: int) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.dataset as pads

    for path in batch["path"].to_pylist():
        for b in pads.dataset(path, format="parquet").to_batches(batch_size=rows):
            if b.num_rows:
                t = pa.Table.from_batches([b])
                yield convert(t) if convert is not None else t


def local_parquet(files: list[str], schema: Any, convert: Any = None, rows: int = 65536) -> Any:
    """The driver's local Parquet files as a dataset, read by tasks on its node in batches of `rows`
    (then `convert`ed): the driver never holds the rows, nor puts them into the object store."""
    import ray.data

    if not files:
        return ray.data.from_arrow(schema.empty_table())
    return ray.data.from_items([{"path": f} for f in files], override_num_blocks=min(len(files), 64)).map_batches(
        _read_files, batch_format="pyarrow", batch_size=1, fn_kwargs={"convert": convert, "rows": rows},
        **on_driver_node())
