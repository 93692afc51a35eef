"""Thin adapter over Ray: start (or join) a cluster, and place engine actors on GPU or CPU."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shopgen.config import Settings

# Workers inherit these; weights never come from a hub, and vLLM's INFO logs drown progress.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING",
              "TOKENIZERS_PARALLELISM": "false", "RAY_DATA_DISABLE_PROGRESS_BARS": "0"}


@contextmanager
def ray_session(settings: Settings, dashboard: bool = False) -> Iterator[None]:
    """dashboard: Ray Train's placement-group cleaner polls the state API, which the dashboard serves."""
    import ray

    if ray.is_initialized():
        yield
        return
    for k, v in WORKER_ENV.items():
        os.environ.setdefault(k, v)
    address = settings.ray.address or os.environ.get("RAY_ADDRESS")
    if address:
        # No runtime_env here: under `ray job submit` it would replace the job's (working_dir).
        ray.init(address=address)
    else:
        ray.init(num_cpus=settings.ray.num_cpus or os.cpu_count(), include_dashboard=dashboard,
                 object_store_memory=settings.ray.object_store_memory_mb * 1024 * 1024)
    try:
        yield
    finally:
        ray.shutdown()


def actor_resources(accelerator: str) -> dict[str, Any]:
    """Ray resources for one engine actor: a whole GPU when asked (or auto and present), else a CPU."""
    import ray

    if accelerator not in ("auto", "gpu", "cpu"):
        raise ValueError(f"accelerator must be auto, gpu or cpu, not {accelerator!r}")
    has_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    # Actor-level env_vars merge with the job's runtime_env instead of replacing it.
    env = {"runtime_env": {"env_vars": dict(WORKER_ENV)}}
    if accelerator == "gpu" or (accelerator == "auto" and has_gpu):
        return {"num_gpus": 1, **env}
    return {"num_cpus": 1, **env}
