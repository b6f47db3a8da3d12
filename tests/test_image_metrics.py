"""Image metrics on features, and the evaluator classifier that extracts them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.metrics.features import evaluator_path, inception_features, load_evaluator
from gankit.metrics.frechet import (
    density_coverage,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(loc=0.5, size=(500, 16)) @ rng.normal(size=(16, 16))
    ours = frechet_distance(torch.from_numpy(a), torch.from_numpy(b))
    assert ours == pytest.approx(scipy_frechet(a, b), rel=1e-6)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(0, abs=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=gen), torch.randn(400, 8, generator=gen)
    same_mean, same_std = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted_mean, _ = kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert shifted_mean > 10 * max(abs(same_mean), 1e-3)


def test_inception_score_hand_values():
    one_hot = torch.eye(10).repeat(10, 1)  # confident and uniform over 10 classes
    assert inception_score(one_hot)[0] == pytest.approx(10.0, rel=1e-6)
    constant = torch.full((100, 10), 0.1)
    assert inception_score(constant)[0] == pytest.approx(1.0)


def test_precision_recall_density_coverage_on_hand_sets():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(200, 4, generator=gen)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert density_coverage(real, real.clone())[1] == 1.0
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    assert density_coverage(real, far) == (0.0, 0.0)
    # half the fakes on the data, half far away: precision 0.5
    mixed = torch.cat([real[:100], far[:100]])
    assert precision_recall(real, mixed)[0] == pytest.approx(0.5)


def test_metric_input_errors_name_the_shapes():
    with pytest.raises(GankitError, match=r"same F; got \(10, 3\) and \(10, 4\)"):
        frechet_distance(torch.zeros(10, 3), torch.zeros(10, 4))
    with pytest.raises(GankitError, match="at least 4 samples"):
        precision_recall(torch.zeros(3, 2), torch.zeros(10, 2))


@pytest.fixture
def digits_evaluator(evaluator_cache):
    return load_evaluator("digits"), evaluator_path("digits")


def test_digits_evaluator_is_accurate_and_cached(digits_evaluator, monkeypatch):
    evaluator, path = digits_evaluator
    assert evaluator.test_accuracy >= 0.9
    monkeypatch.setenv("GANKIT_CACHE", str(path.parents[1]))
    modified = path.stat().st_mtime_ns
    again = load_evaluator("digits")  # from the cache: no training, same weights
    assert path.stat().st_mtime_ns == modified
    assert again.test_accuracy == evaluator.test_accuracy
    images = load_dataset("digits").test.tensors[0][:5]
    assert torch.equal(again.features(images), evaluator.features(images))


def test_fd_floor_is_small_and_grows_as_samples_degrade(digits_evaluator):
    evaluator, _ = digits_evaluator
    digits = load_dataset("digits")
    train_x, train_y = digits.train.tensors
    test_x = digits.test.tensors[0]
    reference = evaluator.features(test_x)
    floor = frechet_distance(evaluator.features(train_x), reference)

    by_classes = []
    for kept in (10, 7, 4, 1):
        subset = train_x[train_y < kept]
        by_classes.append(frechet_distance(evaluator.features(subset), reference))
    by_noise = []
    gen = torch.Generator().manual_seed(0)
    for std in (0.0, 0.1, 0.3, 0.6, 1.0):
        noisy = (train_x + std * torch.randn(train_x.shape, generator=gen)).clamp(-1, 1)
        by_noise.append(frechet_distance(evaluator.features(noisy), reference))
    assert floor == by_classes[0] == by_noise[0]
    assert all(a < b for a, b in itertools.pairwise(by_classes)), by_classes
    assert all(a < b for a, b in itertools.pairwise(by_noise)), by_noise
    assert floor < 0.1 * by_classes[-1]


def test_evaluator_errors(tmp_path, monkeypatch, digits_evaluator):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    with pytest.raises(GankitError, match="gankit evaluator train fashion-mnist --resolution 28"):
        load_evaluator("fashion-mnist")
    with pytest.raises(GankitError, match="no evaluator for dataset 'folder:x'; valid: cifar10"):
        load_evaluator("folder:x")
    evaluator, _ = digits_evaluator
    with pytest.raises(GankitError, match=r"reads images of shape \(1, 8, 8\), got \(1, 16, 16\)"):
        evaluator.features(torch.zeros(2, 1, 16, 16))


def test_inception_without_torch_fidelity_is_a_clear_error():
    pytest.importorskip("torchmetrics")
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        with pytest.raises(GankitError, match=r"pip install 'gankit\[inception\]'"):
            inception_features()
    else:
        pytest.skip("torch-fidelity is installed here; the missing-package path is not reachable")
