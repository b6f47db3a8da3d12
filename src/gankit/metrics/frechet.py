"""Image metrics on feature sets: FD, KID, IS, precision/recall, density/coverage.

Every function takes features already extracted (see :mod:`gankit.metrics.features`),
so one extraction serves all five metrics. Computation is in float64.
"""

from __future__ import annotations

import torch

from gankit.errors import GankitError


def _features(a: torch.Tensor, b: torch.Tensor, name: str, at_least: int = 2):
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise GankitError(
            f"{name} needs two feature sets (N, F) of the same F; "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if min(len(a), len(b)) < at_least:
        raise GankitError(
            f"{name} needs at least {at_least} samples per set; got {len(a)} and {len(b)}"
        )
    return a.detach().double().cpu(), b.detach().double().cpu()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||μ_a − μ_b||² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})`` between Gaussian fits.

    The formula is torchmetrics' own (``_compute_fid``, through the eigenvalues of
    ``Σ_a Σ_b``); we call it on our means and covariances because its
    ``FrechetInceptionDistance`` module would extract features again for every metric.
    """
    from torchmetrics.image.fid import _compute_fid

    a, b = _features(a, b, "frechet_distance")
    return float(_compute_fid(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T)))


def kernel_inception_distance(
    a: torch.Tensor,
    b: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): the unbiased MMD² with ``k(x, y) = (xᵀy / F + 1)³``,
    mean and std over random subsets (torchmetrics' ``poly_mmd`` on each subset)."""
    from torchmetrics.image.kid import poly_mmd

    a, b = _features(a, b, "kernel_inception_distance")
    size = min(subset_size, len(a), len(b))
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        pick_a = torch.randperm(len(a), generator=generator)[:size]
        pick_b = torch.randperm(len(b), generator=generator)[:size]
        values.append(poly_mmd(a[pick_a], b[pick_b], degree=degree))
    stacked = torch.stack(values)
    return float(stacked.mean()), float(stacked.std(unbiased=False))


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """``exp(E_x KL(p(y|x) ‖ p(y)))``, mean and std over ``splits`` (Salimans et al. 2016).

    Written here: torchmetrics' ``InceptionScore`` takes images and runs its own network,
    while we score the softmax of whichever classifier extracted the features.
    """
    if probs.dim() != 2 or len(probs) < splits:
        raise GankitError(
            f"inception_score needs (N, K) probabilities with N >= splits ({splits}); "
            f"got {tuple(probs.shape)}"
        )
    probs = probs.detach().double().cpu().clamp_min(1e-12)
    scores = []
    for part in probs.chunk(splits):
        marginal = part.mean(0, keepdim=True)
        kl = (part * (part.log() - marginal.log())).sum(1).mean()
        scores.append(kl.exp())
    stacked = torch.stack(scores)
    return float(stacked.mean()), float(stacked.std(unbiased=False))


def _kth_neighbour_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point."""
    distances = torch.cdist(points, points)
    # k + 1: the smallest "neighbour" of a point is itself, at distance 0.
    return distances.kthvalue(k + 1, dim=1).values


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points with radius the
    distance to the k-th nearest neighbour. Precision: the share of generated samples
    inside the real manifold; recall: the share of real samples inside the generated
    one. Not in torchmetrics, hence written here.
    """
    real, fake = _features(real, fake, "precision_recall", at_least=k + 1)
    real_radii, fake_radii = _kth_neighbour_radii(real, k), _kth_neighbour_radii(fake, k)
    cross = torch.cdist(fake, real)  # (n_fake, n_real)
    precision = (cross <= real_radii[None, :]).any(dim=1).double().mean()
    recall = torch.le(cross.T, fake_radii[None, :]).any(dim=1).double().mean()
    return float(precision), float(recall)


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), with real k-NN balls only.

    Density: the mean number of real balls containing each generated sample, divided by
    k (about 1 when the distributions match; real outliers barely move it). Coverage:
    the share of real balls that hold at least one generated sample. Not in torchmetrics.
    """
    real, fake = _features(real, fake, "density_coverage", at_least=k + 1)
    radii = _kth_neighbour_radii(real, k)
    inside = torch.cdist(fake, real) <= radii[None, :]  # (n_fake, n_real)
    density = inside.double().sum(dim=1).mean() / k
    coverage = inside.any(dim=0).double().mean()
    return float(density), float(coverage)
