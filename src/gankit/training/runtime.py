"""The runtime a run trains in: device, threads, random state, precision, compilation,
and the signals that stop it.

None of this knows about models' update rules or about run directories; the trainer
(:mod:`gankit.training.trainer`) uses it to set up the clock.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.runs.rng import rng_state, set_rng_state


# --------------------------------------------------------------------------- devices
def available_devices() -> list[str]:
    """The ``train.device`` values this machine can run, e.g. ``["cpu"]``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append(f"cuda ({torch.cuda.device_count()} devices)")
    if _mps_available():
        found.append("mps")
    return found


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)  # absent from some torch builds
    return mps is not None and mps.is_available()


def resolve_device(name: str) -> torch.device:
    """``train.device`` as a torch device; ``auto`` picks CUDA, then MPS, then CPU.

    Raises:
        GankitError: the device was asked for but this machine or torch build lacks
            it; the message lists the devices that are available.
    """
    cuda, mps = torch.cuda.is_available(), _mps_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        what = "CUDA" if name == "cuda" else "MPS"
        raise GankitError(
            f"train.device '{name}' was requested but {what} is not available here; "
            f"available devices: {', '.join(available_devices())}"
        )
    return torch.device(name)


def default_threads(data_kind: str, local_world_size: int = 1) -> int:
    """CPU threads for a run whose ``train.threads`` is unset, from the kind of its data
    (``DataBundle.kind``), so that every source of 2-D points counts, ``points`` too.

    - Toy 2-D data: 1. Its MLPs do too little per operation to pay for OpenMP's
      fork and join, and when anything else keeps a core busy, two threads wait on
      each other at every operation: on a shared 2-core machine a gan-ring loop ran
      at 2.9 steps/s on 2 threads and at 95 on 1 (``docs/performance.md``).
    - Otherwise the cores divided by the processes on this machine: N ranks with all
      the cores each would spin against each other.
    """
    if data_kind == "toy":
        return 1
    return max(1, (os.cpu_count() or 1) // local_world_size)


# --------------------------------------------------------------------------- randomness
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- signals
class StopFlag:
    """Turns the first Ctrl-C / SIGTERM into a request to stop after the current step.

    Stopping between steps means the checkpoint we save is consistent (an interrupt
    inside ``optimizer.step`` would leave half-updated weights). A second Ctrl-C
    interrupts at once.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- speed
class Precision:
    """Mixed precision and memory layout for one model, checked against the device.

    ``fp32`` changes nothing; ``bf16`` runs each step under autocast; ``fp16`` adds
    CUDA's gradient scaler, which the families reach through ``Model.backward`` and
    ``Model.step``.
    """

    def __init__(self, model, precision: str, channels_last: bool, device: torch.device) -> None:
        if precision == "fp16" and device.type != "cuda":
            raise GankitError(
                f"train.precision fp16 needs CUDA (its gradient scaler is CUDA's); on "
                f"{device.type} use bf16 or fp32"
            )
        self.model, self.device = model, device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        if precision == "fp16":
            model.grad_scaler = torch.amp.GradScaler("cuda")
        self.channels_last = channels_last and len(model.data_shape) == 3
        if self.channels_last:
            model.to(memory_format=torch.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def layout(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Image batches in NHWC memory when ``channels_last`` is on."""
        if not self.channels_last:
            return batch
        return {
            k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
            for k, v in batch.items()
        }

    def after_step(self) -> None:
        if self.model.grad_scaler is not None:
            self.model.grad_scaler.update()


class CompiledSteps:
    """``torch.compile`` for each of a model's trainable networks, with a way back.

    The first compiled step runs on a snapshot of the weights, optimizers and random
    state: if compiling fails there (an error raised from inside torch), the networks
    go back to eager, the snapshot is restored and the step runs again. The plain
    networks stay in ``networks`` (the trainer's map of DDP-wrapped and compiled
    networks to their plain selves).
    """

    def __init__(self, model, networks: dict[str, nn.Module], unwrapped: Callable) -> None:
        self.model, self.networks, self.unwrapped = model, networks, unwrapped
        self._snapshot_pending = True
        for name, child in list(model.named_children()):
            if not any(p.requires_grad for p in child.parameters()):
                continue
            networks.setdefault(name, child)
            setattr(model, name, torch.compile(child))

    def run(self, step_fn: Callable[[], dict[str, float]]) -> dict[str, float]:
        if not self._snapshot_pending:
            return step_fn()
        self._snapshot_pending = False
        with self.unwrapped(self.model, self.networks):
            weights = {k: v.clone() for k, v in self.model.state_dict().items()}
        optimizers = [copy.deepcopy(o.state_dict()) for o in self.model.optimizers.values()]
        random_state = rng_state()
        try:
            return step_fn()
        except Exception as err:
            if not type(err).__module__.startswith("torch._"):
                raise
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            sys.stderr.write(
                f"gankit: torch.compile failed ({reason[:200]}); training without it\n"
            )
            self._uncompile()
            with self.unwrapped(self.model, self.networks):
                self.model.load_state_dict(weights)
            for optimizer, state in zip(self.model.optimizers.values(), optimizers):
                optimizer.load_state_dict(state)
            set_rng_state(random_state)
            return step_fn()

    def _uncompile(self) -> None:
        """Drop the compilation, keep DDP where there is one."""
        for name in self.networks:
            wrapped = getattr(self.model, name)
            # torch.compile's wrapper keeps the original module as _orig_mod
            setattr(self.model, name, getattr(wrapped, "_orig_mod", wrapped))
