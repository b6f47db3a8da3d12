"""FD∞ (Chong & Forsyth 2020): FD at five sample counts, extrapolated to 1/n → 0.

The fit is checked by hand on points exactly on a line in 1/n, the whole function on a
Fréchet distance replaced by one that is exactly linear in 1/n, and the estimate on
Gaussian features, where the true FD is 0 and FD(n) is biased upwards. `gankit eval`
scores it in the evaluator's features and `gankit fid --fid-infinity` prints it, with a
stand-in for InceptionV3 (the real network is slow on a CPU).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gankit
from conftest import cli
from gankit.errors import GankitError
from gankit.metrics import features as features_module
from gankit.metrics import frechet
from gankit.metrics.evaluate import Scorer
from gankit.metrics.frechet import (
    extrapolate_to_infinity,
    frechet_distance,
    frechet_distance_infinity,
)


def test_the_line_through_two_points_by_hand():
    # FD(10) = 5, FD(20) = 4: in u = 1/n, the slope is (5 - 4) / (0.1 - 0.05) = 20
    # and the intercept 4 - 20 * 0.05 = 3
    assert extrapolate_to_infinity([10, 20], [5.0, 4.0]) == pytest.approx((3.0, 20.0))


def test_points_exactly_linear_in_one_over_n_give_back_the_line():
    sizes = [200, 400, 600, 800, 1000]
    assert extrapolate_to_infinity(sizes, [12.5 + 3000 / n for n in sizes]) == pytest.approx(
        (12.5, 3000.0)
    )


def test_points_off_the_line_are_fitted_by_least_squares_by_hand():
    # u = 1, 1/2, 1/4 (mean 7/12); FD = 2, 1, 1 (mean 4/3)
    # Σ(u - ū)(FD - F̄D) = (5/12)(2/3) + (-1/12)(-1/3) + (-4/12)(-1/3) = 15/36
    # Σ(u - ū)² = (25 + 1 + 16) / 144 = 42/144, so k = (15/36) / (42/144) = 10/7
    # and FD∞ = 4/3 - (10/7)(7/12) = 1/2
    assert extrapolate_to_infinity([1, 2, 4], [2.0, 1.0, 1.0]) == pytest.approx((0.5, 10 / 7))


def test_fd_infinity_fits_five_subset_sizes_from_a_fifth_to_all(monkeypatch):
    measured: list[tuple[int, int]] = []

    def linear_in_one_over_n(a, b):
        measured.append((len(a), len(b)))
        return 7.0 + 50.0 / len(a)

    monkeypatch.setattr(frechet, "frechet_distance", linear_in_one_over_n)
    a, b = torch.randn(100, 4), torch.randn(30, 4)
    assert frechet_distance_infinity(a, b) == pytest.approx((7.0, 50.0))
    # subsets of the scored set only; the reference is always whole
    assert measured == [(20, 30), (40, 30), (60, 30), (80, 30), (100, 30)]


def test_fd_infinity_subsets_are_drawn_without_replacement_and_seeded(monkeypatch):
    subsets: list[torch.Tensor] = []

    def record(a, b):
        subsets.append(a[:, 0].clone())
        return 1.0 + 1.0 / len(a)

    monkeypatch.setattr(frechet, "frechet_distance", record)
    a = torch.arange(50.0).unsqueeze(1).repeat(1, 2)
    frechet_distance_infinity(a, a, seed=3)
    first = [s.tolist() for s in subsets]
    assert all(len(set(s)) == len(s) for s in first)  # no row drawn twice
    assert sorted(first[-1]) == list(range(50))  # the largest subset is the whole set
    subsets.clear()
    frechet_distance_infinity(a, a, seed=3)
    assert [s.tolist() for s in subsets] == first
    subsets.clear()
    frechet_distance_infinity(a, a, seed=4)
    assert [s.tolist() for s in subsets] != first


def test_fd_infinity_removes_most_of_the_bias_of_one_distribution():
    # both sets from N(0, I): the true FD is 0, FD(n) is biased upwards by about k/n
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(400, 16, generator=generator)
    b = torch.randn(4000, 16, generator=generator)
    biased = frechet_distance(a, b)
    value, slope = frechet_distance_infinity(a, b)
    assert slope > 0
    assert abs(value) < 0.3 * biased, (value, biased)


@pytest.mark.parametrize(
    ("n", "points", "message"),
    [
        (9, 5, "at least 10 and 2 samples in the scored set for 5 sizes of 2 or more"),
        (40, 1, "needs points >= 2; got 1"),
    ],
)
def test_fd_infinity_errors_name_what_is_wrong(n, points, message):
    with pytest.raises(GankitError, match=message):
        frechet_distance_infinity(torch.randn(n, 3), torch.randn(20, 3), points=points)


def test_extrapolation_needs_two_distinct_sizes():
    with pytest.raises(GankitError, match="at two distinct sizes at least"):
        extrapolate_to_infinity([10, 10], [1.0, 2.0])


def test_eval_scores_fd_infinity_in_the_evaluators_features_only_when_asked(evaluator_cache):
    bundle = gankit.load_dataset("digits")
    scorer = Scorer(bundle, "fd,fd_inf", n=60)
    noisy = scorer.reference + 0.3 * torch.randn_like(scorer.reference)
    scores = scorer.score(noisy)
    assert list(scores) == ["fd", "fd_inf", "fd_inf_slope"]
    assert np.isfinite(scores["fd_inf"]) and scores["fd_inf"] < scores["fd"]
    assert "fd_inf" not in Scorer(bundle, None, n=60).metrics


class FlatFeatures:
    """A stand-in for InceptionV3: the first 12 pixels of each image."""

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, :12].double()


def test_fid_command_prints_fid_infinity_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(features_module, "inception_features", lambda weights: FlatFeatures())
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.integers(0, 256, (40, 8, 8), dtype=np.uint8))
    np.save(tmp_path / "b.npy", rng.integers(0, 256, (60, 8, 8), dtype=np.uint8))
    plain = cli("fid", tmp_path / "a.npy", tmp_path / "b.npy")
    assert plain.exit_code == 0, plain.output
    assert "fid_inf" not in plain.output
    result = cli("fid", tmp_path / "a.npy", tmp_path / "b.npy", "--fid-infinity")
    assert result.exit_code == 0, result.output
    fid = float(result.stdout.split("\nfid ")[1].split()[0])
    fid_inf = float(result.stdout.split("\nfid_inf ")[1].split()[0])
    assert fid_inf < fid
    assert "FID(n) = FID∞ + k/n, k = " in result.stdout
