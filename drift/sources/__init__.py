"""Where inputs live, and the night's sample of them: the input log (log.py) and objects in
buckets (objects.py)."""

from __future__ import annotations

from ..config import JobConfig
from ..locations import is_remote
from .log import LogSample, Window, connect, open_log, sample_window
from .objects import object_store


def sample_log(config: JobConfig, window: Window, max_per_segment: int | None = None) -> LogSample:
    """The window's sample, read where the log lies (a folder, or a bucket through [inputs.s3]):
    `max_per_segment` per segment, [sampling]'s unless given (a baseline samples more)."""
    filesystem = object_store(config.inputs.s3) if is_remote(config.inputs.log) else None
    con = connect(config.inputs.memory_limit, filesystem)
    try:
        log_source = open_log(con, config.inputs.log, config.inputs.date_partition, filesystem)
        return sample_window(con, log_source, window, max_per_segment or config.sampling.max_per_segment, config.sampling.seed)
    finally:
        con.close()
