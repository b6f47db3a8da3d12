"""Training throughput of gankit against a plain PyTorch loop, side by side in one run.

The plain loop is what a competent user writes from the PyTorch DCGAN tutorial: the same
generator and discriminator (plain ``torch.nn`` layers in ``plain_loops.py``), the same
batch, Adam(2e-4, β1=0.5), non-saturating BCE losses, data as one in-memory tensor with a
fresh permutation per epoch. gankit runs the real thing: ``gankit.train`` on the
``dcgan-fashion`` preset, with its trainer, logging, in-memory batching and checkpoints.

Throughput is images per second of real data consumed by D (= batch size × steps / s),
measured over the steps between the first and last log lines of each gankit run (so the
one-off start-up and the final checkpoint are excluded) and over the whole loop of the
plain run. Rounds alternate gankit / plain and the medians are compared.

    python benchmarks/throughput.py                      # batch 64 and 256, 5 rounds
    python benchmarks/throughput.py --quick              # a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

import torch

from common import command_line, gankit_steps_per_second, machine_line
from plain_loops import (
    bce_gan_loop,
    conv_discriminator,
    conv_generator,
    count_parameters,
    dcgan_init,
)

PRESET = "dcgan-fashion"
LATENT, G_WIDTH, D_WIDTH = 100, 64, 64


def plain_run(images: torch.Tensor, batch_size: int, steps: int) -> float:
    """Train the tutorial-style loop for ``steps`` steps; returns images per second."""
    torch.manual_seed(0)
    G, D = conv_generator(LATENT, G_WIDTH), conv_discriminator(D_WIDTH)
    dcgan_init(G)
    dcgan_init(D)
    seconds = bce_gan_loop(G, D, images, batch_size, steps, LATENT, 2e-4, (0.5, 0.999))
    return batch_size * steps / seconds


def gankit_run(batch_size: int, steps: int, runs_dir: str, name: str) -> float:
    """``gankit.train`` on the preset; images per second between the first and last log."""
    overrides = {"train.batch_size": batch_size, "train.threads": torch.get_num_threads()}
    return batch_size * gankit_steps_per_second(PRESET, overrides, steps, runs_dir, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=60, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="2 rounds of 20 steps")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 20, 2
    torch.set_num_threads(args.threads)

    import gankit
    from gankit.errors import GankitError

    try:
        data = gankit.load_dataset("fashion-mnist", download=False)
    except GankitError as err:
        sys.exit(f"throughput: {err}")
    images = data.train.tensors[0]

    model = gankit.create_model(
        "dcgan", data_shape=(1, 28, 28), latent_dim=LATENT, g_channels=G_WIDTH, d_channels=D_WIDTH
    )
    pairs = [(model.G, conv_generator(LATENT, G_WIDTH)), (model.D, conv_discriminator(D_WIDTH))]
    for ours, theirs in pairs:
        if count_parameters(ours) != count_parameters(theirs):
            sys.exit("throughput: the plain networks do not match gankit's; fix the benchmark")

    print(machine_line())
    print(
        f"parameters: G {count_parameters(model.G):,}, D {count_parameters(model.D):,} "
        "(identical in both loops)"
    )
    print(
        f"{args.rounds} interleaved rounds of {args.steps} steps; gankit: previews and "
        "checkpoints off inside the window, EMA off, metrics logged"
    )
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for batch_size in args.batch_size:
            plain_run(images, batch_size, 5)  # warm-up: allocator, kernels
            ours, theirs = [], []
            for r in range(args.rounds):
                ours.append(gankit_run(batch_size, args.steps, runs_dir, f"b{batch_size}-r{r}"))
                theirs.append(plain_run(images, batch_size, args.steps))
            rows.append((batch_size, statistics.median(ours), statistics.median(theirs)))

    print()
    print("| preset | batch | gankit img/s | plain PyTorch img/s | ratio |")
    print("|---|---|---|---|---|")
    for batch_size, ours, theirs in rows:
        print(f"| {PRESET} | {batch_size} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |")
    print()
    print(command_line())


if __name__ == "__main__":
    main()
