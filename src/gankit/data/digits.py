"""scikit-learn's 8x8 handwritten digits: 1797 images, 10 classes, embedded.

This is gankit's default data: it ships inside scikit-learn, so training works
offline on a laptop in minutes.
"""

from __future__ import annotations

import torch

from gankit.data.base import DataBundle, resize_images, tensor_split
from gankit.errors import GankitError

#: Fraction of each class held out as the fixed test split.
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def digits(
    *, resolution: int = 8, digits: tuple[int, ...] | None = None, channels: int = 1
) -> DataBundle:
    """The digits as (C, R, R) images in [-1, 1], with a fixed stratified 80/20 split.

    Args:
        resolution: 8 (native), or 16/28/32/64 upscaled with bilinear interpolation.
        digits: keep only these classes (labels are kept as the digit values).
        channels: 1 (grey), or 3: the grey image in each of R, G, B, to pair with an RGB
            domain such as ``digits-m``.
    """
    if channels not in (1, 3):
        raise GankitError(f"data (digits): channels must be 1 or 3, got {channels}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    raw = load_digits()
    images = torch.from_numpy(raw.images).float().div(16.0).mul(2.0).sub(1.0).unsqueeze(1)
    labels = torch.from_numpy(raw.target).long()
    # The split is fixed (seeded, stratified) and does not follow the run seed, so
    # every run and every evaluator sees the same test images.
    train_idx, test_idx = train_test_split(
        torch.arange(len(labels)).numpy(),
        test_size=TEST_FRACTION,
        random_state=SPLIT_SEED,
        stratify=labels.numpy(),
    )
    images = resize_images(images, resolution, "data (digits)").expand(-1, channels, -1, -1)
    if digits is not None:
        bad = [d for d in digits if d not in range(10)]
        if bad or not digits:
            raise GankitError(f"data (digits): 'digits' must list values in 0..9, got {digits}")
        keep = torch.isin(labels, torch.tensor(list(digits)))
        train_idx = [i for i in train_idx if keep[i]]
        test_idx = [i for i in test_idx if keep[i]]
    train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    return DataBundle(
        name="digits",
        kind="image",
        train=tensor_split(images[train_idx], labels[train_idx]),
        test=tensor_split(images[test_idx], labels[test_idx]),
        shape=(channels, resolution, resolution),
        num_classes=10,
        class_names=[str(d) for d in range(10)],
        info=f"scikit-learn digits, {len(train_idx)} train / {len(test_idx)} test, {resolution}px",
    )
