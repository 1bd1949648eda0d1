"""The command line's output and input at the edges (issue 9, items 2, 4, 8 and 10): warnings, files that
are not UTF-8, terminal markup, pipes, passwords, `fmt` that never loses a file, and consistent options.

Each runs the real `crmrules` console script in a subprocess: what a terminal or a pipe sees.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_cli import crmrules

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop" / "shop.crm"
CUSTOMERS = ROOT / "examples" / "shop" / "customers.json"


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def small_shop(tmp_path) -> Path:
    """Three customers; one has an event of a type the schema does not list (`game_start`)."""
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "customers.csv", ["id", "email"], [["c1", "a@x"], ["c2", "b@x"], ["c3", "c@x"]])
    write_csv(data / "orders.csv", ["id", "customer_id", "created_at", "status", "total"],
              [["o1", "c1", "2026-01-01T10:00:00", "paid", "10.00"], ["o2", "c2", "2026-02-01T10:00:00", "paid",
                                                                        "99.00"]])
    write_csv(data / "events.csv", ["customer_id", "type", "at"],
              [["c1", "game_start", "2026-01-02T10:00:00"], ["c2", "view", "2026-01-02T10:00:00"]])
    return data


@pytest.fixture(scope="module")
def shop_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    sys.path.insert(0, str(ROOT / "examples" / "shop"))
    from generate import generate

    generate(out, customers=200, seed=5)
    return out


# ------------------------------------------------------------------------------------------- warnings
WARNED = 'segment gamers: did("game_start")\ntest gamers:\n    given customer {id: "x"}\n    expect out\n'


def test_every_command_that_checks_prints_the_warnings_and_exits_0(tmp_path, small_shop):
    rules = tmp_path / "w.crm"
    rules.write_text(WARNED)
    customer = tmp_path / "c.json"
    customer.write_text('{"id": "x"}')
    runs = {
        "check": crmrules("check", str(rules)),
        "sql": crmrules("sql", str(rules), "--as-of", "2026-06-30"),
        "test": crmrules("test", str(rules)),
        "eval": crmrules("eval", str(rules), "--segment", "gamers", "--customer", str(customer),
                         "--as-of", "2026-06-30"),
        "run": crmrules("run", str(rules), "--data", str(small_shop), "--as-of", "2026-06-30"),
    }
    for command, result in runs.items():
        assert result.returncode == 0, (command, result.stderr)
        assert f'{rules}:1:21: warning[W0301]: "game_start" is not a known value of events.type' \
            in result.stderr, command
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("backend", [None, "memory", "sqlite"])
def test_check_with_data_learns_the_open_values_the_data_holds(tmp_path, small_shop, backend):
    rules = tmp_path / "w.crm"
    rules.write_text('segment gamers: did("game_start")\nsegment typo: did("game_stat")\n')
    data = small_shop
    extra = []
    if backend == "sqlite":
        data = tmp_path / "shop.db"
        import sqlite3

        with sqlite3.connect(data) as connection:
            connection.execute("create table customers (id text, email text)")
            connection.execute("create table events (customer_id text, type text, at text)")
            connection.execute("insert into events values ('c1', 'game_start', '2026-01-02 10:00:00')")
        connection.close()
    elif backend:
        extra = ["--backend", backend]
    result = crmrules("check", str(rules), "--data", str(data), *extra)
    assert result.returncode == 0, result.stderr
    assert '"game_start" is not a known value' not in result.stderr
    assert '"game_stat" is not a known value of events.type' in result.stderr
    assert "did you mean" in result.stderr and "game_start" in result.stderr.split("game_stat")[-1]


# ------------------------------------------------------------------------------------------- ranking
def test_eval_and_test_rank_against_data(tmp_path, shop_data):
    no_data = crmrules("eval", "--segment", "rfm_important_value", "--customer", str(CUSTOMERS),
                       "--as-of", "2026-06-30", str(SHOP))
    assert no_data.returncode == 1
    assert "--data" in no_data.stderr and "rules.population" not in no_data.stderr
    ranked = crmrules("eval", str(SHOP), "--segment", "rfm_important_value", "--customer", str(CUSTOMERS),
                      "--as-of", "2026-06-30", "--data", str(shop_data))
    assert ranked.returncode == 0, ranked.stderr
    assert [line.split("\t")[0] for line in ranked.stdout.splitlines()] == ["00042", "00043"]
    rules = tmp_path / "t.crm"
    rules.write_text('segment ranked = rfm_m >= 1\ntest ranked:\n    given customer {id: "z"}, orders '
                     '[{id: "o", status: "paid", total: 5000.0, created_at: 2026-06-01T10:00:00}]\n'
                     '    as of 2026-06-30\n    expect in\n')
    assert "--data" in crmrules("test", str(rules)).stderr
    result = crmrules("test", str(rules), "--data", str(shop_data))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "1 passed, 0 failed" in result.stdout


# ------------------------------------------------------------------------------------------- encodings
def test_fmt_keeps_a_lone_surrogate_escape_and_never_empties_the_file(tmp_path):
    rules = tmp_path / "s.crm"
    rules.write_text('segment a:   "\\udcff" == "x"\n')
    result = crmrules("fmt", str(rules))
    assert result.returncode == 0, result.stderr
    assert rules.read_text() == 'segment a:\n    "\\udcff" == "x"\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.crm"]


def test_fmt_leaves_the_file_whole_when_writing_fails(tmp_path, monkeypatch):
    from crmrules.cli import main

    rules = tmp_path / "s.crm"
    original = "segment a:   points>1\n"
    rules.write_text(original)

    def failing_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(SystemExit) as exited:
        main.main(["fmt", str(rules)], standalone_mode=True)
    assert exited.value.code == 1
    assert rules.read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.crm"]  # the temporary file is gone too


def test_fmt_names_the_byte_of_a_file_that_is_not_utf8(tmp_path):
    rules = tmp_path / "latin.crm"
    original = b'segment a: city == "Sevilla"\n' + b'# caf\xe9\n'
    rules.write_bytes(original)
    result = crmrules("fmt", str(rules))
    assert result.returncode == 1
    assert f"{rules}: not UTF-8 text (byte 34" in result.stderr
    assert rules.read_bytes() == original


def test_fmt_writes_through_a_temporary_file_in_the_same_directory(tmp_path):
    rules = tmp_path / "ok.crm"
    rules.write_text("segment a:   points>1\n")
    os.chmod(rules, 0o640)
    result = crmrules("fmt", str(rules))
    assert result.returncode == 0, result.stderr
    assert rules.read_text() == "segment a:\n    points > 1\n"
    assert oct(rules.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.crm"]


def test_a_customer_file_that_is_not_utf8_is_an_error_with_the_byte(tmp_path):
    customer = tmp_path / "c.json"
    customer.write_bytes(b'{"id": "\xff"}')
    result = crmrules("eval", str(SHOP), "--segment", "dormant", "--customer", str(customer), "--as-of", "2026-06-30")
    assert result.returncode == 1, result.stderr
    assert f"{customer}: not UTF-8 text (byte 8" in result.stderr


def test_a_csv_data_file_that_is_not_utf8_is_an_error_with_the_byte(tmp_path, small_shop):
    (small_shop / "customers.csv").write_bytes(b"id,email\nc1,caf\xe9@x\n")
    rules = tmp_path / "r.crm"
    rules.write_text("segment a: true\n")
    result = crmrules("run", str(rules), "--data", str(small_shop), "--as-of", "2026-06-30")
    assert result.returncode == 1, result.stderr
    assert "customers.csv" in result.stderr and "byte 15" in result.stderr


# ------------------------------------------------------------------------------------------- terminal
def test_titles_and_names_are_never_markup_and_control_characters_are_escaped(tmp_path, small_shop):
    rules = tmp_path / "m.crm"
    rules.write_text('segment a "[/bold] oops [red]x[/red]": true\nsegment b "bell\\u0007 and \\u001b[31mred": true\n')
    result = crmrules("run", str(rules), "--data", str(small_shop), "--as-of", "2026-06-30")
    assert result.returncode == 0, result.stderr
    assert "[/bold] oops [red]x[/red]" in result.stdout
    assert "\x07" not in result.stdout and "\x1b" not in result.stdout
    assert "\\x07" in result.stdout and "\\x1b[31mred" in result.stdout


def test_listings_are_never_cut_when_stdout_is_not_a_terminal():
    result = crmrules("attributes")
    assert result.returncode == 0
    assert "…" not in result.stdout
    assert "purchase_cycle_days" in result.stdout


def test_templates_listing_is_never_cut_in_a_pipe():
    result = crmrules("templates")
    assert "…" not in result.stdout
    assert "RFM class important_value (重要价值): high R, F and M" in result.stdout


@pytest.mark.parametrize("args", [["attributes"], ["attributes", "--format", "json"], ["templates"]])
def test_writing_to_a_closed_pipe_exits_quietly(args):
    exe = shutil.which("crmrules", path=str(Path(sys.executable).parent))
    reader, writer = os.pipe()
    os.close(reader)  # closed before anything is written: every write fails
    process = subprocess.run([exe, *args], stdout=writer, stderr=subprocess.PIPE, text=True, check=False)
    os.close(writer)
    assert process.stderr == ""
    assert process.returncode in (0, 141)


def test_a_postgres_password_is_never_echoed():
    url = "postgresql://shop:s3cr3t-pw@127.0.0.1:1/shop?sslmode=disable"
    result = crmrules("run", str(SHOP), "--data", url, "--as-of", "2026-06-30")
    assert result.returncode == 1
    assert "s3cr3t-pw" not in result.stderr + result.stdout
    result = crmrules("run", str(SHOP), "--data", url, "--backend", "duckdb", "--as-of", "2026-06-30")
    assert "s3cr3t-pw" not in result.stderr + result.stdout


# ------------------------------------------------------------------------------------------- consistency
def test_eval_takes_several_rule_files(tmp_path):
    first = tmp_path / "a.crm"
    first.write_text("attribute big = 100\n")
    second = tmp_path / "b.crm"
    second.write_text("segment spenders = total_spent > big\n")
    result = crmrules("eval", str(first), str(second), "--segment", "spenders", "--customer", str(CUSTOMERS),
                      "--as-of", "2026-06-30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["00042\ttrue", "00043\tfalse"]


def test_members_in_the_table_format_is_a_usage_error(small_shop):
    result = crmrules("run", str(SHOP), "--data", str(small_shop), "--as-of", "2026-06-30", "--members")
    assert result.returncode == 2
    assert "--members" in result.stderr and "json" in result.stderr


def test_csv_without_a_segment_is_one_row_per_customer(tmp_path, small_shop):
    rules = tmp_path / "r.crm"
    rules.write_text('segment buyers = order_count > 0\nsegment big = total_spent > 50\n')
    result = crmrules("run", str(rules), "--data", str(small_shop), "--as-of", "2026-06-30", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["customer_id,buyers,big", "c1,true,false", "c2,true,true",
                                          "c3,false,false"]
    two = crmrules("run", str(rules), "--data", str(small_shop), "--as-of", "2026-06-30", "--format", "csv",
                   "--segment", "big", "--segment", "buyers")
    assert two.stdout.splitlines()[0] == "customer_id,big,buyers"


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_as_of_defaults_to_today_in_the_stores_time_zone(tmp_path, small_shop, zone):
    schema = tmp_path / "schema.toml"
    schema.write_text(f'timezone = "{zone}"\n')
    rules = tmp_path / "r.crm"
    rules.write_text("segment today_is = true\n"
                     "test today_is:\n    given customer {id: \"x\"}\n    expect in\n")
    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    run = crmrules("run", str(rules), "--data", str(small_shop), "--schema", str(schema), "--format", "json")
    assert json.loads(run.stdout)["as_of"] == today, run.stderr
    sql = crmrules("sql", str(rules), "--schema", str(schema))
    assert today in sql.stdout
    profile = crmrules("profile", "--segment", "dormant", "--data", str(small_shop), "--schema", str(schema),
                       "--format", "json")
    assert json.loads(profile.stdout)["as_of"] == today, profile.stderr


def test_fmt_keeps_long_bodies_within_the_width(tmp_path):
    rules = tmp_path / "long.crm"
    condition = " and ".join(f"points > {n}" for n in range(1, 12))
    rules.write_text(f"segment a: {condition} or email_subscribed\n")
    result = crmrules("fmt", str(rules))
    assert result.returncode == 0, result.stderr
    text = rules.read_text()
    assert all(len(line) <= 100 for line in text.splitlines()), text
    assert text.splitlines()[1].startswith("    points > 1 and points > 2")
    assert text.splitlines()[2].startswith("        and points > ")
    assert text.splitlines()[-1] == "    or email_subscribed"
    assert crmrules("check", str(rules)).returncode == 0
    assert crmrules("fmt", "--check", str(rules)).returncode == 0  # stable
    narrow = crmrules("fmt", "--width", "40", "--diff", str(rules))
    assert narrow.returncode == 1
    assert all(len(line) <= 41 for line in narrow.stdout.splitlines() if line.startswith("+ "))


def test_fmt_diff_prints_a_unified_diff_and_changes_nothing(tmp_path):
    rules = tmp_path / "d.crm"
    rules.write_text("segment a:   points>1\n")
    result = crmrules("fmt", "--diff", str(rules))
    assert result.returncode == 1
    assert result.stdout.splitlines()[:2] == [f"--- {rules}", f"+++ {rules}"]
    assert "-segment a:   points>1" in result.stdout and "+    points > 1" in result.stdout
    assert rules.read_text() == "segment a:   points>1\n"
    rules.write_text("segment a:\n    points > 1\n")
    clean = crmrules("fmt", "--diff", str(rules))
    assert clean.returncode == 0 and clean.stdout == ""
