"""How close gankit trains to this machine's limit, and how it compares with plain PyTorch.

For each preset and batch size, in interleaved rounds:

1. **Peak.** A large fp32 matmul (``--matmul`` square, warmed up, the same torch
   threads as training) gives the machine's attainable FLOP/s in that round.
2. **gankit.** ``gankit.train`` on the preset (previews, checkpoints and EMA out of the
   timing window, metrics logged), timed between its first and last log lines.
3. **Plain PyTorch.** A hand-written loop of the same architecture, batch, optimizer
   and data (``plain_loops.py``), timed over its whole loop.

Model FLOPs per training step are counted once with
``torch.utils.flop_counter.FlopCounterMode`` on one real ``train_step`` (every D step,
the gradient penalty's double backward, the G step, all backward passes). The counter
sees matmuls and convolutions, not element-wise work, so utilization is the fraction
of the matmul peak spent on the arithmetic that matters; the element-wise rest is
overhead by this measure. Utilization = model FLOPs x steps/s / peak, per round;
the table gives medians over rounds with the spread in brackets.

    python benchmarks/utilization.py                       # every preset, 5 rounds
    python benchmarks/utilization.py --presets gan-ring --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from common import command_line, gankit_steps_per_second, load_average, machine_line, spread
from plain_loops import (
    bce_gan_loop,
    conv_discriminator,
    conv_generator,
    count_parameters,
    dcgan_init,
    mlp,
    wgan_gp_loop,
)


@dataclass
class Case:
    """One preset at one batch size, with its plain-PyTorch twin."""

    preset: str
    batch_size: int
    networks: Callable[[], tuple[nn.Module, nn.Module]]  # the plain G and D
    loop: Callable[..., float]  # (G, D, data, batch_size, steps) -> seconds
    steps: int  # per round: conv steps take ~50-1000x longer than toy steps


def _conv_nets(latent: int, norm: str) -> Callable[[], tuple[nn.Module, nn.Module]]:
    return lambda: (conv_generator(latent), conv_discriminator(norm=norm))


def _mlp_nets(hidden: int, d_slope: float) -> Callable[[], tuple[nn.Module, nn.Module]]:
    return lambda: (mlp(2, hidden, 3, 2, 0.0), mlp(2, hidden, 3, 1, d_slope))


def cases(conv_batches: list[int], conv_steps: int, toy_steps: int) -> list[Case]:
    """The presets of the issue; the toy presets at their own batch sizes."""

    def dcgan(G, D, data, b, n):
        return bce_gan_loop(G, D, data, b, n, latent=100, lr=2e-4, betas=(0.5, 0.999))

    def wgan_gp_conv(G, D, data, b, n):
        return wgan_gp_loop(G, D, data, b, n, latent=128, gp_weight=10.0)

    def toy_gan(decay_start):
        def loop(G, D, data, b, n):
            return bce_gan_loop(
                G, D, data, b, n, latent=2, lr=1e-3, betas=(0.5, 0.999), lr_decay_start=decay_start
            )

        return loop

    def wgan_gp_toy(G, D, data, b, n):
        return wgan_gp_loop(G, D, data, b, n, latent=2, gp_weight=0.1)

    found = []
    for b in conv_batches:
        found.append(Case("dcgan-fashion", b, _conv_nets(100, "batch"), dcgan, conv_steps))
    for b in conv_batches:
        # wgan-gp steps hold 5 critic steps each: a fifth of the steps for similar time
        found.append(
            Case("wgan-gp-fashion", b, _conv_nets(128, "layer"), wgan_gp_conv, conv_steps // 5)
        )
    found += [
        Case("gan-ring", 256, _mlp_nets(256, 0.2), toy_gan(0.25), toy_steps),
        Case("gan-grid", 1024, _mlp_nets(256, 0.2), toy_gan(0.5), toy_steps),
        Case("wgan-gp-grid", 256, _mlp_nets(512, 0.0), wgan_gp_toy, toy_steps // 5),
    ]
    return found


def matmul_peak(size: int, seconds: float = 1.0) -> float:
    """Attainable fp32 FLOP/s: repeated ``size`` x ``size`` matmuls after a warm-up."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    for _ in range(2):
        torch.mm(a, b, out=out)
    reps, started = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - started < seconds:
        torch.mm(a, b, out=out)
        reps += 1
    return 2 * size**3 * reps / (time.perf_counter() - started)


class _NoModuleTracking:
    """Stands in for FlopCounterMode's module tracker: every count goes to "Global"."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _NoModuleTracking:
        return self

    def __exit__(self, *exc) -> None:
        return None


def step_flops(preset: str, batch_size: int) -> tuple[int, int, int, int]:
    """(model FLOPs of one ``train_step``, real images per step, G and D parameters)."""
    from gankit.config import resolve_config
    from gankit.training.run import build

    config = resolve_config(preset, {"train.batch_size": batch_size})
    model, bundle = build(config)
    model.setup_optimizers()
    per_step = batch_size * model.real_batches_per_step
    x, y = bundle.train.tensors[0][:per_step], bundle.train.tensors[1][:per_step]
    model.train_step({"x": x, "y": y}, 0)  # lazy optimizer state outside the count
    counter = FlopCounterMode(display=False)
    # Per-module attribution hooks every module's backward, and those hooks fail inside
    # the gradient penalty's torch.autograd.grad; the total needs no attribution.
    counter.mod_tracker = _NoModuleTracking()
    with counter:
        model.train_step({"x": x, "y": y}, 1)
    return counter.get_total_flops(), per_step, count_parameters(model.G), count_parameters(model.D)


def training_data(preset: str) -> torch.Tensor:
    """The preset's training tensor, as gankit loads it (the plain loops share it)."""
    from gankit.config import resolve_config
    from gankit.data import load_data

    return load_data(resolve_config(preset)["data"]).train.tensors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=None, help="default: all")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 256], help="conv")
    parser.add_argument("--steps", type=int, default=40, help="dcgan steps per round")
    parser.add_argument("--toy-steps", type=int, default=400, help="toy GAN steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--matmul", type=int, default=2048, help="side of the peak matmul")
    parser.add_argument(
        "--threads", type=int, default=None, help="default: gankit's choice for each preset"
    )
    args = parser.parse_args()

    from gankit.config import resolve_config
    from gankit.data import load_data
    from gankit.errors import GankitError
    from gankit.training.runtime import default_threads

    selected = [
        c
        for c in cases(args.batch_size, args.steps, args.toy_steps)
        if args.presets is None or c.preset in args.presets
    ]
    print(machine_line())
    print(
        f"{args.rounds} interleaved rounds of (matmul peak, gankit, plain); gankit: previews "
        "and checkpoints outside the timing window, EMA off, metrics logged"
    )
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for case in selected:
            try:
                data = training_data(case.preset)
                flops, per_step, g_params, d_params = step_flops(case.preset, case.batch_size)
            except GankitError as err:
                sys.exit(f"utilization: {err}")
            G, D = case.networks()
            if (count_parameters(G), count_parameters(D)) != (g_params, d_params):
                sys.exit(f"utilization: the plain networks of {case.preset} do not match gankit's")
            # peak, gankit and the plain loop all run with the same threads
            kind = load_data(resolve_config(case.preset)["data"]).kind
            threads = args.threads or default_threads(kind)
            torch.set_num_threads(threads)
            overrides = {"train.batch_size": case.batch_size, "train.threads": threads}
            # warm-up: allocator, kernels, first-touch of the data
            case.loop(*case.networks(), data, case.batch_size, 3)
            peaks, ours, theirs = [], [], []
            for r in range(args.rounds):
                peaks.append(matmul_peak(args.matmul))
                ours.append(
                    gankit_steps_per_second(
                        case.preset, overrides, case.steps, runs_dir, f"{case.preset}-{r}"
                    )
                )
                G, D = case.networks()
                dcgan_init(G), dcgan_init(D)
                theirs.append(case.steps / case.loop(G, D, data, case.batch_size, case.steps))
            rows.append((case, threads, flops, per_step, peaks, ours, theirs))
            print(f"  done {case.preset} batch {case.batch_size} (load {load_average()})")

    print()
    print(f"load average after the runs: {load_average()}")
    print()
    print(
        "| preset | batch | threads | GFLOP/step | peak GFLOP/s | gankit step ms | gankit img/s "
        "| achieved GFLOP/s | utilization | plain img/s | ratio gankit/plain |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case, threads, flops, per_step, peaks, ours, theirs in rows:
        utilization = [flops * s / p for s, p in zip(ours, peaks)]
        ratios = [a / b for a, b in zip(ours, theirs)]
        median_ours = statistics.median(ours)
        print(
            f"| {case.preset} | {case.batch_size} | {threads} | {flops / 1e9:.3f} "
            f"| {statistics.median(peaks) / 1e9:.0f} | {1000 / median_ours:.2f} "
            f"| {per_step * median_ours:.0f} | {flops * median_ours / 1e9:.1f} "
            f"| {100 * statistics.median(utilization):.0f} % "
            f"| {per_step * statistics.median(theirs):.0f} | {spread(ratios)} |"
        )
    print()
    print(
        "img/s: real images consumed per second (batch x critic steps per step); ratio: "
        "median over rounds of gankit / plain in the same round, (min–max)"
    )
    print(command_line())


if __name__ == "__main__":
    main()
