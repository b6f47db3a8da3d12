"""A spatial transformer against a plain CNN on distorted digits, over seeds.

Digits at 16 px, each turned, scaled and shifted by an amount drawn per item from the
seed (in the spirit of Jaderberg et al.'s "RTS" data): rotation uniform in ±60°, scale
uniform in [0.8, 1.2], shift uniform in ±15 % of the side, border pixels repeated. The
plain CNN and the STN classifier (a :class:`gankit.stn.SpatialTransformer` in front of
a CNN) are trained alike (Adam 1e-3, batches of 128) and have about the same number of
parameters: the plain CNN's fully connected layer is wider by what the localisation
network costs. Printed per seed: test error of both, and the Spearman correlation of
the rotation in the STN's θ with the rotation applied to each test image.

    python benchmarks/stn_distorted.py --seeds 0 1 2 --epochs 30
    python benchmarks/stn_distorted.py --seeds 0 --out docs/stn/stn-digits.png

``--out`` draws, for the last seed, distorted test digits above what the STN makes of
them, each with the applied and the predicted rotation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from gankit.data import load_dataset
from gankit.stn import SpatialTransformer, random_affine, rotation_degrees


def cnn(hidden: int) -> nn.Sequential:
    def conv(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *conv(1, 16), nn.MaxPool2d(2), *conv(16, 32), nn.MaxPool2d(2),
        *conv(32, 64), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(256, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )  # fmt: skip


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def fit(net: nn.Module, x, y, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        for index in torch.randperm(len(x)).split(128):
            loss = F.cross_entropy(net(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def draw(out: str, stn: SpatialTransformer, images, applied, predicted, seed: int) -> None:
    from gankit.explore.pictures import pyplot
    from gankit.vision.common import save_figure, show

    with torch.no_grad():
        transformed = stn(images)
    plt = pyplot()
    fig, axes = plt.subplots(2, len(images), figsize=(1.45 * len(images), 3.5), dpi=110)
    for k in range(len(images)):
        show(axes[0, k], images[k], f"applied {round(float(applied[k])):+d}°")
        show(axes[1, k], transformed[k], f"θ turns {round(float(predicted[k])):+d}°")
    fig.suptitle(
        f"distorted test digits (top) and the spatial transformer's output (bottom), seed {seed}",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, Path(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", help="a PNG of inputs and their transformed versions")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = load_dataset("digits", resolution=16)
    (x_train, y_train), (x_test, y_test) = bundle.train.tensors, bundle.test.tensors
    rows = []
    for seed in args.seeds:
        train, _ = random_affine(x_train, 1000 + seed)
        test, applied = random_affine(x_test, 2000 + seed)
        torch.manual_seed(seed)
        stn_net = nn.Sequential(SpatialTransformer(1), cnn(128))
        extra = count(stn_net) - count(cnn(128))
        # the plain CNN gets the localisation network's parameters in its wide layer
        plain = cnn(128 + round(extra / (256 + 1 + 10)))
        started = time.perf_counter()
        errors = {}
        for name, net in (("plain", plain), ("stn", stn_net)):
            fit(net, train, y_train, args.epochs, seed)
            with torch.no_grad():
                errors[name] = float((net(test).argmax(1) != y_test).float().mean())
        with torch.no_grad():
            predicted = rotation_degrees(stn_net[0].transform(test))
        rho = spearmanr(predicted.numpy(), applied.numpy()).statistic
        rows.append((errors["plain"], errors["stn"], rho))
        print(
            f"seed {seed}: plain CNN ({count(plain):,} parameters) error {errors['plain']:.3f}, "
            f"STN ({count(stn_net):,}) error {errors['stn']:.3f}, Spearman(predicted, applied "
            f"rotation) {rho:+.3f}  [{time.perf_counter() - started:.0f} s]"
        )
        if args.out:
            draw(args.out, stn_net[0], test[:10], applied[:10], predicted[:10], seed)
    mean = [sum(column) / len(rows) for column in zip(*rows)]
    print(
        f"mean of {len(rows)} seeds: plain error {mean[0]:.3f}, STN error {mean[1]:.3f}, "
        f"Spearman {mean[2]:+.3f}"
    )
    seeds = " ".join(map(str, args.seeds))
    print(f"command: python benchmarks/stn_distorted.py --seeds {seeds} --epochs {args.epochs}")


if __name__ == "__main__":
    main()
