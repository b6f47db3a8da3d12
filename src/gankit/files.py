"""Files gankit writes: atomic writes, and the user cache folder.

Checkpoints, cached evaluators and downloads are all written the same way: into a
temporary file beside the target, flushed to disk, then renamed over it. A crash, a
full disk or a failed check mid-write leaves the previous file (or no file) under the
final name, never half of one that a later run would trust.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

#: Environment variable naming gankit's cache folder (evaluators, downloaded datasets).
CACHE_ENV = "GANKIT_CACHE"


def cache_root() -> Path:
    """``$GANKIT_CACHE``, else ``$XDG_CACHE_HOME/gankit``, else ``~/.cache/gankit``.

    Read from the environment at each call, so tests and users can move it at any time.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "gankit"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, fsync the file, then rename it to ``path``.

    The temporary file sits beside ``path`` (a rename is atomic only within one file
    system) and is deleted if ``write`` raises, so ``write`` may also check what it
    wrote (a checksum) and raise to keep it from ever reaching ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp_name))
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically: readers see the old file or the new
    one, never half of one."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
