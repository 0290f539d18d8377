"""The whole flow on a small world: baseline, quiet day, drifted day, reruns, the store lock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from datetime import timedelta

import duckdb
import pytest

from drift.baselines import Baseline, build
from drift.clock import StageClock
from drift.config import load_job
from drift.errors import BaselineError, StoreLockedError
from drift.features.featurize import Context, file_label
from drift.features.window import code_version
from drift.pipeline import run_job
from drift.progress import QUIET
from drift.store import writer_lock

from .conftest import BASE_DAY, write_day, write_job

QUIET_DAY = f"{BASE_DAY + timedelta(days=3):%Y-%m-%d}"
DRIFT_DAY = f"{BASE_DAY + timedelta(days=4):%Y-%m-%d}"


def build_baseline(job_path):
    config = load_job(job_path)
    return config, build(config, BASE_DAY, BASE_DAY + timedelta(days=3), Context(config, QUIET), StageClock())


def rows(config, sql, params=()):
    con = duckdb.connect(str(config.store.database), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_baseline_manifest_pins_counts_and_encoder(world):
    _, job = world
    config, manifest = build_baseline(job)
    segments = {(s["kind"], s["source"]): s for s in manifest["segments"]}
    assert set(segments) == {("image", "app"), ("document", "partner"), ("payload", "orders")}
    assert all(s["n_sampled"] == 120 and s["n_items"] == 120 for s in segments.values())
    assert manifest["embedder"]["clip"]["model"] == "drift-tiny"
    assert manifest["embedder"]["clip"]["source"] == "checkpoint"
    assert len(manifest["embedder"]["clip"]["weights_sha256"]) == 64
    assert manifest["code_version"] == code_version() and re.search(r"\+src\.[0-9a-f]{10}$", manifest["code_version"])
    loaded = Baseline(config.baseline_dir)
    features = loaded.features("image", "app")
    assert features.embeddings["clip"].shape == (120, 32)
    assert features.descriptors.height == 120


def test_a_yes_no_descriptor_is_stored_as_the_number_the_comparison_tested():
    import polars as pl

    from drift.store.rows import long_descriptors

    long = long_descriptors(pl.DataFrame({"input_id": ["a", "b"], "exif_present": [True, False], "format": ["JPEG", "PNG"]}))
    rows_by = {(r["input_id"], r["name"]): (r["value"], r["label"]) for r in long.to_dicts()}
    assert rows_by[("a", "exif_present")] == (1.0, None) and rows_by[("b", "exif_present")] == (0.0, None)
    assert rows_by[("a", "format")] == (None, "JPEG")


def test_the_code_version_covers_the_compiled_walkers_source(tmp_path):
    import shutil
    from pathlib import Path

    import drift

    package = tmp_path / "drift"
    shutil.copytree(Path(drift.__file__).parent, package, ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    before = code_version(package)
    walker = package / "features" / "fingerprint" / "walk.pyx"
    walker.write_text(walker.read_text() + "\n# a change to the compiled walker\n")
    assert code_version(package) != before


def test_quiet_day_no_alert_drifted_day_names_segments(world):
    root, job = world
    config, _ = build_baseline(job)
    quiet = run_job(config, QUIET_DAY)
    assert quiet.summary["alerts"] == []
    assert all(not s["drifted"] for s in quiet.summary["segments"])

    drifted = run_job(config, DRIFT_DAY)
    by_segment = {(s["kind"], s["source"]): s for s in drifted.summary["segments"]}
    orders = by_segment[("payload", "orders")]
    assert orders["severity"] == "critical"
    assert any(f["target"] == "$.total type" and f["status"] == "drift" for f in orders["findings"])
    photos = by_segment[("image", "app")]
    assert photos["drifted"] and photos["severity"] == "warning"
    assert not by_segment[("document", "partner")]["drifted"]
    alerted = {(a["dedup_key"].split("/")[2], a["dedup_key"].split("/")[3]) for a in drifted.summary["alerts"]}
    assert alerted == {("payload", "orders"), ("image", "app")}
    # The file sink received each new alert once.
    lines = (root / "alerts.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["dedup_key"] for line in lines) == sorted(a["dedup_key"] for a in drifted.summary["alerts"])
    assert drifted.report_paths["md"].read_text().count("$.total type") >= 1


def test_rerun_replaces_the_run_and_sends_nothing_new(world):
    root, job = world
    config, _ = build_baseline(job)
    first = run_job(config, DRIFT_DAY)
    counts = {
        t: rows(config, f"SELECT count(*) FROM {t}")[0][0]
        for t in ("runs", "samples", "findings", "descriptors", "segments", "outbox")
    }
    second = run_job(config, DRIFT_DAY)
    assert first.run_id != second.run_id
    again = {t: rows(config, f"SELECT count(*) FROM {t}")[0][0] for t in counts}
    assert again == counts
    assert rows(config, "SELECT run_id FROM runs") == [(second.run_id,)]
    assert set(second.summary["alert_changes"].values()) == {"updated"}
    assert len((root / "alerts.jsonl").read_text().splitlines()) == len(first.summary["alerts"])


def test_a_clean_older_day_run_late_does_not_resolve_a_newer_days_alerts(world):
    """Alert state follows the windows: a backfill of the day before is not "the segment is clean now"
    (tests/test_alert_lifecycle.py has the rest of the lifecycle, test_alerts.py the resolve)."""
    _, job = world
    config, _ = build_baseline(job)
    run_job(config, DRIFT_DAY)
    result = run_job(config, QUIET_DAY)
    assert result.summary["alert_changes"] == {}
    assert rows(config, "SELECT DISTINCT state FROM alerts") == [("open",)]


def test_the_logs_extra_columns_are_kept_as_metadata(world):
    """README: "anything else: kept as metadata". It was computed, then dropped before the store."""
    root, job = world
    day = BASE_DAY + timedelta(days=3)
    log = write_day(root, day, seed=10)
    import polars as pl

    frame = pl.read_parquet(log)
    frame.with_columns(pl.lit("acme").alias("tenant"), pl.int_range(pl.len()).alias("attempt")).write_parquet(log)
    config, _ = build_baseline(job)
    result = run_job(config, QUIET_DAY)
    metas = rows(
        config,
        "SELECT meta->>'tenant', CAST(meta->>'attempt' AS INTEGER) FROM samples WHERE run_id = ? ORDER BY 2",
        [result.run_id],
    )
    assert metas and {m[0] for m in metas} == {"acme"} and metas[0][1] is not None


def test_stage_timings_and_samples_are_stored(world):
    _, job = world
    config, _ = build_baseline(job)
    result = run_job(config, QUIET_DAY)
    stages = dict(rows(config, "SELECT stage, items FROM stage_timings WHERE run_id = ?", [result.run_id]))
    assert set(stages) == {"sample", "open_and_featurize", "compare", "store", "deliver", "report"}
    assert stages["open_and_featurize"] == 120
    outcomes = rows(config, "SELECT outcome, count(*) FROM samples GROUP BY outcome")
    assert outcomes == [("ok", 120)]


def test_every_sampled_input_is_an_item_or_an_error(world, tmp_path):
    root, job = world
    outside = tmp_path.parent / "secret.txt"
    outside.write_text("not for the monitor")
    day = BASE_DAY + timedelta(days=3)
    extra = [
        {
            "input_id": "escape",
            "received_at": day.isoformat(),
            "kind": "document",
            "source": "partner",
            "uri": str(outside),
            "body": None,
        },
        {
            "input_id": "dotdot",
            "received_at": day.isoformat(),
            "kind": "image",
            "source": "app",
            "uri": "../../secret.txt",
            "body": None,
        },
        {
            "input_id": "gone",
            "received_at": day.isoformat(),
            "kind": "image",
            "source": "app",
            "uri": "../data/nope.jpg",
            "body": None,
        },
        {
            "input_id": "inline",
            "received_at": day.isoformat(),
            "kind": "payload",
            "source": "orders",
            "uri": None,
            "body": "{not json",
        },
    ]
    write_day(root, day, seed=10, extra_rows=extra)
    config, _ = build_baseline(job)
    result = run_job(config, QUIET_DAY)
    errors = dict(rows(config, "SELECT input_id, category FROM input_errors WHERE run_id = ?", [result.run_id]))
    assert errors == {"escape": "outside_roots", "dotdot": "outside_roots", "gone": "missing", "inline": "invalid_json"}
    sampled = rows(config, "SELECT count(*) FROM samples WHERE run_id = ?", [result.run_id])[0][0]
    items = rows(config, "SELECT sum(n_items) + sum(n_errors) FROM segments WHERE run_id = ?", [result.run_id])[0][0]
    assert sampled == items == 124


def test_bad_log_rows_are_counted_not_fatal(world):
    root, job = world
    day = BASE_DAY + timedelta(days=3)
    good = {"received_at": day.isoformat(), "kind": "payload", "source": "orders", "uri": None, "body": "{}"}
    extra = [
        {**good, "input_id": None},
        {**good, "input_id": "  "},
        {**good, "input_id": "t1", "received_at": "yesterday-ish"},
        {**good, "input_id": "k1", "kind": "audio"},
        {**good, "input_id": "u1", "kind": "image", "body": None},
        {**good, "input_id": "orders-20260304-0080"},  # duplicates an id from write_day
    ]
    write_day(root, day, seed=10, extra_rows=extra)
    config, _ = build_baseline(job)
    result = run_job(config, QUIET_DAY)
    rejects = {r["reason"]: r["n_rows"] for r in result.summary["log_rejects"]}
    assert rejects == {"missing_id": 2, "bad_time": 1, "unknown_kind": 1, "missing_uri": 1, "duplicate_id": 1}
    stored = dict(rows(config, "SELECT reason, n_rows FROM log_rejects WHERE run_id = ?", [result.run_id]))
    assert stored == rejects


def test_second_writer_gets_a_clear_error(world):
    _, job = world
    config, _ = build_baseline(job)
    with writer_lock(config.store.database):
        with pytest.raises(StoreLockedError, match="another run holds the store"):
            run_job(config, QUIET_DAY)
    # ...and from another process, through the CLI: exit 1 with a one-line reason.
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from drift.store import writer_lock
        with writer_lock(Path({str(config.store.database)!r})):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        done = subprocess.run(
            [sys.executable, "-m", "drift", "run", str(job), "--day", QUIET_DAY, "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert done.stderr.startswith("drift: error: another run holds the store")
    assert f"pid {holder.pid}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    run_job(config, QUIET_DAY)  # the lock is gone with its holder


def test_run_refuses_a_baseline_from_another_encoder(world, tiny_clip):
    _, job = world
    build_baseline(job)
    text = job.read_text().replace(f'pretrained = "{tiny_clip[1]}"', 'pretrained = "untrained"')
    job.write_text(text)
    config = load_job(job)
    with pytest.raises(BaselineError, match="image encoder differs from baseline 'ref'"):
        run_job(config, QUIET_DAY)


def test_run_without_baseline_says_how_to_build_one(world):
    _, job = world
    with pytest.raises(BaselineError, match="drift baseline build"):
        run_job(load_job(job), QUIET_DAY)


def test_damaged_baseline_is_refused(world):
    _, job = world
    config, _ = build_baseline(job)
    target = config.baseline_dir / "payload.descriptors.parquet"
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BaselineError, match="changed since the baseline was built"):
        run_job(config, QUIET_DAY)


def test_the_images_least_like_the_baseline_are_ranked_and_stored(world):
    _, job = world
    config, _ = build_baseline(job)
    result = run_job(config, DRIFT_DAY)
    ranked = rows(
        config,
        "SELECT rank, input_id FROM outliers WHERE run_id = ? AND kind = 'image' ORDER BY rank",
        [result.run_id],
    )
    assert [r[0] for r in ranked] == list(range(1, len(ranked) + 1)) and len(ranked) == 40
    # write_day degrades the even-numbered photos of the drifted day
    top = [int(input_id.rsplit("-", 1)[1]) for _, input_id in ranked[:15]]
    assert sum(i % 2 == 0 for i in top) >= 12


def test_run_embeddings_stream_to_parquet_beside_the_report(world):
    import pyarrow.parquet as pq

    _, job = world
    config, _ = build_baseline(job)
    result = run_job(config, QUIET_DAY)
    spool = result.report_paths["md"].parent / "embeddings" / f"image.{file_label('app')}.clip.parquet"
    table = pq.read_table(spool)
    assert table.num_rows == 40 and table.schema.field("vector").type.list_size == 32
    stale = spool.parent / "image.gone.clip.parquet"
    stale.write_bytes(b"old")
    run_job(config, QUIET_DAY)
    assert not stale.exists()  # a rerun replaces the run's files too
    before = pq.read_table(spool)

    # A rerun that fails (here: its baseline is gone) leaves the last run's embeddings as they were.
    config.baseline.name = "missing"
    with pytest.raises(BaselineError):
        run_job(config, QUIET_DAY)
    assert pq.read_table(spool).equals(before)
    # ...and the failed run's own version is gone: the current one and the one before remain.
    versions = {p.name for p in spool.parent.parent.glob(".embeddings.*")}
    assert spool.parent.resolve().name in versions and len(versions) == 2


def test_sources_whose_names_read_alike_as_file_names_keep_apart(world):
    """'cam one' and 'cam_one' once became the same spool file and crashed the run."""
    root, job = world
    day = BASE_DAY + timedelta(days=3)
    extra = [
        {
            "input_id": f"{source}-{i}",
            "received_at": (day + timedelta(hours=i)).isoformat(),
            "kind": "image",
            "source": source,
            "uri": f"../data/{day:%Y-%m-%d}/img_{i}.jpg",
            "body": None,
        }
        for source in ("cam one", "cam_one", "cam/one")
        for i in range(12)
    ]
    write_day(root, day, seed=10, extra_rows=extra)
    config, _ = build_baseline(job)
    result = run_job(config, QUIET_DAY)
    statuses = {s["source"]: s["status"] for s in result.summary["segments"] if s["source"].startswith("cam")}
    assert statuses == {"cam one": "no_baseline", "cam_one": "no_baseline", "cam/one": "no_baseline"}
    spooled = sorted(p.name for p in (result.report_paths["md"].parent / "embeddings").glob("image.cam*"))
    assert len(spooled) == 3 and len({file_label(s) for s in statuses}) == 3


def test_documents_new_template_and_scan_wave_are_named(tmp_path, tiny_clip):
    """A new template moves the document embeddings; a wave of scans moves the descriptors that
    say 'scan'. A day like the baseline moves neither (test_quiet_day_no_alert...)."""
    for d in range(3):
        write_day(tmp_path, BASE_DAY + timedelta(days=d), seed=d)
    write_day(tmp_path, BASE_DAY + timedelta(days=3), seed=20, new_template=0.4)
    write_day(tmp_path, BASE_DAY + timedelta(days=4), seed=21, scans=0.4)
    config, _ = build_baseline(write_job(tmp_path, tiny_clip))

    def drifted_findings(day):
        summary = run_job(config, day).summary
        segment = next(s for s in summary["segments"] if s["kind"] == "document")
        assert segment["drifted"]
        # each subject said once, though several methods found it (a descriptor's tail is said with
        # the descriptor); the alert's title is the headline
        subjects = {
            f["target"].removesuffix(" low tail").removesuffix(" high tail")
            for f in segment["findings"]
            if f["status"] == "drift"
        }
        assert len(segment["changes"]) == len(set(segment["changes"])) == len(subjects)
        for alert in summary["alerts"]:
            if "/document/" in alert["dedup_key"]:
                assert alert["title"].endswith(segment["changes"][0]), alert["title"]
        return summary["run_id"], {(f["check"], f["target"]) for f in segment["findings"] if f["status"] == "drift"}

    _, template = drifted_findings(QUIET_DAY)
    assert {("embedding", "text"), ("embedding", "page")} <= template
    run_id, scans = drifted_findings(DRIFT_DAY)
    assert {("descriptor", "text_layer"), ("descriptor", "image_area_share")} <= scans
    ranked = rows(
        config,
        "SELECT input_id FROM outliers WHERE run_id = ? AND kind = 'document' AND target = 'text' ORDER BY rank LIMIT 10",
        [run_id],
    )
    # The documents least like the baseline are the day's scans: its first 16 documents, which
    # follow the 40 images in the log (input ids partner-<day>-0040 .. 0055).
    assert len(ranked) == 10 and all(40 <= int(i.rsplit("-", 1)[1]) < 56 for (i,) in ranked)


def test_the_baseline_samples_more_than_a_night_and_each_segment_states_what_it_can_notice(world, tiny_clip):
    root, _ = world
    job = write_job(root, tiny_clip, extra="")
    job.write_text(job.read_text().replace("max_per_segment = 200", "max_per_segment = 30"))
    config, manifest = build_baseline(job)
    # five nights' worth by default: all 120 of each segment, where a night samples 30
    assert {s["n_sampled"] for s in manifest["segments"]} == {120}
    assert manifest["sampling"]["max_per_segment"] == 150
    drifted = run_job(config, DRIFT_DAY)
    orders = next(s for s in drifted.record.segments if s.source == "orders")
    assert orders.n_sampled == 30 and orders.detectable.n_ref == 120 and orders.detectable.n_cur == 30
    assert 0 < orders.detectable.never_seen < 1
    type_change = next(f for f in orders.findings if f.target == "$.total type")
    assert type_change.principle == "never_seen" or type_change.principle == "type"
    shown = [f for s in drifted.summary["segments"] for f in s["findings"]]
    assert shown and all(f["principle"] for f in shown)
    stored = rows(config, "SELECT source, detectable_share FROM segments ORDER BY source")
    assert dict(stored)["orders"] == pytest.approx(orders.detectable.never_seen)
    assert rows(config, "SELECT count(*) FROM findings WHERE principle IS NULL") == [(0,)]
    assert "would notice a wave of" in drifted.report_paths["md"].read_text()

    small = job.read_text().replace('name = "ref"', 'name = "small"\nmax_per_segment = 20')
    job.write_text(small)
    config, manifest = build_baseline(job)
    assert {s["n_sampled"] for s in manifest["segments"]} == {20}
    assert len(manifest["warnings"]) == 3 and "raise [baseline] max_per_segment" in manifest["warnings"][0]
