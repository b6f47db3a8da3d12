"""Hand-written PyTorch training loops that the benchmarks race gankit against.

Each loop is what a competent user writes from the PyTorch DCGAN tutorial or the
WGAN-GP paper's reference code: plain ``torch.nn`` layers with the same architecture
as a gankit preset (parameter counts are checked by the callers), the same batch and
optimizer, data as one in-memory tensor with a fresh permutation per epoch, and the
losses read with ``.item()`` every step, as a loop that logs does. Nothing here
imports gankit, so the loops measure PyTorch alone.

The loops return the seconds their ``steps`` steps took, start-up excluded.
"""

from __future__ import annotations

import time

import torch
from torch import nn


# --------------------------------------------------------------------------- networks
def conv_generator(latent: int, width: int = 64) -> nn.Module:
    """DCGAN generator for 28x28 grayscale: z -> (2w, 7, 7) -> (w, 14, 14) -> (1, 28, 28)."""
    return nn.Sequential(
        nn.Linear(latent, 2 * width * 7 * 7),
        nn.Unflatten(1, (2 * width, 7, 7)),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.ConvTranspose2d(width, 1, 4, 2, 1),
        nn.Tanh(),
    )


def conv_discriminator(width: int = 64, norm: str = "batch") -> nn.Module:
    """DCGAN discriminator for 28x28 grayscale; ``norm`` "layer" is WGAN-GP's critic
    (one-group GroupNorm: the gradient penalty is per sample, batch norm mixes them)."""
    second_norm = nn.BatchNorm2d(2 * width) if norm == "batch" else nn.GroupNorm(1, 2 * width)
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1),
        second_norm,
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(2 * width * 7 * 7, 1),
    )


def mlp(n_in: int, hidden: int, n_layers: int, n_out: int, leaky_slope: float) -> nn.Module:
    """A plain MLP: ``n_layers`` hidden layers, (Leaky)ReLU, no normalisation."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        act = nn.LeakyReLU(leaky_slope) if leaky_slope > 0 else nn.ReLU()
        layers += [nn.Linear(width, hidden), act]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's N(0, 0.02) weights: also keeps the value ranges of the two loops alike."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- loops
class TensorBatches:
    """Batches of an in-memory tensor, a fresh permutation each epoch."""

    def __init__(self, data: torch.Tensor, batch_size: int) -> None:
        self.data, self.batch_size = data, batch_size
        self.per_epoch = len(data) // batch_size
        self.count = 0
        self.perm = torch.randperm(len(data))

    def next(self) -> torch.Tensor:
        if self.count % self.per_epoch == 0:
            self.perm = torch.randperm(len(self.data))
        i = self.count % self.per_epoch
        self.count += 1
        return self.data[self.perm[i * self.batch_size : (i + 1) * self.batch_size]]


def bce_gan_loop(
    G: nn.Module,
    D: nn.Module,
    data: torch.Tensor,
    batch_size: int,
    steps: int,
    latent: int,
    lr: float,
    betas: tuple[float, float],
    lr_decay_start: float | None = None,
    loader: bool = False,
) -> float:
    """Non-saturating GAN, one D and one G step per step (the DCGAN tutorial's loop).

    One G forward serves both steps: D sees the fakes detached, G's step goes through
    the same graph. ``lr_decay_start`` adds a linear decay to zero from that fraction
    of ``steps`` on, as the toy presets do. ``loader`` draws the batches through a
    DataLoader (:class:`LoaderBatches`) instead of indexing the tensor.
    """
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    bce = nn.BCEWithLogitsLoss()
    batches = (LoaderBatches if loader else TensorBatches)(data, batch_size)
    started = time.perf_counter()
    for step in range(steps):
        if lr_decay_start is not None:
            start = lr_decay_start * steps
            factor = 1.0 if step < start else max(0.0, 1 - (step - start) / (steps - start))
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr * factor
        real = batches.next()
        opt_d.zero_grad()
        fake = G(torch.randn(batch_size, latent))
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        d_fake = D(fake)
        loss_g = bce(d_fake, torch.ones_like(d_fake))
        loss_g.backward()
        opt_g.step()
        loss_d.item(), loss_g.item()
    return time.perf_counter() - started


def wgan_gp_loop(
    G: nn.Module,
    D: nn.Module,
    data: torch.Tensor,
    batch_size: int,
    steps: int,
    latent: int,
    gp_weight: float,
    n_critic: int = 5,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.5, 0.9),
    loader: bool = False,
) -> float:
    """WGAN-GP (Gulrajani et al. 2017): ``n_critic`` critic steps, each on a fresh real
    batch and fresh fakes with the gradient penalty on interpolates, then one G step.
    ``loader`` as in :func:`bce_gan_loop`."""
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    batches = (LoaderBatches if loader else TensorBatches)(data, batch_size)
    started = time.perf_counter()
    for _ in range(steps):
        for _ in range(n_critic):
            real = batches.next()
            opt_d.zero_grad()
            with torch.no_grad():
                fake = G(torch.randn(batch_size, latent))
            loss_d = D(fake).mean() - D(real).mean()
            eps = torch.rand((batch_size,) + (1,) * (real.dim() - 1))
            mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grads,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
            penalty = ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            (loss_d + gp_weight * penalty).backward()
            opt_d.step()
            loss_d.item(), penalty.item()
        opt_g.zero_grad()
        loss_g = -D(G(torch.randn(batch_size, latent))).mean()
        loss_g.backward()
        opt_g.step()
        loss_g.item()
    return time.perf_counter() - started


class LoaderBatches:
    """The naive data path a first tutorial teaches: a shuffling DataLoader over a
    TensorDataset, which indexes and collates the batch one row at a time."""

    def __init__(self, data: torch.Tensor, batch_size: int) -> None:
        self.loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data),
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
        )
        self.iterator = iter(self.loader)

    def next(self) -> torch.Tensor:
        try:
            return next(self.iterator)[0]
        except StopIteration:
            self.iterator = iter(self.loader)
            return next(self.iterator)[0]
