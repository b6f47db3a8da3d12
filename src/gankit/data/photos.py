"""Random patches of scikit-learn's two sample photos, and the MNIST-M blend.

Shared by the sources that texture images with real photos: ``digits-m`` and
``fashion-m`` (:mod:`gankit.data.mnist_m`) and ``segshift``'s target domain
(:mod:`gankit.data.segshift`). The photos ship with scikit-learn, so nothing is
downloaded.
"""

from __future__ import annotations

import functools

import numpy as np
import torch


def split_generators(seed: int, count: int) -> list[torch.Generator]:
    """``count`` independent generators derived from ``seed``, one per split and domain,
    so the size of one split never changes the images of another."""
    parent = torch.Generator().manual_seed(seed)
    seeds = torch.randint(2**62, (count,), generator=parent)
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


@functools.cache
def sample_photos() -> torch.Tensor:
    """scikit-learn's two sample photos (china.jpg, flower.jpg) as (2, 427, 640, 3) uint8."""
    from sklearn.datasets import load_sample_images

    return torch.from_numpy(np.stack(load_sample_images().images))


def patch_corners(
    shape: tuple[int, ...], size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (photo, top, left) corners of ``size`` x ``size`` patches, each of ``shape``."""
    count, height, width, _ = sample_photos().shape
    return (
        torch.randint(count, shape, generator=generator),
        torch.randint(height - size + 1, shape, generator=generator),
        torch.randint(width - size + 1, shape, generator=generator),
    )


def cut_patches(
    which: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int
) -> torch.Tensor:
    """Read (N, size, size) pixels of the sample photos in one advanced-indexing gather.

    Pixel (i, j) of image k comes from photo ``which[k, i, j]`` at row ``top[k, i, j] + i``
    and column ``left[k, i, j] + j``; the three index tensors broadcast to (N, size, size).

    Returns:
        (N, 3, size, size) float in [0, 1].
    """
    offsets = torch.arange(size)
    pixels = sample_photos()[which, top + offsets[:, None], left + offsets[None, :]]
    return pixels.permute(0, 3, 1, 2).contiguous().float().div_(255.0)


def random_patches(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` square crops of the sample photos, each of a random photo at a random place.

    Returns:
        (n, 3, size, size) float in [0, 1].
    """
    return cut_patches(*patch_corners((n, 1, 1), size, generator), size)


def blend_with_photos(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The MNIST-M blend ``|x - p|`` per channel, in [0, 1] pixel space.

    Args:
        images: (N, 1, R, R) grey images in [-1, 1].

    Returns:
        (N, 3, R, R) colour images in [-1, 1].
    """
    n, _, size, _ = images.shape
    blended = random_patches(n, size, generator)
    blended.sub_(images.add(1.0).div(2.0)).abs_()
    return blended.mul_(2.0).sub_(1.0)
