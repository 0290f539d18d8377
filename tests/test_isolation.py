"""Worker isolation: a hang, a memory bomb or a crash costs one classified error, never the run."""

from __future__ import annotations

import os
import time

from drift.isolation import Task, open_all
from drift.kinds.base import InputError, InputProblem


def ok(target, limits):
    return {"value": target}


def hang(target, limits):
    time.sleep(60)


def eat_memory(target, limits):
    return bytearray(4 * 1024**3)


def die(target, limits):
    os._exit(7)


def refuse(target, limits):
    raise InputProblem("corrupt", "bad bytes")


def surprise(target, limits):
    raise ZeroDivisionError("oops")


def test_failures_are_classified_and_order_is_kept():
    tasks = [
        Task("a", ok, 1, {}, 10),
        Task("hang", hang, None, {}, 1.5),
        Task("b", ok, 2, {}, 10),
        Task("bomb", eat_memory, None, {}, 10),
        Task("crash", die, None, {}, 10),
        Task("refused", refuse, None, {}, 10),
        Task("bug", surprise, None, {}, 10),
        Task("c", ok, 3, {}, 10),
    ]
    started = time.perf_counter()
    results = list(open_all(tasks, workers=2, memory_mb=1024, tasks_per_worker=100))
    assert time.perf_counter() - started < 30
    assert [r[0] for r in results] == [t.input_id for t in tasks]
    outcome = {i: (r.category if isinstance(r, InputError) else r["value"]) for i, r in results}
    assert outcome == {
        "a": 1,
        "hang": "timeout",
        "b": 2,
        "bomb": "too_large",
        "crash": "crashed",
        "refused": "corrupt",
        "bug": "unreadable",
        "c": 3,
    }
