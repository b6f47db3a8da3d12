"""DANN on digits -> digits-m: the variants measured, and where the target errors are.

``gankit adapt dann-digits-m`` does not beat its source-only baseline (docs/benchmarks.md).
This script is the record of the search for a recipe that does. Every variant trains
Ganin & Lempitsky's MNIST network (conv 5x5 32 -> pool -> conv 5x5 48 -> pool; label
head fc 100-100-10; domain head fc 100-1 behind gradient reversal, λ_p = 2/(1+e^{-10p})-1)
as a plain loop on gankit's data, so that one flag changes one ingredient: the optimizer,
batch norm, dropout, input normalisation, random shifts, a wider domain classifier,
the reversal weight, or fresh photo patches for every target batch.

Besides target accuracy it splits the target test set by patch brightness. Where the
patch is bright (mean pixel above mid-grey), ``|digit - patch|`` draws a dark digit on a
light ground: the source's polarity inverted. The split shows what limits DANN here:
inverted digits stay near chance for every variant, adapted or not.

    python benchmarks/dann_study.py                     # every variant, seed 0
    python benchmarks/dann_study.py --only source-only dann --seeds 0 1 2
    python benchmarks/dann_study.py --pair fashion \
        --only "source-only, Ganin SGD, no BN, mean-subtracted" \
               "dann, Ganin SGD, no BN, mean-subtracted"

The gradient reversal layer is gankit's own (``gankit.nn.grad_reverse``); the rest is
plain PyTorch, written out so that each variant is one visible switch.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from common import machine_line
from gankit.data.digits import digits
from gankit.data.mnist_m import digits_m, fashion_m
from gankit.data.photos import blend_with_photos
from gankit.nn import grad_reverse


@dataclass(frozen=True)
class Variant:
    name: str
    domain_weight: float = 1.0  # 0: source-only
    optimizer: str = "adam"  # adam (lr 1e-3) or sgd (Ganin: momentum 0.9, 0.01/(1+10p)^0.75)
    lr: float = 1e-3
    batch_norm: bool = True
    dropout: float = 0.0  # Dropout2d in the features and dropout in the label head
    mean_subtract: bool = False  # subtract the pixel mean of both training sets
    shift: int = 0  # random translations of up to this many pixels, both domains
    domain_hidden: int = 100
    domain_layers: int = 1
    fresh_target: bool = False  # blend new photo patches into every target batch
    steps: int = 2000


SOURCE_ONLY = Variant("source-only", domain_weight=0.0)
VARIANTS = [
    SOURCE_ONLY,
    Variant("dann"),
    replace(SOURCE_ONLY, name="source-only, dropout 0.5", dropout=0.5),
    Variant("dann, dropout 0.5", dropout=0.5),
    replace(SOURCE_ONLY, name="source-only, shifts of 2 px", shift=2),
    Variant("dann, shifts of 2 px", shift=2),
    Variant("dann, fresh target patches", fresh_target=True),
    Variant("dann, domain classifier 3x512", domain_hidden=512, domain_layers=3),
    Variant("dann, domain weight 5", domain_weight=5.0),
    replace(
        SOURCE_ONLY,
        name="source-only, Ganin SGD, no BN, mean-subtracted",
        optimizer="sgd",
        lr=0.01,
        batch_norm=False,
        mean_subtract=True,
        steps=4000,
    ),
    Variant(
        "dann, Ganin SGD, no BN, mean-subtracted",
        optimizer="sgd",
        lr=0.01,
        batch_norm=False,
        mean_subtract=True,
        steps=4000,
    ),
]


def networks(v: Variant, resolution: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    def bn2(c):
        return nn.BatchNorm2d(c) if v.batch_norm else nn.Identity()

    def bn1(c):
        return nn.BatchNorm1d(c) if v.batch_norm else nn.Identity()

    drop2 = nn.Dropout2d(v.dropout) if v.dropout else nn.Identity()
    drop1 = nn.Dropout(v.dropout) if v.dropout else nn.Identity()
    features = nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), bn2(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 48, 5, padding=2), bn2(48), drop2, nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )  # fmt: skip
    width = 48 * (resolution // 4) ** 2
    labels = nn.Sequential(
        nn.Linear(width, 100), bn1(100), nn.ReLU(), drop1,
        nn.Linear(100, 100), bn1(100), nn.ReLU(), nn.Linear(100, 10),
    )  # fmt: skip
    layers: list[nn.Module] = []
    for i in range(v.domain_layers):
        layers += [nn.Linear(width if i == 0 else v.domain_hidden, v.domain_hidden)]
        layers += [bn1(v.domain_hidden), nn.ReLU()]
    domains = nn.Sequential(*layers, nn.Linear(v.domain_hidden, 1))
    return features, labels, domains


def shifted(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to ``pixels`` in x and y, edges replicated."""
    if not pixels:
        return x
    n, c, r, _ = x.shape
    padded = F.pad(x, [pixels] * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, n), generator=generator)
    rows = (dy[:, None] + torch.arange(r))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(r))[:, None, None, :]
    images = torch.arange(n)[:, None, None, None]
    return padded[images, torch.arange(c)[None, :, None, None], rows, cols]


@functools.cache
def domains_of(pair: str):
    """(source, target, resolution): digits -> digits-m at 16 px, or Fashion-MNIST ->
    fashion-m at 28 px from the IDX files already on disk (no download). Loaded and
    blended once, shared by every variant and seed: ``run`` never writes to them."""
    if pair == "digits":
        return digits(resolution=16), digits_m(resolution=16), 16
    from gankit.data.idx import fashion_mnist

    source = fashion_mnist(resolution=28, download=False)
    return source, fashion_m(resolution=28, download=False), 28


def run(v: Variant, seed: int, pair: str = "digits", batch: int = 64) -> dict[str, float]:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    source, target, resolution = domains_of(pair)
    grey, y_source = source.train.tensors
    x_source = grey.repeat(1, 3, 1, 1)
    x_target = target.train.tensors[0]
    x_test, y_test = target.test.tensors
    bright = x_test.mean(dim=(1, 2, 3)) > 0  # judged before any normalisation
    if v.mean_subtract:
        mean = torch.cat([x_source, x_target]).mean(dim=(0, 2, 3), keepdim=True)
        x_source, x_target, x_test = x_source - mean, x_target - mean, x_test - mean
    else:
        mean = torch.zeros(1, 3, 1, 1)
    features, labels, domains = networks(v, resolution)
    params = [*features.parameters(), *labels.parameters(), *domains.parameters()]
    if v.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=v.lr)
    else:
        optimizer = torch.optim.SGD(params, lr=v.lr, momentum=0.9)
    adapting = v.domain_weight > 0
    domain_hits: list[float] = []
    started = time.perf_counter()
    for step in range(v.steps):
        progress = step / v.steps
        weight = v.domain_weight * (2 / (1 + math.exp(-10 * progress)) - 1)
        if v.optimizer == "sgd":
            for group in optimizer.param_groups:
                group["lr"] = v.lr / (1 + 10 * progress) ** 0.75
        i = torch.randint(len(x_source), (batch,), generator=generator)
        j = torch.randint(len(x_target), (batch,), generator=generator)
        x = shifted(x_source[i], v.shift, generator)
        if adapting:
            xt = blend_with_photos(grey[j], generator) - mean if v.fresh_target else x_target[j]
            x = torch.cat([x, shifted(xt, v.shift, generator)])
        f = features(x)
        loss = F.cross_entropy(labels(f[:batch]), y_source[i])
        if adapting:
            d = torch.cat([torch.zeros(batch), torch.ones(batch)])
            logits = domains(grad_reverse(f, weight)).squeeze(1)
            loss = loss + F.binary_cross_entropy_with_logits(logits, d)
            domain_hits.append(((logits > 0).float() == d).float().mean().item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    features.eval()
    labels.eval()
    with torch.no_grad():
        correct = (labels(features(x_test)).argmax(1) == y_test).float()
    last = domain_hits[-200:]
    return {
        "target": correct.mean().item(),
        "bright": correct[bright].mean().item(),
        "dark": correct[~bright].mean().item(),
        "bright_share": bright.float().mean().item(),
        "domain_acc": sum(last) / len(last) if last else float("nan"),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--pair",
        choices=["digits", "fashion"],
        default="digits",
        help="digits -> digits-m (16 px), or Fashion-MNIST -> fashion-m (28 px)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [v for v in VARIANTS if not args.only or v.name in args.only]
    print(machine_line(), f"| seeds {args.seeds}")
    print("| variant | steps | target acc. | on bright patches | on dark patches | domain acc. |")
    print("|---|---|---|---|---|---|")
    for v in chosen:
        results = [run(v, seed, args.pair) for seed in args.seeds]

        def cell(key: str, results=results) -> str:
            values = [100 * r[key] for r in results]
            if len(values) == 1:
                return f"{values[0]:.1f} %"
            return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} %"

        print(
            f"| {v.name} | {v.steps} | {cell('target')} | {cell('bright')} | "
            f"{cell('dark')} | {cell('domain_acc') if v.domain_weight else '-'} |",
            flush=True,
        )
    x_test = domains_of(args.pair)[1].test.tensors[0]
    bright = (x_test.mean(dim=(1, 2, 3)) > 0).float().mean().item()
    print(f"bright patches: {100 * bright:.1f} % of the {len(x_test)} target test images")


if __name__ == "__main__":
    main()
