"""Every random generator's state as tensors and plain numbers: what a checkpoint keeps so
that a resumed run continues bit for bit, in a form ``torch.load(weights_only=True)``
reads (numpy's and Python's own states are tuples that only a full unpickling rebuilds).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """Every random generator's state as tensors and plain numbers, so a checkpoint
    that holds it loads with ``torch.load(weights_only=True)``."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(np.random.get_state()),
        "python": _python_state(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved, exactly."""
    numpy_state, python_state = state["numpy"], state["python"]
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    words = tuple(int(word) for word in python_state["state"].tolist())
    random.setstate((python_state["version"], words, python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def portable_rng_state(state: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint's random states (numpy's and Python's own tuples) in the
    form :func:`rng_state` writes today."""
    out = dict(state)
    if isinstance(state.get("numpy"), tuple):
        out["numpy"] = _numpy_state(state["numpy"])
    if isinstance(state.get("python"), tuple):
        out["python"] = _python_state(state["python"])
    return out


def _numpy_state(state: tuple) -> dict[str, Any]:
    """numpy's legacy ``("MT19937", keys, pos, has_gauss, cached_gaussian)``."""
    _, keys, pos, has_gauss, cached_gaussian = state
    return {
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),  # uint32 fits in int64
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached_gaussian),
    }


def _python_state(state: tuple) -> dict[str, Any]:
    """Python's ``(version, 625 words of 32 bits, gauss_next)``."""
    version, words, gauss_next = state
    return {
        "version": int(version),
        "state": torch.tensor(words, dtype=torch.int64),
        "gauss_next": gauss_next,
    }
