"""Thumbnails of the items a report shows (evidence `unlike` and `typical`), as data URIs.

Made when a report is written, from the files (or s3:// objects) the record names, in isolated
workers (report.thumbnails): the raw file never reaches the page. A file that is gone, or fails to open,
is shown as a note instead of a picture.
"""

from __future__ import annotations

import base64
from pathlib import Path

from ..features.featureset import InputError
from ..locations import is_remote
from ..record import RunRecord
from ..sources.objects import ObjectRef
from .thumbnails import default_limits, thumbnails

SIZE = 144


def _target(path: str | None, config):
    """A local file that is still there, or an object in a bucket (read with the job's [inputs.s3])."""
    if not path:
        return None
    if is_remote(path):
        return ObjectRef(path, config.inputs.s3) if config is not None else None
    return Path(path) if Path(path).is_file() else None


def report_pictures(record: RunRecord, config=None) -> dict[tuple[str, str], str]:
    """(kind, input_id) -> a data: URI of a small JPEG, for every item the record's evidence names,
    opened within the job's limits (`config`; the defaults without one)."""
    wanted: dict[str, dict[str, Path]] = {}
    for segment in record.segments:
        if segment.evidence is None:
            continue
        for item in [*segment.evidence.unlike, *segment.evidence.typical]:
            target = _target(item.path, config)
            if target is not None:
                wanted.setdefault(segment.kind, {})[item.input_id] = target
    out: dict[tuple[str, str], str] = {}
    for kind, paths in wanted.items():
        for input_id, made in thumbnails(kind, paths, default_limits(kind, config), size=SIZE, fmt="JPEG").items():
            if not isinstance(made, InputError):
                out[(kind, input_id)] = "data:image/jpeg;base64," + base64.b64encode(made).decode()
    return out
