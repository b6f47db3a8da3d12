"""Adam's fused kernel on the toy presets: CPU time per step, and whether it moves the
numbers.

A profile of the toy MLPs (``toy_profile.py``) shows Adam's per-parameter operations and
their scalar bookkeeping beside the matmuls. This script times ``train_step`` on one
thread with ``time.process_time`` (robust to a shared machine's load: it counts the
process's own work) for the default Adam and for ``model.fused_adam=true``, in
interleaved rounds, and says whether G's weights after the same steps are bitwise equal.

    python benchmarks/toy_fused_adam.py
    python benchmarks/toy_fused_adam.py --preset gan-grid --steps 100 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from common import command_line, machine_line, stepping_model


def cpu_ms_per_step(preset: str, fused: bool, steps: int) -> tuple[float, list[torch.Tensor]]:
    """CPU ms of one ``train_step`` on the preset's model, and G's weights after them."""
    torch.manual_seed(0)
    model, stream, _ = stepping_model(preset, {"model.fused_adam": fused})
    started = time.process_time()
    for step in range(1, steps + 1):
        model.train_step(stream.get(step), step)
    seconds = time.process_time() - started
    return seconds / steps * 1e3, [p.detach().clone() for p in model.G.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="gan-ring")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    times: dict[bool, list[float]] = {False: [], True: []}
    weights = {}
    for _ in range(args.rounds):
        for fused in (False, True):
            ms, weights[fused] = cpu_ms_per_step(args.preset, fused, args.steps)
            times[fused].append(ms)
    same = all(torch.equal(a, b) for a, b in zip(weights[False], weights[True]))
    print("| preset | Adam | CPU ms/step, median (min-max) |")
    print("|---|---|---|")
    for fused, label in ((False, "default"), (True, "fused")):
        values = times[fused]
        print(
            f"| {args.preset} | {label} | {statistics.median(values):.2f} "
            f"({min(values):.2f}-{max(values):.2f}) |"
        )
    print(f"\nG bitwise equal after {args.steps} steps: {same}; {args.rounds} rounds, 1 thread")
    print(machine_line())
    print(command_line())


if __name__ == "__main__":
    main()
