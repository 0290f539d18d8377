"""Progress bars on a terminal; silence under cron (no TTY) or with --quiet."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


class Progress:
    def __init__(self, enabled: bool | None = None, quiet: bool = False):
        self.console = Console(stderr=True)
        self.enabled = (sys.stderr.isatty() if enabled is None else enabled) and not quiet

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if not self.enabled or total == 0:
            yield lambda n=1: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with RichProgress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n=1: progress.advance(task, n)

    @contextmanager
    def status(self, text: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with self.console.status(text):
            yield


QUIET = Progress(enabled=False)
