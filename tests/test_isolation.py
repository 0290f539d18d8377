"""Worker isolation: a hang, a memory bomb or a crash costs one classified error, never the run."""

from __future__ import annotations

import os
import time

from drift.features.isolation import Task, open_all
from drift.features.kinds.base import InputError, InputProblem


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
        "bug": "internal",
        "c": 3,
    }


def by_name(target: str, limits) -> dict:
    name, _, value = target.partition(":")
    return {"ok": ok, "hang": hang, "die": die, "refuse": refuse, "bug": surprise}[name](int(value or 0), limits)


def batch_by_name(targets: list[str], limits) -> list:
    """A kind's batch function: per target its opened dict, or the exception it raised."""
    results = []
    for target in targets:
        try:
            results.append({**by_name(target, limits), "batched": True})
        except Exception as exc:  # noqa: BLE001
            results.append(exc)
    return results


def test_batches_open_many_inputs_per_call_and_a_failed_batch_is_opened_one_by_one():
    limits: dict = {}
    names = ["ok:1", "refuse", "bug", "ok:2", "die", "ok:3", "hang", "ok:4"]
    tasks = [Task(name, by_name, name, limits, 3, batch_by_name) for name in names]
    started = time.perf_counter()
    results = list(open_all(tasks, workers=2, memory_mb=1024, tasks_per_worker=100, batch_size=4))
    assert time.perf_counter() - started < 30
    assert [r[0] for r in results] == names
    outcome = {i: (r.category if isinstance(r, InputError) else (r["value"], r.get("batched", False))) for i, r in results}
    # The first batch opened in one call; the second lost its worker to "die" and was opened again
    # one input per task: the crash and the hang are each classified, the others still opened.
    assert outcome == {
        "ok:1": (1, True),
        "refuse": "corrupt",
        "bug": "internal",
        "ok:2": (2, True),
        "die": "crashed",
        "ok:3": (3, False),
        "hang": "timeout",
        "ok:4": (4, False),
    }


def test_a_payload_worker_imports_no_frames_library_and_no_other_kind():
    # Every worker start pays for its imports (0.35 s with polars and the other kinds' decoders).
    import subprocess
    import sys

    heavy = ("polars", "pyarrow", "PIL", "pypdfium2", "pypdf", "torch", "open_clip", "scipy", "sklearn")
    code = (
        f"import sys, drift.features.isolation, drift.features.kinds.payload; print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
