"""Running jobs on their schedules: the APScheduler daemon, backfills, and the dead man's switch.

`drift schedule jobs/` runs each job file's cron schedule (in the job's timezone, UTC unless it
says otherwise). One instance of a job runs at a time (APScheduler's max_instances, and the
store's writer lock across processes). SIGTERM and SIGINT stop the scheduler after the running job
has finished.

APScheduler's in-memory store knows nothing of the time before the daemon started, so two things
are ours: fire times missed while the daemon was down (or while a run overran) are coalesced into
one run at start-up, decided from the store (no completed run since the job's last fire time);
and the folder is read again every RESCAN_S seconds, so a new job file is scheduled, a removed one
unscheduled and an edited schedule or time zone takes effect, without a restart. Each run reads
its job file afresh.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .config import JobConfig, load_job
from .errors import ConfigError, DriftError

log = logging.getLogger("drift.schedule")

# A job whose last fire time is older than this and has no run since counts as late.
DEFAULT_GRACE = timedelta(hours=2)
RESCAN_S = 60.0


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
        log.info("%s: run %s completed, %d alert(s)", config.name, result.run_id, len(result.record.alerts))
    except DriftError as exc:
        log.error("%s: %s", path, exc)


def serve(folder: Path, *, blocking: bool = True, runner: Callable | None = None, rescan_s: float = RESCAN_S):
    """Start the scheduler for every job file in `folder`; returns it when not blocking (tests)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=UTC)

    def stop(signum, frame):  # noqa: ARG001
        log.info("signal %s: stopping after the running job", signum)
        if not scheduler.running:  # still starting up: nothing runs yet
            raise SystemExit(0)
        scheduler.shutdown(wait=True)

    if blocking:  # before anything else, so that a signal during start-up is handled too
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    known: dict[Path, tuple[str, str, str]] = {}  # job file -> (job id, schedule, time zone)
    sync_jobs(scheduler, folder, known, runner, catch_up=True)
    scheduler.add_job(
        sync_jobs,
        "interval",
        seconds=rescan_s,
        args=[scheduler, folder, known, runner],
        id="drift:rescan",
        name=f"re-read {folder}",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler


def sync_jobs(scheduler, folder: Path, known: dict, runner: Callable | None, catch_up: bool = False) -> None:
    """Make the scheduler's jobs match the job files in `folder`: add new ones, drop removed ones,
    reschedule edited ones. At start-up (`catch_up`), a job that missed a fire time runs once now."""
    try:
        paths = set(job_files(folder))
    except ConfigError as exc:
        log.error("%s", exc)
        paths = set()
    for path in sorted(set(known) - paths):
        job_id, _, _ = known.pop(path)
        scheduler.remove_job(job_id)
        log.info("unscheduled %s: %s is gone", job_id, path)
    for path in sorted(paths):
        try:
            config = load_job(path)
            cron = trigger(config)
        except DriftError as exc:  # a broken edit keeps the job's last good schedule
            log.error("%s", exc)
            continue
        wanted = (config.name, config.job.schedule, config.job.timezone)
        if known.get(path) == wanted:
            continue
        if path in known:
            scheduler.remove_job(known[path][0])
        scheduler.add_job(
            run_scheduled,
            cron,
            args=[path, runner],
            id=config.name,
            name=f"drift run {path}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=6 * 3600,
            replace_existing=True,
        )
        known[path] = wanted
        log.info("scheduled %s: %s (%s)", config.name, config.job.schedule, config.job.timezone)
        if catch_up and missed_a_run(path):
            scheduler.add_job(
                run_scheduled,
                args=[path, runner],
                id=f"{config.name}:catch-up",
                name=f"drift run {path} (missed while the daemon was down)",
                max_instances=1,
            )
            log.info("%s missed its last fire time while the daemon was down: running it now", config.name)


def missed_a_run(path: Path) -> bool:
    """Did the job's last fire time pass with no completed run since (a daemon that was down)?
    A job that has never run has missed nothing: its first run is at its next fire time."""
    status = job_status(path, grace=timedelta(0))
    return status.due_since is not None and status.last_finished is not None and status.last_finished < status.due_since


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
    now = now or datetime.now(UTC)
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
