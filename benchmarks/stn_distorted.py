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
"""

from __future__ import annotations

import argparse
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
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
    mean = [sum(column) / len(rows) for column in zip(*rows)]
    print(
        f"mean of {len(rows)} seeds: plain error {mean[0]:.3f}, STN error {mean[1]:.3f}, "
        f"Spearman {mean[2]:+.3f}"
    )
    print("command: python benchmarks/stn_distorted.py " + " ".join(
        f"--seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs}".split()
    ))  # fmt: skip


if __name__ == "__main__":
    main()
