"""Image metrics on features, and the evaluator classifier that extracts them.

The digits evaluator comes from conftest's session fixture ``evaluator_cache``: trained
once (a few seconds) into a temporary ``$GANKIT_CACHE``, shared with test_evaluate.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.metrics import features as features_module
from gankit.metrics.features import (
    evaluator_path,
    load_evaluator,
    train_evaluator,
)
from gankit.metrics.frechet import (
    density_coverage,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)


# ------------------------------------------------------------------ metrics on features
def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root, as reference."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(loc=0.5, size=(500, 16)) @ rng.normal(size=(16, 16)) + 2.0
    expected = scipy_frechet(a, b)
    ours = frechet_distance(torch.from_numpy(a), torch.from_numpy(b))
    assert ours == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(torch.from_numpy(b), torch.from_numpy(a)) == pytest.approx(
        expected, rel=1e-6
    )
    # float32 input is computed in float64 too
    assert frechet_distance(torch.from_numpy(a).float(), torch.from_numpy(b).float()) == (
        pytest.approx(expected, rel=1e-5)
    )
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(0, abs=1e-6)


def test_frechet_distance_with_fewer_samples_than_features_matches_scipy_sqrtm():
    """Few samples in many dimensions (n <= F / 2) take the N x M route."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 64)) @ rng.normal(size=(64, 64))
    b = rng.normal(loc=0.3, size=(25, 64)) @ rng.normal(size=(64, 64))
    expected = scipy_frechet(a, b)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        expected, rel=1e-6
    )
    assert frechet_distance(torch.from_numpy(b), torch.from_numpy(a)) == pytest.approx(
        expected, rel=1e-6
    )


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=gen), torch.randn(400, 8, generator=gen)
    same_mean, same_std = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted_mean, shifted_std = kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert same_std > 0 and abs(same_mean) < 3 * same_std
    assert shifted_mean > 10 * same_std and shifted_mean > 10 * shifted_std
    # subset_size is clipped to the smaller set; seeded subsets repeat
    assert kernel_inception_distance(a, b[:50], subsets=3) == kernel_inception_distance(
        a, b[:50], subsets=3
    )


def test_inception_score_hand_values():
    one_hot = torch.eye(10).repeat(10, 1)  # confident, spread evenly over 10 classes
    assert inception_score(one_hot) == (pytest.approx(10.0), pytest.approx(0.0, abs=1e-9))
    constant = torch.full((100, 10), 0.1)  # the same prediction for every sample
    assert inception_score(constant)[0] == pytest.approx(1.0)
    # two confident classes, alternating: IS = 2 in each of 3 splits
    assert inception_score(torch.eye(2).repeat(6, 1), splits=3) == (
        pytest.approx(2.0),
        pytest.approx(0.0, abs=1e-9),
    )


def test_precision_recall_density_coverage_on_hand_sets():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(200, 4, generator=gen)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    density, coverage = density_coverage(real, real.clone(), k=5)
    # each real ball holds its centre and its 5 nearest neighbours: density = 6/5
    assert coverage == 1.0 and density == pytest.approx(1.2, abs=0.01)
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    assert density_coverage(real, far) == (0.0, 0.0)
    # half the generated samples on the data, half far away
    mixed = torch.cat([real[:100], far[:100]])
    assert precision_recall(real, mixed)[0] == pytest.approx(0.5)


def test_manifold_metrics_by_hand_on_a_line():
    # real 0, 1, 2, 3 with k=1: every real radius is 1; generated 0.5 and 10: radii 9.5
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [10.0]])
    # precision: 0.5 is within 1 of a real point, 10 is not; recall: 0..3 within 9.5 of 0.5
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)
    # density: 0.5 lies in the balls of 0 and 1 -> 2 / (k=1 * 2 samples); coverage 2 of 4
    assert density_coverage(real, fake, k=1) == (1.0, 0.5)


def test_metric_input_errors_name_the_shapes():
    with pytest.raises(GankitError, match=r"same F > 0; got \(10, 3\) and \(10, 4\)"):
        frechet_distance(torch.zeros(10, 3), torch.zeros(10, 4))
    with pytest.raises(GankitError, match=r"got \(10,\) and \(10, 4\)"):
        kernel_inception_distance(torch.zeros(10), torch.zeros(10, 4))
    with pytest.raises(GankitError, match=r"at least 2 samples .*got \(1, 3\) and \(5, 3\)"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(GankitError, match=r"at least 4 samples per set for k=3 .*\(3, 2\)"):
        precision_recall(torch.zeros(3, 2), torch.zeros(10, 2))
    with pytest.raises(GankitError, match=r"at least 6 and 1 samples .*got \(10, 2\) and \(0, 2\)"):
        density_coverage(torch.zeros(10, 2), torch.zeros(0, 2))
    with pytest.raises(GankitError, match="NaN or infinite"):
        frechet_distance(torch.full((5, 2), float("nan")), torch.zeros(5, 2))
    with pytest.raises(GankitError, match=r"N >= splits \(10\) >= 1; got \(5, 3\)"):
        inception_score(torch.full((5, 3), 1 / 3))
    with pytest.raises(GankitError, match="rows summing to 1"):
        inception_score(torch.randn(20, 3))


# ------------------------------------------------------------------ evaluator classifier
@pytest.fixture
def digits_evaluator(evaluator_cache):
    return load_evaluator("digits")


def test_digits_evaluator_is_accurate_and_cached(digits_evaluator, monkeypatch):
    evaluator = digits_evaluator
    assert evaluator.test_accuracy >= 0.9
    assert evaluator.meta["epochs"] > 0 and evaluator.meta["train_seconds"] > 0
    assert evaluator.input_shape == (1, 8, 8) and not evaluator.training

    path = evaluator_path("digits")
    assert path.name == "digits-8px-cnn-seed0.pt"
    modified = path.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("the cached evaluator was retrained")

    monkeypatch.setattr(features_module, "train_evaluator", no_training)
    again = load_evaluator("digits", train_if_missing=True)
    assert path.stat().st_mtime_ns == modified
    assert again.test_accuracy == evaluator.test_accuracy

    images = load_dataset("digits").test.tensors[0]
    feats, probs = again.features_and_probs(images)
    assert feats.shape == (len(images), 128) and probs.shape == (len(images), 10)
    assert torch.equal(feats, evaluator.features(images))
    assert torch.allclose(probs.sum(dim=1), torch.ones(len(images)))
    # batching (and batch norm in eval mode) does not change an image's features
    again.batch_size = 7
    assert torch.allclose(again.features(images), feats, atol=1e-5)


def test_evaluator_training_is_seeded_private_and_keyed_by_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = train_evaluator("digits", epochs=1, progress=False)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG is untouched
    second = train_evaluator("digits", epochs=1, progress=False)
    assert all(torch.equal(first.state_dict()[k], v) for k, v in second.state_dict().items())

    at_16 = train_evaluator("digits", resolution=16, epochs=1, progress=False)
    assert at_16.input_shape == (1, 16, 16)
    assert evaluator_path("digits", resolution=16).name == "digits-16px-cnn-seed0.pt"
    assert load_evaluator("digits", resolution=16).meta == at_16.meta
    assert at_16.features(torch.zeros(3, 1, 16, 16)).shape == (3, 128)


def test_fd_floor_is_small_and_grows_as_samples_degrade(digits_evaluator):
    evaluator = digits_evaluator
    digits = load_dataset("digits")
    train_x, train_y = digits.train.tensors
    reference = evaluator.features(digits.test.tensors[0])
    # the floor: real training images against the real test split
    floor = frechet_distance(evaluator.features(train_x), reference)

    # (a) mode dropping: "generated" = the training images of the first 10, 7, 4, 1 classes
    by_classes = [
        frechet_distance(evaluator.features(train_x[train_y < kept]), reference)
        for kept in (10, 7, 4, 1)
    ]
    # (b) quality: Gaussian pixel noise of growing std
    gen = torch.Generator().manual_seed(0)
    by_noise = []
    for std in (0.0, 0.1, 0.3, 0.6, 1.0):
        noisy = (train_x + std * torch.randn(train_x.shape, generator=gen)).clamp(-1, 1)
        by_noise.append(frechet_distance(evaluator.features(noisy), reference))

    assert floor == by_classes[0] == by_noise[0]
    assert all(a < b for a, b in itertools.pairwise(by_classes)), by_classes
    assert all(a < b for a, b in itertools.pairwise(by_noise)), by_noise
    assert floor < 0.1 * by_classes[-1] and floor < 0.1 * by_noise[-1], (floor, by_noise)


@pytest.mark.filterwarnings("ignore:Matrix is singular:scipy.linalg.LinAlgWarning")
def test_frechet_distance_matches_scipy_sqrtm_on_evaluator_features(digits_evaluator):
    """Real features: ReLU outputs (a third are 0), 128 wide, singular covariances when
    there are fewer samples than features."""
    digits = load_dataset("digits")
    train_x, train_y = digits.train.tensors
    train = digits_evaluator.features(train_x)
    test = digits_evaluator.features(digits.test.tensors[0])
    for a, b in [(train, test), (train[train_y < 5], test), (train[:100], test[:100])]:
        expected = scipy_frechet(a.double().numpy(), b.double().numpy())
        assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_evaluator_errors(digits_evaluator, tmp_path, monkeypatch):
    with pytest.raises(GankitError, match="reads 8 px images of shape \\(1, 8, 8\\), got images "
                       "of shape \\(1, 16, 16\\); for 16 px train one with: "
                       "gankit evaluator train digits --resolution 16"):  # fmt: skip
        digits_evaluator.features(torch.zeros(2, 1, 16, 16))
    with pytest.raises(GankitError, match=r"reads \(N, C, H, W\) images of shape \(N, 1, 8, 8\)"):
        digits_evaluator.features(torch.zeros(2, 64))

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    with pytest.raises(
        GankitError,
        match="train it once with: gankit evaluator train fashion-mnist --resolution 28",
    ):
        load_evaluator("fashion-mnist")
    with pytest.raises(GankitError, match="gankit evaluator train digits --resolution 16 --seed 3"):
        load_evaluator("digits", resolution=16, seed=3)
    with pytest.raises(GankitError, match="no evaluator for dataset 'folder:x'; valid: cifar10"):
        load_evaluator("folder:x")
    with pytest.raises(GankitError, match="resolution 12 is not supported; valid: 8, 16"):
        evaluator_path("digits", resolution=12)
    with pytest.raises(GankitError, match="epochs must be a positive integer, got 0"):
        train_evaluator("digits", epochs=0)

    damaged = evaluator_path("digits")
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(GankitError, match="cannot be used .*retrain it with: gankit evaluator"):
        load_evaluator("digits")
