"""tools/import_circles.py: a circle through a lazy import is found, and gankit has none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "import_circles.py"
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gankit"


def scan(package: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), str(package)], capture_output=True, text=True, timeout=60
    )


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_circle_closed_by_an_import_inside_a_function_is_found(tmp_path):
    package = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg.b import helper\n",
        "b.py": "def helper():\n    from pkg import a\n    return a\n",
        "c.py": "import pkg.a\n",
    })  # fmt: skip
    done = scan(package)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip() == "import circle among 2 modules: pkg.a -> pkg.b -> pkg.a"


def test_relative_and_type_checking_imports_count(tmp_path):
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import api\n"
    package = write_package(tmp_path, {
        "__init__.py": typed,
        "api.py": "from . import version\nimport pkg\n",
        "version.py": "",
        "sub/__init__.py": "",
        "sub/x.py": "from .y import f\n",
        "sub/y.py": "def f():\n    from ..sub import x\n",
    })  # fmt: skip
    done = scan(package)
    assert done.returncode == 1, done.stdout
    assert "pkg -> pkg.api -> pkg" in done.stdout, done.stdout
    assert "pkg.sub.x -> pkg.sub.y -> pkg.sub.x" in done.stdout, done.stdout


def test_a_package_without_circles_passes(tmp_path):
    package = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "def f():\n    from pkg import b\n",
        "b.py": "import os\n",
    })  # fmt: skip
    done = scan(package)
    assert done.returncode == 0 and done.stdout.startswith("no import circle: 3 modules"), done


def test_gankit_has_no_import_circle():
    done = scan(PACKAGE)
    assert done.returncode == 0, done.stdout
