"""Embedded data sources: toys with their true modes, and scikit-learn's digits."""

from __future__ import annotations

import pytest
import torch

from gankit.data import NO_LABEL, TOY_DATASETS, list_datasets, load_dataset
from gankit.data.idx import fashion_mnist_files
from gankit.errors import GankitError


def test_ring_uses_pacgans_geometry():
    ring = load_dataset("ring", n_train=4000, n_test=100)
    assert ring.kind == "toy" and ring.shape == (2,) and ring.modes.shape == (8, 2)
    assert ring.modes.norm(dim=1).allclose(torch.ones(8))
    x, y = ring.train.tensors
    assert (x - ring.modes[y]).std().item() == pytest.approx(0.01, rel=0.1)


def test_grid_uses_pacgans_geometry():
    grid = load_dataset("grid")
    assert grid.modes.shape == (25, 2) and grid.mode_std == 0.05
    assert sorted(set(grid.modes[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_toy_parameters_and_determinism():
    ring = load_dataset("ring", n_modes=5, radius=2.0, std=0.1, n_train=100, seed=3)
    again = load_dataset("ring", n_modes=5, radius=2.0, std=0.1, n_train=100, seed=3)
    assert ring.modes.shape == (5, 2) and ring.modes.norm(dim=1).allclose(torch.full((5,), 2.0))
    assert torch.equal(ring.train.tensors[0], again.train.tensors[0])


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_every_toy_loads(name):
    bundle = load_dataset(name, n_train=200, n_test=50)
    assert bundle.shape == (2,) and len(bundle.train) == 200 and len(bundle.test) == 50
    assert torch.isfinite(bundle.train.tensors[0]).all()
    assert bundle.train.tensors[0].abs().max() < 6


def test_digits_split_and_range():
    digits = load_dataset("digits")
    x, y = digits.train.tensors
    assert digits.shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.train) + len(digits.test) == 1797 and len(digits.test) == 360
    assert x.min() == -1.0 and x.max() == 1.0
    assert torch.bincount(y).min() > 100  # stratified
    again = load_dataset("digits")
    assert torch.equal(again.test.tensors[0], digits.test.tensors[0])  # a fixed split


@pytest.mark.parametrize("resolution", [16, 32])
def test_digits_upscaling(resolution):
    digits = load_dataset("digits", resolution=resolution)
    assert digits.train.tensors[0].shape[1:] == (1, resolution, resolution)
    assert digits.train.tensors[0].abs().max() <= 1.0


def test_digits_subset_and_errors():
    few = load_dataset("digits", digits=[0, 1])
    assert set(few.train.tensors[1].tolist()) == {0, 1}
    with pytest.raises(GankitError, match="resolution 12 is not supported; valid: 8, 16, 28"):
        load_dataset("digits", resolution=12)
    with pytest.raises(GankitError, match="unknown key 'size' in data \\(digits\\)"):
        load_dataset("digits", size=16)


def test_unlabelled_toys_use_no_label():
    spiral = load_dataset("spiral", n_train=10, n_test=2)
    assert (spiral.train.tensors[1] == NO_LABEL).all() and spiral.num_classes is None


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(
        GankitError, match="unknown dataset 'imagenet'; valid: cifar10, devils-dictionary, digits"
    ):
        load_dataset("imagenet")
    assert "folder:PATH" in list_datasets()


@pytest.mark.needs_data("fashion-mnist")
def test_real_fashion_mnist():
    """The real files (Debian's /usr/share/datasets/fashion-mnist where installed)."""
    fashion = load_dataset("fashion-mnist", limit=500)
    assert fashion.shape == (1, 28, 28) and fashion.num_classes == 10
    assert len(fashion.train) == 500 and len(fashion.test) == 500
    assert str(fashion_mnist_files()) in fashion.info
