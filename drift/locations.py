"""Where things are: a local path or an object in a bucket. The one place that tells them apart.

Every stage meets locations (the log, inputs, baselines, reports): each asks here, never by
looking for "://" itself.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SCHEME = "s3://"


def is_remote(location) -> bool:
    """An object-storage location (s3://...), not a local path."""
    return str(location).startswith(SCHEME)


def scheme_of(location) -> str | None:
    """The scheme of a URL-like location ("s3", "file", "https"), or None for a plain path."""
    text = str(location)
    return text.split("://", 1)[0] if "://" in text else None


def is_web_url(location) -> bool:
    """An http(s):// address a browser opens: a served report, a runbook."""
    return scheme_of(location) in ("http", "https")


def is_local_url(location) -> bool:
    """A file:// URL: a local path spelled as a URL."""
    return scheme_of(location) == "file"


def baseline_cache(uri: str) -> Path:
    """The local copy of a baseline that lives under s3://."""
    root = Path(os.environ.get("DRIFT_CACHE", Path.home() / ".cache" / "drift")) / "baselines"
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return root / f"{uri.rstrip('/').rsplit('/', 1)[-1]}-{digest}"
