"""Training throughput of gankit against a plain PyTorch loop, side by side in one run.

The plain loop is what a competent user writes from the PyTorch DCGAN tutorial: the same
generator and discriminator (written out here with plain ``torch.nn`` layers), the same
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
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import torch
from torch import nn

PRESET = "dcgan-fashion"
LATENT, G_WIDTH, D_WIDTH = 100, 64, 64


# --------------------------------------------------------------------------- plain loop
def plain_generator() -> nn.Module:
    return nn.Sequential(
        nn.Linear(LATENT, 2 * G_WIDTH * 7 * 7),
        nn.Unflatten(1, (2 * G_WIDTH, 7, 7)),
        nn.BatchNorm2d(2 * G_WIDTH),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * G_WIDTH, G_WIDTH, 4, 2, 1),
        nn.BatchNorm2d(G_WIDTH),
        nn.ReLU(),
        nn.ConvTranspose2d(G_WIDTH, 1, 4, 2, 1),
        nn.Tanh(),
    )


def plain_discriminator() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, D_WIDTH, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(D_WIDTH, 2 * D_WIDTH, 4, 2, 1),
        nn.BatchNorm2d(2 * D_WIDTH),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(2 * D_WIDTH * 7 * 7, 1),
    )


def dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def plain_run(images: torch.Tensor, batch_size: int, steps: int) -> float:
    """Train the tutorial-style loop for ``steps`` steps; returns images per second."""
    torch.manual_seed(0)
    G, D = plain_generator(), plain_discriminator()
    dcgan_init(G)
    dcgan_init(D)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    per_epoch = len(images) // batch_size
    perm = torch.randperm(len(images))
    started = time.perf_counter()
    for step in range(steps):
        if step % per_epoch == 0:
            perm = torch.randperm(len(images))
        i = step % per_epoch
        real = images[perm[i * batch_size : (i + 1) * batch_size]]
        # D step
        opt_d.zero_grad()
        fake = G(torch.randn(batch_size, LATENT))
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        loss_d.backward()
        opt_d.step()
        # G step
        opt_g.zero_grad()
        d_fake = D(fake)
        loss_g = bce(d_fake, torch.ones_like(d_fake))
        loss_g.backward()
        opt_g.step()
        # a loop that logs reads its losses every step, like gankit does
        loss_d.item(), loss_g.item()
    return batch_size * steps / (time.perf_counter() - started)


# --------------------------------------------------------------------------- gankit
def gankit_run(batch_size: int, steps: int, runs_dir: str, name: str) -> float:
    """``gankit.train`` on the preset; images per second between the first and last log."""
    import gankit

    log_every = max(1, steps // 10)
    result = gankit.train(
        PRESET,
        {
            "train.steps": steps,
            "train.batch_size": batch_size,
            "train.log_every": log_every,
            "train.sample_every": 10 * steps,  # previews and checkpoints only at the end,
            "train.ckpt_every": 10 * steps,  # which the timing window excludes
            "train.ema_decay": None,  # the plain loop keeps no average
            "train.seed": 0,
        },
        name=name,
        runs_dir=runs_dir,
        progress=False,
    )
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    first, last = rows[0], rows[-1]
    return batch_size * (last["step"] - first["step"]) / (last["time"] - first["time"])


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


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
    pairs = [(model.G, plain_generator()), (model.D, plain_discriminator())]
    for ours, theirs in pairs:
        if count_parameters(ours) != count_parameters(theirs):
            sys.exit("throughput: the plain networks do not match gankit's; fix the benchmark")

    print(
        f"torch {torch.__version__}, {platform.machine()} {platform.processor() or ''}, "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} threads"
    )
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
    print("command: python benchmarks/throughput.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
