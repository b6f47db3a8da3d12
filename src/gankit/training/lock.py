"""One writer per run: an advisory lock on ``<run>/train.lock``.

``fcntl.flock`` on an open file: the operating system releases it when the process
ends, however it ends (SIGKILL, a crash, a power cut), so a lock never outlives its
holder and nothing has to guess whether a PID is stale. The file holds the holder's
PID and host, for the message that refuses a second writer. The file itself is never
deleted: a process that deletes the path it locked would let two others lock two
different files.

Where ``fcntl`` does not exist (Windows), runs are not locked.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from gankit.errors import GankitError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = "train.lock"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the lock of the run at ``run_dir`` (an existing folder) for the block.

    Raises:
        GankitError: another process holds it; the message names that process.
    """
    path = Path(run_dir) / LOCK_NAME
    # "a+": create it if missing, never truncate what the holder wrote
    with open(path, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise GankitError(
                    f"run '{run_dir}' is being written by {holder} (it holds '{path}'); "
                    "wait for it to finish or stop it, then try again"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the lock of the run at ``run_dir`` (``process 123 on HOST``), or None
    when nobody does. Only tries the lock; never creates the file."""
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    with open(path, encoding="utf-8", errors="replace") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


__all__ = ["LOCK_NAME", "lock_holder", "run_lock"]
