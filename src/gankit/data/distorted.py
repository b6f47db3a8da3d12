"""``digits-distorted``: scikit-learn's digits, each turned, scaled and shifted.

Every image of both splits is resampled through its own affine map, drawn from ``seed``
(in the spirit of the "RTS" digits of Jaderberg et al. 2015, the spatial transformer's
paper): a rotation uniform in ±``degrees``, a scale uniform in [``min_scale``,
``max_scale``] and a shift uniform in ±``shift`` of the side, the edge (the background)
repeated outside the image. The applied rotations (degrees, positive clockwise as
displayed) are kept in ``extra`` as ``train_rotation`` and ``test_rotation``, for
scoring what a spatial transformer learned; they never reach a model.
"""

from __future__ import annotations

import math

from gankit.data.base import DataBundle, check_seed, tensor_split
from gankit.data.digits import digits
from gankit.errors import GankitError
from gankit.stn import random_affine


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not math.isfinite(value) or not low <= value <= high:
        raise GankitError(
            f"data (digits-distorted): {name} must be a finite number in [{low:g}, {high:g}], "
            f"got {value}"
        )


def digits_distorted(
    *,
    resolution: int = 16,
    degrees: float = 60.0,
    min_scale: float = 0.8,
    max_scale: float = 1.2,
    shift: float = 0.15,
    seed: int = 0,
) -> DataBundle:
    """The digits at ``resolution``, each distorted by its own seeded affine map.

    Args:
        degrees: the largest rotation, in [0, 180].
        min_scale, max_scale: the range of the scale, within [0.25, 4].
        shift: the largest shift as a share of the side, in [0, 1].
        seed: draws the maps (the test split's from ``seed + 1``).
    """
    _check_range("degrees", degrees, 0.0, 180.0)
    _check_range("min_scale", min_scale, 0.25, 4.0)
    _check_range("max_scale", max_scale, min_scale, 4.0)
    _check_range("shift", shift, 0.0, 1.0)
    check_seed(seed, "data (digits-distorted)")
    plain = digits(resolution=resolution)
    splits, rotations = {}, {}
    for offset, split in enumerate(("train", "test")):
        x, y = getattr(plain, split).tensors
        distorted, angles = random_affine(x, seed + offset, degrees, (min_scale, max_scale), shift)
        splits[split], rotations[f"{split}_rotation"] = tensor_split(distorted, y), angles
    return DataBundle(
        name="digits-distorted", kind="image", train=splits["train"], test=splits["test"],
        shape=plain.shape, num_classes=10, class_names=plain.class_names,
        info=f"scikit-learn digits at {resolution}px, turned up to ±{degrees:g}°, scaled "
        f"{min_scale:g}-{max_scale:g}, shifted up to {shift:g} of the side (seed {seed})",
        extra=rotations,
    )  # fmt: skip
