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
from gankit.files import no_links, open_regular

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
    path = no_links(run_dir, LOCK_NAME)
    # opened to append (created if missing, never truncated before the lock is ours) and
    # never through a link: a planted train.lock link would have the holder's line
    # written into whatever file it names
    with open_regular(path, "a", create=True) as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder_text(path)
                raise GankitError(
                    f"run '{run_dir}' is being written by {holder} (it holds '{path}'); "
                    "wait for it to finish or stop it, then try again"
                ) from None
        handle.truncate(0)
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the lock of the run at ``run_dir`` (``process 123 on HOST``), or None
    when nobody does. Only tries the lock; never creates the file. A lock file that is
    a link is no lock of gankit's (a downloaded folder could link it to any file that
    some process holds), so it says nobody."""
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None:
        return None
    try:
        with open_regular(path, "rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _holder_text(path)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except (OSError, GankitError):  # missing, a link, not a file
        return None
    return None


def _holder_text(path: Path) -> str:
    """The holder's line in the lock file: printable, one line, at most 200 characters."""
    try:
        with open_regular(path, "rb") as handle:
            text = handle.read(200).decode("utf-8", errors="replace")
    except (OSError, GankitError):
        text = ""
    line = " ".join(text.split())
    return "".join(c for c in line if c.isprintable()) or "another process"


__all__ = ["LOCK_NAME", "lock_holder", "run_lock"]
