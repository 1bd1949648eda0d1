"""The REPL: the session's entries and commands, completion through prompt_toolkit's pipe input, the
live count, the piped mode through a subprocess, and the real program in a pseudo-terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from crmrules.api import load_text
from crmrules.grammar.parser import parse
from crmrules.repl.app import (
    LiveCount,
    complete_entry,
    entries,
    prompt_session,
    run_piped,
)
from crmrules.repl.completion import complete
from crmrules.repl.session import Session

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop" / "shop.crm"
AS_OF = "2026-06-30"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("shop")
    subprocess.run([sys.executable, str(ROOT / "examples" / "shop" / "generate.py"), str(target),
                    "--customers", "500"], check=True, capture_output=True)
    return target


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    # the history file goes to the cache directory: never the user's own in a test
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def session(shop):
    opened = Session([SHOP], data=str(shop), as_of=AS_OF)
    yield opened
    opened.close()


def expected_members(shop: Path, condition: str) -> list[str]:
    text = SHOP.read_text() + f"\nsegment expected_here:\n    {condition}\n"
    return load_text(text).run(str(shop), as_of=AS_OF, segments=["expected_here"]).members["expected_here"]


# ------------------------------------------------------------------------------------------ session
def test_a_condition_prints_its_member_count_and_a_sample(session, shop):
    members = sorted(expected_members(shop, "sum(orders.total) > 100"))
    outcome = session.run("sum(orders.total) > 100")
    assert outcome.ok
    assert outcome.text.startswith(f"{len(members):,} members: {', '.join(members[:3])}")
    assert session.count("sum(orders.total) > 100") == len(members)


def test_a_value_prints_its_distribution(session):
    numbers = session.run("order_count")
    assert re.fullmatch(r"count 500, nulls 0\nmin 0, max \d+, mean [\d.]+", numbers.text), numbers.text
    strings = session.run("gender")
    assert strings.text.startswith("count 500, nulls ")
    assert '"female" (' in strings.text and "top: " in strings.text


def test_declarations_join_the_session_and_can_be_used(session, shop):
    assert session.run('segment big "Big spenders": sum(orders.total) > 300').text == "segment big declared"
    assert session.run("attribute double_orders = order_count * 2").ok
    assert session.run("function at_least_n(n) = order_count >= n").ok
    both = expected_members(shop, "sum(orders.total) > 300 and young_women")
    assert session.run("big and young_women").text.startswith(f"{len(both):,} members")
    assert session.count("double_orders >= 4") == session.count("at_least_n(2)") == len(
        expected_members(shop, "order_count >= 2"))


def test_errors_are_shown_with_the_caret_and_the_session_goes_on(session):
    typo = session.run("orde_count > 3")
    assert not typo.ok
    assert "<repl>:1:1: error[E0201]" in typo.text and "^^^^^^^^^^" in typo.text
    assert "did you mean `order_count`?" in typo.text
    assert not session.run("order_count >").ok
    assert not session.run("segment broken: nope > 1").ok
    assert not session.run(":members").ok  # no condition yet
    assert not session.run(":bogus").ok
    assert session.run("order_count > 3").ok
    assert "broken" not in session.program.segments


def test_commands(session, tmp_path):
    session.run("order_count >= 2")
    ids = session.run(":members 3").text.splitlines()
    assert len(ids) == 4 and ids[3].startswith("... and ")
    assert "SELECT" in session.run(":sql").text
    assert "SELECT" in session.run(":sql postgres").text
    assert session.run(":as-of 2025-01-01").text == "as of 2025-01-01"
    assert session.count("order_count >= 2") < session.count("true")
    assert "unknown command" in session.run(":bogus").text
    assert ":members" in session.run(":help").text


def test_save_appends_the_formatted_declarations_and_load_reads_them(session, shop, tmp_path):
    target = tmp_path / "mine.crm"
    target.write_text("segment buyers: order_count > 0\n")
    session.run("segment   big :  sum( orders.total )>300")
    session.run("attribute twice = order_count*2")
    assert session.run(f":save {target}").text == f"saved 2 declarations to {target}"
    text = target.read_text()
    assert "segment big:\n    sum(orders.total) > 300\n" in text
    assert "attribute twice = order_count * 2\n" in text
    assert [d.name for d in parse(text).declarations] == ["buyers", "big", "twice"]
    fresh = Session([], data=str(shop), as_of=AS_OF)
    assert fresh.run(f":load {target}").text == f"loaded 3 declarations from {target}"
    assert fresh.count("big") == session.count("big")
    fresh.close()


def test_explain_and_profile(session):
    session.run("young_women or reachable")
    member = session.members(session.last)[0]
    explained = session.run(f":explain {member}").text.splitlines()
    assert explained[0].startswith(f"the last condition for customer {member} as of ") and explained[0].endswith(": true")
    assert explained[1] == "true  young_women or reachable"
    # references are expanded under their names, each part with its value
    assert any("young_women" in line and line.lstrip("│ ├└─").startswith(("true", "false", "unknown"))
               for line in explained[2:])
    assert "customers" in session.run(":profile").text
    assert not session.run(":profile versus x").ok


# ------------------------------------------------------------------------------------------ input
@pytest.mark.parametrize(("text", "complete"), [
    ("order_count > 3", True), ("order_count >", False), ("segment x:", False), ("segment x:\n    order_count > 1", True),
    ("bought(\"coat\"", False), ('"a)" == gender', True), ("young_women and", False), (":help", True),
])
def test_enter_submits_only_a_complete_entry(text, complete):
    assert complete_entry(text) is complete


def test_piped_entries_are_one_a_line_and_indented_lines_continue():
    lines = ["a > 1\n", "segment x:\n", "    b\n", "\n", "c\n"]
    assert list(entries(lines)) == ["a > 1", "segment x:\n    b", "c"]


def test_completion_offers_names_with_titles(session):
    found = {text: meta for text, _, meta in complete(session, "young_wo")}
    assert found == {"young_women": "segment: Under 30, by birthday"}
    assert ("orders.total", -9, "column: decimal") in list(complete(session, "orders.to"))
    assert any(text == "dormant" and meta.startswith("template") for text, _, meta in complete(session, "dorm"))
    assert any(meta.startswith("attribute: ") for _, _, meta in complete(session, "order_c"))
    assert any(meta.startswith("function: ") for text, _, meta in complete(session, "days_s") if text == "days_since")
    assert ("within: ", -2, "argument of ordered") in list(complete(session, "ordered(wi"))
    assert [text for text, _, _ in complete(session, ":mem")] == [":members"]
    session.run("segment freshly_declared: order_count > 9")
    assert [text for text, _, _ in complete(session, "freshly")] == ["freshly_declared"]


def prompted(session, *keys: str) -> str:
    """What the REPL's prompt returns for these keystrokes, through prompt_toolkit's pipe input; each
    string of keys is sent after a pause (completions are computed between keystrokes)."""
    with create_pipe_input() as pipe:
        prompt, _ = prompt_session(session, input=pipe, output=DummyOutput(), live=False)

        def type_keys() -> None:
            for chunk in keys:
                time.sleep(0.2)
                pipe.send_text(chunk)
            time.sleep(5)
            if prompt.app.is_running:  # the prompt did not return: the test fails rather than hangs
                prompt.app.exit(result="(no entry)")

        threading.Thread(target=type_keys, daemon=True).start()
        return prompt.prompt()


def test_completion_through_the_prompt(session):
    # Tab selects the completion, Enter takes it, Enter again submits
    assert prompted(session, "young_wo", "\t", "\r", "\r") == "young_women"
    assert prompted(session, "ordered(wi", "\t", "30d)\r") == "ordered(within: 30d)"
    # a declaration's header goes on to an indented body; Enter submits once the body is there
    assert prompted(session, "segment x:\r", "order_count > 1\r") == "segment x:\n    order_count > 1"


def test_the_prompt_highlights_with_the_language_lexer(session):
    from prompt_toolkit.document import Document
    from prompt_toolkit.lexers import PygmentsLexer

    from crmrules.highlight import CrmRulesLexer

    with create_pipe_input() as pipe:
        prompt, _ = prompt_session(session, input=pipe, output=DummyOutput(), live=False)
    assert isinstance(prompt.lexer, PygmentsLexer) and prompt.lexer.pygments_lexer_cls is CrmRulesLexer
    line = prompt.lexer.lex_document(Document('segment x: order_count > 3 and "a"'))(0)
    styles = {text: style for style, text in line}
    assert styles["segment"] != styles["x"] and styles["and"] != styles["order_count"]
    assert styles["segment"].startswith("class:pygments.keyword")


# ------------------------------------------------------------------------------------------ live count
class CountingSession(Session):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counted: list[str] = []

    def count(self, text):
        self.counted.append(text)
        return super().count(text)


def test_the_live_count_waits_for_a_pause_and_counts_only_the_latest_text(shop):
    session = CountingSession([SHOP], data=str(shop), as_of=AS_OF)
    refreshed = threading.Event()
    live = LiveCount(session, refreshed.set, delay=0.2)
    for text in ["order_count", "order_count >", "order_count > 1"]:
        live.changed(text)
    deadline = time.monotonic() + 10
    while not live.status.endswith("members") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert session.counted == ["order_count > 1"]
    assert live.status == f"{session.count('order_count > 1'):,} members"
    live.changed("not a condition +")
    time.sleep(0.5)
    assert live.status == "" and refreshed.is_set()
    session.close()


# ------------------------------------------------------------------------------------------ programs
def test_piped_mode_prints_results_and_errors(shop):
    members = expected_members(shop, "sum(orders.total) > 100")
    entries_in = "sum(orders.total) > 100\norde_count\nsegment big:\n    sum(orders.total) > 100\nbig\n"
    result = subprocess.run([sys.executable, "-m", "crmrules", "repl", str(SHOP), "--data", str(shop),
                             "--as-of", AS_OF], input=entries_in, capture_output=True, text=True, timeout=60,
                            check=False)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{len(members):,} members: ")
    assert lines[1] == "segment big declared"
    assert lines[2] == lines[0]
    assert "did you mean `order_count`?" in result.stderr
    assert result.returncode == 1


def test_piped_mode_without_errors_exits_0(shop, tmp_path):
    import io

    out, err = io.StringIO(), io.StringIO()
    assert run_piped(Session([], data=str(shop), as_of=AS_OF), ["count(orders) >= 1\n", "days_since_last_order\n"],
                     out, err) == 0
    assert re.match(r"[\d,]+ members: ", out.getvalue()) and "count 500" in out.getvalue() and not err.getvalue()


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|[\x08\r]")


class Screen:
    """The text a terminal program writes, escape sequences removed; answers its cursor position requests."""

    def __init__(self, child: pexpect.spawn):
        self.child, self.text = child, ""

    def read(self) -> None:
        try:
            chunk = self.child.read_nonblocking(65536, timeout=0.05)
        except (pexpect.TIMEOUT, pexpect.EOF):
            return
        if "\x1b[6n" in chunk:
            self.child.send("\x1b[1;1R")
        self.text += chunk

    def wait(self, pattern: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = _ESCAPES.sub("", self.text)
            found = re.search(pattern, shown)
            if found:
                # what came after the match stays to be read: the next prompt may arrive in the same chunk
                self.text = shown[found.end():]
                return found.group()
            self.read()
        raise AssertionError(f"{pattern!r} not on the screen: {_ESCAPES.sub('', self.text)[-800:]!r}")


def test_the_real_program_in_a_terminal(shop, tmp_path):
    members = expected_members(shop, "sum(orders.total) > 100")
    env = {**os.environ, "TERM": "xterm", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    child = pexpect.spawn(sys.executable, ["-m", "crmrules", "repl", str(SHOP), "--data", str(shop), "--as-of", AS_OF],
                          env=env, encoding="utf-8", dimensions=(30, 120), cwd=str(ROOT))
    screen = Screen(child)
    try:
        screen.wait(r"crm>")
        screen.wait(r"as of 2026-06-30")  # the bottom toolbar
        child.send("sum(orders.total) > 100")
        screen.wait(rf"{len(members):,} members(?!:)")  # the live count in the toolbar, before Enter
        child.send("\r")
        screen.wait(rf"{len(members):,} members: {members[0]}")
        child.send("orde_count > 1\r")
        screen.wait(r"did you mean `order_count`\?")
        child.send("young_wo")
        screen.wait(r"Under 30, by birthday")  # the completion menu with the title
        child.send("\t")
        time.sleep(0.3)
        child.send("\r")
        time.sleep(0.3)
        child.send("\r")
        screen.wait(r"[\d,]+ members: ")
        child.send("gender == ")
        child.sendcontrol("c")  # clears the entry, the session goes on
        child.send("segment big:\r")
        time.sleep(0.3)
        child.send("sum(orders.total) > 100\r")
        screen.wait(r"segment big declared")
        child.send(":help\r")
        screen.wait(r":members \[N\]")
        screen.wait(r"crm>")
        time.sleep(0.3)
        child.sendcontrol("d")
        deadline = time.monotonic() + 15
        while child.isalive() and time.monotonic() < deadline:
            screen.read()
        assert not child.isalive(), _ESCAPES.sub("", screen.text)[-1500:]
        child.close()
        assert child.exitstatus == 0
        assert (tmp_path / "cache" / "crmrules" / "repl-history").read_text().count("segment big:") == 1
    finally:
        if child.isalive():
            child.terminate(force=True)


def test_a_duration_setting_shows_its_top_values_from_sql(tmp_path):
    """`rfm_period` (a duration) entered on DuckDB: its values, not an internal error (durations have no order)."""
    (tmp_path / "customers.csv").write_text("id,points\nc1,500\nc2,5\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "crmrules", "repl", "--data", str(tmp_path), "--backend", "duckdb",
                             "--as-of", "2026-06-30"],
                            input="rfm_period\nif(points > 100, 2w, 30d)\n", capture_output=True, text=True,
                            check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "top: 100y (2)" in result.stdout
    assert "top: 2w (1), 30d (1)" in result.stdout or "top: 30d (1), 2w (1)" in result.stdout
