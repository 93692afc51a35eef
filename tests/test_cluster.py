"""A real multi-node Ray cluster on this machine: a head plus a second node with its own model
cache and a custom resource. The nightly's generation and embedding actors run on that node only, fetch
their models from s3:// (moto) into that node's cache, and two generator engines share the work.
The run's index and state match a single-node run of the same catalog.

The placement test declares fake GPU and accelerator_type:L4 resources; its engine class only
reports what Ray assigned to it (no GPU here, so no vLLM engine can start on one)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest
import raynodes
import yaml
from conftest import MODEL_CACHE, SAMPLE

NODE_RESOURCE = "shopgen_gpu_node"


class ReportsPlacement:
    """Stands in for the vLLM engine where no GPU exists: returns the resources Ray gave its actor."""

    def __init__(self, model, settings, content, gate=None, spec=None):
        import ray

        ctx = ray.get_runtime_context()
        self.placed = json.dumps({"resources": ctx.get_assigned_resources(), "model": model.base})

    def __call__(self, batch: pa.Table) -> pa.Table:
        return pa.table({"sku": batch["sku"], "placed": [self.placed] * batch.num_rows})


def test_engine_actors_request_a_gpu_of_the_configured_accelerator_type(tmp_path):
    import ray

    from shopgen.adapters import models
    from shopgen.catalog.load import load_catalog
    from shopgen.core.config import load_settings
    from shopgen.generate.stage import generator_dataset

    s = load_settings(home=tmp_path, models={"cache_dir": MODEL_CACHE},
                      generation={"accelerator_type": "L4", "concurrency": [1, 2], "batch_size": 2})
    products, _ = load_catalog(str(SAMPLE), limit=4)
    import sys

    # Ray's workers cannot import this test module: ship the stand-in class by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, num_gpus=1, resources={"accelerator_type:L4": 1}, include_dashboard=False,
             object_store_memory=200 * 1024 * 1024)
    try:
        ds = generator_dataset(products, models.resolve("smollm2-135m-instruct", s), s, ("seo_title",), [],
                               actor=ReportsPlacement)
        rows = ds.take_all()
    finally:
        ray.shutdown()
    assert len(rows) == 4
    placed = [json.loads(r["placed"]) for r in rows]
    for p in placed:
        assert p["resources"]["GPU"] == 1 and p["resources"]["accelerator_type:L4"] > 0, p
        assert p["model"] == "smollm2-135m-instruct"  # a reference for the node to resolve, not a folder


def test_pool_config_is_checked(tmp_path):
    from pydantic import ValidationError

    from shopgen.adapters.raysupport import actor_resources
    from shopgen.core.config import load_settings

    for bad in (0, [3, 2], [0, 2]):
        with pytest.raises(ValidationError, match="concurrency"):
            load_settings(home=tmp_path, generation={"concurrency": bad})
    with pytest.raises(ValueError, match="accelerator_type 'L4' asks for a GPU"):
        actor_resources("cpu", "L4")


# ---- slow: a real two-node cluster ------------------------------------------------------------

def _upload(s3, folder: Path, bucket: str, prefix: str) -> None:
    for f in folder.rglob("*"):
        if f.is_file() and not f.name.startswith("shopgen-model"):
            s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(folder)}")


def _nightly(shopgen_bin: str, env: dict, config: dict, cfg_path: Path, work: Path, catalog: Path) -> dict:
    cfg_path.write_text(yaml.safe_dump(config))
    p = subprocess.run([shopgen_bin, "--config", str(cfg_path), "nightly", "--catalog", str(catalog),
                        "--workdir", str(work)], env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-8000:]
    return json.loads((work / "report.json").read_text())


def _docs(settings, alias: str) -> dict[str, dict]:
    from elasticsearch import helpers

    from indexing.client import make_client

    es = make_client(settings)
    es.indices.refresh(index=alias)
    skip = {"indexed_at", "embedding", "seo_title", "copy", "run_id"}
    return {h["_source"]["sku"]: {k: v for k, v in h["_source"].items() if k not in skip}
            for h in helpers.scan(es, index=alias, query={"query": {"match_all": {}}})}


def _state(prefix: str, s3_server: str) -> dict[str, dict]:
    from shopgen.core.config import S3Config
    from shopgen.state import StateStore, load_state

    keep = ("sku", "key", "content_hash", "embedding_hash", "embedding_model", "model_version", "prompt_version")
    store = StateStore(prefix, S3Config(endpoint_url=s3_server, region="us-east-1"))
    return {s: {k: r.get(k) for k in keep} for s, r in load_state(store).items()}


@pytest.mark.slow
def test_nightly_on_a_two_node_cluster_matches_a_single_node_run(tmp_path, s3_server, env, settings, shopgen_bin):
    import boto3

    from shopgen.adapters import models
    from shopgen.adapters.devstack import free_port

    # The models live on S3 only: each node that loads one must fetch it itself.
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="models")
    s3.create_bucket(Bucket="state")
    _upload(s3, Path(models.materialize(models.resolve("smollm2-135m-instruct", settings), settings).path),
            "models", "smollm2")
    _upload(s3, Path(models.materialize(models.resolve("all-minilm-l6-v2", settings), settings).path),
            "models", "minilm")
    driver_caches = [MODEL_CACHE / "s3", Path(env["SHOPGEN_HOME"]) / "models" / "s3"]
    cached_before = {c: sorted(c.iterdir()) if c.is_dir() else [] for c in driver_caches}
    catalog = tmp_path / "catalog.jsonl"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    catalog.write_text("".join(lines[i * 11] + "\n" for i in range(4)), encoding="utf-8")

    # Short temp dirs: Ray's unix socket paths may not exceed 107 bytes.
    head_tmp, node_tmp = (Path(tempfile.mkdtemp(prefix=p, dir="/tmp")) for p in ("sgh-", "sgn-"))
    node_cache = tmp_path / "node2-cache"
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--object-store-memory", str(300 * 1024 ** 2)]
    # Token auth off on every process of this cluster: `ray start` turns it on when ~/.ray/auth_token
    # exists (another test may leave one), and drivers only send it under RAY_AUTH_MODE=token.
    # Ray Data starts dispatching when the first pool actor is up; on loaded cores the first engine
    # could take all 4 batches before the second was ready. The pool waits for both, so the check below
    # that both engines took batches tests the spread, not the start-up race.
    e = {**env, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
         "RAY_AUTH_MODE": "disabled", "RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S": "600"}
    logs = [head_tmp / "head.log", node_tmp / "node.log"]
    procs = [raynodes.start(["--head", "--port", str(port), "--num-cpus", "1", "--temp-dir", str(head_tmp),
                             "--ray-client-server-port", str(free_port()), "--min-worker-port", "0",
                             "--max-worker-port", "0", "--include-dashboard", "false", *common], e, logs[0])]
    try:
        raynodes.wait_nodes(address, 1, procs, logs[:1], e)
        # Ray 2.60 refuses --temp-dir on a non-head node ("should only be specified when starting head
        # node"): the node shares the head's session dir, but has its own model cache.
        procs.append(raynodes.start(["--address", address, "--num-cpus", "3",
                                     "--resources", json.dumps({NODE_RESOURCE: 4}), "--min-worker-port", "0",
                                     "--max-worker-port", "0", *common],
                                    {**e, models.NODE_CACHE_ENV: str(node_cache)}, logs[1]))
        nodes = raynodes.wait_nodes(address, 2, procs, logs, e)
        node2 = next(n["id"] for n in nodes if NODE_RESOURCE in n["resources"])

        base = {"models": {"generator": "s3://models/smollm2", "embedder": "s3://models/minilm",
                           "use_promoted": False},
                "s3": {"endpoint_url": s3_server, "region": "us-east-1"},
                "generation": {"content": ["seo_title"], "batch_size": 1, "kv_cache_gib": 1, "max_attempts": 2},
                "content": {"seo_title": {"temperature": 0}}}
        pinned = {"concurrency": 2, "max_concurrent_batches": 1, "resources": {NODE_RESOURCE: 1}}
        multi = json.loads(json.dumps(base))
        multi["generation"].update(pinned)
        multi["embedding"] = {"resources": {NODE_RESOURCE: 1}}
        multi["es"] = {"alias": "multi"}
        # A state on the object store: the generator actors on the second node commit their batches.
        multi["nightly"] = {"state": "s3://state/nightly"}
        multi["ray"] = {"address": address}
        rep = _nightly(shopgen_bin, e, multi, tmp_path / "multi.yaml", tmp_path / "w-multi", catalog)
    finally:
        for p in reversed(procs):
            raynodes.stop_tree(p)
        shutil.rmtree(head_tmp, ignore_errors=True)
        shutil.rmtree(node_tmp, ignore_errors=True)

    assert rep["status"] == "succeeded" and rep["counts"]["valid"] == 4
    engines = rep["stages"]["generate"]["engines"]
    # Two vLLM engines took batches, both on the second node (node id prefix / pid).
    assert len(engines) == 2 and sum(engines.values()) == 4, engines
    assert {e.split("/")[0] for e in engines} == {node2[:12]}, (engines, node2)
    assert rep["stages"]["generate"]["committed_by"] == "actors" and rep["stages"]["generate"]["batches"] == 4
    # Each actor fetched its model into that node's cache; the driver downloaded nothing.
    fetched = sorted(json.loads((d / "shopgen-model.json").read_text())["source"]
                     for d in (node_cache / "s3").iterdir() if (d / "shopgen-model.json").exists())
    assert fetched == ["s3://models/minilm", "s3://models/smollm2"]
    assert {c: sorted(c.iterdir()) if c.is_dir() else [] for c in driver_caches} == cached_before

    single = json.loads(json.dumps(base))
    single["es"] = {"alias": "single"}
    rep1 = _nightly(shopgen_bin, {**e, models.NODE_CACHE_ENV: str(tmp_path / "single-cache")}, single,
                    tmp_path / "single.yaml", tmp_path / "w-single", catalog)
    assert rep1["status"] == "succeeded"
    assert len(rep1["stages"]["generate"]["engines"]) == 1
    for k in ("valid", "indexed", "regenerated"):
        assert rep["counts"][k] == rep1["counts"][k], k
    multi_docs, single_docs = _docs(settings, "multi"), _docs(settings, "single")
    assert multi_docs == single_docs and len(multi_docs) == 4
    assert rep["outputs"]["state"] == "s3://state/nightly/multi"
    assert rep1["stages"]["generate"]["committed_by"] == "driver"  # a local state folder
    assert _state(rep["outputs"]["state"], s3_server) == _state(rep1["outputs"]["state"], s3_server)
