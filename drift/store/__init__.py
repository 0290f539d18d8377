"""The DuckDB store: schema, migrations, the single-writer lock and the run transaction.

The tables are a public interface (docs/schema.md documents every column); change them only by
adding a migration at the end of MIGRATIONS, never by editing an applied one.

Writers take an exclusive advisory lock on `<database>.lock` for the whole run, so two runs never
compute side by side and then fight over the file; DuckDB's own file lock is the second line.
Readers (notebooks, `drift report`) open the database read-only and need no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from ..errors import DriftError, StoreLockedError
from ..record import Night, RunRecord, Stage

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE runs (
        run_id        VARCHAR PRIMARY KEY,
        job           VARCHAR NOT NULL,
        window_start  TIMESTAMPTZ NOT NULL,
        window_end    TIMESTAMPTZ NOT NULL,
        status        VARCHAR NOT NULL,
        drifted       BOOLEAN NOT NULL,
        severity      VARCHAR NOT NULL,
        baseline      VARCHAR NOT NULL,
        embedder      JSON,
        code_version  VARCHAR NOT NULL,
        started_at    TIMESTAMPTZ NOT NULL,
        finished_at   TIMESTAMPTZ NOT NULL,
        n_sampled     INTEGER NOT NULL,
        n_errors      INTEGER NOT NULL,
        summary       JSON NOT NULL
    );
    CREATE TABLE segments (
        run_id        VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,
        source        VARCHAR NOT NULL,
        n_population  INTEGER NOT NULL,
        n_sampled     INTEGER NOT NULL,
        n_items       INTEGER NOT NULL,
        n_errors      INTEGER NOT NULL,
        status        VARCHAR NOT NULL,
        drifted       BOOLEAN NOT NULL,
        severity      VARCHAR NOT NULL,
        PRIMARY KEY (run_id, kind, source)
    );
    CREATE TABLE samples (
        run_id        VARCHAR NOT NULL,
        input_id      VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,
        source        VARCHAR NOT NULL,
        received_at   TIMESTAMPTZ NOT NULL,
        uri           VARCHAR,
        outcome       VARCHAR NOT NULL,
        PRIMARY KEY (run_id, input_id)
    );
    CREATE TABLE input_errors (
        run_id        VARCHAR NOT NULL,
        input_id      VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,
        source        VARCHAR NOT NULL,
        category      VARCHAR NOT NULL,
        message       VARCHAR NOT NULL,
        PRIMARY KEY (run_id, input_id)
    );
    CREATE TABLE log_rejects (
        run_id        VARCHAR NOT NULL,
        reason        VARCHAR NOT NULL,
        n_rows        BIGINT NOT NULL,
        examples      VARCHAR,
        PRIMARY KEY (run_id, reason)
    );
    CREATE TABLE descriptors (
        run_id        VARCHAR NOT NULL,
        input_id      VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,
        source        VARCHAR NOT NULL,
        name          VARCHAR NOT NULL,
        value         DOUBLE,
        label         VARCHAR
    );
    CREATE TABLE findings (
        run_id           VARCHAR NOT NULL,
        kind             VARCHAR NOT NULL,
        source           VARCHAR NOT NULL,
        check_family     VARCHAR NOT NULL,
        target           VARCHAR NOT NULL,
        method           VARCHAR NOT NULL,
        statistic        DOUBLE,
        p_value          DOUBLE,
        p_adjusted       DOUBLE,
        effect_size      DOUBLE,
        effect_threshold DOUBLE,
        n_ref            INTEGER NOT NULL,
        n_cur            INTEGER NOT NULL,
        status           VARCHAR NOT NULL,
        severity         VARCHAR NOT NULL,
        detail           JSON
    );
    CREATE TABLE alerts (
        dedup_key     VARCHAR PRIMARY KEY,
        job           VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,
        source        VARCHAR NOT NULL,
        check_family  VARCHAR NOT NULL,
        state         VARCHAR NOT NULL,
        severity      VARCHAR NOT NULL,
        title         VARCHAR NOT NULL,
        opened_run_id VARCHAR NOT NULL,
        last_run_id   VARCHAR NOT NULL,
        opened_at     TIMESTAMPTZ NOT NULL,
        updated_at    TIMESTAMPTZ NOT NULL,
        resolved_at   TIMESTAMPTZ,
        body          JSON NOT NULL
    );
    CREATE TABLE outbox (
        message_id    VARCHAR PRIMARY KEY,
        dedup_key     VARCHAR NOT NULL,
        run_id        VARCHAR NOT NULL,
        action        VARCHAR NOT NULL,
        sink          VARCHAR NOT NULL,
        payload       JSON NOT NULL,
        created_at    TIMESTAMPTZ NOT NULL,
        delivered_at  TIMESTAMPTZ,
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_error    VARCHAR
    );
    CREATE TABLE deliveries (
        message_id    VARCHAR NOT NULL,
        sink          VARCHAR NOT NULL,
        attempt       INTEGER NOT NULL,
        attempted_at  TIMESTAMPTZ NOT NULL,
        ok            BOOLEAN NOT NULL,
        status        VARCHAR NOT NULL,
        response      VARCHAR
    );
    CREATE TABLE stage_timings (
        run_id        VARCHAR NOT NULL,
        stage         VARCHAR NOT NULL,
        seconds       DOUBLE NOT NULL,
        items         INTEGER NOT NULL,
        cpu_seconds   DOUBLE NOT NULL,
        peak_rss_mb   DOUBLE NOT NULL,
        PRIMARY KEY (run_id, stage)
    );
    """,
    # 2: the current items least like the baseline, as the domain classifier ranks them
    """
    CREATE TABLE outliers (
        run_id        VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,
        source        VARCHAR NOT NULL,
        target        VARCHAR NOT NULL,
        rank          INTEGER NOT NULL,
        input_id      VARCHAR NOT NULL,
        score         DOUBLE NOT NULL,
        PRIMARY KEY (run_id, kind, source, target, rank)
    );
    """,
    # 3: where a sampled file really is (its uri resolved against the log file's folder)
    """
    ALTER TABLE samples ADD COLUMN path VARCHAR;
    """,
    # 4: one alert per (job, segment), its state a function of windows: the window that last decided it
    """
    ALTER TABLE alerts ADD COLUMN window_start TIMESTAMPTZ;
    """,
    # 5: the log's extra columns of each sampled row, as the README promises
    """
    ALTER TABLE samples ADD COLUMN meta JSON;
    """,
    # 6: which principle each check applied, and what share of broken items each segment would notice
    """
    ALTER TABLE findings ADD COLUMN principle VARCHAR;
    ALTER TABLE segments ADD COLUMN detectable_share DOUBLE;
    """,
    # 7: how much of a stage's work the feature cache saved
    """
    ALTER TABLE stage_timings ADD COLUMN cache_hits INTEGER;
    ALTER TABLE stage_timings ADD COLUMN cache_misses INTEGER;
    """,
]

# Tables holding one run's rows, deleted together when the run is replaced.
RUN_TABLES = (
    "segments",
    "samples",
    "input_errors",
    "log_rejects",
    "descriptors",
    "findings",
    "outliers",
    "stage_timings",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    current = schema_version(con)
    if current > len(MIGRATIONS):
        raise DriftError(
            f"the store's schema is version {current}, newer than this drift knows ({len(MIGRATIONS)}); upgrade drift"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        con.execute("BEGIN")
        con.execute(MIGRATIONS[version - 1])
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
        con.execute("COMMIT")
    return len(MIGRATIONS)


@contextmanager
def writer_lock(database: Path) -> Iterator[None]:
    """Hold the store's writer lock, or fail at once saying who holds it."""
    database.parent.mkdir(parents=True, exist_ok=True)
    lock_path = database.with_name(database.name + ".lock")
    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise StoreLockedError(
                f"another run holds the store {database} ({holder}); wait for it to finish or check that process"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {utcnow().isoformat(timespec='seconds')}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def connect_writer(database: Path) -> duckdb.DuckDBPyConnection:
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(database))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreLockedError(f"another process holds the store {database}: {str(exc).splitlines()[0]}") from None
        raise DriftError(f"cannot open the store {database}: {exc}") from None
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    return con


READER_WAIT_S = 30.0  # a writer holds the file only for a commit (or one delivery attempt's record)


def connect_reader(database: Path, wait_s: float = READER_WAIT_S) -> duckdb.DuckDBPyConnection:
    """A read-only connection; while a writer holds the file (a commit), wait for it, up to wait_s."""
    if not Path(database).exists():
        raise DriftError(f"no store at {database}: run a job first (drift run JOB)")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(database), read_only=True)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise StoreLockedError(f"cannot open the store {database} read-only: {str(exc).splitlines()[0]}") from None
            time.sleep(0.05)
    con.execute("SET TimeZone = 'UTC'")
    return con


@contextmanager
def session(database: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short read-write connection, closed on exit so that readers can open the file again.

    The caller holds the writer lock (writer_lock); another process's reader may hold DuckDB's file
    lock for a moment, so opening waits for it like a reader waits for a writer.
    """
    deadline = time.monotonic() + READER_WAIT_S
    while True:
        try:
            con = connect_writer(database)
            break
        except StoreLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield con
    finally:
        con.close()


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height == 0:
        return
    columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
    frame = frame.select([c for c in columns if c in frame.columns])
    con.register("_frame", frame.to_arrow())
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(frame.columns)}) SELECT * FROM _frame")
    finally:
        con.unregister("_frame")


def previous_run_ids(con: duckdb.DuckDBPyConnection, job: str, window_start: datetime) -> list[str]:
    rows = con.execute("SELECT run_id FROM runs WHERE job = ? AND window_start = ?", [job, window_start]).fetchall()
    return [r[0] for r in rows]


def write_run(
    con: duckdb.DuckDBPyConnection,
    run: dict,
    record: RunRecord,
    tables: dict[str, pl.DataFrame],
    alerts: Callable[[duckdb.DuckDBPyConnection], dict[str, str]],
) -> None:
    """Replace any earlier run of the same (job, window) and write this one, all in one transaction.

    `alerts(con)` runs inside the transaction so that alerts and their outbox messages commit
    together with the findings that caused them, or not at all; what it did goes into the record,
    which is then written, once, as runs.summary.
    """
    con.execute("BEGIN")
    try:
        for old in previous_run_ids(con, run["job"], run["window_start"]):
            for table in RUN_TABLES:
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [old])
            con.execute("DELETE FROM runs WHERE run_id = ?", [old])
        for table, frame in tables.items():
            _insert(con, table, frame)
        record.alert_changes = alerts(con)
        row = dict(run)
        row["embedder"] = json.dumps(row["embedder"]) if row.get("embedder") is not None else None
        row["summary"] = record.stored()
        _insert(con, "runs", pl.DataFrame([row]))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def add_stage_timings(con: duckdb.DuckDBPyConnection, run_id: str, timings: pl.DataFrame) -> None:
    """The stages that ran after the run's transaction (delivery, reports)."""
    done = {r[0] for r in con.execute("SELECT stage FROM stage_timings WHERE run_id = ?", [run_id]).fetchall()}
    _insert(con, "stage_timings", timings.filter(~pl.col("stage").is_in(sorted(done))))


def load_run(con: duckdb.DuckDBPyConnection, job: str, run: str) -> RunRecord | None:
    """A stored run's record: `run` is a run id, or `latest` (the most recent window), with its
    stages and the delivery of its messages as they stand now."""
    if run == "latest":
        row = con.execute(
            "SELECT run_id, summary FROM runs WHERE job = ? ORDER BY window_start DESC, finished_at DESC LIMIT 1", [job]
        ).fetchone()
    else:
        row = con.execute("SELECT run_id, summary FROM runs WHERE job = ? AND run_id = ?", [job, run]).fetchone()
    if row is None:
        return None
    record = RunRecord.model_validate_json(row[1])
    stages = con.execute(f"SELECT {', '.join(Stage.model_fields)} FROM stage_timings WHERE run_id = ? ORDER BY rowid", [row[0]])
    record.stages = [Stage(**dict(zip(Stage.model_fields, values))) for values in stages.fetchall()]
    delivered, pending = con.execute(
        "SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL), count(*) FILTER (WHERE delivered_at IS NULL) FROM outbox WHERE run_id = ?",
        [row[0]],
    ).fetchone()
    record.delivery = {"delivered": delivered, "pending": pending}
    record.history = segment_history(con, job, record.window.start)
    return record


HISTORY_NIGHTS = 30


def segment_history(con: duckdb.DuckDBPyConnection, job: str, until: str, nights: int = HISTORY_NIGHTS) -> dict[str, list[Night]]:
    """Each segment's verdicts over the job's last `nights` windows up to `until`, oldest first. A
    window run more than once counts by its latest completed run."""
    rows = con.execute(
        """
        WITH windows AS (
            SELECT run_id, window_start FROM (
                SELECT run_id, window_start, row_number() OVER (PARTITION BY window_start ORDER BY finished_at DESC) AS k
                FROM runs WHERE job = ? AND status = 'completed' AND window_start <= ?::TIMESTAMPTZ
            ) WHERE k = 1 ORDER BY window_start DESC LIMIT ?
        )
        SELECT s.kind, s.source, strftime(w.window_start AT TIME ZONE 'UTC', '%Y-%m-%d'), s.status, s.drifted, s.severity
        FROM windows w JOIN segments s USING (run_id) ORDER BY s.kind, s.source, w.window_start
        """,
        [job, until, nights],
    ).fetchall()
    history: dict[str, list[Night]] = {}
    for kind, source, day, status, drifted, severity in rows:
        history.setdefault(f"{kind}/{source}", []).append(
            Night(window_start=day, status=status, drifted=drifted, severity=severity)
        )
    return history


def job_health(con: duckdb.DuckDBPyConnection, job: str) -> dict:
    """What `drift status` shows of a job: its last completed run, open alerts, undelivered messages."""
    row = con.execute(
        "SELECT window_start, finished_at FROM runs WHERE job = ? AND status = 'completed' ORDER BY finished_at DESC LIMIT 1",
        [job],
    ).fetchone()
    return {
        "last_window": row[0].date().isoformat() if row else None,
        "last_finished": row[1] if row else None,
        "open_alerts": con.execute("SELECT count(*) FROM alerts WHERE job = ? AND state = 'open'", [job]).fetchone()[0],
        "undelivered": con.execute(
            "SELECT count(*) FROM outbox o JOIN alerts a USING (dedup_key) WHERE a.job = ? AND o.delivered_at IS NULL", [job]
        ).fetchone()[0],
    }


# --- alerts, the outbox and deliveries ---------------------------------------------------------

ALERT_COLUMNS = (
    "dedup_key",
    "job",
    "kind",
    "source",
    "check_family",
    "state",
    "severity",
    "title",
    "opened_run_id",
    "last_run_id",
    "opened_at",
    "updated_at",
    "resolved_at",
    "body",
    "window_start",
)


def job_alerts(con: duckdb.DuckDBPyConnection, job: str) -> dict[str, dict]:
    rows = con.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE job = ?", [job]).fetchall()
    return {row[0]: dict(zip(ALERT_COLUMNS, row)) for row in rows}


def newest_tested_window(con: duckdb.DuckDBPyConnection, job: str, kind: str, source: str) -> datetime | None:
    """The latest window whose run tested this segment (status ok), this run's included."""
    row = con.execute(
        """SELECT max(r.window_start) FROM runs r JOIN segments s USING (run_id)
           WHERE r.job = ? AND s.kind = ? AND s.source = ? AND s.status = 'ok'""",
        [job, kind, source],
    ).fetchone()
    return row[0] if row else None


def put_alert(con: duckdb.DuckDBPyConnection, alert: dict) -> None:
    """Write an alert row whole (a new incident replaces the resolved one under its key)."""
    con.execute("DELETE FROM alerts WHERE dedup_key = ?", [alert["dedup_key"]])
    con.execute(
        f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) VALUES ({', '.join('?' * len(ALERT_COLUMNS))})",
        [alert.get(c) for c in ALERT_COLUMNS],
    )


def queue_message(con, message_id: str, dedup_key: str, run_id: str, action: str, sink: str, payload: str, now: datetime) -> None:
    con.execute(
        "INSERT INTO outbox (message_id, dedup_key, run_id, action, sink, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [message_id, dedup_key, run_id, action, sink, payload, now],
    )


def triggered_sinks(con: duckdb.DuckDBPyConnection, dedup_key: str, since: datetime) -> list[str]:
    """The sinks that were sent a trigger for the incident opened at `since`: its resolve goes to them."""
    rows = con.execute(
        "SELECT DISTINCT sink FROM outbox WHERE dedup_key = ? AND action = 'trigger' AND created_at >= ? ORDER BY sink",
        [dedup_key, since],
    ).fetchall()
    return [r[0] for r in rows]


def pending_messages(con: duckdb.DuckDBPyConnection, job: str) -> list[tuple]:
    return con.execute(
        """SELECT o.message_id, o.sink, o.payload, o.attempts FROM outbox o
           JOIN alerts a USING (dedup_key)
           WHERE o.delivered_at IS NULL AND a.job = ? ORDER BY o.created_at, o.message_id""",
        [job],
    ).fetchall()


def record_attempt(con, message_id: str, sink: str, number: int, now: datetime, ok: bool, status: str, error: str | None) -> None:
    con.execute("BEGIN")
    try:
        con.execute("INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)", [message_id, sink, number, now, ok, status, error])
        con.execute(
            "UPDATE outbox SET attempts = ?, last_error = ?, delivered_at = ? WHERE message_id = ?",
            [number, error, now if ok else None, message_id],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def alert_listing(con: duckdb.DuckDBPyConnection, job: str) -> list[dict]:
    rows = con.execute(
        """SELECT a.dedup_key, a.state, a.severity, a.title, a.updated_at,
                  count(o.message_id) FILTER (WHERE o.delivered_at IS NULL) AS undelivered
           FROM alerts a LEFT JOIN outbox o USING (dedup_key)
           WHERE a.job = ? GROUP BY ALL ORDER BY a.updated_at DESC""",
        [job],
    ).fetchall()
    keys = ("dedup_key", "state", "severity", "title", "updated_at", "undelivered")
    return [dict(zip(keys, row)) for row in rows]


# --- what the analysts' notebooks read ---------------------------------------------------------


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())


def job_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT job FROM runs ORDER BY job").fetchall()]


def runs_frame(con: duckdb.DuckDBPyConnection, jobs: list[str]) -> pl.DataFrame:
    return _frame(
        con,
        """SELECT job, window_start::DATE AS day, severity, drifted, n_sampled, n_errors,
                                 round(epoch(finished_at - started_at), 1) AS seconds
                          FROM runs WHERE list_contains(?, job) ORDER BY job, day""",
        [jobs],
    )


def drifted_checks_by_day(con: duckdb.DuckDBPyConnection, jobs: list[str]) -> pl.DataFrame:
    return _frame(
        con,
        """SELECT r.window_start::DATE AS day, f.kind || '/' || f.source || ' ' || f.check_family AS check,
                                 count(*) FILTER (WHERE f.status = 'drift') AS drifted
                          FROM findings f JOIN runs r USING (run_id)
                          WHERE list_contains(?, r.job) GROUP BY ALL ORDER BY day""",
        [jobs],
    )


def open_alerts_frame(con: duckdb.DuckDBPyConnection, jobs: list[str]) -> pl.DataFrame:
    return _frame(
        con,
        """SELECT a.severity, a.title, a.opened_at, a.updated_at,
                                 count(o.message_id) FILTER (WHERE o.delivered_at IS NULL) AS undelivered
                          FROM alerts a LEFT JOIN outbox o USING (dedup_key)
                          WHERE a.state = 'open' AND list_contains(?, a.job) GROUP BY ALL ORDER BY a.severity, a.title""",
        [jobs],
    )


def error_rates_by_day(con: duckdb.DuckDBPyConnection, jobs: list[str]) -> pl.DataFrame:
    return _frame(
        con,
        """SELECT r.window_start::DATE AS day, s.kind || '/' || s.source AS segment, e.category,
                                 count(*) / any_value(s.n_sampled) AS rate
                          FROM input_errors e JOIN segments s USING (run_id, kind, source) JOIN runs r USING (run_id)
                          WHERE list_contains(?, r.job) AND e.category <> 'internal' GROUP BY ALL ORDER BY day""",
        [jobs],
    )


def stage_costs(con: duckdb.DuckDBPyConnection, jobs: list[str]) -> pl.DataFrame:
    return _frame(
        con,
        """SELECT r.window_start::DATE AS day, t.stage, t.seconds, t.cpu_seconds, t.peak_rss_mb, t.cache_hits, t.cache_misses
                          FROM stage_timings t JOIN runs r USING (run_id) WHERE list_contains(?, r.job) ORDER BY day""",
        [jobs],
    )


def cache_hit_rates(con: duckdb.DuckDBPyConnection, job: str, runs: int = 10) -> list[tuple]:
    """The job's newest runs that read the feature cache: (window day, run_id, hits, misses)."""
    return con.execute(
        """SELECT r.window_start::DATE, r.run_id, t.cache_hits, t.cache_misses
           FROM stage_timings t JOIN runs r USING (run_id)
           WHERE r.job = ? AND t.cache_hits IS NOT NULL ORDER BY r.finished_at DESC LIMIT ?""",
        [job, runs],
    ).fetchall()


def find_run(con: duckdb.DuckDBPyConnection, day: str | None = None) -> tuple[str, str] | None:
    """(job, run_id) of the run of `day` (YYYY-MM-DD), or of the latest window."""
    if day:
        row = con.execute(
            "SELECT job, run_id FROM runs WHERE window_start::DATE = ?::DATE ORDER BY finished_at DESC LIMIT 1", [day]
        ).fetchone()
    else:
        row = con.execute("SELECT job, run_id FROM runs ORDER BY window_start DESC, finished_at DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else None


def segment_findings(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, source: str) -> pl.DataFrame:
    return _frame(
        con,
        """SELECT check_family, target, status, method, p_adjusted, effect_size, effect_threshold, severity,
                                 detail->>'old' AS was, detail->>'new' AS now
                          FROM findings WHERE run_id = ? AND kind = ? AND source = ?
                          ORDER BY status <> 'drift', effect_size DESC""",
        [run_id, kind, source],
    )


def segment_descriptors(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, source: str) -> pl.DataFrame:
    return _frame(
        con,
        "SELECT input_id, name, value, label FROM descriptors WHERE run_id = ? AND kind = ? AND source = ?",
        [run_id, kind, source],
    )


def ranked_items(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, source: str) -> pl.DataFrame:
    """The items least like the baseline per embedding (`outliers`), with where they are and, for
    documents, their characters per page."""
    return _frame(
        con,
        """SELECT o.target, o.rank, o.input_id, o.score, s.path, d.value AS chars
                          FROM outliers o JOIN samples s USING (run_id, input_id)
                          LEFT JOIN descriptors d ON d.run_id = o.run_id AND d.input_id = o.input_id AND d.name = 'text_chars_per_page'
                          WHERE o.run_id = ? AND o.kind = ? AND o.source = ? ORDER BY o.target, o.rank""",
        [run_id, kind, source],
    )


def schema_examples(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, source: str) -> pl.DataFrame:
    """The example inputs of each drifted payload-schema finding, with where they are."""
    return _frame(
        con,
        """SELECT e.target, e.input_id, s.path FROM (
                              SELECT f.target, unnest(CAST(f.detail->'examples' AS VARCHAR[])) AS input_id
                              FROM findings f WHERE f.run_id = ? AND f.kind = ? AND f.source = ? AND f.status = 'drift'
                              AND f.check_family LIKE 'schema%') e
                          LEFT JOIN samples s ON s.run_id = ? AND s.input_id = e.input_id""",
        [run_id, kind, source, run_id],
    )
