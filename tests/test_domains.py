"""Two-domain sources: MNIST-M-style blends, unpaired folders, synthetic and real segmentation.

Folder sources read tiny files written under ``tmp_path``; nothing is downloaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import NO_LABEL, list_datasets, load_dataset
from gankit.data.digits import digits
from gankit.data.mnist_m import digits_m
from gankit.data.photos import blend_with_photos, random_patches
from gankit.data.segshift import segshift
from gankit.errors import GankitError


# --------------------------------------------------------------------------- MNIST-M style
def test_mnist_m_blend_is_the_absolute_difference():
    # A background pixel (0 in [0, 1]) shows the patch; a stroke pixel (1) inverts it.
    patch = random_patches(2, 8, torch.Generator().manual_seed(5)) * 2 - 1
    background = blend_with_photos(-torch.ones(2, 1, 8, 8), torch.Generator().manual_seed(5))
    stroke = blend_with_photos(torch.ones(2, 1, 8, 8), torch.Generator().manual_seed(5))
    assert torch.allclose(background, patch, atol=1e-6)
    assert torch.allclose(stroke, -patch, atol=1e-6)


def test_digits_m_is_coloured_seeded_and_keeps_the_digits_labels():
    first, again, other = digits_m(seed=0), digits_m(seed=0), digits_m(seed=1)
    grey = digits(resolution=16)
    x, y = first.train.tensors
    assert first.shape == (3, 16, 16) and x.shape[1:] == (3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert first.kind == "image" and first.num_classes == 10
    assert torch.equal(y, grey.train.tensors[1])
    assert torch.equal(first.test.tensors[1], grey.test.tensors[1])
    assert torch.equal(x, again.train.tensors[0])
    assert torch.equal(first.test.tensors[0], again.test.tensors[0])
    assert not torch.equal(x, other.train.tensors[0])
    # Colour: the channels of a grey digit would be equal.
    assert (x[:, 0] - x[:, 1]).abs().mean() > 0.05
    assert (x[:, 1] - x[:, 2]).abs().mean() > 0.05


@pytest.mark.needs_data("fashion-mnist")
def test_fashion_m_from_the_real_files():
    fashion = load_dataset("fashion-m", limit=100)
    grey = load_dataset("fashion-mnist", limit=100)
    x, y = fashion.train.tensors
    assert fashion.shape == (3, 28, 28) and x.shape == (100, 3, 28, 28)
    assert torch.equal(y, grey.train.tensors[1]) and fashion.class_names[0] == "T-shirt/top"
    assert x.min() >= -1.0 and x.max() <= 1.0 and len(fashion.test) == 100


def test_new_sources_are_registered():
    small = load_dataset("digits-m", resolution=8)
    assert small.name == "digits-m" and small.train.tensors[0].shape[1:] == (3, 8, 8)
    names = list_datasets()
    for name in ("digits-m", "fashion-m", "segshift", "unpaired:PATH", "segfolder:PATH"):
        assert name in names
    with pytest.raises(GankitError, match="data \\(digits-m\\): resolution 12"):
        load_dataset("digits-m", resolution=12)


# --------------------------------------------------------------------------- unpaired
def write_image(path: Path, colour: tuple[int, int, int], size=(12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_unpaired_reads_the_cyclegan_layout(tmp_path):
    for i in range(3):
        write_image(tmp_path / "trainA" / f"{i}.png", (250, 0, 0))
    write_image(tmp_path / "testA" / "0.png", (250, 0, 0))
    for i in range(2):
        write_image(tmp_path / "trainB" / f"{i}.jpg", (0, 0, 250))

    horses = load_dataset(f"unpaired:{tmp_path}", resolution=8)
    zebras = horses.domain_b
    assert horses.kind == "image" and horses.shape == (3, 8, 8)
    assert len(horses.train) == 3 and len(horses.test) == 1
    assert len(zebras.train) == 2 and zebras.test is None and "no testB folder" in zebras.info
    x_a, y_a = horses.train.tensors
    assert (y_a == NO_LABEL).all() and horses.num_classes is None
    assert x_a[:, 0].mean() > 0.9 and zebras.train.tensors[0][:, 2].mean() > 0.9
    grey = load_dataset(f"unpaired:{tmp_path}", resolution=8, channels=1)
    assert grey.domain_b.train.tensors[0].shape[1:] == (1, 8, 8)


def test_unpaired_names_a_missing_folder(tmp_path):
    write_image(tmp_path / "trainA" / "0.png", (0, 0, 0))
    with pytest.raises(GankitError, match="missing folder 'trainB'") as caught:
        load_dataset(f"unpaired:{tmp_path}")
    assert "\n" not in str(caught.value) and "PATH/trainA, PATH/trainB" in str(caught.value)


# --------------------------------------------------------------------------- segshift
@pytest.fixture(scope="module")
def scenes():
    return segshift(resolution=16, n_train=200, n_test=50, seed=0)


def test_segshift_shapes_and_labels(scenes):
    target = scenes.domain_b
    for bundle in (scenes, target):
        x, y = bundle.train.tensors
        assert bundle.kind == "segmentation" and bundle.shape == (3, 16, 16)
        assert x.shape == (200, 3, 16, 16) and y.shape == (200, 16, 16) and y.dtype == torch.int64
        assert x.min() >= -1.0 and x.max() <= 1.0 and len(bundle.test) == 50
        assert set(y.unique().tolist()) == set(range(5))  # every class is drawn
    assert scenes.class_names == ["sky", "road", "building", "vegetation", "object"]
    # Other layouts, not the source's scenes restyled.
    assert not torch.equal(scenes.train.tensors[1], target.train.tensors[1])


def test_segshift_domains_differ_in_pixel_statistics(scenes):
    def class_stats(bundle, c):
        x, y = bundle.train.tensors
        pixels = x.permute(0, 2, 3, 1)[y == c]  # (P, 3)
        return pixels.mean(0), pixels.std(0)

    colour_shifts = []
    for c in range(5):
        source_mean, source_std = class_stats(scenes, c)
        target_mean, target_std = class_stats(scenes.domain_b, c)
        assert source_std.max() == 0  # flat colours
        assert target_std.mean() > 0.1  # textures, exposure, noise
        colour_shifts.append((source_mean - target_mean).abs().max())
    # Another palette: the road stays greyish, the other classes change colour.
    assert sum(colour_shifts) / 5 > 0.3


def test_segshift_is_seeded_and_checks_its_options(scenes):
    again = segshift(resolution=16, n_train=200, n_test=50, seed=0)
    other = segshift(resolution=16, n_train=20, n_test=0, seed=1)
    assert torch.equal(again.domain_b.train.tensors[0], scenes.domain_b.train.tensors[0])
    assert torch.equal(again.test.tensors[1], scenes.test.tensors[1])
    assert not torch.equal(other.train.tensors[1], scenes.train.tensors[1][:20])
    assert other.test is None
    # Each split has its own generator: dropping the test split leaves train unchanged.
    no_test = segshift(resolution=16, n_train=200, n_test=0, seed=0)
    assert torch.equal(no_test.domain_b.train.tensors[0], scenes.domain_b.train.tensors[0])
    three = load_dataset("segshift", resolution=8, num_classes=3, n_train=50, n_test=10)
    assert set(three.train.tensors[1].unique().tolist()) == {0, 1, 2}
    for bad in (1, 6):
        with pytest.raises(GankitError, match="num_classes must be in 2..5"):
            segshift(num_classes=bad)


# --------------------------------------------------------------------------- segfolder
def write_pair(root: Path, stem: str, labels: np.ndarray, image_size=None) -> None:
    """An image whose left half is red and right half blue, and its index-PNG labels."""
    height, width = labels.shape if image_size is None else image_size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2, 0] = 255
    pixels[:, width // 2 :, 2] = 255
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(root / "images" / f"{stem}.jpg")
    label_image = Image.fromarray(labels.astype(np.uint8), mode="L").convert("P")
    label_image.save(root / "labels" / f"{stem}.png")


def halves(left: int, right: int, size: int = 16) -> np.ndarray:
    labels = np.full((size, size), right)
    labels[:, : size // 2] = left
    return labels


def test_segfolder_reads_images_and_index_labels(tmp_path):
    write_pair(tmp_path, "a", halves(0, 1))
    write_pair(tmp_path, "b", halves(2, 255))
    write_pair(tmp_path / "test", "c", halves(1, 0))
    data = load_dataset(f"segfolder:{tmp_path}", num_classes=3, resolution=8)
    x, y = data.train.tensors
    assert data.kind == "segmentation" and data.num_classes == 3 and len(data.test) == 1
    assert x.shape == (2, 3, 8, 8) and y.shape == (2, 8, 8) and y.dtype == torch.int64
    # Nearest for labels: the halves stay exact, 255 becomes NO_LABEL, and they line
    # up with the red (left) and blue (right) halves of the bilinear images.
    assert torch.equal(y[0], torch.from_numpy(halves(0, 1, 8)))
    assert torch.equal(y[1], torch.from_numpy(halves(2, NO_LABEL, 8)))
    assert x[0, 0, :, :3].min() > 0.5 and x[0, 2, :, 5:].min() > 0.5
    assert torch.equal(data.test.tensors[1][0], torch.from_numpy(halves(1, 0, 8)))
    with pytest.raises(GankitError, match="test_fraction 0.5 is ambiguous"):
        load_dataset(f"segfolder:{tmp_path}", num_classes=3, test_fraction=0.5)
    shutil.rmtree(tmp_path / "test")
    split = load_dataset(f"segfolder:{tmp_path}", num_classes=3, test_fraction=0.5)
    assert len(split.train) == 1 and len(split.test) == 1


def test_segfolder_names_the_bad_file(tmp_path):
    write_pair(tmp_path, "a", halves(0, 3))
    with pytest.raises(GankitError, match="a.png has values \\[3\\] outside 0..2"):
        load_dataset(f"segfolder:{tmp_path}", num_classes=3)
    write_pair(tmp_path, "a", halves(0, 1), image_size=(16, 20))
    with pytest.raises(GankitError, match="a.png is 16x16 but its image is 20x16"):
        load_dataset(f"segfolder:{tmp_path}", num_classes=3)
    write_pair(tmp_path, "a", halves(0, 1))
    Image.new("RGB", (16, 16)).save(tmp_path / "images" / "b.png")
    with pytest.raises(GankitError, match="missing label file .*labels/b.png"):
        load_dataset(f"segfolder:{tmp_path}", num_classes=3)
    with pytest.raises(GankitError, match="num_classes is required"):
        load_dataset(f"segfolder:{tmp_path}")
