"""A run's descriptors as Evidently reports, for teams whose dashboards are in Evidently.

Per segment: the baseline's descriptor columns as reference, the run's as current, through
Evidently's DataDriftPreset. Written as the HTML Evidently renders and as a snapshot its UI loads
(`Snapshot.load`), and, with `[export] evidently_workspace`, added to a local Evidently workspace,
one project per job, each run a snapshot tagged with its segment. drift's own verdicts do not
depend on any of it: Evidently's drift tests are its own (per column, unadjusted for the number of
columns), so its verdicts may differ from the report's.

Evidently is an extra (pip install -e '.[evidently]'): imported only here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from .. import store
from ..baselines import open_baseline
from ..config import JobConfig
from ..errors import DriftError
from ..features.featureset import is_numeric
from ..features.featurize import file_label
from ..record import RunRecord


def _evidently():
    try:
        import evidently  # noqa: F401
    except ImportError:
        raise DriftError("Evidently is not installed; it is an extra: pip install -e '.[evidently]'") from None


def _current(con, run_id: str, kind: str, source: str) -> pl.DataFrame:
    long = store.segment_descriptors(con, run_id, kind, source)
    if not long.height:
        return pl.DataFrame()
    numbers = long.filter(pl.col("value").is_not_null())
    labels = long.filter(pl.col("label").is_not_null())
    parts = []
    if numbers.height:
        parts.append(numbers.pivot(on="name", index="input_id", values="value", aggregate_function="first"))
    if labels.height:
        parts.append(labels.pivot(on="name", index="input_id", values="label", aggregate_function="first"))
    frame = parts[0]
    for part in parts[1:]:
        frame = frame.join(part, on="input_id", how="full", coalesce=True)
    return frame


def _aligned(ref: pl.DataFrame, cur: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, list[str], list[str]]:
    """Both sides on the descriptor columns they share, numbers as floats (a yes/no is 0/1, as the
    comparison sees it), categories as text."""
    numeric, categorical = [], []
    for name in sorted(set(ref.columns) & set(cur.columns) - {"input_id"}):
        if is_numeric(ref[name].dtype) and is_numeric(cur[name].dtype):
            numeric.append(name)
        else:
            categorical.append(name)
    cast = [pl.col(c).cast(pl.Float64).fill_nan(None) for c in numeric] + [pl.col(c).cast(pl.Utf8) for c in categorical]
    ref, cur = ref.select(cast), cur.select(cast)
    # Evidently refuses a column with no value on a side (no scan has a DPI in a born-digital window).
    empty = {c for c in ref.columns if ref[c].null_count() == ref.height or cur[c].null_count() == cur.height}
    keep = [c for c in ref.columns if c not in empty]
    return ref.select(keep), cur.select(keep), [c for c in numeric if c in keep], [c for c in categorical if c in keep]


def snapshots(config: JobConfig, con, record: RunRecord) -> Iterator[tuple[str, str, Any]]:
    """(kind, source, Evidently snapshot) for each segment the run and the baseline both hold."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    baseline = open_baseline(config)
    if baseline.name != record.baseline.name:
        raise DriftError(
            f"run {record.run_id} was compared with baseline {record.baseline.name!r}, but {config.baseline_dir} now holds "
            f"{baseline.name!r}; the export needs the baseline the run used"
        )
    timestamp = datetime.fromisoformat(record.window.start)
    for segment in record.segments:
        if not segment.status.tested:
            continue
        ref = baseline.features(segment.kind, segment.source).descriptors
        cur = _current(con, record.run_id, segment.kind, segment.source)
        if not ref.height or not cur.height:
            continue
        ref, cur, numeric, categorical = _aligned(ref, cur)
        if not numeric and not categorical:
            continue
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        with warnings.catch_warnings():
            # numpy's divide-by-zero on a constant column, inside Evidently's statistics
            warnings.simplefilter("ignore", RuntimeWarning)
            snapshot = Report([DataDriftPreset()]).run(
                Dataset.from_pandas(cur.to_pandas(), data_definition=definition),
                Dataset.from_pandas(ref.to_pandas(), data_definition=definition),
                timestamp=timestamp,
                metadata={
                    "job": config.name,
                    "run_id": record.run_id,
                    "kind": segment.kind,
                    "source": segment.source,
                    "drift_verdict": segment.severity if segment.drifted else "ok",
                },
                tags=[config.name, segment.kind, segment.source],
                name=f"{config.name} {segment.kind}/{segment.source} {record.window.start[:10]}",
            )
        yield segment.kind, segment.source, snapshot


def export_run(config: JobConfig, run: str, out_dir: Path) -> list[Path]:
    """`drift export evidently`: <kind>.<source>.html and .snapshot.json per segment in `out_dir`."""
    _evidently()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with store.connect_reader(config.store.database) as con:
        record = store.load_run(con, config.name, run)
        if record is None:
            raise DriftError(
                f"no run {run!r} of job {config.name!r} in {config.store.database}"
                + ("" if run == "latest" else "; try `latest`")
            )
        for kind, source, snapshot in snapshots(config, con, record):
            html, saved = (out_dir / f"{kind}.{file_label(source)}{suffix}" for suffix in (".html", ".snapshot.json"))
            snapshot.save_html(str(html))
            saved.write_text(snapshot.dumps())
            written += [html, saved]
    return written


def add_to_workspace(config: JobConfig, run_id: str) -> int:
    """[export] evidently_workspace: the run's snapshots into the job's project; how many were added."""
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(str(config.export.evidently_workspace))
    projects = workspace.search_project(config.name)
    project = projects[0] if projects else workspace.create_project(config.name, description=f"drift job {config.name}")
    added = 0
    with store.connect_reader(config.store.database) as con:
        record = store.load_run(con, config.name, run_id)
        if record is None:
            raise DriftError(f"no run {run_id!r} of job {config.name!r} in {config.store.database}")
        for _, _, snapshot in snapshots(config, con, record):
            workspace.add_run(project.id, snapshot)
            added += 1
    return added
