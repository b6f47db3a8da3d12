"""Files gankit writes: atomic writes, and the user cache folder.

Checkpoints, cached evaluators and downloads are all written the same way: into a
temporary file beside the target, flushed to disk, then renamed over it. A crash, a
full disk or a failed check mid-write leaves the previous file (or no file) under the
final name, never half of one that a later run would trust.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch

from gankit.errors import GankitError, warn

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


#: The temporary files of :func:`atomic_write`: ``.<final name>.<8 random characters>.tmp``,
#: for pictures followed by the final name's suffix (``.tmp.png``), so that writers that
#: choose the format from the file name (Pillow, matplotlib) write it in the final format.
PARTIAL_WRITE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]{1,12})?$")


def atomic_write(path: Path, write: Callable[[Path], None], keep_suffix: bool = False) -> None:
    """Call ``write(temporary_path)``, fsync the file, then rename it to ``path``.

    The temporary file sits beside ``path`` (a rename is atomic only within one file
    system) and is deleted if ``write`` raises, so ``write`` may also check what it
    wrote (a checksum) and raise to keep it from ever reaching ``path``. A process
    killed mid-write leaves it behind: :func:`remove_partial_writes` clears those.
    ``keep_suffix``: the temporary file ends in ``path``'s suffix too (for writers that
    pick the format from the name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.replace renames over a link at ``path`` (the link goes, its target is never
    # written), so an atomic write cannot be steered outside a folder by a planted link.
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.",
        suffix=".tmp" + (path.suffix if keep_suffix else ""),
        dir=path.parent,
    )
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


#: The most rows :func:`read_jsonl` keeps: a curve of 20,000 points is more than a plot
#: shows, and a log of any length then costs a bounded amount of memory.
MAX_ROWS = 20_000
#: The longest line :func:`read_jsonl` parses; gankit's own lines are under 2 KB.
MAX_LINE = 1 << 16


def read_jsonl(path: Path, most: int = MAX_ROWS) -> list[dict]:
    """The JSON objects of a JSON-lines file, one per line, read as a stream; a line that
    is not a whole object (the last one, cut short by a killed writer) or is longer than
    :data:`MAX_LINE` is skipped. No file: none. Never through a link.

    A file of more than ``most`` objects is thinned evenly (every 2nd, then every 4th,
    ... object is kept, always the last), so memory stays bounded by ``2 * most`` rows
    whatever the file's size.
    """
    path = Path(path)
    if is_link(path):
        warn(f"{link_error(path)}; it was not read")
        return []
    if not path.is_file():
        return []
    rows: list[dict] = []
    stride, index, last = 1, 0, None
    with open_regular(path, "rb") as handle:
        while line := handle.readline(MAX_LINE + 1):
            if len(line) > MAX_LINE:
                while line and not line.endswith(b"\n"):  # the rest of an overlong line
                    line = handle.readline(MAX_LINE + 1)
                continue
            try:
                row = json.loads(line.decode("utf-8", errors="replace"))
            except ValueError:
                continue
            if not isinstance(row, dict):
                continue
            last = row
            if index % stride == 0:
                rows.append(row)
                if len(rows) > 2 * most:
                    rows, stride = rows[::2], stride * 2
            index += 1
    if last is not None and (not rows or rows[-1] is not last):
        rows.append(last)
    return rows


# --------------------------------------------------------------------------- no links out
# A run folder is mailed and downloaded, so a link inside it can point anywhere: at a
# user's file to overwrite, at another run's checkpoints to prune, at a secret to embed in
# a report. gankit never follows one. The run's own paths are checked below its root
# (``RunPaths``), every file is opened with O_NOFOLLOW, and atomic writes rename over a
# link rather than write through it. The folder of the run itself may be a link (a user
# may keep runs on another disk): only what lies below it is checked.

#: O_NOFOLLOW where the system has it (every POSIX system; not Windows, which has no
#: symlinks a downloaded folder could carry without the user's privileges).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class LinkError(GankitError):
    """A path inside a run folder is a link, which gankit never follows."""


def link_error(path: Path) -> LinkError:
    try:
        target = f" (to '{os.readlink(path)}')"
    except OSError:
        target = ""
    return LinkError(
        f"'{path}' is a link{target}; gankit never follows a link inside a run folder, since a "
        "run folder can come from anyone: replace the link with the file or folder itself, "
        "or delete it"
    )


def no_links(root: Path, *parts: str) -> Path:
    """``root / parts``, refused when any existing entry below ``root`` on that path is a
    link (``lstat``: the link itself, never its target).

    Raises:
        LinkError: names the link.
    """
    path = Path(root)
    for part in parts:
        path = path / part
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise link_error(path)
        except FileNotFoundError:
            break  # nothing below a missing entry exists either
        except NotADirectoryError:
            break
    return Path(root).joinpath(*parts)


def is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def open_regular(path: Path, mode: str = "rb", create: bool = False) -> Iterator[IO]:
    """Open a regular file without following a link at ``path`` and without blocking on
    a FIFO: ``"rb"``/``"r"`` to read, ``"ab"``/``"a"`` to append (``create``: made if
    missing, with the mode ``open()`` would give it).

    Raises:
        LinkError: ``path`` is a link.
        GankitError: ``path`` is no regular file (a FIFO, a device, a folder).
        FileNotFoundError: ``path`` is missing.
    """
    flags = (os.O_WRONLY | os.O_APPEND) if mode.startswith("a") else os.O_RDONLY
    flags |= NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as err:
        if err.errno == errno.ELOOP or (err.errno == errno.EMLINK and is_link(path)):
            raise link_error(Path(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise GankitError(f"'{path}' is not a regular file; gankit reads and writes only files")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_bytes(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (never through a link), at most ``limit``.

    Raises:
        LinkError, GankitError: as :func:`open_regular`; also a file over ``limit``.
    """
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise GankitError(f"'{path}' is larger than the {limit:,} bytes gankit reads from it")
    return data


def regular_files(folder: Path) -> list[Path]:
    """The regular files directly in ``folder`` (links are left out), by name; none when
    ``folder`` is missing or is itself a link."""
    folder = Path(folder)
    if is_link(folder) or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not is_link(p) and p.is_file())


def make_folder(path: Path) -> Path:
    """Create the folder ``path`` (and its parents) if missing; an existing ``path`` must
    be a folder, not a link to one (:func:`no_links` checks the parents). Returns it."""
    path = Path(path)
    if is_link(path):
        raise link_error(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


#: The most a torch file gankit loads may declare it holds, summed over its archive's
#: members: a checkpoint of the largest model gankit's bounds allow (two 512-wide ResNets
#: at 128 px, with the EMA and Adam's moments) is under 1 GB.
MAX_TORCH_BYTES = 4 << 30
#: torch.save stores its members uncompressed, so a gankit file inflates to about its own
#: size; a member that claims far more is a decompression bomb.
MAX_INFLATION = 16


def load_tensors(path: Path, limit: int = MAX_TORCH_BYTES) -> Any:
    """``torch.load(weights_only=True)`` of the regular file ``path``, never through a
    link, after checking the sizes its zip archive declares: more than ``limit`` in all,
    or more than :data:`MAX_INFLATION` times the file's own size, is refused before a
    byte is inflated.

    Raises:
        LinkError, GankitError: a link, not a file, or sizes over the bounds.
        Exception: whatever ``torch.load`` raises for a damaged or unsafe file.
    """
    import zipfile

    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise GankitError(
                f"'{path}' has {size:,} bytes; gankit loads at most {limit:,} from such a file"
            )
        if zipfile.is_zipfile(handle):
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                declared = sum(member.file_size for member in archive.infolist())
            if declared > limit or declared > MAX_INFLATION * size + (1 << 20):
                raise GankitError(
                    f"'{path}' declares {declared:,} bytes inside a file of {size:,} "
                    f"(gankit loads at most {limit:,}, and at most {MAX_INFLATION} times the "
                    "file's size, since torch stores tensors uncompressed); it is damaged or "
                    "a decompression bomb, and was not loaded"
                )
        handle.seek(0)
        return torch.load(handle, map_location="cpu", weights_only=True)


#: The list of the files gankit wrote into a folder of pictures (``RUN/explore``), so
#: that ``--overwrite`` of the run can tell them from the user's own.
WRITTEN_LIST = ".gankit-written"


def written_names(folder: Path) -> set[str]:
    """The names :func:`record_written` listed for ``folder`` (none: empty)."""
    path = Path(folder) / WRITTEN_LIST
    try:
        names = json.loads(read_bytes(path, 1 << 20).decode("utf-8"))
    except (OSError, ValueError, GankitError):
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def record_written(folder: Path, names: list[str]) -> None:
    """Add ``names`` to the list of files gankit wrote into ``folder``."""
    listed = sorted(written_names(folder) | set(names))
    atomic_write_text(Path(folder) / WRITTEN_LIST, json.dumps(listed) + "\n")


def refuse_inputs(outputs, inputs, option: str = "--out") -> None:
    """Refuse to write any of ``outputs`` that is one of the command's own ``inputs``
    (the same file, by whatever path), before anything is written: ``--overwrite``
    replaces earlier outputs, never what the command reads.

    Raises:
        GankitError: names the output and the input it is.
    """
    sources = [Path(source) for source in inputs if Path(source).exists()]
    for out in outputs:
        out = Path(out)
        for source in sources:
            if (
                out.exists() and os.path.samefile(out, source)
            ) or out.resolve() == source.resolve():
                raise GankitError(
                    f"{option} would write '{out}', which is the input '{source}' itself; "
                    f"choose another {option} (an output never replaces its own input)"
                )
