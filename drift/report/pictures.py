"""Thumbnails of the items a report shows (evidence `unlike` and `typical`), as data URIs.

Made when a report is written, from the files the record names, in isolated workers
(report.thumbnails): the raw file never reaches the page. A file that is gone, or fails to open,
is shown as a note instead of a picture.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from ..kinds import InputError
from .thumbnails import default_limits, thumbnails

SIZE = 144


def report_pictures(summary: dict[str, Any], config=None) -> dict[tuple[str, str], str]:
    """(kind, input_id) -> a data: URI of a small JPEG, for every item the summary's evidence names,
    opened within the job's limits (`config`; the defaults without one)."""
    wanted: dict[str, dict[str, Path]] = {}
    for segment in summary.get("segments", []):
        evidence = segment.get("evidence") or {}
        for item in [*evidence.get("unlike", []), *evidence.get("typical", [])]:
            if item.get("path") and Path(item["path"]).is_file():
                wanted.setdefault(segment["kind"], {})[item["input_id"]] = Path(item["path"])
    out: dict[tuple[str, str], str] = {}
    for kind, paths in wanted.items():
        for input_id, made in thumbnails(kind, paths, default_limits(kind, config), size=SIZE, fmt="JPEG").items():
            if not isinstance(made, InputError):
                out[(kind, input_id)] = "data:image/jpeg;base64," + base64.b64encode(made).decode()
    return out
