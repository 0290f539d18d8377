"""The input log: formats, the contract, windows, and deterministic uniform sampling."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime

import polars as pl
import pytest
from scipy import stats

from drift.errors import InputLogError
from drift.sources.log import Window, connect, inside_roots, open_log, resolve_uri, sample_window

DAY = Window(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC))


def log(tmp_path, rows, name="log.parquet"):
    path = tmp_path / name
    frame = pl.DataFrame(rows)
    if name.endswith(".parquet"):
        frame.write_parquet(path)
    elif name.endswith(".csv"):
        frame.write_csv(path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def sample(pattern, window=DAY, cap=1000, seed=0):
    con = connect()
    return sample_window(con, open_log(con, pattern), window, cap, seed)


def rows_for(n, source="s", kind="payload", day="2026-05-01"):
    return [
        {
            "input_id": f"{source}-{i}",
            "received_at": f"{day}T{i % 24:02d}:00:00",
            "kind": kind,
            "source": source,
            "uri": f"x{i}.json",
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("name", ["log.parquet", "log.jsonl", "log.csv"])
def test_every_format_reads_the_same(tmp_path, name):
    result = sample(log(tmp_path, rows_for(30), name))
    assert result.rows.height == 30
    assert set(result.rows["kind"]) == {"payload"}


def test_times_without_zone_are_utc_and_zones_are_honoured(tmp_path):
    rows = [
        {"input_id": "a", "received_at": "2026-05-01T23:30:00", "kind": "image", "source": "s", "uri": "a"},
        {
            "input_id": "b",
            "received_at": "2026-05-02T01:30:00+02:00",
            "kind": "image",
            "source": "s",
            "uri": "b",
        },  # 23:30 UTC on the 1st
        {
            "input_id": "c",
            "received_at": "2026-05-01T00:30:00+02:00",
            "kind": "image",
            "source": "s",
            "uri": "c",
        },  # 22:30 UTC on Apr 30
        {"input_id": "d", "received_at": "2026-05-02T00:00:00Z", "kind": "image", "source": "s", "uri": "d"},  # end is exclusive
    ]
    assert sorted(sample(log(tmp_path, rows)).rows["input_id"]) == ["a", "b"]


def test_extra_columns_are_kept_as_metadata(tmp_path):
    rows = [{**r, "tenant": "acme", "latency_ms": 12} for r in rows_for(3)]
    meta = json.loads(sample(log(tmp_path, rows)).rows["meta"][0])
    assert meta == {"tenant": "acme", "latency_ms": 12}


def test_log_level_errors_are_clear(tmp_path):
    with pytest.raises(InputLogError, match="no file matches"):
        sample(str(tmp_path / "*.parquet"))
    path = log(tmp_path, [{"input_id": "a", "kind": "image", "source": "s", "uri": "x"}])
    with pytest.raises(InputLogError, match=r"missing required column\(s\) \['received_at'\]"):
        sample(path)
    with pytest.raises(InputLogError, match="cannot tell the format"):
        sample(str(tmp_path / "*.xlsx"))


def test_sampling_is_capped_per_segment_and_reports_population(tmp_path):
    rows = rows_for(500, "big") + rows_for(20, "small") + rows_for(50, "pics", kind="image")
    result = sample(log(tmp_path, rows), cap=100)
    counts = Counter(zip(result.rows["kind"], result.rows["source"]))
    assert counts == {("payload", "big"): 100, ("payload", "small"): 20, ("image", "pics"): 50}
    population = {(r["kind"], r["source"]): r["n_population"] for r in result.population.iter_rows(named=True)}
    assert population == {("payload", "big"): 500, ("payload", "small"): 20, ("image", "pics"): 50}


def test_sampling_is_deterministic_and_independent_of_row_order(tmp_path):
    rows = rows_for(400)
    first = sample(log(tmp_path, rows, "a.parquet"), cap=50, seed=3)
    shuffled = sample(log(tmp_path, list(reversed(rows)), "b.parquet"), cap=50, seed=3)
    other_seed = sample(str(tmp_path / "a.parquet"), cap=50, seed=4)
    assert first.rows["input_id"].to_list() == shuffled.rows["input_id"].to_list()
    assert set(first.rows["input_id"]) != set(other_seed.rows["input_id"])


def test_sampling_is_uniform_within_a_segment(tmp_path):
    """Over many seeds every row is drawn equally often (chi-square), whatever its time or id."""
    n, cap, seeds = 200, 20, 300
    path = log(tmp_path, rows_for(n))
    con = connect()
    opened = open_log(con, path)
    hits = Counter()
    for seed in range(seeds):
        hits.update(sample_window(con, opened, DAY, cap, seed).rows["input_id"].to_list())
    observed = [hits.get(f"s-{i}", 0) for i in range(n)]
    assert sum(observed) == cap * seeds
    expected = cap * seeds / n
    assert stats.chisquare(observed, [expected] * n).pvalue > 0.001
    early = sum(observed[i] for i in range(n) if i % 24 < 12)
    assert abs(early / sum(observed) - sum(1 for i in range(n) if i % 24 < 12) / n) < 0.03


def test_relative_uris_resolve_against_the_log_folder(tmp_path):
    assert resolve_uri("a/b.jpg", str(tmp_path / "logs" / "x.parquet")) == tmp_path / "logs" / "a" / "b.jpg"
    assert resolve_uri("file:///etc/x", None) == resolve_uri("/etc/x", None)


def test_roots_refuse_escapes_through_dotdot_and_symlinks(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.jpg").write_bytes(b"x")
    secret = tmp_path / "secret"
    secret.write_text("x")
    os.symlink(secret, root / "link.jpg")
    assert inside_roots(root / "ok.jpg", [root])
    assert not inside_roots(root / ".." / "secret", [root])
    assert not inside_roots(root / "link.jpg", [root])
    assert not inside_roots(tmp_path / "data-other" / "x", [root])


def test_days_outside_the_window_are_never_read_with_hive_partitions(tmp_path):
    """A row without a time in another day's partition is not this night's bad_time: that
    partition is never opened. Without partitions, every run counts it."""
    for day, rows in (
        ("2026-05-01", rows_for(20)),
        ("2026-04-01", [{**rows_for(1, "old", day="2026-04-01")[0], "received_at": None}]),
    ):
        folder = tmp_path / "log" / f"dt={day}"
        folder.mkdir(parents=True)
        pl.DataFrame(rows, schema={k: pl.Utf8 for k in rows[0]}).with_columns(
            pl.col("received_at").str.to_datetime(time_zone="UTC")
        ).write_parquet(folder / "part.parquet")
    partitioned = sample(str(tmp_path / "log" / "dt=*" / "*.parquet"))
    assert partitioned.rows.height == 20 and partitioned.rejects.height == 0
    con = connect()
    flat = sample_window(con, open_log(con, str(tmp_path / "log" / "dt=*" / "*.parquet"), date_partition="none"), DAY, 1000, 0)
    assert flat.rejects.to_dicts() == [{"reason": "bad_time", "n_rows": 1, "examples": "old-0"}]


def test_duplicates_are_judged_within_the_window_and_the_earliest_row_keeps_the_id(tmp_path):
    rows = [
        {"input_id": "a", "received_at": "2026-04-30T23:00:00", "kind": "image", "source": "s", "uri": "yesterday.jpg"},
        {"input_id": "a", "received_at": "2026-05-01T10:00:00", "kind": "image", "source": "s", "uri": "late.jpg"},
        {"input_id": "a", "received_at": "2026-05-01T08:00:00", "kind": "image", "source": "s", "uri": "early.jpg"},
    ]
    result = sample(log(tmp_path, rows))
    assert result.rows["uri"].to_list() == ["early.jpg"]
    assert result.rejects.to_dicts() == [{"reason": "duplicate_id", "n_rows": 1, "examples": "a"}]


def test_json_lines_bodies_may_be_objects_or_text_and_a_broken_line_is_counted(tmp_path):
    path = tmp_path / "log.jsonl"
    base = {"received_at": "2026-05-01T10:00:00Z", "kind": "payload", "source": "api"}
    lines = [
        json.dumps({**base, "input_id": "obj", "body": {"total": 12.5, "items": [1, 2]}, "tenant": "acme"}),
        json.dumps({**base, "input_id": "text", "body": '{"total": "12.5"}'}),
        "{not json",
    ]
    path.write_text("\n".join(lines) + "\n")
    result = sample(str(path))
    bodies = dict(zip(result.rows["input_id"], result.rows["body"]))
    assert json.loads(bodies["obj"]) == {"total": 12.5, "items": [1, 2]}
    assert json.loads(bodies["text"]) == {"total": "12.5"}
    assert json.loads(dict(zip(result.rows["input_id"], result.rows["meta"]))["obj"]) == {"tenant": "acme"}
    assert result.rejects.to_dicts() == [{"reason": "missing_id", "n_rows": 1, "examples": "a row of log.jsonl"}]
    assert result.population["n_population"].to_list() == [2]


def test_a_row_without_an_id_is_named_by_its_file_and_row(tmp_path):
    rows = rows_for(3)
    rows[1]["input_id"] = None
    result = sample(log(tmp_path, rows))
    assert result.rejects.to_dicts() == [{"reason": "missing_id", "n_rows": 1, "examples": "row 2 of log.parquet"}]
