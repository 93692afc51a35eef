"""Model references: built-ins, local folders, PEFT adapter folders and s3:// prefixes (moto)."""

import json
from pathlib import Path

import pytest

from shopgen.adapters import models
from shopgen.core.config import load_settings


def test_builtin_embedder_resolves_to_package_folder(tmp_path):
    s = load_settings(home=tmp_path)
    ref = models.resolve("all-minilm-l6-v2", s)
    assert ref.base == "all-minilm-l6-v2" and ref.adapter is None  # a name any node resolves itself
    local = models.materialize(ref, s)
    assert (Path(local.path) / "config.json").exists() and local.adapter_path is None
    assert ref.version.startswith("all-minilm-l6-v2@")


def test_unknown_reference_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a built-in"):
        models.resolve(str(tmp_path / "nope"), load_settings(home=tmp_path))


def test_a_folder_missing_on_the_node_is_a_clear_error(tmp_path):
    ref = models.ModelRef("x", str(tmp_path / "gone"), None, "x@1")
    with pytest.raises(FileNotFoundError, match="s3:// prefixes or folders on a shared file system"):
        models.materialize(ref, load_settings(home=tmp_path))


def test_adapter_folder_resolves_to_base_plus_adapter(tmp_path):
    s = load_settings(home=tmp_path)
    base_dir = models.materialize(models.resolve("all-minilm-l6-v2", s), s).path
    ad = tmp_path / "my-adapter"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base_dir, "r": 8}))
    ref = models.resolve(str(ad), s)
    assert ref.base == base_dir and ref.adapter == str(ad)
    assert "+lora:my-adapter@" in ref.version
    local = models.materialize(ref, s)
    assert local.path == base_dir and local.adapter_path == str(ad)


def test_model_folder_from_s3_is_fetched_by_the_node_that_loads_it(tmp_path, s3_server, monkeypatch):
    import boto3

    from shopgen.adapters.encoder import embedding_dims, load_encoder

    s = load_settings(home=tmp_path, s3={"endpoint_url": s3_server, "region": "us-east-1"})
    src = Path(models.materialize(models.resolve("all-minilm-l6-v2", s), s).path)
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="models")
    for f in src.rglob("*"):
        if f.is_file():
            s3.upload_file(str(f), "models", f"minilm/{f.relative_to(src)}")
    ref = models.resolve("s3://models/minilm", s)
    # Resolving reads only listings and configs: nothing is downloaded on the driver.
    assert ref.base == "s3://models/minilm" and not (tmp_path / "models" / "s3").exists()
    assert ref.version == f"minilm@{models.fingerprint(src)}"  # the same identity as the local folder
    node = tmp_path / "node-cache"
    monkeypatch.setenv(models.NODE_CACHE_ENV, str(node))
    local = models.materialize(ref, s)
    assert Path(local.path).is_relative_to(node / "s3")
    assert models.materialize(ref, s).path == local.path  # cached, not downloaded again
    enc = load_encoder(local.path)
    assert embedding_dims(enc) == 384 and enc.encode(["cork yoga mat"]).shape == (1, 384)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        models.resolve("s3://models/nothing-here", s)
