"""tools/check_copies.py: a copy marked ``# Copied from ...`` must match its source."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "check_copies.py"

SOURCE = '''
class Teacher:
    def lesson(self, n: int) -> int:
        """The source's own words."""
        total = self.width * n
        return total + 1
'''

COPY = '''
class Pupil:
    # Copied from pkg.models.teacher.Teacher.lesson with width->height
    def lesson(self, n: int) -> int:
        # a comment and a docstring of its own are allowed
        """The copy's own words."""
        total = self.height * n
        return total + {plus}
'''


def run(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), str(root)], capture_output=True, text=True, timeout=60
    )


def package(tmp_path: Path, copy: str) -> Path:
    root = tmp_path / "pkg"
    (root / "models").mkdir(parents=True)
    (root / "models" / "teacher.py").write_text(textwrap.dedent(SOURCE))
    (root / "models" / "pupil.py").write_text(textwrap.dedent(copy))
    return root


def test_a_copy_that_matches_after_its_replacements_passes(tmp_path):
    result = run(package(tmp_path, COPY.format(plus=1)))
    assert result.returncode == 0, result.stdout
    assert "1 marked copies match" in result.stdout


def test_a_drifted_copy_fails_naming_it(tmp_path):
    result = run(package(tmp_path, COPY.format(plus=2)))
    assert result.returncode == 1
    assert "pupil.py:3: lesson has drifted from pkg.models.teacher.Teacher.lesson" in result.stdout
    assert "+    return total + 2" in result.stdout


def test_a_copy_of_something_gone_fails(tmp_path):
    gone = COPY.format(plus=1).replace("Teacher.lesson", "Teacher.lecture")
    result = run(package(tmp_path, gone))
    assert result.returncode == 1
    assert "copy of pkg.models.teacher.Teacher.lecture, which does not exist" in result.stdout


def test_gankit_s_marked_copies_match_their_sources():
    result = run(TOOL.parent.parent / "src" / "gankit")
    assert result.returncode == 0, result.stdout
    assert "0 marked" not in result.stdout
