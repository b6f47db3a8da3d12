"""The house rule of cli.py: each command parses, calls the api and prints."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "src" / "gankit" / "cli.py"
#: A command's body (its docstring left out) stays short: the work lives in the library.
MAX_BODY_LINES = 15


def commands() -> list[ast.FunctionDef]:
    tree = ast.parse(CLI.read_text())
    return [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(
            isinstance(d, ast.Call) and getattr(d.func, "id", "") == "command"
            for d in node.decorator_list
        )
    ]


def body(fn: ast.FunctionDef) -> list[ast.stmt]:
    first = fn.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    return fn.body[1:] if docstring else fn.body


def api_calls(fn: ast.FunctionDef) -> set[str]:
    return {
        node.func.attr
        for node in ast.walk(fn)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "api"
    }


def test_every_command_calls_the_api_and_stays_short():
    found = commands()
    assert len(found) >= 23, [fn.name for fn in found]
    for fn in found:
        statements = body(fn)
        lines = statements[-1].end_lineno - statements[0].lineno + 1
        assert lines <= MAX_BODY_LINES, f"{fn.name}: {lines} lines of body"
        # one api function per path through the command (presets: one preset, or all)
        assert 1 <= len(api_calls(fn)) <= 2, f"{fn.name} calls {api_calls(fn) or 'no api'}"


#: cli.py's lines per command: 592 lines held the 23 commands when the work moved into
#: the library (it was 1,093 before); a new command brings its options and a few lines.
LINES_PER_COMMAND = 26


def test_cli_py_stays_thin_as_it_grows():
    lines = len(CLI.read_text().splitlines())
    assert lines <= LINES_PER_COMMAND * len(commands()), f"{lines} lines"


def test_the_cli_and_the_api_import_without_torch():
    # gankit --help, presets and every one-line error of bad options answer without
    # waiting for torch to load: the api imports what a command needs when it runs
    import subprocess
    import sys

    code = "import sys, gankit.cli, gankit.api; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stdout + done.stderr
