"""Model registry on a local folder or an s3:// prefix.

    <root>/versions/<id>/manifest.json   base, method, data hash, config, metrics, created_at
    <root>/versions/<id>/adapter/        a PEFT LoRA adapter (or model/ for full fine-tuning)
    <root>/versions/<id>/merged/         optional: LoRA merged into the base
    <root>/promoted.json                 the version generation uses by default

A version's files are uploaded before its manifest, so a crashed upload is never listed."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from shopgen.adapters import storage
from shopgen.core.config import S3Config

VERSION_RE = re.compile(r"^ft-\d{8}-\d{6}-[0-9a-f]{6}$")


def gate(metrics: dict[str, Any]) -> tuple[bool, list[str]]:
    """Pure promote gate: the fine-tuned model must beat the base on test ROUGE-L and must not
    raise the unsupported-attribute rate. Returns (passed, reasons)."""
    base, ft = metrics.get("base") or {}, metrics.get("finetuned") or {}
    if not base.get("n") or not ft.get("n"):
        return False, ["no test-split metrics for both the base and the fine-tuned model"]
    reasons = []
    if not ft["rouge_l"] > base["rouge_l"]:
        reasons.append(f"test ROUGE-L {ft['rouge_l']:.4f} does not beat the base's {base['rouge_l']:.4f}")
    if ft["unsupported_rate"] > base["unsupported_rate"]:
        reasons.append(f"unsupported-attribute rate {ft['unsupported_rate']:.4f} is above the base's "
                       f"{base['unsupported_rate']:.4f}")
    return not reasons, reasons


def new_version_id(seed: str) -> str:
    import hashlib

    now = datetime.now(timezone.utc)
    return f"ft-{now:%Y%m%d-%H%M%S}-{hashlib.sha256(f'{seed}{now.isoformat()}'.encode()).hexdigest()[:6]}"


class Registry:
    def __init__(self, uri: str, s3: S3Config | None = None):
        self.uri = str(uri).rstrip("/")
        self.s3 = s3
        self.fs, self.root = storage.resolve(self.uri, s3)

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def version_uri(self, version: str, *parts: str) -> str:
        return "/".join([self.uri, "versions", version, *parts])

    def _read_json(self, *parts: str) -> dict[str, Any] | None:
        try:
            with self.fs.open_input_stream(self._path(*parts)) as f:
                return json.loads(f.read())
        except (FileNotFoundError, OSError) as e:
            if isinstance(e, FileNotFoundError) or "not found" in str(e).lower() or "NoSuchKey" in str(e):
                return None
            raise

    def _write_json(self, data: dict[str, Any], *parts: str) -> None:
        storage.write_bytes("/".join([self.uri, *parts]), json.dumps(data, indent=2).encode(), self.s3)

    def promoted(self) -> str | None:
        p = self._read_json("promoted.json")
        return p.get("version") if p else None

    def versions(self) -> list[dict[str, Any]]:
        info = self.fs.get_file_info(pafs.FileSelector(self._path("versions"), allow_not_found=True))
        live = self.promoted()
        out = []
        for d in info:
            if d.type != pafs.FileType.Directory:
                continue
            m = self._read_json("versions", d.base_name, "manifest.json")
            if m:
                out.append({**m, "status": "promoted" if m["version"] == live else "candidate"})
        return sorted(out, key=lambda m: m["created_at"])

    def get(self, version: str) -> dict[str, Any]:
        m = self._read_json("versions", version, "manifest.json") if VERSION_RE.match(version) else None
        if not m:
            raise KeyError(f"no version {version!r} in registry {self.uri}")
        return {**m, "status": "promoted" if version == self.promoted() else "candidate"}

    def find_run(self, run: str, data_hash: str) -> dict[str, Any] | None:
        """The version an earlier, finished run of this name and data already registered."""
        return next((m for m in self.versions() if m.get("run") == run and m.get("data_hash") == data_hash), None)

    def register(self, folders: dict[str, str | Path], manifest: dict[str, Any]) -> dict[str, Any]:
        """Upload folders (name -> local dir, e.g. {"adapter": ...}) and then the manifest."""
        version = manifest["version"]
        for name, src in folders.items():
            dest = self._path("versions", version, name)
            self.fs.create_dir(dest, recursive=True)
            pafs.copy_files(str(Path(src).absolute()), dest, source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=self.fs)
        manifest = {**manifest, "files": sorted(folders),
                    "created_at": manifest.get("created_at") or datetime.now(timezone.utc).isoformat()}
        self._write_json(manifest, "versions", version, "manifest.json")
        return {**manifest, "status": "candidate"}

    def promote(self, version: str, force: bool = False, by: str = "hand") -> tuple[bool, list[str]]:
        """Make a version the default for generation, if it passes the gate (or force)."""
        m = self.get(version)
        ok, reasons = gate(m.get("metrics") or {})
        if not ok and not force:
            return False, reasons
        self._write_json({"version": version, "by": by, "forced": not ok,
                          "promoted_at": datetime.now(timezone.utc).isoformat(), "gate_reasons": reasons},
                         "promoted.json")
        return True, reasons

    def model_folder(self, version: str) -> str:
        """URI of the folder generation loads: the adapter, else the full model."""
        m = self.get(version)
        name = "adapter" if "adapter" in m.get("files", []) else "model"
        return self.version_uri(version, name)
