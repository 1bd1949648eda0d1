"""Caches live in a private, user-owned directory, and nothing another user could write is unpickled."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PLANT = """
import os, pickle
class Boom:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
"""


def run_crmrules(cache_home: Path, tmpdir: Path) -> subprocess.CompletedProcess:
    code = "import crmrules; crmrules.load_text('segment s: total_spent > 1 and prefers(\"coat\")')"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "TMPDIR": str(tmpdir)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_cache_directory_others_can_write_is_never_read(tmp_path):
    cache = tmp_path / "cache" / "crmrules"
    cache.mkdir(parents=True)
    os.chmod(cache, 0o777)
    marker = tmp_path / "pwned"
    namespace: dict = {}
    exec(PLANT.format(marker=marker), namespace)  # noqa: S102 - the attacker's pickle, built here
    payload = pickle.dumps(namespace["Boom"]())
    # the names crmrules would read, learnt from a run with a private cache elsewhere
    run_crmrules(tmp_path / "learn", tmp_path)
    names = [p.name for p in (tmp_path / "learn" / "crmrules").iterdir()]
    assert len(names) == 2
    for name in names:
        (cache / name).write_bytes(payload)
    run_crmrules(tmp_path / "cache", tmp_path)
    assert not marker.exists()


def test_the_parser_writes_nothing_to_the_shared_temp_dir(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    run_crmrules(tmp_path / "cache", shared)
    assert list(shared.iterdir()) == []
    private = tmp_path / "cache" / "crmrules"
    assert oct(private.stat().st_mode & 0o777) == oct(0o700)
    assert {p.name.split("-")[0] for p in private.iterdir()} == {"lark", "prelude"}


def test_a_private_cache_is_reused(tmp_path):
    run_crmrules(tmp_path / "cache", Path(tempfile.gettempdir()))
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "crmrules").iterdir()}
    run_crmrules(tmp_path / "cache", Path(tempfile.gettempdir()))
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "crmrules").iterdir()}
    assert before == after
