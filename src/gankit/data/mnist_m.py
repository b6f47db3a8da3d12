"""``digits-m`` and ``fashion-m``: two-domain data after the MNIST-M recipe.

Ganin et al. (2016), "Domain-Adversarial Training of Neural Networks": each grey image
x in [0, 1] is blended with a random patch p of a colour photo as ``|x - p|`` per
channel, so strokes invert the photo and the background keeps it. Ganin cut the patches
from BSDS500; we cut them from the two photos scikit-learn ships
(``load_sample_images``), offline. The blended set is domain B of an adaptation from
the grey one (``digits`` or ``fashion-mnist``).
"""

from __future__ import annotations

from gankit.data.base import DataBundle, check_resolution, check_seed, tensor_split
from gankit.data.photos import blend_with_photos, split_generators


def _blend_bundle(grey: DataBundle, name: str, seed: int) -> DataBundle:
    """``grey`` with every image blended; labels, split and class names kept."""
    train_generator, test_generator = split_generators(seed, 2)

    def blend(split, generator):
        x, y = split.tensors
        return tensor_split(blend_with_photos(x, generator), y)

    return DataBundle(
        name=name,
        kind="image",
        train=blend(grey.train, train_generator),
        test=blend(grey.test, test_generator) if grey.test is not None else None,
        shape=(3, *grey.shape[1:]),
        num_classes=grey.num_classes,
        class_names=grey.class_names,
        info=f"{grey.info}; blended with patches of scikit-learn's sample photos, seed {seed}",
    )


def digits_m(*, resolution: int = 16, seed: int = 0) -> DataBundle:
    """scikit-learn's digits blended MNIST-M style: (3, R, R) colour images in [-1, 1].

    Labels and the fixed train/test split are those of ``digits`` at the same resolution.

    Args:
        resolution: side R, and the size of the photo patches; 16 by default so the
            photo texture has room to show.
        seed: chooses the patches; train and test draw independent positions.
    """
    from gankit.data.digits import digits

    check_resolution(resolution, "data (digits-m)")
    check_seed(seed, "data (digits-m)")
    return _blend_bundle(digits(resolution=resolution), "digits-m", seed)


def fashion_m(
    *,
    data_dir: str | None = None,
    resolution: int = 28,
    download: bool = True,
    limit: int | None = None,
    seed: int = 0,
) -> DataBundle:
    """Fashion-MNIST blended MNIST-M style: (3, R, R) colour images in [-1, 1], 10 classes.

    Args:
        data_dir: a folder with the four IDX files; see :func:`gankit.data.idx.fashion_mnist`.
        resolution: side R, and the size of the photo patches; 28 is native.
        download: fetch the files into the user cache when found nowhere.
        limit: keep only the first N images of each split.
        seed: chooses the patches; train and test draw independent positions.
    """
    from gankit.data.idx import fashion_mnist

    check_resolution(resolution, "data (fashion-m)")
    check_seed(seed, "data (fashion-m)")
    grey = fashion_mnist(data_dir=data_dir, resolution=resolution, download=download, limit=limit)
    return _blend_bundle(grey, "fashion-m", seed)
