"""Progress of long runs on stderr: rich progress bars with stage names, counts and time left when known.

Shown only when stderr is a terminal, and only once a run has lasted `delay`
seconds (the environment variable CRMRULES_PROGRESS_DELAY, default 0.5): a quick
command prints nothing, and output to a pipe or file never has bars in it.

    from crmrules.progress import task

    with task("reading data", total=len(files)) as reading:
        for file in files:
            with task(f"checking {file}", watch=connection):   # DuckDB's own progress of the query
                ...
            reading.advance()

Tasks nest: every open task is one line of the same display, removed when its
block ends; the display goes away when the last task ends. `progress(label)` is
the plain spinner of a block.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_POLL = 0.2  # seconds between reads of a watched engine's progress


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("CRMRULES_PROGRESS_DELAY", "0.5")))
    except ValueError:
        return 0.5


class Task:
    """One line of the display: `advance(n)` and `update(total=, completed=, description=)`; does nothing when
    no display is shown (stderr not a terminal)."""

    def __init__(self, display: _Display | None = None, key=None):
        self._display, self._key = display, key
        self._done = 0

    def step(self, note: str = "", remaining: int | None = None) -> None:
        """One step done, `note` shown after the counts; with `remaining`, the total becomes the steps done and
        those left (a loop whose work grows as it goes: the time left follows)."""
        self._done += 1
        if self._display is not None:
            total = self._done + remaining if remaining is not None else None
            changes = {"total": total} if total is not None else {}
            self._display.progress.update(self._key, completed=self._done, note=note, **changes)

    def advance(self, amount: float = 1) -> None:
        if self._display is not None:
            self._display.progress.advance(self._key, amount)

    def update(self, **changes) -> None:
        """`total`, `completed`, `description`, or any field a column shows (`note`: text after the counts)."""
        if self._display is not None:
            self._display.progress.update(self._key, **changes)


class _Display:
    """The rich Progress every open task is a line of, started once the first task has run for the delay."""

    def __init__(self, delay: float):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        count_column, remaining_column = _columns()
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=30), count_column(),
            TimeElapsedColumn(), remaining_column(), TextColumn("{task.fields[note]}"),
            console=Console(stderr=True), transient=True, redirect_stdout=False, redirect_stderr=False)
        self.open = 0
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self._timer = threading.Thread(target=self._start_later, args=(delay,), daemon=True)
        self._timer.start()

    def _start_later(self, delay: float) -> None:
        if self._ended.wait(delay):
            return
        with self._lock:
            if not self._ended.is_set():
                self.progress.start()
                self._started = True

    def show(self) -> None:
        with self._lock:
            if self._started:
                self.progress.refresh()

    def end(self) -> None:
        with self._lock:
            self._ended.set()
            if self._started:
                self.progress.stop()
        self._timer.join()


_display: _Display | None = None  # the one display of the process, while a task is open
_display_lock = threading.Lock()


_silenced = 0  # open `silenced` blocks, in any thread (a REPL's live count runs in its own)


def showing() -> bool:
    """Whether progress is shown at all: stderr is a terminal no full-screen program holds (`silenced`)."""
    if _silenced:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def silenced() -> Iterator[None]:
    """No progress inside the block: an interactive program (the REPL) draws on the terminal itself, and a
    display drawn over it would garble its screen."""
    global _silenced
    with _display_lock:
        _silenced += 1
    try:
        yield
    finally:
        with _display_lock:
            _silenced -= 1


@contextmanager
def task(label: str, total: float | None = None, watch=None, delay: float | None = None) -> Iterator[Task]:
    """A line of progress for the block: `label`, a bar (of `total` steps when known) and the time taken;
    with `watch` (a DuckDB connection) the bar follows the percentage of the query it runs in the block,
    with the time left. `delay` (default CRMRULES_PROGRESS_DELAY) applies when no other task is open."""
    global _display
    if not showing():
        yield Task()
        return
    with _display_lock:
        if _display is None:
            _display = _Display(_delay() if delay is None else delay)
        display = _display
        display.open += 1
        key = display.progress.add_task(label, total=total, note="")
        display.show()  # every stage is seen at least once, however short
    stop_watching = _watch(display, key, watch)
    try:
        yield Task(display, key)
    finally:
        stop_watching()
        with _display_lock:
            display.progress.remove_task(key)
            display.open -= 1
            if display.open == 0:
                display.end()
                _display = None


def _watch(display: _Display, key, connection):
    """Follow a DuckDB connection's query progress in the task's bar until the returned function is called."""
    poll = getattr(connection, "query_progress", None)
    if poll is None:
        return lambda: None
    try:
        # DuckDB measures a query's progress only with its progress bar on; its own printing stays off
        connection.execute("SET enable_progress_bar = true")
        connection.execute("SET enable_progress_bar_print = false")
    except Exception:  # noqa: BLE001 - a connection that cannot say how far it is: no percentage, no harm
        return lambda: None
    done = threading.Event()

    def follow():
        while not done.wait(_POLL):
            try:
                percent = poll()
            except Exception:  # noqa: BLE001 - the query ended between two reads
                percent = None
            if percent is not None and percent >= 0:
                display.progress.update(key, total=100, completed=min(percent, 100), percent=True)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()

    def stop():
        done.set()
        thread.join()

    return stop


@functools.cache
def _columns():
    """The count and time-left columns (classes built on first use: importing this module imports no rich)."""
    from rich.progress import ProgressColumn, TimeRemainingColumn
    from rich.text import Text

    class CountColumn(ProgressColumn):
        """`37%` for a watched query, `3/5` with a total, `3` steps without one."""

        def render(self, task) -> Text:
            if task.fields.get("percent"):
                return Text(f"{task.completed:3.0f}%")
            if task.total is not None:
                return Text(f"{task.completed:,.0f}/{task.total:,.0f}")
            return Text(f"{task.completed:,.0f}" if task.completed else "")

    class RemainingColumn(TimeRemainingColumn):
        """The time left, only when a total makes it known."""

        def render(self, task) -> Text:
            if task.total is None or not task.completed:
                return Text("")
            return Text("left ") + super().render(task)

    return CountColumn, RemainingColumn


@contextmanager
def progress(label: str, delay: float | None = None):
    """A line with `label` on stderr if the block runs longer than `delay` seconds (default
    CRMRULES_PROGRESS_DELAY) and stderr is a terminal; the stages inside it (`task`) show below it."""
    with task(label, delay=delay):
        yield
