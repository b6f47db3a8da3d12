"""CPU seconds per step of gankit's ``train_step`` against the plain loop, on one thread.

Wall-clock ratios (``utilization.py``) swing with whatever else runs on a shared
machine. The CPU time a one-thread process spends is far less sensitive to that: it
counts the process's own work, not the time it waited for a core. This script measures
``time.process_time`` of gankit's model stepping through its in-memory batches
(``BatchStream`` + ``train_step``, as the trainer calls them, without the trainer's
logging) against the same plain loops as ``utilization.py``, in interleaved rounds.

    python benchmarks/step_cpu_time.py
    python benchmarks/step_cpu_time.py --presets gan-ring --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from common import command_line, load_average, machine_line, spread
from plain_loops import dcgan_init
from utilization import cases, training_data


def gankit_cpu_seconds(preset: str, batch_size: int, steps: int) -> float:
    """CPU seconds of ``steps`` calls of ``train_step`` on the preset's model."""
    from gankit.config import resolve_config
    from gankit.training.data import BatchStream
    from gankit.training.run import build

    model, bundle = build(resolve_config(preset, {"train.batch_size": batch_size}))
    model.setup_optimizers()
    model.max_steps = steps
    stream = BatchStream(
        bundle.train, batch_size, model.real_batches_per_step, 0, torch.device("cpu")
    )
    model.train_step(stream.get(0), 0)  # optimizer state and first allocations
    started = time.process_time()
    for step in range(1, steps + 1):
        model.train_step(stream.get(step), step)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=None, help="default: all")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 256], help="conv")
    parser.add_argument("--steps", type=int, default=10, help="dcgan steps per round")
    parser.add_argument("--toy-steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(machine_line())
    print(f"{args.rounds} interleaved rounds, 1 thread, time.process_time")
    rows = []
    for case in cases(args.batch_size, args.steps, args.toy_steps):
        if args.presets is not None and case.preset not in args.presets:
            continue
        data = training_data(case.preset)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(gankit_cpu_seconds(case.preset, case.batch_size, case.steps))
            G, D = case.networks()
            dcgan_init(G), dcgan_init(D)
            started = time.process_time()
            case.loop(G, D, data, case.batch_size, case.steps)
            theirs.append(time.process_time() - started)
        rows.append((case, ours, theirs))
        print(f"  done {case.preset} batch {case.batch_size} (load {load_average()})")
    print()
    print(f"load average after the runs: {load_average()}")
    print()
    print("| preset | batch | gankit CPU ms/step | plain CPU ms/step | plain / gankit |")
    print("|---|---|---|---|---|")
    for case, ours, theirs in rows:
        ratios = [b / a for a, b in zip(ours, theirs)]
        print(
            f"| {case.preset} | {case.batch_size} "
            f"| {1000 * statistics.median(ours) / case.steps:.1f} "
            f"| {1000 * statistics.median(theirs) / case.steps:.1f} | {spread(ratios)} |"
        )
    print()
    print("plain / gankit: above 1 means gankit's step costs less CPU; median (min–max)")
    print(command_line())


if __name__ == "__main__":
    main()
