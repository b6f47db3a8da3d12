"""Where a toy preset's time goes: ``gankit.train`` under ``torch.profiler``.

Trains a ring or grid preset (``gankit bench toy``'s presets) for a reduced number of
steps with the CPU profiler on, and prints:

- the top operators by self CPU time (torch's own table, verbatim);
- the wall time of the run, and the share of it that torch's operators account for
  (the rest is Python: the trainer's loop, the model's ``train_step``, the optimizers'
  bookkeeping between kernels).

    python benchmarks/toy_profile.py                                # gan-ring, 1000 steps
    python benchmarks/toy_profile.py --preset gan-grid --steps 500
    python benchmarks/toy_profile.py --set train.eval_every=0       # any --set override
"""

from __future__ import annotations

import argparse
import tempfile
import time

from torch.profiler import ProfilerActivity, profile

from common import command_line, machine_line
from gankit.jobs import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="gan-ring")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    overrides = [f"train.steps={args.steps}", *args.overrides]
    with (
        tempfile.TemporaryDirectory(prefix="gankit-profile-") as runs,
        profile(activities=[ProfilerActivity.CPU]) as prof,
    ):
        started = time.perf_counter()
        train(args.preset, overrides, runs_dir=runs, progress=False)
        wall = time.perf_counter() - started
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    # self times of every operator sum to the time spent inside torch's operators
    in_ops = sum(event.self_cpu_time_total for event in averages) / 1e6
    print(
        f"{args.preset}, {args.steps} steps: {wall:.1f} s wall, {wall / args.steps * 1e3:.2f} "
        f"ms per step; torch operators {in_ops:.1f} s ({100 * in_ops / wall:.0f} %), "
        f"the rest Python and waiting"
    )
    print(machine_line())
    print(command_line())


if __name__ == "__main__":
    main()
