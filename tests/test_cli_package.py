"""The command line's structure: one module per family, no import cycle, options from the registries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "crmrules" / "cli"
MODULES = sorted(f"crmrules.cli.{p.stem}" for p in CLI.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", ["crmrules.cli", *MODULES])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True, cwd=ROOT)


def test_no_cycle_and_no_private_names_across_modules():
    for path in CLI.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crmrules"):
                names = [alias.name for alias in node.names]
                assert not any(name.startswith("_") for name in names), (path.name, node.module, names)
                if path.stem != "__init__":
                    # the command modules only lean on `common`, never on the package that registers them
                    assert node.module != "crmrules.cli", (path.name, names)
                if path.stem == "common":
                    assert not node.module.startswith("crmrules.cli"), names


def _option(command: str, name: str):
    from crmrules.cli import main

    return next(p for p in main.commands[command].params if p.name == name)


def test_backend_choices_come_from_the_registry():
    from crmrules.backends.dispatch import BACKENDS

    assert "interpreter" in BACKENDS
    for command in ("run", "rfm"):
        assert list(_option(command, "backend").type.choices) == list(BACKENDS)
    # profiles run on every engine too (the in-memory ones sum the same table of conditions)
    assert list(_option("profile", "backend").type.choices) == list(BACKENDS)


def test_shared_options_are_defined_once():
    for name in ("schema", "as_of"):
        helps = {_option(command, name).help for command in ("run", "sql", "rfm", "profile", "eval")}
        assert len(helps) == 1, name
    from crmrules.backends.sql.dialects import DIALECTS

    result = subprocess.run([sys.executable, "-m", "crmrules", "sql", "--help"], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0
    assert "|".join(DIALECTS) in result.stdout.replace("\n", "").replace(" ", "")


def test_help_does_not_import_sqlglot():
    code = "import sys; from crmrules.cli import main; print('sqlglot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


def test_eval_as_of_defaults_to_today():
    from test_cli import EXAMPLE, crmrules

    result = crmrules("eval", str(EXAMPLE), "--segment", "dormant", "--customer", "-", stdin='{"id": "x"}')
    assert result.returncode == 0, result.stderr
    assert result.stdout == "false\n"
