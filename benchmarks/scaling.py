"""Scaling of ``dcgan-fashion``: step time against batch size, and 1 against 2 processes.

1. **Batch curve.** ``gankit.train`` at each batch size, batch sizes interleaved in
   every round; step time and images per second, medians over rounds.
2. **Processes.** ``gankit train --nproc 2`` (torchrun, gloo) against one process, at
   the same global batch (2 x B against 2B), both launched as the CLI would be and
   timed between the first and last lines of ``metrics.jsonl``. Threads are gankit's
   default: the cores divided by the processes, so two ranks never share a core's
   worth of OpenMP threads.

    python benchmarks/scaling.py
    python benchmarks/scaling.py --batch-size 32 128 --global-batch 128 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import command_line, gankit_steps_per_second, load_average, machine_line, spread

PRESET = "dcgan-fashion"


def cli_images_per_second(
    nproc: int, threads: int | None, global_batch: int, steps: int, runs_dir: str
) -> float:
    """``gankit train`` with ``nproc`` processes (``--nproc`` when above 1) and
    ``threads`` torch threads each (None: gankit's default)."""
    name = f"p{nproc}"
    command = [
        sys.executable, "-m", "gankit", "train", PRESET, "--name", name,
        "--runs-dir", runs_dir, "--overwrite", "--no-progress",
        "--set", f"train.batch_size={global_batch // nproc}",
        "--set", f"train.steps={steps}",
        "--set", f"train.log_every={max(1, steps // 10)}",
        "--set", f"train.sample_every={10 * steps}",
        "--set", f"train.ckpt_every={10 * steps}",
        "--set", "train.ema_decay=null",
    ]  # fmt: skip
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    if threads is not None:
        command += ["--set", f"train.threads={threads}"]
    # torchrun's children inherit this environment, PYTHONPATH included
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        sys.exit(f"scaling: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    rows = [json.loads(line) for line in (Path(runs_dir) / name / "metrics.jsonl").open()]
    first, last = rows[0], rows[-1]
    return global_batch * (last["step"] - first["step"]) / (last["time"] - first["time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    parser.add_argument("--images", type=int, default=2560, help="images per batch-curve run")
    parser.add_argument("--global-batch", type=int, default=128)
    parser.add_argument("--process-steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="batch curve; default: gankit's choice"
    )
    parser.add_argument("--skip-curve", action="store_true")
    parser.add_argument("--skip-processes", action="store_true")
    args = parser.parse_args()

    print(machine_line())
    curve: dict[int, list[float]] = {b: [] for b in args.batch_size}
    # (processes, threads per process): gankit's default for 1 and 2 processes, and one
    # process on one thread, which separates thread contention from parallel work
    configurations = [(1, None), (2, None), (1, 1)]
    processes: dict[tuple[int, int | None], list[float]] = {c: [] for c in configurations}
    with tempfile.TemporaryDirectory() as runs_dir:
        for r in range(args.rounds):
            if not args.skip_curve:
                for b in args.batch_size:
                    # equal images per run, at least 10 steps: the window spans 9 of them
                    steps = max(10, args.images // b)
                    curve[b].append(
                        gankit_steps_per_second(
                            PRESET,
                            {"train.batch_size": b, "train.threads": args.threads},
                            steps,
                            runs_dir,
                            f"b{b}",
                        )
                    )
            if not args.skip_processes:
                for nproc, threads in processes:
                    processes[nproc, threads].append(
                        cli_images_per_second(
                            nproc, threads, args.global_batch, args.process_steps, runs_dir
                        )
                    )
            print(f"  done round {r + 1} (load {load_average()})")
    print()
    print(f"load average after the runs: {load_average()}")
    if not args.skip_curve:
        print()
        print(f"batch curve, torch threads: {args.threads or 'gankit default'}")
        print("| batch | step ms | images/s | images/s relative to batch 64 |")
        print("|---|---|---|---|")
        reference = statistics.median(curve.get(64) or curve[args.batch_size[0]]) * (
            64 if 64 in curve else args.batch_size[0]
        )
        for b, rates in curve.items():
            rate = statistics.median(rates)
            print(f"| {b} | {1000 / rate:.0f} | {b * rate:.0f} | {b * rate / reference:.2f} |")
    if not args.skip_processes:
        print()
        print(
            "| processes | threads per process | batch per process | global batch | images/s "
            "| vs 1 process, default threads |"
        )
        print("|---|---|---|---|---|---|")
        one = processes[1, None]
        for (nproc, threads), rates in processes.items():
            ratios = [a / b for a, b in zip(rates, one)]
            shown = threads or f"{max(1, (os.cpu_count() or 1) // nproc)} (default)"
            print(
                f"| {nproc} | {shown} | {args.global_batch // nproc} | {args.global_batch} "
                f"| {statistics.median(rates):.0f} | {spread(ratios)} |"
            )
        print()
        print("vs 1 process: median (min–max) over rounds of the ratio within a round")
    print(command_line())


if __name__ == "__main__":
    main()
