"""The user's private cache directory: the only place crmrules keeps files between processes.

Caches hold pickles (the catalogue's parsed tree, Lark's parse tables), and
unpickling runs code, so a cache is used only when nobody else could have
written it: the directory is the user's own, created mode 0700, and neither it
nor the file is writable by group or others. Anything else is ignored, and the
work is simply done again. Never the shared temporary directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def cache_dir() -> Path | None:
    """`$XDG_CACHE_HOME/crmrules` (default `~/.cache/crmrules`), created private; None when unsafe or impossible."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    directory = Path(base) / "crmrules"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return directory if _private(directory) else None
    except OSError:
        return None


def _private(path: Path) -> bool:
    """Owned by this user, not a link, and writable by nobody else."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode) or (hasattr(os, "geteuid") and info.st_uid != os.geteuid()):
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def trusted_file(name: str) -> Path | None:
    """A path in the private cache directory; None when there is no safe directory or the file there
    exists but is not private (then it is never read)."""
    directory = cache_dir()
    if directory is None:
        return None
    path = directory / name
    if path.exists() and not _private(path):
        return None
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a cache file atomically, readable and writable by this user only; errors are ignored."""
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        scratch.replace(path)
    except OSError:
        scratch.unlink(missing_ok=True)
