"""What every benchmark script shares: timing gankit runs, the machine line, the load.

On a shared machine absolute timings drift with whatever else runs, so the scripts
compare side by side in interleaved rounds and report medians with their spread;
the load average is printed next to each table so a reader can judge the noise.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence

import torch


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``0.42 0.51 0.60``."""
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line() -> str:
    return (
        f"torch {torch.__version__}, {platform.machine()} {platform.processor() or ''}, "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"load average {load_average()}"
    )


def command_line() -> str:
    return "command: python " + " ".join([sys.argv[0], *sys.argv[1:]])


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``median (min-max)`` of the rounds."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}–{max(values):.{digits}f})"
    )


def gankit_steps_per_second(
    preset: str, overrides: dict, steps: int, runs_dir: str, name: str
) -> float:
    """``gankit.train`` on ``preset``; steps per second between the first and last log.

    The window leaves out start-up (data loading, model building, the first step's
    allocations) and the end (the preview and the checkpoint, which happen once).
    Previews, checkpoints and EMA are pushed out of the window or off, since the plain
    loops do none of them; metrics are logged as usual.
    """
    import gankit

    settings = {
        "train.steps": steps,
        "train.log_every": max(1, steps // 10),
        "train.sample_every": 10 * steps,
        "train.ckpt_every": 10 * steps,
        "train.ema_decay": None,
        "train.seed": 0,
        **overrides,
    }
    result = gankit.train(
        preset, settings, name=name, runs_dir=runs_dir, progress=False, overwrite=True
    )
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    rows = [row for row in rows if "loss_d" in row or "loss_g" in row]
    first, last = rows[0], rows[-1]
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


def stepping_model(preset: str, overrides: list[str] | dict | None = None) -> tuple:
    """A preset's model with its optimizers and in-memory batch stream, as the trainer
    builds them, after one warm-up ``train_step`` (optimizer state, first allocations).

    Returns:
        ``(model, stream, config)``: call ``model.train_step(stream.get(step), step)``
        for steps 1, 2, ... in order.
    """
    from gankit.config import resolve_config
    from gankit.training.data import BatchStream
    from gankit.training.run import build

    config = resolve_config(preset, overrides)
    model, bundle = build(config)
    model.setup_optimizers()
    model.max_steps = config["train"]["steps"]
    stream = BatchStream(
        bundle.train, config["train"]["batch_size"], model.real_batches_per_step, 0,
        torch.device("cpu"),
    )  # fmt: skip
    model.train_step(stream.get(0), 0)
    return model, stream, config
