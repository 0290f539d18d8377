"""Running jobs on their schedules: the APScheduler daemon, backfills, and the dead man's switch.

`drift schedule jobs/` runs each job file's cron schedule (in the job's timezone, UTC unless it
says otherwise). One instance of a job runs at a time (APScheduler's max_instances, and the
store's writer lock across processes); missed fire times are coalesced into one run; SIGTERM and
SIGINT stop the scheduler after the running job has finished. Job files are re-read at every run,
so an edit takes effect at the next fire time without a restart.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from .config import JobConfig, load_job
from .errors import ConfigError, DriftError

log = logging.getLogger("drift.schedule")

# A job whose last fire time is older than this and has no run since counts as late.
DEFAULT_GRACE = timedelta(hours=2)


def job_files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    files = sorted(p for p in folder.glob("*.toml") if not p.name.endswith(".example.toml"))
    if not files:
        raise ConfigError(f"{folder}: no job files (*.toml) to schedule")
    return files


def trigger(config: JobConfig):
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(config.job.schedule, timezone=ZoneInfo(config.job.timezone))
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{config.path}: [job] schedule {config.job.schedule!r}: {exc}") from None


def last_fire_time(config: JobConfig, now: datetime) -> datetime | None:
    """The latest scheduled time at or before `now` (searching back eight days)."""
    cron = trigger(config)
    fire, last = cron.get_next_fire_time(None, now - timedelta(days=8)), None
    while fire is not None and fire <= now:
        last = fire
        fire = cron.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return last


def run_scheduled(path: Path, runner: Callable | None = None) -> None:
    """One scheduled run: yesterday's window. Errors are logged, never raised into the scheduler."""
    from .pipeline import run_job

    try:
        config = load_job(path)
        result = (runner or run_job)(config, None)
        log.info("%s: run %s completed, %d alert(s)", config.name, result.run_id, len(result.summary["alerts"]))
    except DriftError as exc:
        log.error("%s: %s", path, exc)


def serve(folder: Path, *, blocking: bool = True, runner: Callable | None = None):
    """Start the scheduler for every job file in `folder`; returns it when not blocking (tests)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=timezone.utc)

    def stop(signum, frame):  # noqa: ARG001
        log.info("signal %s: stopping after the running job", signum)
        if not scheduler.running:  # still starting up: nothing runs yet
            raise SystemExit(0)
        scheduler.shutdown(wait=True)

    if blocking:  # before anything else, so that a signal during start-up is handled too
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    for path in job_files(folder):
        config = load_job(path)
        scheduler.add_job(
            run_scheduled,
            trigger(config),
            args=[path, runner],
            id=config.name,
            name=f"drift run {path}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=6 * 3600,
            replace_existing=True,
        )
        log.info("scheduled %s: %s (%s)", config.name, config.job.schedule, config.job.timezone)
    scheduler.start()
    return scheduler


def days(start: date, end: date) -> list[str]:
    if end <= start:
        raise DriftError(f"empty range: --end {end} is not after --start {start}")
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days)]


@dataclass
class JobStatus:
    job: str
    path: Path
    last_window: str | None
    last_finished: datetime | None
    due_since: datetime | None
    late: bool
    open_alerts: int
    undelivered: int

    @property
    def state(self) -> str:
        if self.last_finished is None:
            return "never run"
        return "LATE" if self.late else "ok"


def job_status(path: Path, now: datetime | None = None, grace: timedelta = DEFAULT_GRACE) -> JobStatus:
    from .store import connect_reader, job_health

    config = load_job(path)
    now = now or datetime.now(timezone.utc)
    due = last_fire_time(config, now - grace)
    last_window = last_finished = None
    open_alerts = undelivered = 0
    if config.store.database.exists():
        con = connect_reader(config.store.database)
        try:
            health = job_health(con, config.name)
        finally:
            con.close()
        last_window, last_finished = health["last_window"], health["last_finished"]
        open_alerts, undelivered = health["open_alerts"], health["undelivered"]
    late = last_finished is None or (due is not None and last_finished < due)
    return JobStatus(config.name, path, last_window, last_finished, due, late, open_alerts, undelivered)
