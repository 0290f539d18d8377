"""The store's tables and the record's models say the same thing: each table made from a model has
exactly the columns drift.store.rows declares, each of them a field of the model, and every field
of the model is either a column or said to live elsewhere."""

from __future__ import annotations

import pytest

from drift import store
from drift.record import Finding, FindingStatus, Segment, SegmentStatus, Severity, Stage
from drift.store.rows import MODEL_TABLES, NOT_COLUMNS


@pytest.fixture
def con(tmp_path):
    connection = store.connect_writer(tmp_path / "s.duckdb")
    yield connection
    connection.close()


@pytest.mark.parametrize("table", sorted(MODEL_TABLES))
def test_a_table_made_from_a_model_has_its_declared_columns(con, table):
    spec = MODEL_TABLES[table]
    columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
    assert sorted(columns) == sorted((*spec.keys, *spec.columns))
    fields = set(spec.model.model_fields)
    for column in spec.columns:
        field = spec.field_of(column)
        assert field in fields or isinstance(getattr(spec.model, field, None), property), (table, column)
    stored = {spec.field_of(c) for c in spec.columns}
    assert fields - stored == NOT_COLUMNS[table], f"{table}: say where {sorted(fields - stored - NOT_COLUMNS[table])} live"


def test_rows_written_from_models_read_back_as_the_models_said(con):
    finding = Finding(
        check="schema_breaking",
        target="$.total type",
        method="chi2",
        statistic=None,
        p_value=1e-6,
        p_adjusted=2e-6,
        effect_size=0.4,
        effect_threshold=0.05,
        n_ref=150,
        n_cur=120,
        status=FindingStatus.DRIFT,
        severity=Severity.CRITICAL,
        detail={"old": "float 100%", "examples": ["o-1"]},
    )
    segment = Segment(
        kind="payload",
        source="orders",
        status=SegmentStatus.OK,
        n_population=900,
        n_sampled=120,
        n_errors=3,
        n_internal=1,
        drifted=True,
        severity=Severity.CRITICAL,
    )
    stage = Stage(stage="compare", seconds=1.5, items=7, cpu_seconds=1.2, peak_rss_mb=300.0)
    store._insert(con, "findings", MODEL_TABLES["findings"].frame([finding], run_id="r", kind="payload", source="orders"))
    store._insert(con, "segments", MODEL_TABLES["segments"].frame([segment], run_id="r"))
    store._insert(con, "stage_timings", MODEL_TABLES["stage_timings"].frame([stage], run_id="r"))
    assert con.execute("SELECT check_family, status, severity, statistic, detail->>'old' FROM findings").fetchone() == (
        "schema_breaking",
        "drift",
        "critical",
        None,
        "float 100%",
    )
    # n_items: the sampled inputs that became features, every other one being an error
    assert con.execute("SELECT n_items, n_errors, status, drifted FROM segments").fetchone() == (116, 3, "ok", True)
    assert con.execute("SELECT stage, items, seconds FROM stage_timings").fetchone() == ("compare", 7, 1.5)
