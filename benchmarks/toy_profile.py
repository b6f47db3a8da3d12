"""Where a toy preset's time goes: ``gankit.train`` under ``torch.profiler``.

Trains a ring or grid preset (``gankit bench toy``'s presets) for a reduced number of
steps with the CPU profiler on, and prints:

- the top operators by self CPU time (torch's own table, verbatim);
- the wall time of the run, and the share of it that torch's operators account for
  (the rest is Python: the trainer's loop, the model's ``train_step``, the optimizers'
  bookkeeping between kernels).

With ``--per-step`` it profiles only the model's steps instead (``train_step`` as the
trainer calls it, after a warm-up step, without the trainer's logging, previews and
checkpoints), on one thread, with D's and G's updates as labelled ranges, and prints
what share of a step each part takes: D's update and G's, the optimizers, the backward
passes, the matmuls, and the Python between torch's operators.

    python benchmarks/toy_profile.py                                # gan-ring, 1000 steps
    python benchmarks/toy_profile.py --preset gan-grid --steps 500
    python benchmarks/toy_profile.py --set train.eval_every=0       # any --set override
    python benchmarks/toy_profile.py --preset gan-grid --per-step --steps 20
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from common import command_line, machine_line, stepping_model
from gankit.jobs import train

#: The model's methods that get a labelled range of their own, outermost first.
PHASES = ("train_step", "discriminator_step", "generator_step")


def label_phases(model) -> list[str]:
    """Wrap the model's step methods (those it has of :data:`PHASES`) in profiler ranges
    named after them. The wrappers are instance attributes, which shadow the class's
    methods, so ``train_step``'s own calls to the others go through them too."""
    labelled = []
    for name in PHASES:
        method = getattr(model, name, None)
        if method is None:
            continue

        def in_range(*args, _method=method, _name=name, **kwargs):
            with record_function(_name):
                return _method(*args, **kwargs)

        setattr(model, name, in_range)
        labelled.append(name)
    return labelled


def per_step_shares(preset: str, steps: int, overrides: list[str], rows: int) -> None:
    torch.set_num_threads(1)
    model, stream, _ = stepping_model(preset, overrides)
    labelled = label_phases(model)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(1, steps + 1):
            model.train_step(stream.get(step), step)
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=rows))
    total = {event.key: event.cpu_time_total for event in averages}
    self_time = {event.key: event.self_cpu_time_total for event in averages}
    step = total["train_step"]

    inner = sum(total[name] for name in labelled[1:])
    optimizers = sum(t for key, t in total.items() if key.startswith("Optimizer.step#"))
    backward = sum(
        t for key, t in total.items() if key.startswith("autograd::engine::evaluate_function")
    )
    parts = [(f"{name} (with its optimizer step)", total[name]) for name in labelled[1:]]
    parts += [
        ("the rest of train_step (G's forward of the fakes, schedules)", step - inner),
        ("across the parts: optimizer steps", optimizers),
        ("across the parts: backward passes (autograd engine)", backward),
        (
            "across the parts: matmuls (aten::mm, aten::addmm; self)",
            sum(self_time.get(key, 0.0) for key in ("aten::mm", "aten::addmm")),
        ),
        (
            "across the parts: Python between operators (the ranges' self time)",
            sum(self_time[name] for name in labelled),
        ),
    ]
    print(f"| part of a {preset} step ({steps} steps profiled) | share of the step |")
    print("|---|---|")
    for part, value in parts:
        print(f"| {part} | {100 * value / step:.1f} % |")
    print(f"\n1 thread; {step / steps / 1e3:.2f} ms per step inside the profiler")


def whole_run(preset: str, steps: int, overrides: list[str], rows: int) -> None:
    overrides = [f"train.steps={steps}", *overrides]
    with (
        tempfile.TemporaryDirectory(prefix="gankit-profile-") as runs,
        profile(activities=[ProfilerActivity.CPU]) as prof,
    ):
        started = time.perf_counter()
        train(preset, overrides, runs_dir=runs, progress=False)
        wall = time.perf_counter() - started
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=rows))
    # self times of every operator sum to the time spent inside torch's operators
    in_ops = sum(event.self_cpu_time_total for event in averages) / 1e6
    print(
        f"{preset}, {steps} steps: {wall:.1f} s wall, {wall / steps * 1e3:.2f} "
        f"ms per step; torch operators {in_ops:.1f} s ({100 * in_ops / wall:.0f} %), "
        f"the rest Python and waiting"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="gan-ring")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument(
        "--per-step", action="store_true",
        help="profile the model's train_step only, with its parts labelled",
    )  # fmt: skip
    args = parser.parse_args()
    run = per_step_shares if args.per_step else whole_run
    run(args.preset, args.steps, args.overrides, args.rows)
    print(machine_line())
    print(command_line())


if __name__ == "__main__":
    main()
