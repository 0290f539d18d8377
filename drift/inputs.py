"""The input log: which inputs arrived in a window, and which of them we look at.

The log is scanned by DuckDB where it lies (Parquet, JSON Lines or CSV, any glob), so a log of
tens of millions of rows never passes through Python: the contract checks, the window and the
per-segment sample are SQL, and only the sampled rows come back.

Sampling is a uniform draw without replacement inside each segment (kind, source): every row gets
the key md5(seed || ':' || input_id) and the segment keeps its `max_per_segment` smallest keys.
md5 rather than DuckDB's hash() because its value is fixed by a standard, so a sample is the same
across DuckDB versions and machines.
"""

from __future__ import annotations

import glob as globmod
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from .errors import InputLogError

KINDS = ("image", "document", "payload")
REQUIRED_COLUMNS = ("input_id", "received_at", "kind", "source")
# Contract violations, in the order they are checked: a row counts once, under its first problem.
REJECT_REASONS = ("missing_id", "bad_time", "unknown_kind", "missing_uri", "duplicate_id")


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass
class LogSample:
    """What the log held for one window."""

    rows: pl.DataFrame  # sampled rows: input_id, received_at, kind, source, uri, body, meta
    population: pl.DataFrame  # kind, source, n_population (valid rows per segment in the window)
    rejects: pl.DataFrame  # reason, n_rows, examples (up to 5 ids or row numbers)


def _reader(pattern: str) -> str:
    lowered = pattern.lower()
    quoted = "'" + pattern.replace("'", "''") + "'"
    if lowered.endswith(".parquet"):
        return f"read_parquet({quoted}, union_by_name = true, filename = true)"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return (
            f"read_json({quoted}, format = 'newline_delimited', union_by_name = true, "
            "filename = true, sample_size = -1)"
        )
    if lowered.endswith(".csv"):
        return f"read_csv({quoted}, union_by_name = true, filename = true, all_varchar = true)"
    raise InputLogError(
        f"input log {pattern!r}: cannot tell the format; the glob must end in .parquet, .jsonl, .ndjson, .json or .csv"
    )


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Times without a zone are UTC by contract; the session zone makes DuckDB read them so.
    con.execute("SET TimeZone = 'UTC'")
    return con


def open_log(con: duckdb.DuckDBPyConnection, pattern: str) -> None:
    """Create the view `input_log` with the contract's columns normalised, or explain why not."""
    reader = _reader(pattern)
    if "://" not in pattern and not globmod.glob(pattern, recursive=True):
        raise InputLogError(f"input log {pattern!r}: no file matches")
    try:
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
    except duckdb.Error as exc:
        raise InputLogError(f"input log {pattern!r}: cannot be read: {_first_line(exc)}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputLogError(f"input log {pattern!r}: missing required column(s) {missing}; found {columns}")
    if "uri" not in columns and "body" not in columns:
        raise InputLogError(f"input log {pattern!r}: needs a 'uri' column (or 'body' for payloads)")
    uri = "CAST(uri AS VARCHAR)" if "uri" in columns else "NULL::VARCHAR"
    body = "CAST(body AS VARCHAR)" if "body" in columns else "NULL::VARCHAR"
    meta_cols = [c for c in columns if c not in (*REQUIRED_COLUMNS, "uri", "body", "filename")]
    meta = (
        "to_json(struct_pack(" + ", ".join(f'"{c}" := "{c}"' for c in meta_cols) + "))"
        if meta_cols
        else "NULL::VARCHAR"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW input_log AS
        SELECT
            NULLIF(trim(CAST(input_id AS VARCHAR)), '') AS input_id,
            TRY_CAST(CAST(received_at AS VARCHAR) AS TIMESTAMPTZ) AS received_at,
            received_at IS NOT NULL AS has_time,
            lower(trim(CAST(kind AS VARCHAR))) AS kind,
            coalesce(NULLIF(trim(CAST(source AS VARCHAR)), ''), 'default') AS source,
            NULLIF(trim({uri}), '') AS uri,
            {body} AS body,
            filename AS log_file,
            CAST({meta} AS VARCHAR) AS meta,
            row_number() OVER () AS log_row
        FROM {reader}
        """
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


_CLASSIFY = """
    CREATE OR REPLACE TEMP TABLE classified AS
    SELECT *,
        CASE
            WHEN input_id IS NULL THEN 'missing_id'
            WHEN received_at IS NULL THEN 'bad_time'
            WHEN kind IS NULL OR kind NOT IN ('image', 'document', 'payload') THEN 'unknown_kind'
            WHEN uri IS NULL AND (kind <> 'payload' OR body IS NULL) THEN 'missing_uri'
            WHEN row_number() OVER (PARTITION BY input_id ORDER BY log_row) > 1 THEN 'duplicate_id'
        END AS reject_reason
    FROM input_log
    -- Rows without a time cannot be placed in a window; they are reported by every run
    -- whose window they might belong to, which is any, so they are counted once per run.
    WHERE received_at IS NULL OR (received_at >= $start AND received_at < $end)
"""


def sample_window(
    con: duckdb.DuckDBPyConnection, window: Window, max_per_segment: int, seed: int
) -> LogSample:
    """Check the window's rows against the contract and draw the per-segment sample."""
    con.execute(_CLASSIFY, {"start": window.start, "end": window.end})
    rejects = _frame(con, 
        """
        SELECT reject_reason AS reason, count(*) AS n_rows,
               string_agg(coalesce(input_id, 'row ' || log_row), ', ' ORDER BY log_row)
                   FILTER (WHERE rn <= 5) AS examples
        FROM (SELECT *, row_number() OVER (PARTITION BY reject_reason ORDER BY log_row) AS rn
              FROM classified WHERE reject_reason IS NOT NULL)
        GROUP BY reject_reason ORDER BY reject_reason
        """,
    )
    population = _frame(con, 
        """
        SELECT kind, source, count(*) AS n_population
        FROM classified WHERE reject_reason IS NULL
        GROUP BY kind, source ORDER BY kind, source
        """,
    )
    rows = _frame(con, 
        """
        SELECT input_id, received_at, kind, source, uri, body, log_file, meta
        FROM classified
        WHERE reject_reason IS NULL
        QUALIFY row_number() OVER (
            PARTITION BY kind, source
            ORDER BY md5(CAST($seed AS VARCHAR) || ':' || input_id), input_id
        ) <= $cap
        ORDER BY kind, source, input_id
        """,
        {"seed": seed, "cap": max_per_segment},
    )
    return LogSample(rows=rows, population=population, rejects=rejects)


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params or {}).to_arrow_table())


def resolve_uri(uri: str, log_file: str | None) -> Path:
    """A row's file path: relative paths resolve against the folder of the log file that named it."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    path = Path(uri).expanduser()
    if not path.is_absolute():
        base = Path(log_file).parent if log_file else Path.cwd()
        path = base / path
    return Path(os.path.abspath(path))


def local_path(uri: str | None, log_file: str | None) -> str | None:
    """The file a row names, when it names a local file (no uri: the body is inline)."""
    if not uri or ("://" in uri and not uri.startswith("file://")):
        return None
    return str(resolve_uri(uri, log_file))


def inside_roots(path: Path, roots: list[Path]) -> bool:
    """True when the real file (symlinks followed) lies under one of the allowed folders."""
    real = Path(os.path.realpath(path))
    for root in roots:
        real_root = Path(os.path.realpath(root))
        if real == real_root or real_root in real.parents:
            return True
    return False
