"""How much memory the engines crmrules opens itself may use, and where they spill what does not fit.

`Resources` is set once for a run (`using`, the CLI's `--memory-limit` and
`--spill-dir`) and read where a DuckDB connection is opened (`duckdb_connection`):
no function in between passes it on. DuckDB keeps under its memory limit by
writing intermediate results (hash tables, sorts) to the spill directory.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from crmrules.errors import DataError

# what DuckDB's memory_limit takes: a number and a unit (1000- or 1024-based)
SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Resources:
    """Limits for the engines crmrules opens: `memory_limit` such as "4GB" (None: DuckDB's own default, 80% of
    RAM) and `spill_dir`, the directory under which a private spill directory is made for each connection
    (None: the system's temporary directory)."""

    memory_limit: str | None = None
    spill_dir: str | Path | None = None

    def __post_init__(self):
        if self.memory_limit is not None and not SIZE.fullmatch(str(self.memory_limit)):
            raise ValueError(f"memory limit {self.memory_limit!r}: give a size such as 4GB or 512MB")


_current: ContextVar[Resources | None] = ContextVar("crmrules_resources", default=None)


_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def shared(resources: Resources, parts: int) -> Resources:
    """The resources of one of `parts` engines running at once: each gets its share of the memory limit,
    so together they keep to it."""
    if resources.memory_limit is None or parts <= 1:
        return resources
    number, unit = SIZE.fullmatch(str(resources.memory_limit)).groups()
    size = float(number) * _UNITS[unit.upper()]
    return Resources(f"{max(1, int(size // parts))}B", resources.spill_dir)


def current() -> Resources:
    """The resources of the run in progress (`using`), or the defaults."""
    return _current.get() or Resources()


@contextmanager
def using(resources: Resources) -> Iterator[Resources]:
    """Every engine opened inside the block keeps to `resources`."""
    token = _current.set(resources)
    try:
        yield resources
    finally:
        _current.reset(token)


@contextmanager
def limits(memory_limit: str | None = None, spill_dir: str | Path | None = None) -> Iterator[Resources]:
    """The Python API's `--memory-limit` and `--spill-dir`: every run inside the block keeps to them.

        with crmrules.limits(memory_limit="4GB", spill_dir="/mnt/scratch"):
            rules.run("data/")
    """
    with using(Resources(memory_limit, spill_dir)) as resources:
        yield resources


def open_duckdb(database: str = ":memory:", read_only: bool = False, resources: Resources | None = None):
    """(A DuckDB connection keeping to the resources, its spill directory): close the one, then `cleanup()`
    the other. DuckDB's own default for an in-memory database is `.tmp` in the working directory: each
    in-memory database gets a private directory instead; a database file one directory per process, as
    DuckDB shares one instance among a process's connections to a file and refuses another configuration."""
    import duckdb

    resources = resources or current()
    parent = Path(resources.spill_dir) if resources.spill_dir is not None else None
    try:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        spill = _process_spill(parent) if database != ":memory:" else \
            tempfile.TemporaryDirectory(prefix="crmrules-spill-", dir=parent)
    except OSError as error:
        raise DataError(f"spill directory {parent}: {error.strerror}",
                        hint="give --spill-dir a directory you can write to") from None
    config = {"temp_directory": spill.name}
    if resources.memory_limit is not None:
        config["memory_limit"] = resources.memory_limit.strip()
    try:
        connection = duckdb.connect(database, read_only=read_only, config=config)
        # DuckDB's own progress bar would print on stdout; `progress` shows its measure on stderr instead
        connection.execute("SET enable_progress_bar = true")
        connection.execute("SET enable_progress_bar_print = false")
        return connection, spill
    except BaseException:
        spill.cleanup()
        raise


class _Kept:
    """A process's spill directory for database files: removed when the process ends, not by `cleanup`."""

    def __init__(self, name: str):
        self.name = name

    def cleanup(self) -> None:
        pass


_process_spills: dict[Path | None, _Kept] = {}


def _process_spill(parent: Path | None) -> _Kept:
    kept = _process_spills.get(parent)
    if kept is None:
        directory = tempfile.TemporaryDirectory(prefix="crmrules-spill-", dir=parent)
        # kept referenced here, so it is removed at exit (TemporaryDirectory's own finalizer)
        kept = _process_spills[parent] = _Kept(directory.name)
        kept.directory = directory
    return kept


@contextmanager
def duckdb_connection(database: str = ":memory:", read_only: bool = False, resources: Resources | None = None):
    """`open_duckdb` for the length of a block."""
    connection, spill = open_duckdb(database, read_only, resources)
    try:
        yield connection
    finally:
        connection.close()
        spill.cleanup()
