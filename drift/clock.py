"""What each stage of a run costs (invariant 6): wall time, CPU time with the finished workers',
and peak memory, as the record's `Stage`s."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .record import Stage


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux; children are the worker processes that have exited.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


class StageClock:
    """Times the stages of one run or build, in the order they ran."""

    def __init__(self) -> None:
        self.stages: list[Stage] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, int]]:
        """Time a stage; the caller sets `counter["items"]` to the items it handled (and, for a stage
        that reads the feature cache, `cache_hits` and `cache_misses`)."""
        counter: dict[str, int] = {"items": 0}
        wall, cpu = time.perf_counter(), _cpu_seconds()
        try:
            yield counter
        finally:
            self.stages.append(
                Stage(
                    stage=name,
                    seconds=time.perf_counter() - wall,
                    items=counter["items"],
                    cpu_seconds=_cpu_seconds() - cpu,
                    peak_rss_mb=_peak_rss_mb(),
                    cache_hits=counter.get("cache_hits"),
                    cache_misses=counter.get("cache_misses"),
                )
            )
