"""The input log: which inputs arrived in a window, and which of them we look at.

The log is scanned by DuckDB where it lies (Parquet, JSON Lines or CSV, any glob, on disk or in a
bucket), so a log of tens of millions of rows never passes through Python: the contract checks,
the window and the per-segment sample are SQL, and only the sampled rows come back.

A run's cost follows its window, not the log's history:

* the window is a filter on the raw `received_at` column, so DuckDB skips Parquet row groups whose
  statistics lie outside it, and hive partitions (`dt=2026-11-02/`) outside it are never opened;
* nothing numbers or orders the whole log: duplicates are judged among the window's rows;
* the window's rows are classified without their `body` or metadata; those are read afterwards
  for the sampled rows only;
* JSON Lines are read as raw objects, so no schema is inferred over the history.

Sampling is a uniform draw without replacement inside each segment (kind, source): every row gets
the key md5(seed || ':' || input_id) and the segment keeps its `max_per_segment` smallest keys.
md5 rather than DuckDB's hash() because its value is fixed by a standard, so a sample is the same
across DuckDB versions and machines.
"""

from __future__ import annotations

import glob as globmod
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from ..errors import InputLogError
from ..locations import is_local_url, is_remote, scheme_of
from ..record import InputKind
from .objects import classify_error

# the kinds' names, as the log's `kind` column spells them (declared once, in drift.record)
_KNOWN_KINDS = ", ".join(f"'{kind.value}'" for kind in InputKind)
REQUIRED_COLUMNS = ("input_id", "received_at", "kind", "source")
# Contract violations, in the order they are checked: a row counts once, under its first problem.
REJECT_REASONS = ("missing_id", "bad_time", "unknown_kind", "missing_uri", "duplicate_id")
# Columns the contract names; every other column is the row's metadata.
_CONTRACT = (*REQUIRED_COLUMNS, "uri", "body")
# How many JSON objects are looked at to tell which keys a JSON Lines log has.
_JSON_PROBE_ROWS = 1000
# A hive date partition may be written in any time zone: the window is widened by this much before
# partitions are pruned, and the exact window is applied to the rows.
_PARTITION_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass
class LogSample:
    """What the log held for one window."""

    rows: pl.DataFrame  # sampled rows: input_id, received_at, kind, source, uri, body, log_file, meta
    population: pl.DataFrame  # kind, source, n_population (valid rows per segment in the window)
    rejects: pl.DataFrame  # reason, n_rows, examples (up to 5 ids, or file and row)


@dataclass(frozen=True)
class InputLog:
    """How to read one log: the table function, and each contract column as a SQL expression."""

    pattern: str
    reader: str
    columns: dict[str, str]  # column -> SQL expression over the reader's row
    time_column: str  # the raw column the window filters on ("" for JSON Lines)
    time_type: str  # its DuckDB type
    row: str  # SQL for the row's number in its file, or NULL when the format has none
    meta: str  # SQL for the row's other columns as a JSON object
    partition: str | None  # a hive date partition column, when the log has one


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def connect(memory_limit: str | None = None, filesystem=None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for reading the log; `filesystem` (fsspec) serves s3:// paths."""
    con = duckdb.connect()
    # Times without a zone are UTC by contract; the session zone makes DuckDB read them so.
    con.execute("SET TimeZone = 'UTC'")
    # A sample reads the log's footers up to three times (its columns, the window, the sampled
    # rows' bodies): kept once per connection, they are fetched once, which matters in a bucket.
    con.execute("SET parquet_metadata_cache = true")
    if memory_limit:
        try:
            con.execute(f"SET memory_limit = {_quoted(memory_limit)}")
        except duckdb.Error as exc:
            raise InputLogError(f"[inputs] memory_limit {memory_limit!r}: {_first_line(exc)}") from None
    if filesystem is not None:
        con.register_filesystem(filesystem)
    return con


def _format(pattern: str) -> str:
    lowered = pattern.lower()
    if lowered.endswith(".parquet"):
        return "parquet"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "json"
    if lowered.endswith(".csv"):
        return "csv"
    raise InputLogError(
        f"input log {pattern!r}: cannot tell the format; the glob must end in .parquet, .jsonl, .ndjson, .json or .csv"
    )


def _text(expression: str) -> str:
    return f"NULLIF(trim(CAST({expression} AS VARCHAR)), '')"


def open_log(con: duckdb.DuckDBPyConnection, pattern: str, date_partition: str = "dt", filesystem=None) -> InputLog:
    """Check that the log can be read and has the contract's columns; say how to read it, or why not."""
    fmt = _format(pattern)
    _check_matches(pattern, filesystem)
    if fmt == "json":
        return _open_json(con, pattern)
    options = "union_by_name = true, filename = true"
    if fmt == "parquet":
        reader = f"read_parquet({_quoted(pattern)}, {options}, file_row_number = true)"
    else:
        reader = f"read_csv({_quoted(pattern)}, {options}, all_varchar = true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    except duckdb.Error as exc:
        raise InputLogError(f"input log {pattern!r}: cannot be read: {_first_line(exc)}") from None
    types = {row[0]: row[1] for row in described}
    _check_columns(pattern, list(types))
    partition = (
        date_partition if date_partition in types and f"{date_partition}=" in _partition_hint(pattern, con, reader) else None
    )
    internal = {"filename", "file_row_number"}
    meta_cols = [c for c in types if c not in (*_CONTRACT, *internal) and c != partition]
    meta = (
        "CAST(to_json(struct_pack(" + ", ".join(f'"{c}" := "{c}"' for c in meta_cols) + ")) AS VARCHAR)"
        if meta_cols
        else "NULL::VARCHAR"
    )
    return InputLog(
        pattern=pattern,
        reader=reader,
        columns={
            "input_id": _text("input_id"),
            "kind": "lower(trim(CAST(kind AS VARCHAR)))",
            "source": "coalesce(" + _text("source") + ", 'default')",
            "uri": _text("uri") if "uri" in types else "NULL::VARCHAR",
            "body": "CAST(body AS VARCHAR)" if "body" in types else "NULL::VARCHAR",
        },
        time_column="received_at",
        time_type=types["received_at"],
        row="file_row_number" if fmt == "parquet" else "NULL::BIGINT",
        meta=meta,
        partition=partition,
    )


def _partition_hint(pattern: str, con: duckdb.DuckDBPyConnection, reader: str) -> str:
    """The glob, or else one matched file's name: where a hive partition shows itself."""
    if "=" in pattern:
        return pattern
    try:
        first = con.execute(f"SELECT filename FROM {reader} LIMIT 1").fetchone()
    except duckdb.Error:
        return ""
    return first[0] if first else ""


def _open_json(con: duckdb.DuckDBPyConnection, pattern: str) -> InputLog:
    # Raw objects: a field's type may change from one line to the next (a body that is sometimes a
    # string, sometimes an object) and no schema is inferred; a line that is not JSON reads as NULL
    # and is counted as missing_id.
    reader = f"read_ndjson_objects({_quoted(pattern)}, filename = true, ignore_errors = true)"
    try:
        (keys,) = con.execute(
            f"SELECT list_distinct(flatten(list(json_keys(json)))) FROM "
            f"(SELECT json FROM {reader} WHERE json_type(json) = 'OBJECT' LIMIT {_JSON_PROBE_ROWS})"
        ).fetchone()
    except duckdb.Error as exc:
        raise InputLogError(f"input log {pattern!r}: cannot be read: {_first_line(exc)}") from None
    _check_columns(pattern, sorted(keys or []))

    def field(name: str) -> str:
        return f"(json ->> {_quoted(name)})"

    body = "CASE json_type(json -> 'body') WHEN 'VARCHAR' THEN json ->> 'body' WHEN 'NULL' THEN NULL ELSE CAST(json -> 'body' AS VARCHAR) END"
    strip = "{" + ", ".join(f'"{c}": null' for c in _CONTRACT) + "}"
    return InputLog(
        pattern=pattern,
        reader=reader,
        columns={
            "input_id": _text(field("input_id")),
            "kind": f"lower(trim({field('kind')}))",
            "source": "coalesce(" + _text(field("source")) + ", 'default')",
            "uri": _text(field("uri")),
            "body": body,
        },
        time_column=field("received_at"),
        time_type="VARCHAR",
        row="NULL::BIGINT",
        meta=f"NULLIF(CAST(json_merge_patch(json, {_quoted(strip)}) AS VARCHAR), '{{}}')",
        partition=None,
    )


def _check_matches(pattern: str, filesystem) -> None:
    if scheme_of(pattern) is not None and not is_local_url(pattern):
        if filesystem is None:
            raise InputLogError(f"input log {pattern!r}: {pattern.split('://')[0]}:// logs are read through [inputs.s3]")
        try:
            found = filesystem.glob(pattern)
        except Exception as exc:  # noqa: BLE001 - the store's own errors, classified for the message
            category, message = classify_error(exc)
            raise InputLogError(f"input log {pattern!r}: {category}: {message}") from None
        if not found:
            raise InputLogError(f"input log {pattern!r}: no object matches")
        return
    if not globmod.glob(pattern, recursive=True):
        raise InputLogError(f"input log {pattern!r}: no file matches")


def _check_columns(pattern: str, columns: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputLogError(f"input log {pattern!r}: missing required column(s) {missing}; found {columns}")
    if "uri" not in columns and "body" not in columns:
        raise InputLogError(f"input log {pattern!r}: needs a 'uri' column (or 'body' for payloads)")


def _window_sql(log: InputLog, window: Window) -> tuple[str, str, dict]:
    """(the row's time as TIMESTAMPTZ, the scan's filter, their parameters).

    The filter compares the raw column with constants of its own type, which DuckDB can push into
    the Parquet reader (row-group statistics) and into hive partition pruning; a cast of the column
    first would make it read every row. Rows without a time pass the filter: they are `bad_time`.
    """
    raw, kind = log.time_column, log.time_type.upper()
    params: dict = {}
    if kind == "TIMESTAMP WITH TIME ZONE":
        received = raw
        params = {"start": window.start, "end": window.end}
    elif kind in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"):
        received = f"CAST({raw} AS TIMESTAMPTZ)"  # a time without a zone is UTC (the session's zone)
        params = {"start": _naive_utc(window.start), "end": _naive_utc(window.end)}
    else:  # text (CSV, JSON, string columns): parsed, which no statistic can skip
        received = f"TRY_CAST(CAST({raw} AS VARCHAR) AS TIMESTAMPTZ)"
        raw = received
        params = {"start": window.start, "end": window.end}
    where = f"(({raw} >= $start AND {raw} < $end) OR {raw} IS NULL OR {received} IS NULL)"
    if log.partition:
        where += f' AND TRY_CAST("{log.partition}" AS DATE) BETWEEN $first_day AND $last_day'
        params |= {
            "first_day": (window.start.astimezone(UTC) - _PARTITION_MARGIN).date(),
            "last_day": (window.end.astimezone(UTC) + _PARTITION_MARGIN).date(),
        }
    return received, where, params


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def sample_window(con: duckdb.DuckDBPyConnection, log: InputLog, window: Window, max_per_segment: int, seed: int) -> LogSample:
    """Check the window's rows against the contract and draw the per-segment sample."""
    received, where, params = _window_sql(log, window)
    c = log.columns
    try:
        # The window's rows, with what the contract needs and no more: a file's number rather
        # than its name (a name per row costs as much as the rest of the scan), no body, no metadata.
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE scanned AS
            SELECT {c["input_id"]} AS input_id, {received} AS received_at, {c["kind"]} AS kind,
                   {c["source"]} AS source, {c["uri"]} AS uri, ({c["body"]}) IS NOT NULL AS has_body,
                   file_index, {log.row} AS log_row
            FROM {log.reader}
            WHERE {where}
            """,
            params,
        )
    except duckdb.Error as exc:
        raise InputLogError(f"input log {log.pattern!r}: cannot be read: {_first_line(exc)}") from None
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE classified AS
        WITH repeated AS (  -- ids seen more than once in the window; the earliest row keeps the id
            SELECT rid FROM (
                SELECT rowid AS rid, row_number() OVER (PARTITION BY input_id ORDER BY received_at, file_index, log_row, rowid) AS nth
                FROM scanned
                WHERE input_id IN (SELECT input_id FROM scanned WHERE input_id IS NOT NULL GROUP BY input_id HAVING count(*) > 1)
            ) WHERE nth > 1
        )
        SELECT *,
            CASE
                WHEN input_id IS NULL THEN 'missing_id'
                WHEN received_at IS NULL THEN 'bad_time'
                WHEN kind IS NULL OR kind NOT IN ({_KNOWN_KINDS}) THEN 'unknown_kind'
                WHEN uri IS NULL AND (kind <> '{InputKind.PAYLOAD.value}' OR NOT has_body) THEN 'missing_uri'
                WHEN rowid IN (SELECT rid FROM repeated) THEN 'duplicate_id'
            END AS reject_reason
        FROM scanned
        """
    )
    rejects = _rejects(con, log)
    population = _frame(
        con,
        """
        SELECT kind, source, count(*) AS n_population
        FROM classified WHERE reject_reason IS NULL
        GROUP BY kind, source ORDER BY kind, source
        """,
    )
    # The segment's `cap` smallest keys, kept by a top-n aggregate rather than a sort of the window.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE sampled AS
        SELECT unnest(picked, recursive := true)
        FROM (
            SELECT min_by(struct_pack(input_id, received_at, kind, source, uri, file_index, log_row),
                          md5(CAST($seed AS VARCHAR) || ':' || input_id), {int(max_per_segment)}) AS picked
            FROM classified WHERE reject_reason IS NULL
            GROUP BY kind, source
        )
        """,
        {"seed": seed},
    )
    # The sampled rows' bodies, metadata and file names, found again by file, row and time.
    rows = _frame(
        con,
        f"""
        SELECT s.input_id, s.received_at, s.kind, s.source, s.uri, d.body, d.log_file, d.meta
        FROM sampled s LEFT JOIN (
            SELECT {c["input_id"]} AS input_id, file_index, filename AS log_file, {log.row} AS log_row,
                   {received} AS received_at, {c["body"]} AS body, {log.meta} AS meta
            FROM {log.reader}
            WHERE {where} AND {c["input_id"]} IN (SELECT input_id FROM sampled)
            QUALIFY row_number() OVER (PARTITION BY input_id, file_index, log_row, received_at) = 1
        ) d ON d.input_id = s.input_id AND d.file_index = s.file_index
           AND d.log_row IS NOT DISTINCT FROM s.log_row AND d.received_at = s.received_at
        ORDER BY s.kind, s.source, s.input_id
        """,
        params,
    )
    return LogSample(rows=rows, population=population, rejects=rejects)


def _rejects(con: duckdb.DuckDBPyConnection, log: InputLog) -> pl.DataFrame:
    """Rows refused by the contract, per reason, with up to 5 examples: ids, or a file and a row."""
    examples = con.execute(
        """
        SELECT reject_reason, input_id, file_index, log_row FROM classified WHERE reject_reason IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY reject_reason ORDER BY file_index, log_row, rowid) <= 5
        ORDER BY reject_reason, file_index, log_row
        """
    ).fetchall()
    counts = dict(
        con.execute("SELECT reject_reason, count(*) FROM classified WHERE reject_reason IS NOT NULL GROUP BY 1").fetchall()
    )
    files: dict[int, str] = {}
    unnamed = sorted({index for _, input_id, index, _ in examples if input_id is None})
    if unnamed:  # only rows without an id need their file's name, so it is looked up for them alone
        files = dict(
            con.execute(
                f"SELECT DISTINCT file_index, filename FROM {log.reader} WHERE file_index IN ({', '.join(map(str, unnamed))})"
            ).fetchall()
        )
    listed: dict[str, list[str]] = {}
    for reason, input_id, index, row in examples:
        name = Path(files.get(index, "?")).name
        label = input_id if input_id is not None else (f"row {row + 1} of {name}" if row is not None else f"a row of {name}")
        listed.setdefault(reason, []).append(label)
    return pl.DataFrame(
        [{"reason": r, "n_rows": counts[r], "examples": ", ".join(listed.get(r, []))} for r in sorted(counts)],
        schema={"reason": pl.Utf8, "n_rows": pl.Int64, "examples": pl.Utf8},
    )


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
    if not uri or (scheme_of(uri) is not None and not is_local_url(uri)):
        return None
    return str(resolve_uri(uri, log_file))


def inside_roots(path: Path, roots: list) -> bool:
    """True when the real file (symlinks followed) lies under one of the allowed folders."""
    real = Path(os.path.realpath(path))
    for root in roots:
        if is_remote(root):
            continue
        real_root = Path(os.path.realpath(root))
        if real == real_root or real_root in real.parents:
            return True
    return False
