"""Distances and divergences between two sample sets P and Q.

Every function takes P as (N, D) and Q as (M, D) samples, as tensors or arrays. A 1-D
vector of length N is read as N samples in one dimension, (N, 1). The functions compute
in float64 and return a Python float.

- :func:`wasserstein`: the exact W1 (earth mover's distance) from POT's network simplex,
  ``W1(P, Q) = inf_{γ∈Π(P,Q)} E_{(x,y)~γ} ||x − y||``.
- :func:`sliced_wasserstein`: exact 1-D W1 averaged over random projections. It scales
  to large sets and any D, and is exact in 1-D.
- :func:`histogram_kl` and :func:`histogram_js`: plug-in estimates from histograms on a
  shared grid, for 1-D and 2-D samples.
- :func:`neural_w1`: the dual form ``W1(P, Q) = sup_{||f||_L ≤ 1} E_P f − E_Q f``,
  estimated by a small critic trained with a gradient penalty. This is the
  discriminator as a learned distance, as in WGAN.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.errors import GankitError
from gankit.losses import gradient_penalty
from gankit.nn import mlp


# --------------------------------------------------------------------------- inputs
def _sample_pair(p, q, name: str) -> tuple[np.ndarray, np.ndarray]:
    """P and Q as float64 (N, D) and (M, D) arrays; a one-line GankitError otherwise.

    Every public function calls this first, so all of them accept the same inputs.
    """
    arrays = [
        x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in (p, q)
    ]
    shapes = [tuple(x.shape) for x in arrays]
    a, b = (x.astype(np.float64)[:, None] if x.ndim == 1 else x.astype(np.float64) for x in arrays)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) == 0 or len(b) == 0:
        raise GankitError(
            f"{name} needs two non-empty sample sets (N, D) and (M, D) of the same dimension; "
            f"got {shapes[0]} and {shapes[1]}"
        )
    for label, x in (("P", a), ("Q", b)):
        # Check here because POT scores a NaN cost matrix as W1 = 0 (a perfect score),
        # with only a warning.
        n_bad = int((~np.isfinite(x)).sum())
        if n_bad:
            raise GankitError(f"{name} needs finite samples; {label} has {n_bad} NaN or inf values")
    return a, b


def _require(condition: bool, name: str, what: str, value) -> None:
    if not condition:
        raise GankitError(f"{name}: {what}, got {value!r}")


# --------------------------------------------------------------------------- W1
def wasserstein(p, q, max_points: int = 5000) -> float:
    """The exact Wasserstein-1 (earth mover's) distance, with a Euclidean ground cost.

    ``W1(P, Q) = inf_{γ∈Π(P,Q)} E_{(x,y)~γ} ||x − y||``, where Π(P, Q) is the set of
    couplings (joint distributions) whose marginals are P and Q. Each sample has weight
    1/N or 1/M. POT's network simplex solves this linear program exactly. Time and memory
    grow with N·M: 5000 points per set take about 2 s and a 200 MB cost matrix.

    Args:
        p: (N, D) samples of P, or (N,) for D = 1.
        q: (M, D) samples of Q, or (M,) for D = 1.
        max_points: the largest N or M accepted. For larger sets, subsample, or use
            :func:`sliced_wasserstein`, which is exact in 1-D.

    Returns:
        W1 in the units of the samples.
    """
    import ot  # lazily: importing POT takes about 2 s

    a, b = _sample_pair(p, q, "wasserstein")
    if max(len(a), len(b)) > max_points:
        raise GankitError(
            f"wasserstein is exact and limited to max_points={max_points} points per set, "
            f"got {len(a)} and {len(b)}; subsample, or use sliced_wasserstein"
        )
    cost = ot.dist(a, b, metric="euclidean")
    weights_a = np.full(len(a), 1.0 / len(a))
    weights_b = np.full(len(b), 1.0 / len(b))
    # POT's default limit of 1e5 iterations stops short of the optimum at about 5000
    # points per set. When it stops short, it returns an upper bound and only warns.
    distance, log = ot.emd2(weights_a, weights_b, cost, numItermax=10_000_000, log=True)
    if log["warning"] is not None:
        raise GankitError(
            f"wasserstein's solver stopped before the optimum on {len(a)} x {len(b)} points "
            f"({log['warning']}); subsample, or use sliced_wasserstein"
        )
    return float(distance)


def sliced_wasserstein(p, q, n_projections: int = 256, seed: int = 0) -> float:
    """The sliced Wasserstein-1 distance: the exact 1-D W1 averaged over random directions.

    ``SW1(P, Q) = E_{θ ~ U(S^{D−1})} W1(θᵀP, θᵀQ)``, estimated with ``n_projections``
    directions. In 1-D, W1 has the closed form ``∫ |F_P(t) − F_Q(t)| dt``, which sorting
    computes in O(N log N).

    We use p = 1 (POT's default is p = 2) so that in 1-D this equals :func:`wasserstein`.
    Every projection is 1-Lipschitz, so ``SW1 ≤ W1``. In D dimensions, SW1 is also smaller
    by a factor that depends on D. For a shift by a vector c, ``SW1 = ||c|| E_θ |θ_1|``,
    which is ``2/π ||c||`` in 2-D. Compare SW1 values with each other, not with W1.

    Args:
        p: (N, D) samples of P, or (N,) for D = 1.
        q: (M, D) samples of Q, or (M,) for D = 1.
        n_projections: the number of random directions. The Monte Carlo error shrinks as
            ``1/sqrt(n_projections)``.
        seed: the seed for the directions. The same seed gives the same value, and the
            global random state is left alone.

    Returns:
        SW1 in the units of the samples.
    """
    import ot  # lazily: importing POT takes about 2 s

    a, b = _sample_pair(p, q, "sliced_wasserstein")
    _require(
        n_projections >= 1, "sliced_wasserstein", "n_projections must be at least 1", n_projections
    )
    return float(ot.sliced_wasserstein_distance(a, b, n_projections=n_projections, p=1, seed=seed))


# --------------------------------------------------------------------------- histograms
def _histogram_pair(p, q, bins: int, eps: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    """P and Q binned on one shared grid, smoothed and normalised.

    Returns:
        Two (bins,) or (bins, bins) probability arrays, each summing to 1.
    """
    a, b = _sample_pair(p, q, name)
    dim = a.shape[1]
    if dim > 2:
        raise GankitError(
            f"{name} bins 1-D or 2-D samples only, got D={dim}: a grid in {dim} dimensions "
            f"has {bins}^{dim} bins, almost all empty; use sliced_wasserstein instead"
        )
    _require(
        isinstance(bins, (int, np.integer)) and bins >= 1,
        name,
        "bins must be an integer >= 1",
        bins,
    )
    _require(eps >= 0, name, "eps must be >= 0", eps)
    both = np.concatenate([a, b])
    low, high = both.min(axis=0), both.max(axis=0)
    # An axis where every sample is equal has no width; widen it by ±0.5 as numpy does.
    flat = low == high
    low, high = np.where(flat, low - 0.5, low), np.where(flat, high + 0.5, high)
    # One grid covering both sets, so that bin i means the same region in P and in Q.
    edges = [np.linspace(low[d], high[d], bins + 1) for d in range(dim)]
    hists = []
    for x in (a, b):
        hist = np.histogramdd(x, bins=edges)[0]
        # Smoothing: a bin where Q is empty and P is not would make KL infinite.
        hist = hist / hist.sum() + eps
        hists.append(hist / hist.sum())
    return hists[0], hists[1]


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """``Σ p log(p / q)`` with ``0 log(0 / q) = 0``, in nats."""
    from scipy.special import rel_entr  # lazily, like POT: only these estimators need it

    return float(rel_entr(p, q).sum())


def histogram_kl(p, q, bins: int = 50, eps: float = 1e-10) -> float:
    """The Kullback–Leibler divergence ``KL(P ‖ Q)``, estimated from histograms.

    Both sets are binned on one grid: ``bins`` bins per axis, spanning both sets. Each
    histogram becomes a probability vector. ``eps`` is added to every bin, then the
    vectors are renormalised. Then ``KL(P ‖ Q) = Σ_i p_i log(p_i / q_i)``, in nats.
    KL is not symmetric.

    The estimate has two biases. Binning lowers it (merging points never increases a
    divergence). Sparse bins raise it, by about (number of bins) / (2N). With 200 000
    samples per set it is within 0.005 nats of the closed form for two 1-D Gaussians at
    50 or 100 bins. For 2-D isotropic Gaussians it is 0.005 to 0.01 nats high at 50 bins,
    and 0.03 nats high at 100 bins. A far outlier stretches the grid and coarsens every
    bin.

    Args:
        p: (N, D) samples of P with D ≤ 2, or (N,) for D = 1.
        q: (M, D) samples of Q.
        bins: the number of bins per axis.
        eps: the smoothing added to every bin's probability. With ``eps = 0``, KL is
            inf wherever Q has an empty bin and P does not.

    Returns:
        KL(P ‖ Q) in nats, ≥ 0.
    """
    hist_p, hist_q = _histogram_pair(p, q, bins, eps, "histogram_kl")
    return _kl(hist_p, hist_q)


def histogram_js(p, q, bins: int = 50, eps: float = 1e-10) -> float:
    """The Jensen–Shannon divergence, estimated from histograms as in :func:`histogram_kl`.

    ``JS(P, Q) = ½ KL(P ‖ M) + ½ KL(Q ‖ M)`` with ``M = (P + Q) / 2``, in nats.
    JS is symmetric and lies in ``[0, ln 2]``. It reaches ln 2 when the supports are
    disjoint, however far apart they are. An optimal original-GAN discriminator drives
    the generator's loss towards this JS. So that loss gives no useful gradient while the
    generator's samples lie off the data, which is the motivation for WGAN.

    Args:
        p: (N, D) samples of P with D ≤ 2, or (N,) for D = 1.
        q: (M, D) samples of Q.
        bins: the number of bins per axis.
        eps: the smoothing added to every bin's probability. JS stays finite with
            ``eps = 0``, because M > 0 wherever P or Q is.

    Returns:
        JS(P, Q) in nats, in [0, ln 2].
    """
    hist_p, hist_q = _histogram_pair(p, q, bins, eps, "histogram_js")
    middle = (hist_p + hist_q) / 2
    return 0.5 * _kl(hist_p, middle) + 0.5 * _kl(hist_q, middle)


# --------------------------------------------------------------------------- neural W1
def neural_w1(
    p,
    q,
    steps: int = 500,
    gp_weight: float = 100.0,
    hidden: int = 64,
    n_layers: int = 2,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    """Estimate W1 through its dual with a trained critic: the discriminator as a distance.

    By Kantorovich–Rubinstein duality,
    ``W1(P, Q) = sup_{||f||_L ≤ 1} E_P f − E_Q f``. A WGAN critic solves this problem
    with a soft constraint. Here, a LeakyReLU MLP ``f`` is trained with Adam, on
    minibatches, to maximise

        ``E_P f − E_Q f − λ E_{x̂}[max(0, ||∇f(x̂)|| − 1)²]``

    with ``x̂ = u x + (1 − u) y``, ``x ~ P``, ``y ~ Q`` and ``u ~ U[0, 1]``. The result is
    ``E_P f − E_Q f`` on the full sets, without the penalty.

    Three choices differ from WGAN-GP (Gulrajani et al. 2017). Each was measured on 1-D
    problems with 2000 samples per set, 500 steps and seeds 0–4.

    - The penalty is one-sided (Petzka et al. 2018). The two-sided penalty
      ``(||∇f|| − 1)²`` puts a barrier at slope 0. In 1-D, a critic whose initial slope
      has the wrong sign never crosses it. It converged to −W1 for 2 of 5 seeds on
      N(0,1) vs N(2,1), and for all 5 on a bimodal mixture vs N(0,1).
    - λ = 100, not 10. A soft penalty lets the slope exceed 1 where few interpolates
      fall. In 1-D the maximiser's slope is ``1 + |F_P − F_Q| / (2λρ)``, where ρ is the
      density of x̂. So the estimate overshoots W1 by ``∫ (F_P − F_Q)² / (2λρ)``. With
      λ = 10 it was 9 % high for N(0,1) vs N(2,1) and 40 % high for N(0,1) vs N(8,1).
      With λ = 100 it was within 1 % and 4 % high. Larger λ converged more slowly: at
      300 and at 1000, some seeds ended 6 % and 16 % low.
    - Adam uses its default betas (0.9, 0.999), not WGAN-GP's (0.5, 0.9). Those suit a
      critic chasing a moving generator. Here the target is fixed, and (0.5, 0.9) left
      errors up to 11 %.

    In higher dimension the result is lower than :func:`wasserstein` on the same samples:
    26 % lower for 2000 points of N(0, I) vs N(0.5, 1.5² I) in 8-D. There the exact W1
    between finite samples itself overestimates the population W1, because its sampling
    error shrinks only as ``N^(−1/D)``. A smooth critic cannot follow sample-level detail.

    The critic trains in float32, because float64 took a third longer and made no
    difference to the estimate. The final means are accumulated in float64.

    Args:
        p: (N, D) samples of P, or (N,) for D = 1.
        q: (M, D) samples of Q.
        steps: the number of Adam steps. Each takes about 1 ms on one CPU thread at the
            default sizes.
        gp_weight: λ, the weight of the gradient penalty.
        hidden: the width of the critic's hidden layers.
        n_layers: the number of hidden layers.
        lr: Adam's learning rate.
        batch_size: the number of samples drawn from each set per step, with replacement.
        seed: seeds the critic's initialisation, the minibatches and the interpolates.
            The same seed gives the same value. The global torch RNG is saved and
            restored.

    Returns:
        The estimate of W1 in the units of the samples.
    """
    a, b = _sample_pair(p, q, "neural_w1")
    for what, value in (("steps", steps), ("batch_size", batch_size), ("hidden", hidden)):
        _require(value >= 1, "neural_w1", f"{what} must be at least 1", value)
    _require(gp_weight >= 0, "neural_w1", "gp_weight must be >= 0", gp_weight)
    dtype = torch.get_default_dtype()  # that of the critic and of the penalty's u
    real, fake = torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype)
    # fork_rng restores the global RNG afterwards. gradient_penalty draws u from it, so
    # a local Generator alone would not be enough.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critic = mlp(a.shape[1], hidden, n_layers, 1, leaky_slope=0.2)
        optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
        for _ in range(steps):
            batch_p = real[torch.randint(len(real), (batch_size,))]
            batch_q = fake[torch.randint(len(fake), (batch_size,))]
            gap = critic(batch_p).mean() - critic(batch_q).mean()
            penalty = gradient_penalty(critic, batch_p, batch_q, one_sided=True)
            loss = -gap + gp_weight * penalty
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        # Evaluate in chunks, so that memory stays bounded for large sets.
        mean_p, mean_q = (
            sum(float(critic(chunk).double().sum()) for chunk in x.split(65536)) / len(x)
            for x in (real, fake)
        )
    return mean_p - mean_q


__all__ = [
    "histogram_js",
    "histogram_kl",
    "neural_w1",
    "sliced_wasserstein",
    "wasserstein",
]
