"""Open untrusted inputs in worker processes with a time limit and a memory limit.

A decoder that hangs, loops, exhausts memory or crashes costs one classified error row, never the
run: pebble kills a worker whose task overruns its timeout and replaces it, RLIMIT_AS turns a
memory bomb into a MemoryError inside the worker, and a worker that dies (segfault, OOM kill)
surfaces as ProcessExpired. Workers are started with 'spawn' so they never inherit the parent's
torch threads or open DuckDB handles.

Small inputs travel in batches when their kind can open many at once (`Task.batch`): one task per
input costs a process round trip and a parent-side unpickling per input, which for JSON payloads
cost more than reading them. A batch whose worker times out, runs out of memory or dies is opened
again one input per task, so the input at fault gets its own classified error and the others their
results.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from .kinds.base import INTERNAL, InputError, InputProblem


@dataclass
class Task:
    input_id: str
    function: Callable[[Any, dict[str, Any]], dict[str, Any]]
    target: Any  # a path, or bytes for inline payloads
    limits: dict[str, Any]
    timeout: float
    # Opens a list of targets in one call (module-level, picklable): returns, per target, its
    # opened dict or the exception that input raised. Consecutive tasks sharing it are batched.
    batch: Callable[[list[Any], dict[str, Any]], list[Any]] | None = None


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


def classify(exc: BaseException, timeout: float) -> tuple[str, str, str | None]:
    """(category, message, traceback) of one input's failure.

    Categories come from exception types and checks we own: a kind raises InputProblem for what it
    knows is wrong with the input (it catches its libraries' exceptions on untrusted bytes by type),
    the pool knows timeouts, memory and dead workers. Anything else is a bug in drift's code,
    INTERNAL, with its traceback: it is never counted as an input error.
    """
    if isinstance(exc, InputProblem):
        return exc.category, exc.message, None
    if isinstance(exc, FutureTimeout):
        return "timeout", f"took longer than {timeout:g} s; the worker was killed", None
    if isinstance(exc, MemoryError):
        return "too_large", "exceeded the worker's memory limit", None
    if isinstance(exc, ProcessExpired):
        return "crashed", f"the worker died (exit code {exc.exitcode})", None
    # pebble hands the worker's traceback over as text; in a worker (batches) the exception has its own
    trace = getattr(exc, "traceback", None) or "".join(traceback.format_exception(exc))
    return INTERNAL, f"{type(exc).__name__}: {exc}"[:500], trace[-8000:]


_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)  # the parent's own end, never an input's failure


def _open_batch(batch: Callable, targets: list[Any], limits: dict[str, Any], timeout: float) -> list[Any]:
    """Worker side: every input's opened dict, or its classified (category, message)."""
    return [classify(item, timeout) if isinstance(item, BaseException) else item for item in batch(targets, limits)]


def _batches(tasks: Iterable[Task], size: int) -> Iterator[list[Task]]:
    """Consecutive tasks that can be opened in one call, at most `size` at a time."""
    group: list[Task] = []
    for task in tasks:
        if group and (
            task.batch is None or task.batch is not group[0].batch or task.limits is not group[0].limits or len(group) >= size
        ):
            yield group
            group = []
        group.append(task)
    if group:
        yield group


def open_all(
    tasks: Iterable[Task], *, workers: int, memory_mb: int, tasks_per_worker: int, window: int = 64, batch_size: int = 32
) -> Iterator[tuple[str, dict[str, Any] | InputError]]:
    """Yield (input_id, opened dict or InputError) for every task, in task order.

    At most `window` worker calls are in flight, so memory stays bounded however many inputs there
    are. Tasks with a `batch` function are opened up to `batch_size` per call.
    """
    context = multiprocessing.get_context("spawn")
    pool = ProcessPool(
        max_workers=workers,
        max_tasks=tasks_per_worker,
        initializer=_limit_worker,
        initargs=(memory_mb,),
        context=context,
    )

    def schedule(group: list[Task]) -> Any:
        first = group[0]
        if first.batch is None:
            return pool.schedule(first.function, args=(first.target, first.limits), timeout=first.timeout)
        timeout = sum(task.timeout for task in group)
        return pool.schedule(
            _open_batch, args=(first.batch, [task.target for task in group], first.limits, first.timeout), timeout=timeout
        )

    def one(task: Task, future: Any) -> tuple[str, dict[str, Any] | InputError]:
        try:
            return task.input_id, future.result()
        except _FATAL:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure of one input is classified
            return task.input_id, InputError(task.input_id, *classify(exc, task.timeout))

    try:
        pending: list[tuple[list[Task], Any]] = []
        groups = _batches(tasks, batch_size)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                group = next(groups, None)
                if group is None:
                    exhausted = True
                    break
                pending.append((group, schedule(group)))
            if not pending:
                break
            group, future = pending.pop(0)
            if group[0].batch is None:
                yield one(group[0], future)
                continue
            try:
                results = future.result()
            except _FATAL:
                raise
            except BaseException:  # noqa: BLE001 - the batch is opened again, one by one
                alone = [
                    (task, pool.schedule(task.function, args=(task.target, task.limits), timeout=task.timeout)) for task in group
                ]
                for task, single in alone:
                    yield one(task, single)
                continue
            for task, result in zip(group, results):
                if isinstance(result, tuple):
                    yield task.input_id, InputError(task.input_id, *result)
                else:
                    yield task.input_id, result
    finally:
        pool.stop()
        pool.join(timeout=10)
