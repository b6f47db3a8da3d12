"""Image metrics on feature sets: FD, FD∞, KID, IS, precision/recall, density/coverage.

Every function takes features already extracted (see :mod:`gankit.metrics.features`),
so one pass of the feature network serves all five metrics. Features are (N, F)
tensors; the arithmetic is in float64 on the CPU.

- FD (Heusel et al. 2017): ``||μ_r − μ_g||² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2})``.
- FD∞ (Chong & Forsyth 2020): FD at several sample counts n, extrapolated to
  1/n → 0 along the least-squares line ``FD(n) = FD∞ + k/n``.
- KID (Bińkowski et al. 2018): unbiased MMD² with ``k(x, y) = (xᵀy / F + 1)³``.
- IS (Salimans et al. 2016): ``exp(E_x KL(p(y|x) ‖ p(y)))``.
- Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020),
  on k-nearest-neighbour balls.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from gankit.errors import GankitError

#: Distance blocks are at most this many entries (128 MB in float64).
BLOCK_ENTRIES = 2**24


def _as_features(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x).detach().to("cpu", torch.float64)


def _feature_pair(
    a: torch.Tensor | np.ndarray,
    b: torch.Tensor | np.ndarray,
    metric: str,
    min_a: int = 2,
    min_b: int = 2,
    why: str = "",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two feature sets (N, F) and (M, F); return them as float64 CPU tensors."""
    a, b = _as_features(a), _as_features(b)
    shapes = f"got {tuple(a.shape)} and {tuple(b.shape)}"
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise GankitError(f"{metric} needs two feature sets (N, F) of the same F > 0; {shapes}")
    if len(a) < min_a or len(b) < min_b:
        need = f"at least {min_a}" if min_a == min_b else f"at least {min_a} and {min_b}"
        raise GankitError(f"{metric} needs {need} samples{why}; {shapes}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise GankitError(f"{metric}: the features hold NaN or infinite values; {shapes}")
    return a, b


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    ``FD = ||μ_a − μ_b||² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})``, with unbiased (N − 1)
    covariances, as in the FID of Heusel et al. (2017). Symmetric in ``a`` and ``b``.

    Args:
        a: (N, F) features, N >= 2.
        b: (M, F) features, M >= 2.
    """
    a, b = _feature_pair(a, b, "frechet_distance", why=" per set for a covariance")
    mean_a, mean_b = a.mean(0), b.mean(0)
    a_c, b_c = a - mean_a, b - mean_b
    n_a, n_b, dim = len(a), len(b), a.shape[1]
    mean_term = (mean_a - mean_b).square().sum()
    trace_term = a_c.square().sum() / (n_a - 1) + b_c.square().sum() / (n_b - 1)
    # Written out because torchmetrics has no public function on precomputed moments
    # (its FrechetInceptionDistance module runs its own network on images), and because
    # the usual route, the eigenvalues of the non-symmetric Σ_a Σ_b, is the slowest:
    # tens of seconds for 2048-d Inception features on a small CPU. Tr((Σ_a Σ_b)^{1/2})
    # is computed exactly by one of two cheaper routes (tests check both against
    # scipy.linalg.sqrtm):
    # - few samples: with centred features X_a, X_b, the non-zero eigenvalues of
    #   Σ_a Σ_b are those of K Kᵀ / ((N−1)(M−1)) with K = X_a X_bᵀ, so the trace is K's
    #   nuclear norm over sqrt((N−1)(M−1)): an N x M problem instead of F x F;
    # - otherwise Σ_a Σ_b is similar to the symmetric Σ_a^{1/2} Σ_b Σ_a^{1/2}, whose
    #   eigenvalues come from two symmetric eigendecompositions.
    if min(n_a, n_b) <= dim // 2:
        singular = torch.linalg.svdvals(a_c @ b_c.T)
        sqrt_trace = singular.sum() / math.sqrt((n_a - 1) * (n_b - 1))
    else:
        cov_a, cov_b = a_c.T @ a_c / (n_a - 1), b_c.T @ b_c / (n_b - 1)
        values, vectors = torch.linalg.eigh(cov_a)
        root = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
        sqrt_trace = torch.linalg.eigvalsh(root @ cov_b @ root).clamp(min=0).sqrt().sum()
    return float(mean_term + trace_term - 2 * sqrt_trace)


def extrapolate_to_infinity(
    sizes: list[int] | np.ndarray, distances: list[float] | np.ndarray
) -> tuple[float, float]:
    """Least-squares line ``FD(n) = FD∞ + k/n`` through (n, FD) points; returns (FD∞, k).

    With ``u = 1/n``, the fit minimises ``Σ_i (FD_i − FD∞ − k u_i)²``:
    ``k = Σ (u_i − ū)(FD_i − F̄D) / Σ (u_i − ū)²`` and ``FD∞ = F̄D − k ū``.

    Args:
        sizes: (P,) sample counts, at least two distinct ones.
        distances: (P,) the FD measured at each count.
    """
    inverse = 1.0 / np.asarray(sizes, dtype=np.float64)
    values = np.asarray(distances, dtype=np.float64)
    if inverse.shape != values.shape or inverse.ndim != 1 or len(np.unique(inverse)) < 2:
        raise GankitError(
            "extrapolate_to_infinity needs as many distances as sizes, at two distinct "
            f"sizes at least; got sizes {list(sizes)} and {len(values)} distances"
        )
    spread = inverse - inverse.mean()
    slope = float((spread * (values - values.mean())).sum() / (spread**2).sum())
    return float(values.mean() - slope * inverse.mean()), slope


def frechet_distance_infinity(
    a: torch.Tensor, b: torch.Tensor, points: int = 5, seed: int = 0
) -> tuple[float, float]:
    """FD∞ (Chong & Forsyth 2020): the FD that infinitely many samples would give.

    FD is biased upwards by about ``k/n`` for n scored samples, with k depending on
    the generator, so FDs at different n do not compare. FD∞ measures
    ``FD(n_i)`` for ``points`` sizes evenly spaced from ``N / points`` to ``N``, each
    on a random subset of ``a`` drawn without replacement (seeded), always against the
    whole of ``b`` (the paper keeps the reference statistics fixed), and extrapolates
    the line ``FD(n) = FD∞ + k/n`` (:func:`extrapolate_to_infinity`) to ``1/n = 0``.

    Args:
        a: (N, F) features of the scored set; its smallest subset needs 2 samples.
        b: (M, F) reference features, M >= 2.
        points: how many sizes to fit through, >= 2.
        seed: seeds the subsets.

    Returns:
        (FD∞, k): the intercept and the slope of the line in 1/n.
    """
    if not isinstance(points, int) or points < 2:
        raise GankitError(f"frechet_distance_infinity needs points >= 2; got {points!r}")
    a, b = _feature_pair(
        a, b, "frechet_distance_infinity", 2 * points, 2,
        f" in the scored set for {points} sizes of 2 or more",
    )  # fmt: skip
    sizes = np.unique(np.linspace(len(a) / points, len(a), points).round().astype(int))
    generator = torch.Generator().manual_seed(seed)
    distances = [
        frechet_distance(a[torch.randperm(len(a), generator=generator)[:size]], b) for size in sizes
    ]
    return extrapolate_to_infinity(sizes, distances)


def kernel_inception_distance(
    a: torch.Tensor,
    b: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: the unbiased MMD² between two feature sets, mean and std over random subsets.

    ``MMD² = E k(x, x') + E k(y, y') − 2 E k(x, y)`` with the polynomial kernel
    ``k(x, y) = (xᵀy / F + 1)^degree`` (Bińkowski et al. 2018). Unbiased, so it can be
    slightly negative when the two sets come from one distribution.

    Args:
        a: (N, F) features.
        b: (M, F) features.
        subsets: how many random subset pairs to average over.
        subset_size: samples per subset, clipped to ``min(N, M)``.
        degree: the polynomial kernel's degree.
        seed: seeds the choice of subsets.

    Returns:
        (mean, std) over the subsets.
    """
    # torchmetrics' poly_mmd is the unbiased estimate on one pair of equal-size subsets;
    # its KernelInceptionDistance module would run its own network on images instead.
    from torchmetrics.image.kid import poly_mmd

    a, b = _feature_pair(a, b, "kernel_inception_distance")
    if subsets < 1 or subset_size < 2 or degree < 1:
        raise GankitError(
            "kernel_inception_distance needs subsets >= 1, subset_size >= 2 and degree >= 1; "
            f"got {subsets}, {subset_size} and {degree}"
        )
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
    """``IS = exp(E_x KL(p(y|x) ‖ p(y)))``, mean and std over ``splits`` parts.

    ``p(y)`` is the mean of ``p(y|x)`` within each part (Salimans et al. 2016). It
    ranges from 1 (every sample gets the same prediction) to K (confident predictions,
    spread evenly over the K classes).

    Args:
        probs: (N, K) class probabilities of the generated samples, N >= splits.
        splits: parts to average over (10 in the paper).
    """
    # By hand: torchmetrics' InceptionScore runs its own network on images, while we
    # score the softmax of whichever classifier extracted the features.
    probs = _as_features(probs)
    if probs.dim() != 2 or splits < 1 or len(probs) < splits or probs.shape[1] == 0:
        raise GankitError(
            f"inception_score needs (N, K) probabilities with N >= splits ({splits}) >= 1; "
            f"got {tuple(probs.shape)}"
        )
    row_sums = probs.sum(dim=1)
    if not (torch.isfinite(probs).all() and (probs >= 0).all()) or not torch.allclose(
        row_sums, torch.ones_like(row_sums), atol=1e-4
    ):
        raise GankitError(
            f"inception_score needs probabilities (non-negative rows summing to 1), e.g. a "
            f"softmax; got {tuple(probs.shape)} with row sums in "
            f"[{row_sums.min():.4g}, {row_sums.max():.4g}]"
        )
    scores = []
    # tensor_split, not chunk: chunk returns fewer parts when N is not a multiple.
    for part in probs.tensor_split(splits):
        marginal = part.mean(dim=0, keepdim=True)
        # xlogy: 0 · log 0 = 0 for classes that a sample (or the whole part) never gets.
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal)).sum(dim=1).mean()
        scores.append(kl.exp())
    stacked = torch.stack(scores)
    return float(stacked.mean()), float(stacked.std(unbiased=False))


# ----------------------------------------------------------------- k-NN manifolds
# Not in torchmetrics; written here with torch.cdist over row blocks so that memory
# stays bounded (BLOCK_ENTRIES) for tens of thousands of samples.


def _row_blocks(queries: torch.Tensor, points: torch.Tensor) -> Iterator[torch.Tensor]:
    """Distances from ``queries`` to ``points``, a block of rows at a time."""
    rows = max(1, BLOCK_ENTRIES // max(1, len(points)))
    for block in queries.split(rows):
        yield torch.cdist(block, points)


def _knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) distance from each point to its k-th nearest other point."""
    # k + 1: the nearest "neighbour" of a point is itself, at distance 0.
    return torch.cat([d.kthvalue(k + 1, dim=1).values for d in _row_blocks(points, points)])


def _share_inside(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """The share of ``queries`` inside at least one ball (centre, radius)."""
    inside = [(d <= radii).any(dim=1) for d in _row_blocks(queries, centres)]
    return float(torch.cat(inside).double().mean())


def _check_k(k: int, metric: str) -> None:
    if not isinstance(k, int) or k < 1:
        raise GankitError(f"{metric} needs an integer k >= 1, got {k!r}")


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points, each with radius the
    distance to the point's k-th nearest neighbour in the same set.

    - precision: the share of generated samples inside the real manifold (quality);
    - recall: the share of real samples inside the generated manifold (diversity).

    Args:
        real: (N, F) features of real data, N > k.
        fake: (M, F) features of generated data, M > k.
        k: the neighbour that sets the radii (3 in the paper).
    """
    _check_k(k, "precision_recall")
    real, fake = _feature_pair(
        real, fake, "precision_recall", k + 1, k + 1, f" per set for k={k} neighbours"
    )
    precision = _share_inside(fake, real, _knn_radii(real, k))
    recall = _share_inside(real, fake, _knn_radii(fake, k))
    return precision, recall


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), on k-NN balls around real samples only.

    With ``B_i`` the ball around real sample ``x_i`` of radius its k-th neighbour
    distance, N real and M generated samples ``y_j``:

    - density ``= 1/(k M) Σ_j Σ_i 1[y_j ∈ B_i]``: about 1 when the distributions match,
      and unlike precision barely moved by real outliers (their balls are large but few);
    - coverage ``= 1/N Σ_i 1[∃ j: y_j ∈ B_i]``: the share of real balls that hold a
      generated sample.

    Args:
        real: (N, F) features of real data, N > k.
        fake: (M, F) features of generated data, M >= 1.
        k: the neighbour that sets the radii (5 in the paper).
    """
    _check_k(k, "density_coverage")
    real, fake = _feature_pair(
        real, fake, "density_coverage", k + 1, 1, f" for k={k} neighbours of real samples"
    )
    radii = _knn_radii(real, k)
    memberships = 0  # Σ_j Σ_i 1[y_j ∈ B_i]
    covered = torch.zeros(len(real), dtype=torch.bool)
    for distances in _row_blocks(fake, real):  # (a block of generated rows, N)
        inside = distances <= radii
        memberships += int(inside.sum())
        covered |= inside.any(dim=0)
    density = memberships / (k * len(fake))
    coverage = covered.double().mean()
    return float(density), float(coverage)
