"""Progress you can see (issue 14, item 5): rich progress bars with stage names on a real terminal (a
pseudo-terminal), nothing when stderr is not one, and never a bar in what a command prints on stdout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"
AS_OF = "2026-06-30"
# the display shows from the first instant: the demo shop's run is then long enough to see
QUICK = {"CRMRULES_PROGRESS_DELAY": "0", "TERM": "xterm"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(arguments: list[str], env: dict | None = None, timeout: float = 120) -> str:
    """What a command shows on a pseudo-terminal (stdout and stderr both on it), escape codes removed."""
    child = pexpect.spawn(arguments[0], arguments[1:], env={**os.environ, **QUICK, **(env or {})},
                          encoding="utf-8", dimensions=(40, 160), cwd=str(ROOT), timeout=timeout)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return ANSI.sub("", child.before)


@pytest.fixture(scope="module")
def data(demo_data) -> Path:
    return demo_data


def crmrules_on_terminal(*arguments: str) -> str:
    return on_terminal([sys.executable, "-m", "crmrules", *arguments])


def test_a_run_on_a_terminal_shows_its_stages(data):
    shown = crmrules_on_terminal("run", str(SHOP / "shop.crm"), "--data", str(data), "--as-of", AS_OF)
    assert "evaluating segments" in shown
    assert "reading data" in shown and re.search(r"checking (customers|orders|events)\.csv", shown)
    assert re.search(r"reading data\s+[━╺╸]+.*\d/5", shown)  # a bar with the count of files
    assert "running the query" in shown
    assert "young_women" in shown  # and the result after it


def test_nothing_when_stderr_is_not_a_terminal(tmp_path, data):
    result = subprocess.run([sys.executable, "-m", "crmrules", "run", str(SHOP / "shop.crm"), "--data",
                             str(data), "--as-of", AS_OF, "--format", "json"],
                            check=False, capture_output=True, text=True, env={**os.environ, **QUICK}, cwd=str(ROOT))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout)["segments"]


def test_stdout_to_a_file_has_no_bars_while_the_terminal_has_them(tmp_path, data):
    out = tmp_path / "out.json"
    command = (f"{sys.executable} -m crmrules run {SHOP / 'shop.crm'} --data {data} --as-of {AS_OF} "
               f"--format json > {out}")
    shown = on_terminal(["/bin/sh", "-c", command])
    assert "reading data" in shown
    assert json.loads(out.read_text())["segments"]  # plain JSON: no escape code, no bar


def test_campaign_simulation_shows_its_steps_with_message_counts(data):
    shown = crmrules_on_terminal("campaigns", "simulate", str(SHOP / "shop.crm"), "--data", str(data),
                                 "--from", "2026-06-29", "--to", "2026-06-30", "--format", "summary")
    assert re.search(r"campaign steps\s+━*.*\d+/\d+.*2026-06-\d\d \d\d:\d\d, [\d,]+ messages", shown)


def test_the_api_a_bar_with_a_total_and_a_watched_duckdb_query(tmp_path):
    script = tmp_path / "stages.py"
    script.write_text(textwrap.dedent("""
        import time
        import duckdb
        from crmrules.progress import task

        with task("outer stage", total=3) as outer:
            for _ in range(3):
                time.sleep(0.3)
                outer.advance()
            connection = duckdb.connect()
            # a query of about 3 s on this machine, however fast it is: DuckDB reports a percentage once a
            # query has run for a while
            query = "SELECT sum(hash(i) % 7) FROM range({}) t(i)"
            started = time.perf_counter()
            connection.execute(query.format(5_000_000)).fetchall()
            rows = int(5_000_000 * 3.0 / max(time.perf_counter() - started, 1e-3))
            with task("counting", watch=connection):
                connection.execute(query.format(rows)).fetchall()
        print("done")
    """))
    shown = on_terminal([sys.executable, str(script)])
    assert re.search(r"outer stage\s+[━╺╸]+.*[123]/3", shown)
    assert re.search(r"counting\s+[━╺╸]+\s+\d+%", shown)  # DuckDB's own percentage of the query
    assert shown.rstrip().endswith("done")  # the display is gone once the last task ends


def test_nothing_inside_a_silenced_block_on_a_terminal(tmp_path):
    # what the REPL does while its prompt owns the terminal
    script = tmp_path / "silent.py"
    script.write_text(textwrap.dedent("""
        import time
        from crmrules.progress import silenced, task

        with silenced():
            with task("hidden stage", total=2) as hidden:
                time.sleep(0.5)
                hidden.advance()
        with task("shown stage"):
            time.sleep(0.5)
        print("done")
    """))
    shown = on_terminal([sys.executable, str(script)])
    assert "hidden stage" not in shown
    assert "shown stage" in shown
