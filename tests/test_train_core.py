"""The Ray Train core both training workflows share (shopgen/train/): its pure parts, without a
Ray session: run identity, worker config, placement, storage, checkpoint choice and round trip,
and the layering (the core imports no workflow, and no workflow imports another)."""

from __future__ import annotations

import ast
import json
from types import SimpleNamespace

import pytest
from conftest import ROOT

from shopgen.adapters import models
from shopgen.core.config import load_settings
from shopgen.train import driver, worker

BASE = models.ModelRef(ref="base", base="base", adapter=None, version="v1", prompt=None)


def test_config_hash_is_stable_and_ignores_placement():
    dump = {"lr": 0.1, "epochs": 2, "workers": 1, "gpu": False}
    h = driver.config_hash(dump, "v1", ("workers", "gpu"))
    # A changed hash renames every run, so a re-run no longer resumes or finds its registered version.
    assert h == "596b33ed"
    assert driver.config_hash({**dump, "workers": 4, "gpu": True}, "v1", ("workers", "gpu")) == h
    assert driver.config_hash({"gpu": True, "workers": 3, "epochs": 2, "lr": 0.1}, "v1", ("workers", "gpu")) == h
    assert driver.config_hash({**dump, "epochs": 3}, "v1", ("workers", "gpu")) != h
    assert driver.config_hash(dump, "v2", ("workers", "gpu")) != h
    assert driver.config_hash(dump, "v1", ("workers",)) != h  # gpu now counts


def test_run_name_is_the_data_and_the_config_hash():
    from shopgen.finetune.recipe import PLACEMENT as FT
    from shopgen.searchtune.recipe import PLACEMENT as ST

    s = load_settings()
    ft = driver.run_name("run", "0123456789abcdef", s.finetune, "v1", FT)
    assert ft.startswith("run-01234567-") and len(ft) == len("run-01234567-") + 8
    moved = s.finetune.model_copy(update={"workers": 3, "storage_path": "s3://b/ft", "auto_promote": True})
    assert driver.run_name("run", "0123456789abcdef", moved, "v1", FT) == ft
    other = s.finetune.model_copy(update={"epochs": 7})
    assert driver.run_name("run", "0123456789abcdef", other, "v1", FT) != ft
    sf = s.search_finetune.model_copy(update={"log_every": 1, "checkpoint_every": 5, "accelerator_type": "L4"})
    assert driver.run_name("search", "ab", sf, "v1", ST) == driver.run_name("search", "ab", s.search_finetune, "v1", ST)


def test_worker_config_carries_the_base_as_a_reference_and_no_secret():
    s = load_settings(finetune={"workers": 2, "cpu_threads": None},
                      s3={"access_key_id": "AKIA", "secret_access_key": "hush", "region": "eu-west-1"},
                      models={"node_cache_dir": "/nodes/cache"})
    cfg = driver.worker_config(s.finetune, s, BASE, "s3://b/run/examples.parquet")
    assert cfg["base"] == {"ref": "base", "base": "base", "adapter": None, "version": "v1", "prompt": None}
    assert cfg["data_uri"] == "s3://b/run/examples.parquet" and cfg["model_cache"] == "/nodes/cache"
    assert cfg["workers"] == 2 and cfg["threads"] >= 1 and cfg["method"] == s.finetune.method
    assert cfg["s3"]["region"] == "eu-west-1"
    assert "hush" not in json.dumps(cfg, default=str) and "AKIA" not in json.dumps(cfg, default=str)
    assert driver.worker_config(s.finetune.model_copy(update={"cpu_threads": 5}), s, BASE, "u")["threads"] == 5


def test_recipes_add_their_own_keys_to_the_core_worker_config():
    from shopgen.finetune.recipe import worker_config as ft_config
    from shopgen.searchtune.recipe import worker_config as st_config

    s = load_settings(search_finetune={"accelerator_type": "L4"})
    ft = ft_config(s, BASE, "u")
    assert ft["base_ref"] == "base" and ft["lr"] == 2e-4 and ft["data_uri"] == "u"
    st = st_config(s, BASE, "u")
    assert st["gpu"] is True and st["query_prefix"] == s.embedding.query_prefix and st["base"]["version"] == "v1"


def test_scaling_from_either_training_section():
    s = load_settings(search_finetune={"accelerator_type": "A10G", "resources": {"train_node": 1}, "workers": 3})
    assert driver.scaling(s.search_finetune) == {"num_workers": 3, "use_gpu": True, "accelerator_type": "A10G",
                                                 "resources_per_worker": {"GPU": 1, "train_node": 1.0}}
    assert driver.scaling(s.finetune) == {"num_workers": 1, "use_gpu": False, "resources_per_worker": {"CPU": 1}}
    gpu = s.finetune.model_copy(update={"gpu": True})
    assert driver.scaling(gpu)["resources_per_worker"] == {"GPU": 1} and "accelerator_type" not in driver.scaling(gpu)


def test_storage_target_local_or_s3(tmp_path, monkeypatch):
    import pyarrow.fs as pafs

    s3 = load_settings(s3={"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1"}).s3
    assert driver.storage_target(str(tmp_path / "runs"), s3) == (str(tmp_path / "runs"), None)
    monkeypatch.chdir(tmp_path)
    assert driver.storage_target("runs", s3) == (str(tmp_path / "runs"), None)  # workers run elsewhere
    path, fs = driver.storage_target("s3://bucket/ft/runs", s3)
    assert path == "bucket/ft/runs" and isinstance(fs, pafs.S3FileSystem)


def test_worker_env_sets_the_loops_thread_count():
    env = driver.worker_env(3)["env_vars"]
    assert env["OMP_NUM_THREADS"] == "3" and env["HF_HUB_OFFLINE"] == "1"


def test_rows_round_trip_through_the_runs_storage(tmp_path):
    rows = [{"sku": "A", "split": "train", "n": 1}, {"sku": "B", "split": "val", "n": 2}]
    uri = str(tmp_path / "run" / "shopgen" / "rows.parquet")
    driver.write_rows(uri, rows, load_settings().s3)
    assert worker.read_rows({"data_uri": uri, "s3": {}}) == rows


def test_best_and_latest_checkpoint():
    kept = [("c1", {"val_loss": 0.9, "rouge_l": 0.1}), ("c2", {"val_loss": 0.4, "rouge_l": 0.2}),
            ("c3", {"val_loss": 0.6, "rouge_l": 0.5})]
    result = SimpleNamespace(best_checkpoints=kept, checkpoint="c3")
    assert driver.best_checkpoint(result, "val_loss", True, "val_loss") == kept[1]
    assert driver.best_checkpoint(result, "rouge_l", False, "val_loss")[0] == "c3"
    # A report without the metric is ranked by the fallback.
    losses = SimpleNamespace(best_checkpoints=[(c, {"val_loss": m["val_loss"]}) for c, m in kept])
    assert driver.best_checkpoint(losses, "tokens", True, "val_loss")[0] == "c2"
    assert driver.latest_checkpoint(result) == "c3"
    with pytest.raises(RuntimeError, match="without a checkpoint"):
        driver.best_checkpoint(SimpleNamespace(best_checkpoints=None), "val_loss", True)
    with pytest.raises(RuntimeError, match="without a checkpoint"):
        driver.latest_checkpoint(SimpleNamespace(checkpoint=None))


class _Registry:
    def __init__(self, runs=None, passes=True):
        self.runs, self.passes, self.promoted = runs or {}, passes, []

    def find_run(self, name, data_hash):
        return self.runs.get((name, data_hash))

    def promote(self, version, by):
        self.promoted.append((version, by))
        return self.passes, []


def test_a_registered_run_is_reported_not_retrained():
    said = []
    reg = _Registry({("run-1", "dh"): {"version": "v-9", "metrics": {"x": 1}}})
    out = driver.already_registered(reg, "run-1", "dh", {"run": "run-1"}, said.append)
    assert out == {"run": "run-1", "status": "already_registered", "version": "v-9", "metrics": {"x": 1}}
    assert said == ["run run-1 already finished and registered v-9; nothing to do"]
    assert driver.already_registered(reg, "run-1", "other", {}, said.append) is None and len(said) == 1


def test_promotion_follows_the_flag_then_auto_promote_and_the_gate():
    reg = _Registry()
    assert driver.promote(reg, "v1", None, False) is False and reg.promoted == []
    assert driver.promote(reg, "v1", False, True) is False and reg.promoted == []
    assert driver.promote(reg, "v1", None, True) is True and reg.promoted == [("v1", "gate")]
    assert driver.promote(_Registry(passes=False), "v2", True, False) is False


def test_report_is_written_next_to_the_checkpoints(tmp_path):
    out = driver.write_report({"run": "r", "status": "succeeded"}, str(tmp_path / "r"), load_settings().s3)
    path = tmp_path / "r" / "shopgen" / "report.json"
    assert out["report"] == str(path) and json.loads(path.read_text()) == {"run": "r", "status": "succeeded"}


def test_a_checkpoint_restores_state_model_and_optimizer(tmp_path, monkeypatch):
    import ray.train
    import torch

    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.AdamW([p], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5)
    p.grad = torch.ones(2)
    opt.step()
    sched.step()
    worker.save_state(str(tmp_path), opt, sched, {"step": 7, "starts": 2})

    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: None)
    state, model, optim_state = worker.restore({"step": 0, "starts": 0}, lambda d: ("model", d))
    assert state == {"step": 0, "starts": 1} and model == ("model", None) and optim_state is None

    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: ray.train.Checkpoint.from_directory(str(tmp_path)))
    state, model, optim_state = worker.restore({"step": 0, "starts": 0}, lambda d: ("model", d is not None))
    assert state == {"step": 7, "starts": 3} and model == ("model", True)
    opt2 = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda step: 0.5)
    worker.resume_optimizer(opt2, sched2, optim_state)
    assert opt2.state_dict()["state"][0]["step"] == 1 and sched2.last_epoch == 1


def test_a_resumed_shard_continues_with_the_batches_it_had_left():
    seen = [worker.shard_batch(20, step, 5, 2, 0, 2, seed=3) for step in range(10)]
    assert seen[7] == worker.shard_batch(20, 7, 5, 2, 0, 2, seed=3)
    assert sorted(i for b in seen[:5] for i in b) == sorted(set(i for b in seen[:5] for i in b))


def _imports(path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_core_imports_no_workflow_and_no_workflow_imports_another():
    workflows = ("shopgen.finetune", "shopgen.searchtune", "shopgen.nightly", "shopgen.cli")
    core = {f"{p.name}: {m}" for p in (ROOT / "shopgen" / "train").glob("*.py") for m in _imports(p)
            if m.startswith(workflows)}
    assert not core, core
    search = {f"{p.name}: {m}" for p in (ROOT / "shopgen" / "searchtune").glob("*.py") for m in _imports(p)
              if m.startswith(("shopgen.finetune", "shopgen.nightly"))}
    assert not search, search
