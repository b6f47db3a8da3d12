r"""Adversarial examples: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018), in
the L∞ and L2 norms, written by hand (docs/attack.md says why no library).

For a classifier with logits ``f(x)`` and the cross-entropy ``L(x, y) = CE(f(x), y)``,
an attack looks for ``x' = x + δ`` with ``||δ||_p <= ε`` that raises ``L``:

- **FGSM**, one step to the border of the ball:
  L∞: ``x' = x + ε sign(∇_x L)``; L2: ``x' = x + ε ∇_x L / ||∇_x L||_2``.
- **PGD**, ``T`` steps of size ``α`` from a random point of the ball, each projected
  back onto it: L∞: ``x_{t+1} = Π(x_t + α sign(∇ L(x_t)))`` with
  ``Π(x') = clip(x', x − ε, x + ε)``; L2: ``x_{t+1} = Π(x_t + α g / ||g||_2)`` with
  ``Π(x') = x + δ min(1, ε / ||δ||_2)``, ``δ = x' − x``. With ``R`` restarts (Madry et
  al. evaluate so), PGD runs from ``R`` random starts and keeps, per example, the first
  result that is misclassified, else the one of highest loss.

Both then clip to the data's value range (images: [-1, 1]), which only shortens δ. The
result lies in the ball as the tensor's own arithmetic computes it: ``|x' − x| <= ε``
per value (L∞) and ``||x' − x||_2 <= ε`` per example (L2), checked after rounding.

This module is a leaf (torch only): model families use it for adversarial training
(Madry's ``min_θ E[max_{||δ|| <= ε} L(x + δ, y)]``), ``gankit attack`` for its curves.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gankit.errors import GankitError, check_finite, check_int, choices
from gankit.nn import eval_mode

NORMS = ("linf", "l2")
ATTACKS = ("fgsm", "pgd")
#: Madry et al.'s rule of thumb: steps of 2.5 ε / T let PGD cross the ball and come back.
STEP_FACTOR = 2.5
MAX_STEPS = 1000
MAX_RESTARTS = 100
#: How far below ε an L2 projection aims when float rounding put it outside the ball.
_SHRINK = 1.0 - 2.0**-20

Logits = Callable[[torch.Tensor], torch.Tensor]
Bounds = tuple[float, float] | None
#: The value range of images (docs: conventions); points have none.
IMAGE_BOUNDS = (-1.0, 1.0)


def check_attack(
    attack: str = "pgd", norm: str = "linf", eps: float = 0.1, steps: int = 10, restarts: int = 1
):
    """Refuse an unknown attack or norm, ε <= 0 or not finite, steps outside [1, 1000],
    restarts outside [1, 100].

    Raises:
        GankitError: naming the option and what would be valid.
    """
    if attack not in ATTACKS:
        raise GankitError(f"unknown attack '{attack}'; valid: {choices(ATTACKS)}")
    if norm not in NORMS:
        raise GankitError(f"unknown norm '{norm}'; valid: {choices(NORMS)}")
    check_finite("eps", eps, 0.0, above=True)
    check_int("steps", steps, 1, MAX_STEPS)
    check_int("restarts", restarts, 1, MAX_RESTARTS)


def _l2(delta: torch.Tensor) -> torch.Tensor:
    """(N, ...) -> (N, 1, ..., 1) Euclidean norm per example."""
    norms = torch.linalg.vector_norm(delta.flatten(1), dim=1)
    return norms.view(-1, *([1] * (delta.dim() - 1)))


def _direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent direction of unit norm: sign(g) (L∞) or g / ||g||_2 (L2)."""
    if norm == "linf":
        return grad.sign()
    return grad / _l2(grad).clamp_min(1e-12)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str, bounds: Bounds):
    """Π: ``x_adv`` (N, ...) back into the ε-ball around ``x`` and into ``bounds``.

    Clipping to ``bounds`` after the ball keeps it in the ball (x is inside the bounds,
    so clipping moves each value toward x). What rounding still leaves outside is moved
    in: L∞ values one float step toward x, L2 examples shrunk by 2^-20 relative.
    """
    if norm == "linf":
        x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)
    else:
        delta = x_adv - x
        x_adv = x + delta * (eps / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)
    if bounds is not None:
        x_adv = x_adv.clamp(*bounds)
    for _ in range(64):
        delta = x_adv - x
        if norm == "linf":
            outside = delta.abs() > eps
            if not outside.any():
                break
            x_adv = torch.where(outside, torch.nextafter(x_adv, x), x_adv)
        else:
            size = _l2(delta)
            outside = size > eps
            if not outside.any():
                break
            x_adv = torch.where(outside, x + delta * (eps / size) * _SHRINK, x_adv)
    return x_adv


def _loss_gradient(logits: Logits, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇_x of the summed cross-entropy: each example's own gradient, unscaled by N."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(logits(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(
    logits: Logits,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    bounds: Bounds = IMAGE_BOUNDS,
) -> torch.Tensor:
    """FGSM: one step of length ε along the loss gradient's steepest direction.

    Args:
        logits: (N, ...) -> (N, K) class logits (in eval mode; gradients must flow).
        x: (N, ...) clean inputs; y: (N,) their labels.
        eps: the radius ε of the ball, in the inputs' units.
        norm: ``linf`` or ``l2``.
        bounds: the value range to clip to; None for unbounded data (points).

    Returns:
        (N, ...) adversarial inputs, detached.
    """
    grad = _loss_gradient(logits, x, y)
    return project(x + eps * _direction(grad, norm), x, eps, norm, bounds).detach()


def random_start(x: torch.Tensor, eps: float, norm: str, generator=None) -> torch.Tensor:
    """A random point of the ε-ball around x (N, ...): uniform per value (L∞), or a
    uniform direction at a radius ε·u, u ~ U(0, 1) (L2)."""
    if norm == "linf":
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
        return x + eps * noise.to(x.device)
    direction = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    radius = torch.rand(len(x), generator=generator, dtype=x.dtype).to(x.device)
    radius = radius.view(-1, *([1] * (x.dim() - 1)))
    return x + eps * radius * direction / _l2(direction).clamp_min(1e-12)


def pgd(
    logits: Logits,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | None = None,
    bounds: Bounds = IMAGE_BOUNDS,
    generator: torch.Generator | None = None,
    random_init: bool = True,
    restarts: int = 1,
) -> torch.Tensor:
    """PGD: ``steps`` projected steps of size α (default 2.5 ε / steps) from a random
    point of the ball (``generator`` seeds it; None: torch's global stream), repeated
    from ``restarts`` random starts: per example, the first result the classifier gets
    wrong is kept, else the one of highest loss. The first restart is the single run's.

    Args and returns as :func:`fgsm`; the result lies in the ε-ball exactly.
    """
    alpha = STEP_FACTOR * eps / steps if step_size is None else step_size
    x = x.detach()
    best = best_loss = best_wrong = None
    for _ in range(restarts):
        start = random_start(x, eps, norm, generator) if random_init else x
        x_adv = project(start, x, eps, norm, bounds)
        for _ in range(steps):
            grad = _loss_gradient(logits, x_adv, y)
            x_adv = project(x_adv + alpha * _direction(grad, norm), x, eps, norm, bounds)
        if restarts == 1:
            return x_adv.detach()
        with torch.no_grad():
            scores = logits(x_adv)
        loss = F.cross_entropy(scores, y, reduction="none")
        wrong = scores.argmax(dim=1) != y
        if best is None:
            best, best_loss, best_wrong = x_adv, loss, wrong
            continue
        # a kept misclassified result stays; a correct one gives way to a misclassified
        # result or to one of higher loss
        better = ~best_wrong & (wrong | (loss > best_loss))
        best = torch.where(better.view(-1, *([1] * (x.dim() - 1))), x_adv, best)
        best_loss = torch.where(better, loss, best_loss)
        best_wrong = best_wrong | wrong
    return best.detach()


def perturb(
    attack: str,
    logits: Logits,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    steps: int = 10,
    bounds: Bounds = IMAGE_BOUNDS,
    generator: torch.Generator | None = None,
    restarts: int = 1,
) -> torch.Tensor:
    """``fgsm`` or ``pgd`` by name (``steps`` and ``restarts`` are PGD's)."""
    if attack == "fgsm":
        return fgsm(logits, x, y, eps, norm, bounds)
    return pgd(
        logits, x, y, eps, norm, steps, bounds=bounds, generator=generator, restarts=restarts
    )


def bounds_of(data_shape: tuple[int, ...]) -> Bounds:
    """[-1, 1] for images (C, H, W); None for points (D,), which have no range."""
    return IMAGE_BOUNDS if len(data_shape) == 3 else None


def madry_examples(
    network: torch.nn.Module,
    logits: Logits,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    steps: int = 7,
    bounds: Bounds = IMAGE_BOUNDS,
) -> torch.Tensor:
    """The inner maximisation of adversarial training (Madry et al. 2018): PGD examples
    (N, ...) for a training batch, made with ``network`` in eval mode so that the
    attack's passes neither update batch-norm statistics nor draw dropout masks; its
    random start comes from torch's global stream (seeded and checkpointed by the run).
    """
    with eval_mode(network):
        return pgd(logits, x, y, eps, norm, steps, bounds=bounds)
