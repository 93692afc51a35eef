"""Model references: built-ins, local folders, PEFT adapter folders and s3:// prefixes (moto)."""

import json
from pathlib import Path

import pytest

from shopgen import models
from shopgen.config import load_settings


def test_builtin_embedder_resolves_to_package_folder(tmp_path):
    s = load_settings(home=tmp_path)
    ref = models.resolve("all-minilm-l6-v2", s)
    assert (Path(ref.path) / "config.json").exists() and ref.adapter_path is None
    assert ref.version.startswith("all-minilm-l6-v2@")


def test_unknown_reference_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a built-in"):
        models.resolve(str(tmp_path / "nope"), load_settings(home=tmp_path))


def test_adapter_folder_resolves_to_base_plus_adapter(tmp_path):
    s = load_settings(home=tmp_path)
    base = models.resolve("all-minilm-l6-v2", s)
    ad = tmp_path / "my-adapter"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base.path, "r": 8}))
    ref = models.resolve(str(ad), s)
    assert ref.path == base.path and ref.adapter_path == str(ad)
    assert "+lora:my-adapter@" in ref.version


def test_model_folder_from_s3_is_downloaded_once_and_loads(tmp_path, s3_server):
    import boto3

    from shopgen.embed import embedding_dims, load_encoder

    s = load_settings(home=tmp_path, s3={"endpoint_url": s3_server, "region": "us-east-1"})
    src = Path(models.resolve("all-minilm-l6-v2", s).path)
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="models")
    for f in src.rglob("*"):
        if f.is_file():
            s3.upload_file(str(f), "models", f"minilm/{f.relative_to(src)}")
    ref = models.resolve("s3://models/minilm", s)
    assert Path(ref.path).is_relative_to(tmp_path / "models" / "s3")
    assert models.resolve("s3://models/minilm", s).path == ref.path  # cached, not downloaded again
    enc = load_encoder(ref.path)
    assert embedding_dims(enc) == 384 and enc.encode(["cork yoga mat"]).shape == (1, 384)
