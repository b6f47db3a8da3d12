"""Files gankit writes: atomic writes, and the user cache folder.

Checkpoints, cached evaluators and downloads are all written the same way: into a
temporary file beside the target, flushed to disk, then renamed over it. A crash, a
full disk or a failed check mid-write leaves the previous file (or no file) under the
final name, never half of one that a later run would trust.
"""

from __future__ import annotations

import json
import math
import os
import re
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


#: The temporary files of :func:`atomic_write`: ``.<final name>.<8 random characters>.tmp``.
PARTIAL_WRITE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, fsync the file, then rename it to ``path``.

    The temporary file sits beside ``path`` (a rename is atomic only within one file
    system) and is deleted if ``write`` raises, so ``write`` may also check what it
    wrote (a checksum) and raise to keep it from ever reaching ``path``. A process
    killed mid-write leaves it behind: :func:`remove_partial_writes` clears those.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp_name))
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600; the final file gets what open() would give it
        os.chmod(tmp_name, 0o666 & ~current_umask())
        os.replace(tmp_name, path)
    except BaseException as err:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None and err.filename is None:
            err.filename = str(path)  # a full disk names the file it was writing
        raise


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically: readers see the old file or the new
    one, never half of one."""

    def save(tmp: Path) -> None:
        # Through a Python file: a full disk is then an OSError (ENOSPC), where torch's
        # own file writer reports it as an opaque RuntimeError.
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)

    atomic_write(path, save)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def json_safe(value: Any) -> Any:
    """``value`` with every float that is not finite (at any depth of dicts, lists and
    tuples) replaced by None, so that ``json.dumps(..., allow_nan=False)`` writes it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def finite_json(row: dict[str, Any]) -> str:
    """``row`` as one line of strict JSON: a number that is not finite (NaN, inf) is
    written as ``null``, and the line says which under ``"nonfinite"`` with the value as
    text, e.g. ``{"step": 50, "eval_kl": null, "nonfinite": {"eval_kl": "inf"}}``.
    Python's own ``json.dumps`` would write ``NaN`` and ``Infinity``, which are not JSON."""
    nonfinite = {
        key: str(value)
        for key, value in row.items()
        if isinstance(value, float) and not math.isfinite(value)
    }
    clean = {key: None if key in nonfinite else value for key, value in row.items()}
    if nonfinite:
        clean["nonfinite"] = nonfinite
    return json.dumps(clean, allow_nan=False)


def remove_partial_writes(folder: Path) -> list[Path]:
    """Delete the temporary files that killed :func:`atomic_write` calls left in
    ``folder``; returns them. Only for a folder no other process is writing to."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if PARTIAL_WRITE.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file, one per line; a line that is not a whole
    object (the last one, cut short by a killed writer) is skipped. No file: none."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows
