"""Scheduled runs: the daemon, backfills in order, and `drift status` as a dead man's switch."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
from typer.testing import CliRunner

from drift.cli import app
from drift.config import load_job
from drift.schedule import job_status, last_fire_time, serve
from drift.store import connect_writer

from .test_pipeline import build_baseline

runner = CliRunner()


def test_last_fire_time_follows_cron_and_timezone(world):
    _, job = world
    job.write_text(job.read_text().replace('name = "t"', 'name = "t"\nschedule = "15 2 * * *"\ntimezone = "Europe/Berlin"'))
    config = load_job(job)
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert last_fire_time(config, now) == datetime(2026, 3, 10, 1, 15, tzinfo=UTC)  # 02:15 CET
    assert last_fire_time(config, datetime(2026, 3, 10, 1, 0, tzinfo=UTC)) == datetime(2026, 3, 9, 1, 15, tzinfo=UTC)


def test_status_is_a_dead_mans_switch(world):
    _, job = world
    never = runner.invoke(app, ["status", str(job)])
    assert never.exit_code == 1 and "never run" in never.stdout and "missed their schedule: t" in never.stderr
    build_baseline(job)
    assert runner.invoke(app, ["backfill", str(job), "--start", "2026-03-04", "--end", "2026-03-06", "--quiet"]).exit_code == 0
    fresh = job_status(job)  # just ran: nothing is due since
    assert not fresh.late and fresh.last_window == "2026-03-05"
    assert runner.invoke(app, ["status", str(job)]).exit_code == 0
    later = job_status(job, now=datetime.now(UTC) + timedelta(days=2))
    assert later.late and later.state == "LATE"


def test_backfill_runs_days_in_order_and_reports_failures(world):
    root, job = world
    build_baseline(job)
    result = runner.invoke(app, ["backfill", str(job), "--start", "2026-03-04", "--end", "2026-03-06", "--quiet"])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["2026-03-04", "2026-03-05"]
    con = duckdb.connect(str(root / "drift.duckdb"), read_only=True)
    windows = con.execute("SELECT window_start::DATE::VARCHAR FROM runs ORDER BY started_at").fetchall()
    con.close()
    assert windows == [("2026-03-04",), ("2026-03-05",)]
    bad = runner.invoke(app, ["backfill", str(job), "--start", "2026-03-06", "--end", "2026-03-04"])
    assert bad.exit_code == 1 and "empty range" in bad.stderr


def test_scheduler_registers_each_job_once_at_its_time_in_its_time_zone(world, tmp_path):
    """What the daemon will do, not what it was told: each job file once (examples skipped), and the
    next run at 04:00 in the job's own time zone, whatever the machine's."""
    _, job = world
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "a.toml").write_text(
        job.read_text().replace('name = "t"', 'name = "a"\nschedule = "0 4 * * *"\ntimezone = "America/New_York"')
    )
    (folder / "b.toml").write_text(job.read_text().replace('name = "t"', 'name = "b"'))
    (folder / "ignored.example.toml").write_text("not even toml [")
    scheduler = serve(folder, blocking=False, runner=lambda config, day: None)
    try:
        jobs = {j.id: j for j in scheduler.get_jobs() if j.id != "drift:rescan"}
        assert set(jobs) == {"a", "b"}
        local = jobs["a"].next_run_time.astimezone(ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) == (4, 0)
        assert jobs["a"].next_run_time.astimezone(UTC).hour in (8, 9)  # EDT or EST
        assert jobs["b"].next_run_time.astimezone(UTC).hour == 3  # the default: 03:00 UTC
    finally:
        scheduler.shutdown(wait=False)


def test_schedule_daemon_stops_cleanly_on_sigterm(world, tmp_path):
    _, job = world
    daemon = subprocess.Popen([sys.executable, "-m", "drift", "schedule", str(job)], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    lines = []
    while time.time() < deadline:
        lines.append(daemon.stderr.readline())
        if "scheduled t" in lines[-1] or "Scheduler started" in lines[-1]:
            break
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, "".join(lines) + daemon.stderr.read()


def test_a_fire_time_missed_while_the_daemon_was_down_runs_once_at_start(world, tmp_path):
    """APScheduler's memory store computes the next run from now: without our catch-up, the night
    the daemon was down for is simply skipped."""
    from drift.config import load_job

    _, job = world
    folder = tmp_path / "jobs"
    folder.mkdir()
    path = folder / "t.toml"
    path.write_text(job.read_text().replace('name = "t"', 'name = "t"\nschedule = "0 3 * * *"'))
    config = load_job(path)
    con = connect_writer(config.store.database)  # the job ran, and last finished three days ago
    then = datetime.now(UTC) - timedelta(days=3)
    con.execute(
        "INSERT INTO runs VALUES ('t-1', 't', ?, ?, 'completed', false, 'none', 'ref', NULL, 'x', ?, ?, 10, 0, '{}')",
        [then - timedelta(days=1), then, then, then],
    )
    con.close()
    calls = []
    scheduler = serve(folder, blocking=False, runner=lambda config, day: calls.append(config.name))
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not calls:
            time.sleep(0.1)
        time.sleep(1)
        assert calls == ["t"]
    finally:
        scheduler.shutdown(wait=True)


def test_new_removed_and_edited_job_files_are_picked_up_without_a_restart(world, tmp_path):
    _, job = world
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "a.toml").write_text(job.read_text().replace('name = "t"', 'name = "a"\nschedule = "0 4 * * *"'))
    scheduler = serve(folder, blocking=False, runner=lambda config, day: None, rescan_s=0.3)

    def jobs():
        return {j.id: j for j in scheduler.get_jobs() if j.id != "drift:rescan"}

    def eventually(check):
        deadline = time.time() + 20
        while time.time() < deadline and not check():
            time.sleep(0.1)
        return check()

    try:
        assert set(jobs()) == {"a"}
        (folder / "b.toml").write_text(job.read_text().replace('name = "t"', 'name = "b"'))
        assert eventually(lambda: set(jobs()) == {"a", "b"})
        (folder / "a.toml").write_text(job.read_text().replace('name = "t"', 'name = "a"\nschedule = "30 5 * * *"'))
        assert eventually(lambda: "a" in jobs() and jobs()["a"].next_run_time.hour == 5)
        assert jobs()["a"].next_run_time.minute == 30
        (folder / "b.toml").write_text("[job\nbroken")  # a broken edit keeps the last good schedule
        time.sleep(1)
        assert set(jobs()) == {"a", "b"}
        (folder / "b.toml").unlink()
        assert eventually(lambda: set(jobs()) == {"a"})
    finally:
        scheduler.shutdown(wait=False)
