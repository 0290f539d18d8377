"""Objects in S3-compatible storage (AWS, MinIO, R2, GCS interop), read through s3fs.

One reader serves the three uses: DuckDB scans a log in a bucket through it (an fsspec filesystem
registered with the connection, so row-group pruning still reads only the window's byte ranges),
the worker processes fetch images and documents with it, and baselines are copied to and from a
prefix. s3fs rather than DuckDB's httpfs: botocore resolves credentials through the standard AWS
chain (environment, profile, instance role, SSO) and httpfs alone knows only keys it is handed;
and the PyPI build of httpfs is pinned to one DuckDB patch release (benchmarks/RESULTS.md).

Credentials are never read from the job file, stored or logged: only botocore sees them.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..locations import SCHEME, scheme_of

_stores: dict[Any, Any] = {}  # one filesystem per settings, per process


def object_store(section) -> Any:
    """An s3fs filesystem for the job's [inputs.s3] settings (cached per process)."""
    key = (section.endpoint, section.region, section.url_style, section.timeout_s, section.profile)
    if key in _stores:
        return _stores[key]
    try:
        import s3fs
    except ImportError:
        raise ConfigError("s3:// locations need the s3 extra: pip install -e '.[s3]'") from None
    config_kwargs: dict[str, Any] = {
        "connect_timeout": section.timeout_s,
        "read_timeout": section.timeout_s,
        "retries": {"max_attempts": 2, "mode": "standard"},
    }
    if section.url_style == "path":
        config_kwargs["s3"] = {"addressing_style": "path"}
    client_kwargs: dict[str, Any] = {}
    if section.endpoint:
        client_kwargs["endpoint_url"] = section.endpoint
    if section.region:
        client_kwargs["region_name"] = section.region
    store = s3fs.S3FileSystem(
        profile=section.profile,
        client_kwargs=client_kwargs,
        config_kwargs=config_kwargs,
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    # s3fs retries a failed call 5 times with backoff on top of botocore's own attempts: a stalled
    # store would hold a worker for minutes. botocore's 2 attempts are the retries.
    store.retries = 1
    _stores[key] = store
    return store


class ObjectRef:
    """An input in a bucket, handed to a worker process, which fetches it under its limits."""

    def __init__(self, uri: str, settings) -> None:
        self.uri = uri
        self.settings = settings

    def __fspath__(self) -> str:  # lets a kind look at the name's suffix, as for a file
        return self.uri

    def __str__(self) -> str:
        return self.uri

    def __reduce__(self):
        return (ObjectRef, (self.uri, self.settings))


def classify_error(exc: BaseException) -> tuple[str, str] | None:
    """(category, message) of a failed object read, or None when it is not the store's error."""
    import asyncio

    name = type(exc).__name__
    text = f"{name}: {exc}"[:300]
    if isinstance(exc, FileNotFoundError):
        return "missing", text
    if isinstance(exc, PermissionError):
        return "forbidden", text
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or "Timeout" in name:
        return "timeout", text
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - s3fs brings botocore
        BotoCoreError = ClientError = ()  # type: ignore[assignment]
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
            return "missing", text
        if code in ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return "forbidden", text
        return "unreadable", text
    if isinstance(exc, (BotoCoreError, OSError)):
        return "unreadable", text
    return None


class ObjectError(Exception):
    """A classified reason why an object could not be read (the kinds turn it into an input error)."""

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category
        self.message = message


def read_object(ref: ObjectRef, max_bytes: int) -> bytes:
    """Worker side: the object's bytes, refused before reading when over the size limit."""
    store = object_store(ref.settings)
    try:
        size = store.info(ref.uri)["size"]
    except Exception as exc:  # noqa: BLE001 - the store's failures are classified; anything else is ours
        _raise_classified(exc)
    if size > max_bytes:
        raise ObjectError("too_large", f"{size} bytes, over the limit of {max_bytes}")
    try:
        return store.cat_file(ref.uri)
    except Exception as exc:  # noqa: BLE001 - as above
        _raise_classified(exc)


def _raise_classified(exc: Exception):
    classified = classify_error(exc)
    if classified is None:
        raise exc
    raise ObjectError(*classified) from None


def join(base_file: str, uri: str) -> str:
    """A relative uri in a log at s3://bucket/logs/x.parquet names s3://bucket/logs/<uri>."""
    if uri.startswith(SCHEME):
        return _normal(uri)
    bucket_path = base_file[len(SCHEME) :]
    return _normal(SCHEME + posixpath.join(posixpath.dirname(bucket_path), uri))


def object_uri(uri: str | None, log_file: str | None) -> str | None:
    """The object a log row names, when it names one: an s3:// uri, or a relative uri in a log that
    lies in a bucket. None for local files and inline bodies."""
    if not uri:
        return None
    if uri.startswith(SCHEME) or ((log_file or "").startswith(SCHEME) and scheme_of(uri) is None):
        return join(log_file or "", uri)
    return None


def _normal(uri: str) -> str:
    path = uri[len(SCHEME) :]
    bucket, _, key = path.partition("/")
    # ".." that climbs out of the bucket stays as a part of the key, and so fails the roots check
    parts: list[str] = []
    for part in key.split("/"):
        if part == "..":
            if parts:
                parts.pop()
            else:
                parts.append("..")
        elif part not in ("", "."):
            parts.append(part)
    return SCHEME + bucket + "/" + "/".join(parts)


def inside_prefixes(uri: str, roots: list[str]) -> bool:
    """True when the object lies under one of the allowed bucket prefixes."""
    normal = _normal(uri)
    for root in roots:
        if not root.startswith(SCHEME):
            continue
        prefix = _normal(root).rstrip("/") + "/"
        if normal.startswith(prefix) and "/../" not in "/" + normal[len(prefix) :] + "/":
            return True
    return False


def push_folder(store: Any, folder: Path, uri: str, manifest: str, files: list[str]) -> None:
    """Copy a baseline's files to a prefix, its manifest after every file it lists, then remove
    files of an older baseline that the manifest no longer lists."""
    prefix = uri.rstrip("/")
    for name in files:
        store.put_file(str(folder / name), f"{prefix}/{name}")
    store.put_file(str(folder / manifest), f"{prefix}/{manifest}")
    keep = set(files) | {manifest}
    for key in store.find(prefix):
        if key.rsplit("/", 1)[-1] not in keep:
            store.rm_file(key)


def pull_folder(store: Any, uri: str, folder: Path, manifest: str, files_of) -> None:
    """Copy a baseline from a prefix into a fresh local folder: its manifest, then the files that
    manifest lists (`files_of(manifest_path)`), replacing the folder only once all are there."""
    import shutil
    import tempfile

    prefix = uri.rstrip("/")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=folder.parent))
    try:
        store.get_file(f"{prefix}/{manifest}", str(staging / manifest))
        for name in files_of(staging / manifest):
            store.get_file(f"{prefix}/{name}", str(staging / name))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
