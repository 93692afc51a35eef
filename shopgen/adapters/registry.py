"""Model registry on a local folder or an s3:// prefix.

    <root>/versions/<id>/manifest.json   kind, base, method, data hash, config, metrics, created_at
    <root>/versions/<id>/adapter/        a PEFT LoRA adapter (or model/ for full fine-tuning, and for
                                         an embedder: a sentence-transformers folder)
    <root>/versions/<id>/merged/         optional: LoRA merged into the base
    <root>/promoted.json                 the generator version generation uses by default
    <root>/promoted-embedder.json        the embedder version embedding and search use by default

A manifest's `kind` is `generator` (the default: manifests written before kinds existed), `embedder`
`ranker` (a learning-to-rank model, `model/`) or `answerer` (the answer drafter fine-tuned on the support
log); each kind has its own gate and its own promoted pointer.

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


KINDS = ("generator", "embedder", "ranker", "answerer")
POINTERS = {"generator": "promoted.json", "embedder": "promoted-embedder.json", "ranker": "promoted-ranker.json",
            "answerer": "promoted-answerer.json"}


def kind_of(manifest: dict[str, Any]) -> str:
    return manifest.get("kind") or "generator"


def _both(metrics: dict[str, Any], what: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    base, ft = metrics.get("base") or {}, metrics.get("finetuned") or {}
    missing = [] if base.get("n") and ft.get("n") else [f"no {what} metrics for both the base and the fine-tuned model"]
    return base, ft, missing


def serving_gate(metrics: dict[str, Any]) -> tuple[bool, list[str]]:
    """Serving-path metrics (finetune.eval=serving): on every trained type the candidate's accepted
    rate is above the base's on the same products, and no check fails on more of its requests."""
    base, ft, reasons = _both(metrics, "serving-path")
    if reasons:
        return False, reasons
    types = metrics.get("types") or sorted(ft.get("by_type") or {})
    if not types:
        return False, ["no trained content type was evaluated"]
    for t in types:
        b, f = (base.get("by_type") or {}).get(t), (ft.get("by_type") or {}).get(t)
        if not b or not f:
            reasons.append(f"{t}: not evaluated for both the base and the fine-tuned model")
            continue
        if not f["accepted"] > b["accepted"]:
            reasons.append(f"{t}: accepted rate {f['accepted']:.4f} is not above the base's {b['accepted']:.4f} "
                           f"({f['n']} test products)")
        for c, r in sorted((f.get("check_failures") or {}).items()):
            was = (b.get("check_failures") or {}).get(c, 0.0)
            if r > was:
                reasons.append(f"{t}: check {c} fails on {r:.4f} of requests, the base's {was:.4f}")
    return not reasons, reasons


def generator_gate(metrics: dict[str, Any]) -> tuple[bool, list[str]]:
    """Serving-path metrics go through serving_gate. Metrics from greedy transformers output
    (finetune.eval=hf) never promote. Manifests from before the serving evaluation keep their rule:
    beat the base on test ROUGE-L and do not raise the unsupported-attribute rate."""
    if metrics.get("eval") == "serving":
        return serving_gate(metrics)
    if metrics.get("eval") == "hf":
        return False, ["evaluated on greedy transformers output (finetune.eval=hf), not the serving path; "
                       "re-run with finetune.eval=serving"]
    base, ft, reasons = _both(metrics, "test-split")
    if reasons:
        return False, reasons
    if not ft["rouge_l"] > base["rouge_l"]:
        reasons.append(f"test ROUGE-L {ft['rouge_l']:.4f} does not beat the base's {base['rouge_l']:.4f}")
    if ft["unsupported_rate"] > base["unsupported_rate"]:
        reasons.append(f"unsupported-attribute rate {ft['unsupported_rate']:.4f} is above the base's "
                       f"{base['unsupported_rate']:.4f}")
    return not reasons, reasons


def embedder_gate(metrics: dict[str, Any]) -> tuple[bool, list[str]]:
    """The fine-tuned embedder must beat the base's NDCG@10 on the held-out queries."""
    base, ft, reasons = _both(metrics, "held-out query")
    if not reasons and not ft["ndcg@10"] > base["ndcg@10"]:
        reasons.append(f"held-out NDCG@10 {ft['ndcg@10']:.4f} does not beat the base's {base['ndcg@10']:.4f} "
                       f"({ft['n']} queries)")
    return not reasons, reasons


def ranker_gate(metrics: dict[str, Any]) -> tuple[bool, list[str]]:
    """The ranker must beat the hybrid ranking it reorders, on held-out queries."""
    ltr, hybrid = metrics.get("ltr") or {}, metrics.get("hybrid") or {}
    if not ltr.get("n") or not hybrid.get("n"):
        return False, ["no held-out query with a relevant product to compare the ranker with hybrid on"]
    if not ltr["ndcg@10"] > hybrid["ndcg@10"]:
        return False, [f"held-out NDCG@10 {ltr['ndcg@10']:.4f} does not beat hybrid's {hybrid['ndcg@10']:.4f} "
                       f"({ltr['n']} queries)"]
    return True, []


def answerer_gate(metrics: dict[str, Any]) -> tuple[bool, list[str]]:
    """A fine-tuned answer drafter, judged through the serving path on held-out support-log rows: the
    correct rate must rise and the wrong rate must not."""
    base, ft, reasons = _both(metrics, "held-out log")
    if reasons:
        return False, reasons
    if not ft["correct_rate"] > base["correct_rate"]:
        reasons.append(f"correct rate {ft['correct_rate']:.4f} does not rise above the base's {base['correct_rate']:.4f}"
                       f" ({ft['n']} held-out questions)")
    if ft["wrong_rate"] > base["wrong_rate"]:
        reasons.append(f"wrong rate {ft['wrong_rate']:.4f} is above the base's {base['wrong_rate']:.4f}")
    return not reasons, reasons


def gate(metrics: dict[str, Any], kind: str = "generator") -> tuple[bool, list[str]]:
    """Pure promote gate of a version of this kind. Returns (passed, reasons)."""
    return {"embedder": embedder_gate, "ranker": ranker_gate, "answerer": answerer_gate}.get(kind, generator_gate)(metrics)


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

    def promoted(self, kind: str = "generator") -> str | None:
        """The promoted version of this kind, if any."""
        p = self._read_json(POINTERS[kind])
        return p.get("version") if p else None

    def _status(self, manifest: dict[str, Any], live: dict[str, str | None]) -> dict[str, Any]:
        kind = kind_of(manifest)
        return {**manifest, "kind": kind, "status": "promoted" if manifest["version"] == live[kind] else "candidate"}

    def versions(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every version (or those of one kind), oldest first, with its kind and status."""
        info = self.fs.get_file_info(pafs.FileSelector(self._path("versions"), allow_not_found=True))
        live = {k: self.promoted(k) for k in KINDS}
        out = []
        for d in info:
            if d.type != pafs.FileType.Directory:
                continue
            m = self._read_json("versions", d.base_name, "manifest.json")
            if m and (kind is None or kind_of(m) == kind):
                out.append(self._status(m, live))
        return sorted(out, key=lambda m: m["created_at"])

    def get(self, version: str) -> dict[str, Any]:
        m = self._read_json("versions", version, "manifest.json") if VERSION_RE.match(version) else None
        if not m:
            raise KeyError(f"no version {version!r} in registry {self.uri}")
        return self._status(m, {k: self.promoted(k) if k == kind_of(m) else None for k in KINDS})

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
        return {**manifest, "kind": kind_of(manifest), "status": "candidate"}

    def promote(self, version: str, force: bool = False, by: str = "hand") -> tuple[bool, list[str]]:
        """Make a version the default of its kind (generation, or embedding and search), if it passes
        its kind's gate (or force)."""
        m = self.get(version)
        ok, reasons = gate(m.get("metrics") or {}, m["kind"])
        if not ok and not force:
            return False, reasons
        self._write_json({"version": version, "kind": m["kind"], "by": by, "forced": not ok,
                          "promoted_at": datetime.now(timezone.utc).isoformat(), "gate_reasons": reasons},
                         POINTERS[m["kind"]])
        return True, reasons

    def fetch(self, version: str, name: str, dest: Path) -> Path:
        """A version's folder `name` as a local folder (`dest`, filled once; a local registry's own)."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            return Path(self._path("versions", version, name))
        if not (dest / ".complete").exists():
            dest.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(self._path("versions", version, name), str(dest.absolute()), source_filesystem=self.fs,
                            destination_filesystem=pafs.LocalFileSystem())
            (dest / ".complete").write_text(version)
        return dest

    def model_folder(self, version: str) -> str:
        """URI of the folder a version loads from: the adapter, else the full model (an embedder's
        sentence-transformers folder)."""
        m = self.get(version)
        name = "adapter" if "adapter" in m.get("files", []) else "model"
        return self.version_uri(version, name)
