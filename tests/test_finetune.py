"""Fine-tuning: the pure data/metric core, the registry and its promote gate, and Ray Train runs
that survive a killed worker, a killed driver, and keep checkpoints and the registry on S3 (moto).

The Ray Train tests fine-tune a randomly initialised model of the SmolLM2 architecture (2 small
layers, the real tokenizer): they test fault tolerance and storage, not model quality, and a
135M-parameter step takes seconds on 2 cores. test_lora.py fine-tunes the real SmolLM2."""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MODEL_CACHE, SAMPLE


def _products(n=None):
    from shopgen.catalog.load import load_catalog

    products, _ = load_catalog(str(SAMPLE))
    return products[:n] if n else products


# ---- the pure core ----------------------------------------------------------------------------

def test_split_is_deterministic_without_leakage():
    from shopgen.core.records import Product
    from shopgen.finetune import data as sftdata

    products = _products()
    a = sftdata.build_examples(products, ["description"])
    shuffled = products[:]
    random.Random(7).shuffle(shuffled)
    b = sftdata.build_examples(shuffled, ["description"])
    split_a = {e.sku: e.split for e in a}
    assert split_a == {e.sku: e.split for e in b}
    assert sftdata.data_hash(a) == sftdata.data_hash(b)
    # Adding products never moves an existing one to another split.
    grown = sftdata.build_examples(products[:100], ["description"])
    assert all(split_a[e.sku] == e.split for e in grown)
    by_split = {s: {e.sku for e in a if e.split == s} for s in sftdata.SPLITS}
    assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])
    assert not (by_split["val"] & by_split["test"])
    assert all(by_split.values()), {k: len(v) for k, v in by_split.items()}
    assert 0.6 < len(by_split["train"]) / len(a) < 0.95
    # Variants of one product share a split, so near-copies never straddle train and test.
    variants = [Product(sku=f"V-{i}", title=f"Tee size {i}", description="A plain tee.",
                        attributes={"parent_sku": "TEE-1"}) for i in range(30)]
    assert len({e.split for e in sftdata.build_examples(variants, ["description"])}) == 1


def test_targets_are_kept_out_of_inputs_and_unsupported_facts_flagged():
    from shopgen.core.records import Product
    from shopgen.finetune import data as sftdata

    p = Product(sku="K1", title="Alder Trail Pack", brand="Alder", attributes={"capacity_l": 30, "color": "olive",
                                                                               "seo_title": "Alder 30 L Pack"},
                description="A 30 L pack in olive, made of titanium.")
    ex = {e.content: e for e in sftdata.build_examples([p], ["description", "seo_title", "bullets"])}
    assert set(ex) == {"description", "seo_title"}  # no bullets in the data: no pair
    prompt = json.loads(ex["description"].messages)[1]["content"]
    assert "titanium" not in prompt and "seller_description" not in prompt and "Alder 30 L Pack" not in prompt
    assert json.loads(ex["description"].target) == {"description": p.description}
    assert ex["description"].flags == ["unsupported material titanium"]
    assert ex["seo_title"].flags == []
    assert [e.content for e in sftdata.keep(list(ex.values()))] == ["seo_title"]
    assert len(sftdata.keep(list(ex.values()), "flag")) == 2
    st = sftdata.stats(1, list(ex.values()), sftdata.keep(list(ex.values())), ["description", "seo_title"])
    assert st["dropped"] == 1 and st["unsupported_kinds"] == {"material": 1}


def test_metrics():
    from shopgen.core.records import Product
    from shopgen.finetune.evaluate import aggregate, attribute_coverage, parse_output, rouge_l, score_sample

    assert rouge_l("the red tent", "the red tent") == 1.0
    assert rouge_l("a b c d", "a c d") == pytest.approx(2 * (3 / 4) * 1 / (3 / 4 + 1))
    assert rouge_l("", "x") == 0.0
    assert rouge_l("轻便帐篷", "轻便的帐篷") == pytest.approx(2 * 1 * 0.8 / 1.8)  # CJK counts per character
    p = Product(sku="s", title="t", attributes={"color": "olive", "weight_g": 980, "freestanding": True})
    assert attribute_coverage("An olive bag of 980 grams.", p) == 1.0
    assert attribute_coverage("An olive bag.", p) == 0.5
    assert parse_output('{"description":"cut off here', "description") == (["cut off here"], False)
    s = score_sample('{"seo_title":"Olive 2 kg bag"}', "seo_title", "Olive bag", p)
    assert s["schema_ok"] and s["unsupported"] == 2  # 2 and kg are not in the input
    agg = aggregate([s, {**s, "unsupported": 0}])
    assert agg["unsupported_rate"] == 0.5 and agg["n"] == 2


def test_shard_batches_are_disjoint_and_reproducible():
    from shopgen.finetune.recipe import shard_batch

    n, bs, world = 23, 3, 2
    spe = (n // world) // bs
    seen = []
    for step in range(spe):
        for rank in range(world):
            seen += shard_batch(n, step, spe, bs, rank, world, seed=5)
    assert len(seen) == len(set(seen)) == spe * bs * world
    assert shard_batch(n, 4, spe, bs, 1, world, 5) == shard_batch(n, 4, spe, bs, 1, world, 5)
    assert shard_batch(n, spe, spe, bs, 0, world, 5) != shard_batch(n, 0, spe, bs, 0, world, 5)  # new epoch


# ---- registry and gate -------------------------------------------------------------------------

def _metrics(base_rouge, ft_rouge, base_unsup=0.25, ft_unsup=0.25):
    m = {"n": 4, "attribute_coverage": 0.3, "schema_pass_rate": 1.0, "unsupported_per_output": 0.0}
    return {"base": {**m, "rouge_l": base_rouge, "unsupported_rate": base_unsup},
            "finetuned": {**m, "rouge_l": ft_rouge, "unsupported_rate": ft_unsup}}


def _register(reg, tmp_path, metrics, tag):
    from shopgen.adapters.registry import new_version_id

    adapter = tmp_path / f"adapter-{tag}"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "smollm2-135m-instruct"}))
    v = new_version_id(tag)
    reg.register({"adapter": adapter}, {"version": v, "run": tag, "base": "smollm2-135m-instruct",
                                       "method": "lora", "data_hash": "d", "metrics": metrics})
    return v


def test_promote_gate_refuses_a_model_worse_than_base(tmp_path, env, shopgen_bin):
    from shopgen.adapters.registry import Registry, gate

    assert gate(_metrics(0.3, 0.2)) == (False, ["test ROUGE-L 0.2000 does not beat the base's 0.3000"])
    assert not gate(_metrics(0.2, 0.3, 0.1, 0.2))[0]  # better ROUGE-L but more unsupported facts
    assert gate(_metrics(0.2, 0.3, 0.2, 0.1)) == (True, [])
    assert not gate({"base": {"n": 0}, "finetuned": {"n": 0}})[0]

    root = tmp_path / "reg"
    reg = Registry(str(root))
    worse = _register(reg, tmp_path, _metrics(0.30, 0.21), "worse")
    better = _register(reg, tmp_path, _metrics(0.20, 0.35, 0.5, 0.25), "better")

    def cli(*args):
        return subprocess.run([shopgen_bin, "models", *args, "--registry", str(root)], env=env,
                              capture_output=True, text=True, timeout=120)

    p = cli("promote", worse)
    assert p.returncode != 0 and "gate refused" in p.stderr and "ROUGE-L" in p.stderr
    assert reg.promoted() is None
    listed = json.loads(cli("list", "--json").stdout)
    assert [v["version"] for v in listed] == [worse, better]
    assert all(set(v) >= {"version", "status", "base", "metrics"} for v in listed)
    assert {v["status"] for v in listed} == {"candidate"}
    assert listed[0]["metrics"]["base"]["rouge_l"] == 0.30 and listed[0]["metrics"]["finetuned"]["rouge_l"] == 0.21

    assert cli("promote", better).returncode == 0
    assert {v["version"]: v["status"] for v in json.loads(cli("list", "--json").stdout)} == {
        worse: "candidate", better: "promoted"}
    p = cli("promote", worse, "--force")
    assert p.returncode == 0 and "despite the gate" in p.stdout
    assert json.loads((root / "promoted.json").read_text())["forced"] is True
    assert cli("show", "ft-20990101-000000-abcdef").returncode != 0


# ---- Ray Train runs on a tiny model --------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    from shopgen.adapters import models
    from shopgen.core.config import load_settings

    s = load_settings(models={"cache_dir": MODEL_CACHE})
    src = models.materialize(models.resolve("smollm2-135m-instruct", s), s).path
    out = tmp_path_factory.mktemp("tiny") / "tiny-smollm2"
    cfg = AutoConfig.from_pretrained(src)
    cfg.update(dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16))
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return str(out)


def _ft_env(env, **extra):
    # A random tiny model writes no copy worth serving: its test eval is greedy transformers output
    # (finetune.eval=hf); the serving-path evaluation runs in tests/test_finetune_walkthrough.py.
    e = {**env, "SHOPGEN_FINETUNE__EVAL": "hf", "SHOPGEN_FINETUNE__EVAL_EVERY": "4", "SHOPGEN_FINETUNE__EVAL_SAMPLES": "0",
         "SHOPGEN_FINETUNE__TEST_SAMPLES": "2", "SHOPGEN_FINETUNE__MAX_NEW_TOKENS": "8",
         "SHOPGEN_FINETUNE__BATCH_SIZE": "2", "SHOPGEN_FINETUNE__PATIENCE": "100"}
    e.update(extra)
    return e


def _ft_cmd(shopgen_bin, base, tmp_path, name, steps, storage=None, registry=None):
    return [shopgen_bin, "finetune", "--catalog", str(SAMPLE), "--base", base, "--max-steps", str(steps),
            "--name", name, "--storage", storage or str(tmp_path / "ft"), "--registry",
            registry or str(tmp_path / "reg"), "--json"]


def _wait_for_checkpoint(run_dir: Path, proc, timeout=300) -> None:
    t0 = time.time()
    # The snapshot is written once the controller has registered a checkpoint, so it can resume from it.
    while not (run_dir / "checkpoint_manager_snapshot.json").exists():
        assert proc.poll() is None, proc.stderr.read()[-4000:]
        assert time.time() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.1)


@pytest.mark.slow
def test_resume_after_a_training_worker_is_killed(tmp_path, env, shopgen_bin, tiny_model):
    import psutil

    proc = subprocess.Popen(_ft_cmd(shopgen_bin, tiny_model, tmp_path, "kill-worker", 40), env=_ft_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(tmp_path / "ft" / "kill-worker", proc)
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if "RayTrainWorker" in " ".join(p.cmdline())]
        assert workers, "no Ray Train worker process found"
        for w in workers:
            w.kill()
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-4000:]
    rep = json.loads(out.strip().splitlines()[-1])
    t = rep["training"]
    assert t["starts"] == 2 and t["resumed_from_step"] >= 4 and t["final_step"] == 40, t
    assert rep["status"] == "succeeded" and rep["metrics"]["finetuned"]["n"] == 2


@pytest.mark.slow
def test_rerun_with_the_same_name_resumes_after_the_driver_dies(tmp_path, env, shopgen_bin, tiny_model):
    cmd = _ft_cmd(shopgen_bin, tiny_model, tmp_path, "kill-driver", 40)
    proc = subprocess.Popen(cmd, env=_ft_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for_checkpoint(tmp_path / "ft" / "kill-driver", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(2)
    p = subprocess.run(cmd, env=_ft_env(env), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-4000:]
    t = json.loads(p.stdout.strip().splitlines()[-1])["training"]
    assert t["starts"] >= 2 and t["resumed_from_step"] >= 4 and t["final_step"] == 40, t
    # A third run of the finished command registers nothing new.
    p = subprocess.run(cmd, env=_ft_env(env), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and json.loads(p.stdout.strip().splitlines()[-1])["status"] == "already_registered"


@pytest.mark.slow
def test_checkpoints_and_registry_on_s3(tmp_path, env, shopgen_bin, tiny_model, s3_server, settings):
    import boto3

    from shopgen.adapters import models

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    s3.create_bucket(Bucket="shop-ml")
    e = _ft_env({**env, **{k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                      "AWS_DEFAULT_REGION")}},
                SHOPGEN_S3__ENDPOINT_URL=s3_server, SHOPGEN_FINETUNE__METHOD="full")
    p = subprocess.run(_ft_cmd(shopgen_bin, tiny_model, tmp_path, "on-s3", 4, "s3://shop-ml/train", "s3://shop-ml/registry"),
                       env=e, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-4000:]
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="shop-ml")["Contents"]]
    assert any(k.startswith("train/on-s3/checkpoint_") for k in keys)
    assert "train/on-s3/shopgen/report.json" in keys
    v = rep["version"]
    assert f"registry/versions/{v}/manifest.json" in keys and f"registry/versions/{v}/model/config.json" in keys

    listed = json.loads(subprocess.run([shopgen_bin, "models", "list", "--json", "--registry", "s3://shop-ml/registry"],
                                       env=e, capture_output=True, text=True, timeout=120).stdout)
    assert [(x["version"], x["status"], x["base"]) for x in listed] == [(v, "candidate", tiny_model)]
    assert set(listed[0]["metrics"]) == {"base", "finetuned", "eval"}
    shown = json.loads(subprocess.run([shopgen_bin, "models", "show", v, "--registry", "s3://shop-ml/registry"],
                                      env=e, capture_output=True, text=True, timeout=120).stdout)
    assert shown["data_hash"] == rep["data_hash"] and shown["method"] == "full" and shown["created_at"]

    s = settings.model_copy(update={"models": settings.models.model_copy(update={"registry": "s3://shop-ml/registry"}),
                                    "s3": settings.s3.model_copy(update={"endpoint_url": s3_server})})
    ref = models.resolve(v, s)
    assert ref.base == f"s3://shop-ml/registry/versions/{v}/model"  # a reference, not a driver-local folder
    body = s3.get_object(Bucket="shop-ml", Key=f"registry/versions/{v}/model/model.safetensors")["Body"].read()
    local = s.model_copy(update={"models": s.models.model_copy(update={"node_cache_dir": tmp_path / "node-cache"})})
    assert Path(models.materialize(ref, local).path, "model.safetensors").read_bytes() == body
    assert ref.adapter is None and ref.version.endswith(f"+{v}")


def test_finetune_bad_input_is_a_clear_error(tmp_path, env, shopgen_bin):
    def ft(*args):
        return subprocess.run([shopgen_bin, "finetune", *args, "--registry", str(tmp_path / "reg")], env=env,
                              capture_output=True, text=True, timeout=120)

    p = ft("--catalog", str(tmp_path / "missing.jsonl"))
    assert p.returncode == 1 and "missing.jsonl" in p.stderr and "Traceback" not in p.stderr
    no_copy = tmp_path / "no_copy.jsonl"
    no_copy.write_text(json.dumps({"sku": "A1", "title": "Plain mug", "attributes": {"color": "white"}}) + "\n")
    p = ft("--catalog", str(no_copy))
    assert p.returncode == 1 and "no training pairs" in p.stderr
    p = ft("--catalog", str(SAMPLE), "--max-steps", "2", "--epochs", "1")
    assert p.returncode == 2 and "not both" in p.stderr
    p = ft("--catalog", str(SAMPLE), "--base", str(tmp_path / "nope"))
    assert p.returncode == 1 and "nope" in p.stderr
    assert not (tmp_path / "reg").exists()  # nothing registered on bad input


def test_config_paths_are_absolute_when_it_loads(tmp_path, monkeypatch):
    from shopgen.core.config import load_settings

    monkeypatch.chdir(tmp_path)
    s = load_settings(home=".shopgen", models={"registry": "reg", "cache_dir": "m"},
                      nightly={"state": "s3://bucket/state"})
    assert s.home == tmp_path / ".shopgen" and s.model_cache == tmp_path / "m"
    assert s.registry_uri == str(tmp_path / "reg") and s.nightly.state == "s3://bucket/state"
    assert Path(s.embedding_cache).is_absolute() and Path(s.finetune_storage).is_absolute()


def test_workers_are_placed_by_accelerator_type_and_extra_resources():
    """finetune.accelerator_type asks each Ray Train worker for a GPU of that type (Ray's
    accelerator_type:<T> resource); finetune.resources pins workers to labelled nodes."""
    from ray.train import ScalingConfig

    from shopgen.core.config import load_settings
    from shopgen.finetune.recipe import scaling

    s = load_settings(finetune={"accelerator_type": "L4", "resources": {"train_node": 1}, "workers": 2})
    sc = ScalingConfig(**scaling(s.finetune))
    assert sc.use_gpu and sc.num_workers == 2
    assert sc._resources_per_worker_not_none == {"GPU": 1, "train_node": 1.0, "accelerator_type:L4": 0.001}
    cpu = ScalingConfig(**scaling(load_settings().finetune))
    assert not cpu.use_gpu and cpu._resources_per_worker_not_none == {"CPU": 1}
