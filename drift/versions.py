"""Folders replaced whole, in one rename: a baseline, a run's embeddings.

`<parent>/<name>` is a symbolic link to a hidden sibling version, `.<name>.<stamp>`. A new version is
written beside the current one and published by renaming a new link over the old link, which POSIX
makes atomic: a reader sees the old folder or the new one, never a half-written or missing one, and
a writer that fails before publishing leaves the current version as it was. The version before the
current one is kept, for a reader that resolved the link just before the swap; older ones are removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path


def new_version(link: Path) -> Path:
    """An empty folder for the next version of `link`, beside it."""
    link.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    version = link.parent / f".{link.name}.{stamp}-{uuid.uuid4().hex[:8]}"
    version.mkdir()
    return version


def publish(version: Path, link: Path) -> None:
    """Point `link` at `version` in one rename, then remove all but the previous version."""
    if link.is_dir() and not link.is_symlink():
        # A folder from before versions (or made by hand): it becomes a version itself.
        link.rename(link.parent / f".{link.name}.legacy-{uuid.uuid4().hex[:8]}")
    temporary = link.parent / f".{link.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(version.name, temporary)
    previous = os.readlink(link) if link.is_symlink() else None
    os.replace(temporary, link)
    keep = {version.name, previous}
    for old in link.parent.glob(f".{link.name}.*"):
        if old.is_symlink():
            old.unlink(missing_ok=True)  # a link left by a publish that was killed before its rename
        elif old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def discard(version: Path) -> None:
    """A version that will not be published (its writer failed)."""
    shutil.rmtree(version, ignore_errors=True)
