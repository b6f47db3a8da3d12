"""Adversarial losses and penalties, as pure functions of discriminator outputs.

Notation: ``d_real = D(x)`` and ``d_fake = D(G(z))`` are the discriminator's raw
outputs (logits for the log-losses, scores for the others), shape (N,) or (N, 1).
``sigma`` is the logistic sigmoid, so ``D_prob = sigma(d)``. Each discriminator
loss is minimised by D, each generator loss by G.

Pick a pair by name from :data:`ADVERSARIAL_LOSSES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

Reduction = str


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got '{reduction}'")


def _target(like: torch.Tensor, value: float | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand_as(like)


# --------------------------------------------------------------------------- GAN
def bce_d_loss(
    d_real: torch.Tensor,
    d_fake: torch.Tensor,
    real_target: float | torch.Tensor = 1.0,
    fake_target: float | torch.Tensor = 0.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """The original GAN discriminator loss (Goodfellow et al. 2014).

    ``L_D = -E[log sigma(D(x))] - E[log(1 - sigma(D(G(z))))]``, i.e. binary
    cross-entropy with targets 1 for real and 0 for fake. ``real_target`` < 1 gives
    one-sided label smoothing (Salimans et al. 2016); per-sample targets give noisy
    labels.
    """
    real = F.binary_cross_entropy_with_logits(
        d_real, _target(d_real, real_target), reduction="none"
    )
    fake = F.binary_cross_entropy_with_logits(
        d_fake, _target(d_fake, fake_target), reduction="none"
    )
    return _reduce(real, reduction) + _reduce(fake, reduction)


def minimax_g_loss(d_fake: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """The minimax generator loss: ``L_G = E[log(1 - sigma(D(G(z))))]``.

    G minimises the same value D maximises, ``min_G max_D E[log D(x)] +
    E[log(1 - D(G(z)))]``. Its gradient vanishes when D confidently rejects fakes
    (sigma(d) -> 0), which is why it learns slowly early in training.
    """
    # log(1 - sigma(d)) = -softplus(d), computed stably.
    return _reduce(-F.softplus(d_fake), reduction)


def non_saturating_g_loss(d_fake: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """The non-saturating generator loss: ``L_G = -E[log sigma(D(G(z)))]``.

    Same fixed point as minimax, but strong gradients when D rejects the fakes.
    """
    # -log(sigma(d)) = softplus(-d), computed stably.
    return _reduce(F.softplus(-d_fake), reduction)


# --------------------------------------------------------------------------- WGAN
def wasserstein_d_loss(
    d_real: torch.Tensor, d_fake: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """The WGAN critic loss (Arjovsky et al. 2017): ``L_D = E[D(G(z))] - E[D(x)]``.

    Minimising it maximises ``E[D(x)] - E[D(G(z))]``, which for a 1-Lipschitz D
    estimates the Wasserstein-1 distance ``sup_{||D||_L<=1} E_P D - E_Q D``.
    """
    return _reduce(d_fake, reduction) - _reduce(d_real, reduction)


def wasserstein_g_loss(d_fake: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """The WGAN generator loss: ``L_G = -E[D(G(z))]``."""
    return -_reduce(d_fake, reduction)


# --------------------------------------------------------------------------- LSGAN
def least_squares_d_loss(
    d_real: torch.Tensor,
    d_fake: torch.Tensor,
    real_target: float | torch.Tensor = 1.0,
    fake_target: float | torch.Tensor = 0.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """The LSGAN discriminator loss (Mao et al. 2017) with a=0, b=1:

    ``L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]``.
    """
    real = 0.5 * (d_real - _target(d_real, real_target)) ** 2
    fake = 0.5 * (d_fake - _target(d_fake, fake_target)) ** 2
    return _reduce(real, reduction) + _reduce(fake, reduction)


def least_squares_g_loss(d_fake: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """The LSGAN generator loss with c=1: ``L_G = 1/2 E[(D(G(z)) - c)^2]``."""
    return _reduce(0.5 * (d_fake - 1.0) ** 2, reduction)


# --------------------------------------------------------------------------- hinge
def hinge_d_loss(
    d_real: torch.Tensor, d_fake: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """The hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018):

    ``L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``.
    """
    return _reduce(F.relu(1.0 - d_real), reduction) + _reduce(F.relu(1.0 + d_fake), reduction)


def hinge_g_loss(d_fake: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """The hinge generator loss: ``L_G = -E[D(G(z))]``."""
    return -_reduce(d_fake, reduction)


# --------------------------------------------------------------------------- RpGAN
def _pairs(d_real: torch.Tensor, d_fake: torch.Tensor) -> None:
    """A relativistic loss compares D's score of the i-th real sample with that of the
    i-th fake, so both must be one score per sample, of the same shape."""
    if d_real.shape != d_fake.shape or d_real.dim() > 2 or d_real.shape[1:] not in ((), (1,)):
        raise ValueError(
            "a relativistic loss needs one score per sample, (N,) or (N, 1), for real and "
            f"fake alike; got {tuple(d_real.shape)} and {tuple(d_fake.shape)}"
        )


def rpgan_d_loss(
    d_real: torch.Tensor, d_fake: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """The relativistic pairing discriminator loss (RpGAN: Jolicoeur-Martineau 2019;
    with R1 and R2 the loss of R3GAN, Huang et al. 2024):

    ``L_D = E_{x,z}[f(D(G(z)) - D(x))]`` with ``f = softplus``, each real sample paired
    with one fake. D is asked only to score each real above its fake, not to push all
    reals to one value; a G that drops a mode leaves pairs that D can still tell apart,
    which is why it covers modes where the unpaired loss does not.

    Raises:
        ValueError: scores of different shapes, or more than one score per sample.
    """
    _pairs(d_real, d_fake)
    return _reduce(F.softplus(d_fake - d_real), reduction)


def rpgan_g_loss(
    d_fake: torch.Tensor, d_real: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """The relativistic pairing generator loss: ``L_G = E_{x,z}[f(D(x) - D(G(z)))]``,
    ``f = softplus``: G lifts each fake's score above its paired real's. Unlike the
    other generator losses it reads D's scores of real data too.

    Raises:
        ValueError: as :func:`rpgan_d_loss`.
    """
    _pairs(d_real, d_fake)
    return _reduce(F.softplus(d_real - d_fake), reduction)


# --------------------------------------------------------------------------- penalties
def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    target_norm: float = 1.0,
    one_sided: bool = False,
) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017) on random interpolates:

    ``E_{x_hat}[(||grad_{x_hat} D(x_hat)||_2 - 1)^2]``, with
    ``x_hat = eps * x + (1 - eps) * G(z)`` and ``eps ~ U[0, 1]`` per sample.

    Args:
        critic: maps (N, ...) inputs to (N,) or (N, 1) scores.
        real: (N, ...) real samples.
        fake: (N, ...) generated samples, already detached from G.
        target_norm: the gradient norm the penalty pulls towards (1 for 1-Lipschitz).
        one_sided: penalise only norms above the target, ``E[max(0, ||∇D|| − 1)^2]``
            (Petzka et al. 2018). The two-sided penalty puts a barrier at a zero
            gradient, which a critic starting with the wrong slope may never cross.

    Returns:
        The scalar penalty (not yet multiplied by its weight λ).
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
    interpolates = (eps * real.float() + (1.0 - eps) * fake.float()).requires_grad_(True)
    # Under mixed precision the penalty runs D in float32: a double backward in float16
    # would underflow unless the loss scale were folded into autograd.grad and undone
    # again; float32 avoids both the underflow and that bookkeeping, for one D pass.
    with torch.autocast(real.device.type, enabled=False):
        scores = critic(interpolates)
        (grads,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    excess = grads.flatten(1).norm(2, dim=1) - target_norm
    if one_sided:
        excess = excess.clamp(min=0.0)
    return (excess**2).mean()


def zero_centred_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], samples: torch.Tensor
) -> torch.Tensor:
    """``E_x[||grad_x D(x)||_2^2]`` over the given samples: the slope of D, pulled
    towards zero there. On real data it is R1, on generated data R2.

    Args:
        critic: maps (N, ...) inputs to (N,) or (N, 1) scores.
        samples: (N, ...) samples; detached here, so no gradient reaches G.

    Returns:
        The scalar penalty (not yet multiplied by ``gamma/2``).
    """
    samples = samples.detach().float().requires_grad_(True)
    # float32 as in gradient_penalty: a double backward under float16 would underflow.
    with torch.autocast(samples.device.type, enabled=False):
        scores = critic(samples)
        (grads,) = torch.autograd.grad(scores.sum(), samples, create_graph=True)
    return grads.flatten(1).pow(2).sum(dim=1).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """R1 regularisation (Mescheder et al. 2018) on real data:

    ``E_x[||grad_x D(x)||_2^2]``; the discriminator's loss adds ``gamma/2`` times it.
    Penalising D's slope at the data (only there, unlike WGAN-GP's interpolates) makes
    the game locally convergent: where G matches the data, D is pushed to be flat.

    Args:
        critic: maps (N, ...) inputs to (N,) or (N, 1) scores.
        real: (N, ...) real samples.

    Returns:
        The scalar penalty (not yet multiplied by ``gamma/2``).
    """
    return zero_centred_penalty(critic, real)


def r2_penalty(critic: Callable[[torch.Tensor], torch.Tensor], fake: torch.Tensor) -> torch.Tensor:
    """R2 regularisation (Mescheder et al. 2018; with RpGAN in R3GAN, Huang et al. 2024)
    on generated data: ``E_z[||grad D(G(z))||_2^2]``, weighted ``gamma/2`` in D's loss.

    R1 alone flattens D only where the data is; R2 flattens it where the fakes are too,
    so D cannot grow sharp slopes on G's side that throw G about (R3GAN's Stacked-MNIST
    runs diverged with R1 alone and converged with both).

    Args:
        critic: maps (N, ...) inputs to (N,) or (N, 1) scores.
        fake: (N, ...) generated samples.

    Returns:
        The scalar penalty (not yet multiplied by ``gamma/2``).
    """
    return zero_centred_penalty(critic, fake)


def cosine_schedule(start: float, end: float, progress: float) -> float:
    """A value that moves from ``start`` (progress 0) to ``end`` (progress 1) along half
    a cosine, ``end + (start - end) (1 + cos(pi p)) / 2``: slow at both ends, as R3GAN
    schedules its γ (CIFAR-10: 0.05 -> 0.005) and augmentation probability (0 -> 0.55).
    ``progress`` beyond [0, 1] is clamped."""
    progress = min(1.0, max(0.0, progress))
    return end + (start - end) * (1.0 + math.cos(math.pi * progress)) / 2.0


def lazy_r1(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    gamma: float,
    interval: int,
    d_step: int,
) -> tuple[torch.Tensor, float] | None:
    """Lazy R1 (Karras et al. 2020): :func:`r1_penalty` on one D update in ``interval``,
    weighted ``interval * gamma/2`` so that its average weight stays ``gamma/2``.

    ``d_step`` counts D's updates over the run from 0 (with ``n_critic`` D updates per
    step, ``step * n_critic + i``); the penalty applies where ``d_step % interval == 0``.

    Args:
        critic: maps (N, ...) inputs to (N,) or (N, 1) scores.
        real: (N, ...) real samples.
        gamma: R1's γ; 0 turns it off.
        interval: apply it on one D update in this many (1: every update).
        d_step: this D update's count over the run.

    Returns:
        ``(term, penalty)``: the scalar to add to D's loss and the penalty's value
        before weighting (what is logged), or None where this update skips R1.
    """
    return _lazy(r1_penalty, critic, real, gamma, interval, d_step)


def lazy_r2(
    critic: Callable[[torch.Tensor], torch.Tensor],
    fake: torch.Tensor,
    gamma: float,
    interval: int,
    d_step: int,
) -> tuple[torch.Tensor, float] | None:
    """:func:`r2_penalty` on generated ``fake`` samples, lazily as :func:`lazy_r1` (on
    the same D updates, weighted ``interval * gamma/2``); None where this update skips it."""
    return _lazy(r2_penalty, critic, fake, gamma, interval, d_step)


def _lazy(
    penalty_of: Callable[..., torch.Tensor],
    critic: Callable[[torch.Tensor], torch.Tensor],
    samples: torch.Tensor,
    gamma: float,
    interval: int,
    d_step: int,
) -> tuple[torch.Tensor, float] | None:
    if gamma <= 0 or d_step % interval:
        return None
    penalty = penalty_of(critic, samples)
    return gamma / 2 * interval * penalty, penalty.item()


@dataclass(frozen=True)
class AdversarialLoss:
    """A discriminator loss and its generator loss.

    ``uses_targets`` says whether the D loss takes real/fake targets, which is what
    label smoothing and noisy labels act on. ``relativistic`` says whether the G loss
    reads D's scores of real data as well, ``g(d_fake, d_real)``, instead of ``g(d_fake)``.
    """

    d: Callable[..., torch.Tensor]
    g: Callable[..., torch.Tensor]
    uses_targets: bool
    relativistic: bool = False


#: The names of :data:`ADVERSARIAL_LOSSES`, as a constructor annotation (``loss: LossName``).
LossName = Literal["minimax", "non_saturating", "wasserstein", "least_squares", "hinge"]
#: :data:`LossName` and the relativistic ``rpgan``, whose pairs need one score per sample
#: from D and whose G loss reads real data: for the families whose step provides both.
PairedLossName = Literal[LossName, "rpgan"]

ADVERSARIAL_LOSSES: dict[str, AdversarialLoss] = {
    "minimax": AdversarialLoss(bce_d_loss, minimax_g_loss, uses_targets=True),
    "non_saturating": AdversarialLoss(bce_d_loss, non_saturating_g_loss, uses_targets=True),
    "wasserstein": AdversarialLoss(wasserstein_d_loss, wasserstein_g_loss, uses_targets=False),
    "least_squares": AdversarialLoss(least_squares_d_loss, least_squares_g_loss, uses_targets=True),
    "hinge": AdversarialLoss(hinge_d_loss, hinge_g_loss, uses_targets=False),
    "rpgan": AdversarialLoss(rpgan_d_loss, rpgan_g_loss, uses_targets=False, relativistic=True),
}
