"""Checkpoints: written atomically, the newest K kept, each embedding its config.

A checkpoint holds everything needed to continue a run bit-for-bit on CPU: the
model, the optimizers, the generator's EMA, the step, and the random number
generators' states.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError
from gankit.files import atomic_save

CHECKPOINT_PATTERN = re.compile(r"^step_(\d{8})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every step checkpoint in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as the checkpoint of ``step`` and delete all but the newest ``keep``."""
    path = checkpoint_path(folder, step)
    atomic_save(state, path)
    for _, old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU; a damaged file is a user-facing error naming it."""
    try:
        # weights_only=False: our checkpoints hold RNG states and plain config dicts,
        # and we only load files that gankit wrote into a run directory.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise GankitError(
            f"checkpoint '{path}' cannot be read ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise GankitError(f"'{path}' is not a gankit checkpoint (no model or config inside)")
    return state


def latest_checkpoint(folder: Path) -> tuple[int, Path] | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None
