"""Thin adapter over local paths and s3:// URIs (pyarrow.fs, endpoint override for moto/MinIO)."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from shopgen.core.config import S3Config


def is_s3(uri: str | os.PathLike) -> bool:
    return str(uri).startswith("s3://")


def s3_filesystem(cfg: S3Config | None) -> pafs.S3FileSystem:
    cfg = cfg or S3Config()
    kw: dict = {}
    if cfg.endpoint_url:
        u = urlparse(cfg.endpoint_url)
        kw["endpoint_override"] = u.netloc or u.path
        kw["scheme"] = u.scheme or "https"
    if cfg.region:
        kw["region"] = cfg.region
    key = cfg.access_key_id or os.environ.get("AWS_ACCESS_KEY_ID")
    secret = (cfg.secret_access_key.get_secret_value() if cfg.secret_access_key else None) or os.environ.get(
        "AWS_SECRET_ACCESS_KEY"
    )
    if key and secret:
        kw["access_key"], kw["secret_key"] = key, secret
    return pafs.S3FileSystem(**kw)


def resolve(uri: str | os.PathLike, s3: S3Config | None = None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or an s3://bucket/key URI."""
    uri = str(uri)
    if is_s3(uri):
        return s3_filesystem(s3), uri[len("s3://"):]
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def read_bytes(uri: str | os.PathLike, s3: S3Config | None = None) -> bytes:
    fs, path = resolve(uri, s3)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {uri}") from None


def open_input(uri: str | os.PathLike, s3: S3Config | None = None, *, seekable: bool = False,
               buffer_size: int | None = None) -> pa.NativeFile:
    """A binary file object over uri, read as the caller asks (close it, or use `with`). Sequential
    by default (an S3 object is fetched by ranged GETs as read); `seekable` for random access, as
    Parquet's footer needs. `buffer_size` batches small reads into fewer GETs."""
    fs, path = resolve(uri, s3)
    try:
        if seekable:
            return fs.open_input_file(path)
        return fs.open_input_stream(path, buffer_size=buffer_size)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {uri}") from None


def write_bytes(uri: str | os.PathLike, data: bytes, s3: S3Config | None = None) -> None:
    fs, path = resolve(uri, s3)
    parent = os.path.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(data)


def download_dir(uri: str, dest: str, s3: S3Config | None = None) -> None:
    fs, path = resolve(uri, s3)
    os.makedirs(dest, exist_ok=True)
    pafs.copy_files(path, dest, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())


def input_files(uri: str, s3: S3Config | None = None, suffixes: tuple[str, ...] = (".jsonl", ".csv", ".parquet"),
                what: str = "input") -> list[str]:
    """The readable files behind a file, a folder or an s3:// prefix, in name order (hidden files skipped)."""
    fs, path = resolve(uri, s3)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{what} not found: {uri}")
    if info.type == pafs.FileType.File:
        return [str(uri)]
    base = str(uri).rstrip("/")
    found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    files = sorted(f.path for f in found if f.type == pafs.FileType.File
                   and "." + f.path.rsplit(".", 1)[-1].lower() in suffixes and not os.path.basename(f.path).startswith("."))
    if not files:
        raise ValueError(f"no {', '.join(suffixes)} files under {uri}")
    root = path.rstrip("/")
    return [base + f[len(root):] for f in files]
