"""The driver side of a training run, for any recipe: its identity (name, config hash), the worker
config, where its workers go (ScalingConfig), where its checkpoints go (local or s3://), the
TorchTrainer fit that resumes a run of the same name, and what is done with the result."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shopgen.adapters import models, raysupport, storage
from shopgen.core.config import S3Config, Settings

# ---- the run's identity ----------------------------------------------------------------------------

def config_hash(dump: dict[str, Any], base_version: str, placement: tuple[str, ...]) -> str:
    """What is trained: a config section's dump minus its `placement` keys (where and how it runs,
    which do not change the model), and the base model's version."""
    keys = {k: v for k, v in dump.items() if k not in placement}
    return hashlib.sha256(json.dumps([keys, base_version], sort_keys=True).encode()).hexdigest()[:8]


def run_name(prefix: str, data_hash: str, section: Any, base_version: str, placement: tuple[str, ...]) -> str:
    """The default run name: the same data, config and base give the same name, so a re-run
    resumes the run (fit) or finds it registered (already_registered)."""
    return f"{prefix}-{data_hash[:8]}-{config_hash(section.model_dump(mode='json'), base_version, placement)}"


def resolve_base(base: str, settings: Settings, adapter_refusal: str) -> models.ModelRef:
    """--base as a model reference; a LoRA adapter is refused (`adapter_refusal` ends the message)."""
    ref = models.resolve(base, settings)
    if ref.adapter:
        raise ValueError(f"--base {base!r} is a LoRA adapter{adapter_refusal}")
    return ref


def already_registered(reg: Any, name: str, data_hash: str, report: dict[str, Any],
                       say: Callable[[str], Any]) -> dict[str, Any] | None:
    """The report of a run of this name and data that already registered a version, else None."""
    done = reg.find_run(name, data_hash)
    if not done:
        return None
    say(f"run {name} already finished and registered {done['version']}; nothing to do")
    return {**report, "status": "already_registered", "version": done["version"], "metrics": done["metrics"]}


# ---- what the workers get --------------------------------------------------------------------------

def worker_config(section: Any, settings: Settings, base: models.ModelRef, data_uri: str) -> dict[str, Any]:
    """The keys every recipe's workers read (worker.py), besides the section's own fields."""
    # The base goes as a reference: each worker fetches it into its own node's cache (worker.base_path).
    return {**section.model_dump(mode="json"), "base": dataclasses.asdict(base), "data_uri": data_uri,
            "model_cache": str(settings.models.node_cache_dir or settings.model_cache),
            "threads": section.cpu_threads or max(1, (os.cpu_count() or 1) // section.workers),
            # scaling() asks Ray for a GPU whenever an accelerator type is named: train on it.
            "gpu": bool(section.gpu or getattr(section, "accelerator_type", None)),
            # No secret in the worker config: workers take S3 credentials from the AWS environment.
            "s3": settings.s3.model_dump(mode="python", exclude={"secret_access_key", "access_key_id"})}


def write_rows(uri: str, rows: list[dict[str, Any]], s3: S3Config) -> None:
    """The training rows, as one parquet file in the run's storage (worker.read_rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    storage.write_bytes(uri, buf.getvalue(), s3)


def scaling(section: Any) -> dict[str, Any]:
    """ScalingConfig arguments from a training section: workers, a GPU (of accelerator_type, when
    given) or a CPU each, plus any extra resources that pin workers to labelled nodes."""
    gpu = section.gpu or bool(section.accelerator_type)
    out: dict[str, Any] = {"num_workers": section.workers, "use_gpu": gpu,
                           "resources_per_worker": {**({"GPU": 1} if gpu else {"CPU": 1}), **section.resources}}
    if section.accelerator_type:
        out["accelerator_type"] = section.accelerator_type
    return out


def storage_target(root: str, s3: S3Config) -> tuple[str, Any]:
    """(storage_path, storage_filesystem) for RunConfig: a local folder as an absolute path and no
    filesystem (Ray's own), an s3:// prefix as bucket/key on shopgen's S3 filesystem."""
    fs, path = storage.resolve(root, s3)
    return path, fs if storage.is_s3(root) else None


def worker_env(threads: int) -> dict[str, Any]:
    # Ray starts workers with OMP_NUM_THREADS=1 (their CPU share); start them with the thread count
    # the loop uses, so every OpenMP pool in the process agrees with torch.set_num_threads.
    return {"env_vars": {**raysupport.WORKER_ENV, "OMP_NUM_THREADS": str(threads)}}


# ---- the run ---------------------------------------------------------------------------------------

@contextmanager
def session(settings: Settings) -> Iterator[None]:
    """Ray for a training run: with the dashboard, whose state API Ray Train's placement-group
    cleaner polls, and the workers' progress lines on the console."""
    with raysupport.ray_session(settings, dashboard=True, worker_output=True):
        yield


def fit(loop: Callable[[dict[str, Any]], None], cfg: dict[str, Any], section: Any, name: str, root: str,
        s3: S3Config, checkpoints: dict[str, Any]) -> Any:
    """Run TorchTrainer(loop) on `section`'s workers (scaling); a run of this name already under
    `root` resumes from its latest checkpoint. checkpoints: CheckpointConfig arguments."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    path, fs = storage_target(root, s3)
    run = RunConfig(name=name, storage_path=path, storage_filesystem=fs,
                    failure_config=FailureConfig(max_failures=section.max_failures),
                    checkpoint_config=CheckpointConfig(**checkpoints))
    run.worker_runtime_env = worker_env(cfg["threads"])
    trainer = TorchTrainer(loop, train_loop_config=cfg, run_config=run,
                           scaling_config=ScalingConfig(**scaling(section)))
    return trainer.fit()


def best_checkpoint(result: Any, metric: str, lower_is_better: bool,
                    fallback: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(checkpoint, its metrics) with the best `metric` (or `fallback`, where a report lacks it)
    among those Ray Train kept."""
    def score(cm: tuple[Any, dict[str, Any]]) -> float:
        return cm[1][metric] if metric in cm[1] else cm[1][fallback]

    pairs = [(c, m) for c, m in (result.best_checkpoints or []) if metric in m or fallback in m]
    if not pairs:
        raise RuntimeError("training finished without a checkpoint")
    return (min if lower_is_better else max)(pairs, key=score)


def latest_checkpoint(result: Any) -> Any:
    if result.checkpoint is None:
        raise RuntimeError("training finished without a checkpoint")
    return result.checkpoint


# ---- the result ------------------------------------------------------------------------------------

def promote(reg: Any, version: str, asked: bool | None, auto: bool) -> bool:
    """Promotes the version through the registry's gate when asked (--promote), or by default when
    the section's auto_promote is set; whether it was promoted."""
    if not (asked if asked is not None else auto):
        return False
    promoted, _ = reg.promote(version, by="gate")
    return promoted


def write_report(report: dict[str, Any], run_uri: str, s3: S3Config) -> dict[str, Any]:
    """The run's report.json next to its checkpoints; the report with its own address added."""
    uri = f"{run_uri}/shopgen/report.json"
    storage.write_bytes(uri, json.dumps(report, indent=2).encode(), s3)
    report["report"] = uri
    return report
