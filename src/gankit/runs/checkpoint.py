"""Checkpoints: written atomically, the newest K kept, each embedding its config.

A checkpoint holds everything needed to continue a run bit-for-bit on CPU: the
model, the optimizers, the generator's EMA, the step, and the random number
generators' states. It holds only tensors and plain values (dicts, lists, numbers,
strings), so it is loaded with ``torch.load(weights_only=True)``: a checkpoint someone
hands you cannot run code. Checkpoints written before format 2 kept numpy and Python
random states as pickled objects; :func:`upgrade_checkpoint` converts them, and is the
one place that unpickles a file in full, once its user has said they trust it.
"""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError, warn
from gankit.files import (
    LinkError,
    atomic_save,
    atomic_write,
    load_tensors,
    make_folder,
    regular_files,
)
from gankit.runs.rng import portable_rng_state

CHECKPOINT_PATTERN = re.compile(r"^step_(\d{8})\.pt$")

#: 2: random states as tensors and numbers, loadable with weights_only=True.
FORMAT = 2

UPGRADE_HINT = "gankit checkpoint upgrade {target} --trust"


class CheckpointError(GankitError):
    """A checkpoint gankit cannot use.

    Attributes:
        unsafe: the file holds Python objects that only a full unpickling (which can
            run code) would rebuild: an older gankit's checkpoint, or a booby trap.
            Otherwise it is damaged (cut short, overwritten) or not a gankit checkpoint.
    """

    def __init__(self, message: str, unsafe: bool = False) -> None:
        super().__init__(message)
        self.unsafe = unsafe


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every step checkpoint in ``folder``, oldest first."""
    found = []
    for path in regular_files(folder):  # a link named like a checkpoint is no checkpoint
        match = CHECKPOINT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as the checkpoint of ``step`` and delete all but the newest ``keep``.

    The older checkpoints are deleted only once the new one is whole on disk, so a
    failed write (a full disk) leaves every earlier checkpoint in place.
    """
    path = checkpoint_path(make_folder(folder), step)
    atomic_save(state, path)
    for _, old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU, tensors and plain values only (``weights_only``).

    Raises:
        CheckpointError: the file is damaged, is not a gankit checkpoint, or holds
            objects that would need code to run (``unsafe``; the message says how to
            convert a trusted old checkpoint).
    """
    try:
        state = load_tensors(path)
    except LinkError:
        raise
    except GankitError as err:  # sizes over the bounds: damaged, never loaded
        raise CheckpointError(str(err)) from None
    except Exception as err:
        unsafe = _unsafe_globals(path)
        if unsafe:
            raise CheckpointError(
                f"checkpoint '{path}' holds Python objects that loading would have to run "
                f"code to rebuild ({', '.join(unsafe[:3])}); gankit loads tensors and plain "
                f"values only. If it is an older gankit checkpoint from a source you trust, "
                f"convert it: {UPGRADE_HINT.format(target=path)}",
                unsafe=True,
            ) from None
        raise CheckpointError(f"checkpoint '{path}' cannot be read ({one_line(err)})") from None
    _check_contents(state, path)
    return state


def one_line(err: BaseException, limit: int = 200) -> str:
    """An exception as one short line: its type and its message's words."""
    words = " ".join(str(err).split())
    text = f"{type(err).__name__}: {words}" if words else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_contents(state: Any, path: Path) -> None:
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"'{path}' is not a gankit checkpoint (no model or config inside)")


def _unsafe_globals(path: Path) -> list[str]:
    """The classes and functions a torch zip checkpoint names beyond torch's safe list;
    read from the pickle's opcodes, nothing is run. Empty for a file that is no zip."""
    find = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    try:
        if find is None or not zipfile.is_zipfile(path):
            return []
        return list(find(path))
    except Exception:
        return []


def load_latest(folder: Path) -> tuple[int, Path, dict[str, Any]] | None:
    """The newest checkpoint in ``folder`` that loads: (step, path, state), or None if
    there is none. A damaged newer one is skipped with a warning; an unsafe one stops
    everything (it is never stepped over silently).
    """
    damaged: list[tuple[Path, CheckpointError]] = []
    for step, path in reversed(list_checkpoints(folder)):
        try:
            state = load_checkpoint(path)
        except CheckpointError as err:
            if err.unsafe:
                raise
            damaged.append((path, err))
            continue
        for _, err in damaged:
            warn(f"{err}; using the older '{path.name}' (step {step})")
        return step, path, state
    if damaged:
        raise damaged[0][1]
    return None


def latest_checkpoint(folder: Path) -> tuple[int, Path] | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


# --------------------------------------------------------------------------- old formats
def upgrade_checkpoint(path: Path) -> Path | None:
    """Rewrite an older checkpoint in the current format; returns the backup of the old
    file (``*.pt.bak``), or None when ``path`` already loads with ``weights_only``.

    This unpickles ``path`` in full, which runs whatever code the file carries: call
    it only for a file its user trusts. The converted checkpoint is checked to load
    with ``weights_only=True`` before anything is written; then the old file is copied
    to ``*.pt.bak`` and the new one renamed over it, each atomically.

    Raises:
        CheckpointError: the file is damaged, is not a gankit checkpoint, or holds
            objects that have no plain form.
        GankitError: ``*.pt.bak`` exists already.
    """
    try:
        load_checkpoint(path)
        return None
    except CheckpointError as err:
        if not err.unsafe:
            raise
    backup = path.with_name(path.name + ".bak")
    if backup.exists():
        raise GankitError(
            f"'{backup}' already exists; move it away before upgrading '{path}' again"
        )
    try:
        # The one full unpickling in gankit, asked for with --trust.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CheckpointError(f"checkpoint '{path}' cannot be read ({one_line(err)})") from None
    _check_contents(state, path)
    state["format"] = FORMAT
    if state.get("rng") is not None:
        state["rng"] = portable_rng_state(state["rng"])
    buffer = io.BytesIO()
    try:
        torch.save(state, buffer)
        torch.load(io.BytesIO(buffer.getvalue()), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint '{path}' holds objects that have no plain form "
            f"({one_line(err)}); it was left as it is"
        ) from None
    atomic_write(backup, lambda tmp: shutil.copyfile(path, tmp))
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    return backup
