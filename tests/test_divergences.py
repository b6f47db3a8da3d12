"""Distances between sample sets against closed forms and exact values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.divergences import (
    histogram_js,
    histogram_kl,
    neural_w1,
    sliced_wasserstein,
    wasserstein,
)

rng = np.random.default_rng(0)


def gaussian_kl(mu1, s1, mu2, s2):
    return math.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5


def test_exact_w1_of_a_shift_and_of_itself():
    x = torch.randn(500, 1, generator=torch.Generator().manual_seed(0))
    assert wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)
    assert wasserstein(x, x + 0.7) == pytest.approx(0.7, abs=1e-6)  # float32 input
    shift = torch.tensor([[3.0, 4.0]])
    points = torch.randn(300, 2)
    assert wasserstein(points, points + shift) == pytest.approx(5.0, abs=1e-6)


def test_sliced_w1_is_exact_in_one_dimension_and_deterministic():
    x = rng.normal(size=(400, 1))
    y = rng.normal(loc=1.5, size=(400, 1))
    assert sliced_wasserstein(x, y, n_projections=8) == pytest.approx(wasserstein(x, y), rel=1e-9)
    x2, y2 = rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 1
    assert sliced_wasserstein(x2, y2, seed=3) == sliced_wasserstein(x2, y2, seed=3)
    assert 0 < sliced_wasserstein(x2, y2) < wasserstein(x2, y2)  # a projection shrinks


def test_histogram_kl_matches_the_gaussian_closed_form():
    """1-D: N(0, 1) vs N(1, 1.5²) with 200k samples, 100 bins: within 0.02 nats."""
    p = rng.normal(0.0, 1.0, 200_000)
    q = rng.normal(1.0, 1.5, 200_000)
    assert histogram_kl(p, q, bins=100) == pytest.approx(gaussian_kl(0, 1, 1, 1.5), abs=0.02)


def test_histogram_kl_two_dimensional_isotropic():
    """2-D isotropic: the KL is the sum over the two independent axes."""
    p = rng.normal(0.0, 1.0, (200_000, 2))
    q = rng.normal(0.5, 1.2, (200_000, 2))
    expected = 2 * gaussian_kl(0, 1, 0.5, 1.2)
    assert histogram_kl(p, q, bins=60) == pytest.approx(expected, abs=0.03)


def test_histogram_js_bounds():
    p = rng.uniform(0, 1, (5000, 1))
    q = rng.uniform(3, 4, (5000, 1))
    assert histogram_js(p, q, eps=1e-15) == pytest.approx(math.log(2), abs=1e-6)
    assert histogram_js(p, p) == pytest.approx(0.0, abs=1e-12)
    r = rng.uniform(0.5, 1.5, (5000, 1))
    assert histogram_js(p, r) == pytest.approx(histogram_js(r, p), rel=1e-12)
    assert 0 < histogram_js(p, r) < math.log(2)


def test_neural_w1_estimates_the_exact_distance():
    """A critic trained for 500 steps recovers W1 within 10 % on two 1-D problems.

    Measured with seeds 0, 1, 2: N(0,1) vs N(2,1) (exact 1.980 on these samples):
    2.00, 1.79, 1.97; U(0,1) vs U(0.5,1.5) (exact 0.511): 0.486, 0.477, 0.512.
    """
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(4000, 1, generator=gen), torch.randn(4000, 1, generator=gen) + 2
    assert neural_w1(a, b) == pytest.approx(wasserstein(a, b), rel=0.1)
    u = torch.rand(4000, 1, generator=gen)
    v = torch.rand(4000, 1, generator=gen) + 0.5
    assert neural_w1(u, v) == pytest.approx(wasserstein(u, v), rel=0.1)
    state = torch.get_rng_state()
    assert neural_w1(u, v, steps=20) == neural_w1(u, v, steps=20)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched


@pytest.mark.parametrize("fn", [wasserstein, sliced_wasserstein, histogram_kl, histogram_js])
def test_shape_errors_name_both_shapes(fn):
    with pytest.raises(GankitError, match=r"same dimension; got \(10, 2\) and \(5, 3\)"):
        fn(np.zeros((10, 2)), np.zeros((5, 3)))
    with pytest.raises(GankitError, match=r"non-empty"):
        fn(np.zeros((0, 2)), np.zeros((5, 2)))


def test_histograms_refuse_high_dimensions_and_w1_refuses_huge_sets():
    with pytest.raises(GankitError, match="use sliced_wasserstein"):
        histogram_kl(np.zeros((10, 3)), np.zeros((10, 3)))
    with pytest.raises(GankitError, match="limited to 100 points"):
        wasserstein(np.zeros((101, 2)), np.zeros((10, 2)), max_points=100)
