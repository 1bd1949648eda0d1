"""A progress indicator for loads and queries that take more than a second."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager


@contextmanager
def progress(label: str, delay: float = 1.0):
    """Show a spinner on stderr if the block runs longer than `delay` seconds (and stderr is a terminal)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    done = threading.Event()
    console = Console(stderr=True)

    def spin():
        if done.wait(delay):
            return
        with console.status(label):
            done.wait()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
