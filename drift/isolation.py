"""Open untrusted inputs in worker processes with a time limit and a memory limit.

A decoder that hangs, loops, exhausts memory or crashes costs one classified error row, never the
run: pebble kills a worker whose task overruns its timeout and replaces it, RLIMIT_AS turns a
memory bomb into a MemoryError inside the worker, and a worker that dies (segfault, OOM kill)
surfaces as ProcessExpired. Workers are started with 'spawn' so they never inherit the parent's
torch threads or open DuckDB handles.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import warnings
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from pebble import ProcessExpired, ProcessPool

from .kinds.base import InputError, InputProblem


@dataclass
class Task:
    input_id: str
    function: Callable[[Any, dict[str, Any]], dict[str, Any]]
    target: Any  # a path, or bytes for inline payloads
    limits: dict[str, Any]
    timeout: float


def _limit_worker(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Ctrl-C goes to the parent, which shuts the pool down; workers must not die mid-task on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Decoders warn about every odd file, from Python and from C (libtiff writes straight to fd 2);
    # what matters becomes a classified error row, so the noise stays out of cron logs.
    warnings.simplefilter("ignore")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def classify(exc: BaseException, timeout: float) -> tuple[str, str]:
    if isinstance(exc, InputProblem):
        return exc.category, exc.message
    if isinstance(exc, FutureTimeout):
        return "timeout", f"took longer than {timeout:g} s; the worker was killed"
    if isinstance(exc, MemoryError):
        return "too_large", "exceeded the worker's memory limit"
    if isinstance(exc, ProcessExpired):
        return "crashed", f"the worker died (exit code {exc.exitcode})"
    return "unreadable", f"{type(exc).__name__}: {exc}"[:500]


def open_all(
    tasks: Iterable[Task], *, workers: int, memory_mb: int, tasks_per_worker: int, window: int = 64
) -> Iterator[tuple[str, dict[str, Any] | InputError]]:
    """Yield (input_id, opened dict or InputError) for every task, in task order.

    At most `window` tasks are in flight, so memory stays bounded however many inputs there are.
    """
    context = multiprocessing.get_context("spawn")
    pool = ProcessPool(
        max_workers=workers,
        max_tasks=tasks_per_worker,
        initializer=_limit_worker,
        initargs=(memory_mb,),
        context=context,
    )
    try:
        pending: list[tuple[Task, Any]] = []
        iterator = iter(tasks)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                task = next(iterator, None)
                if task is None:
                    exhausted = True
                    break
                future = pool.schedule(task.function, args=(task.target, task.limits), timeout=task.timeout)
                pending.append((task, future))
            if not pending:
                break
            task, future = pending.pop(0)
            try:
                yield task.input_id, future.result()
            except BaseException as exc:  # noqa: BLE001 - every failure of one input is classified
                if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                    raise
                category, message = classify(exc, task.timeout)
                yield task.input_id, InputError(task.input_id, category, message)
    finally:
        pool.stop()
        pool.join(timeout=10)
