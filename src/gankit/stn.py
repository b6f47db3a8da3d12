r"""The spatial transformer (Jaderberg et al. 2015): a learned geometric change.

A small localisation network reads the image and gives the six parameters θ of an
affine map; the image is then resampled through it:

``θ = f_loc(x) ∈ R^{2×3}``, ``(x_s, y_s)ᵀ = θ (x_t, y_t, 1)ᵀ`` for every target pixel
``(x_t, y_t)`` in normalised coordinates [-1, 1], and ``V(x_t, y_t) = Σ_{n,m} U_{nm}
max(0, 1 − |x_s − m|) max(0, 1 − |y_s − n|)`` (bilinear sampling: ``F.affine_grid`` then
``F.grid_sample``). Everything is differentiable, so θ is learned from the task's loss
alone (a classifier's cross-entropy): the network learns to undo the distortions that
hurt it.

The module itself, :class:`gankit.nn.SpatialTransformer`, lives in ``gankit.nn`` beside
the other shared blocks (and is re-exported here); this module keeps what the
measurements around it need: the rotation read from θ, and the seeded distortion of
``digits-distorted``.
"""

from __future__ import annotations

import math

import torch

from gankit.nn import IDENTITY_THETA, SpatialTransformer, resample

__all__ = [
    "IDENTITY_THETA",
    "SpatialTransformer",
    "affine_theta",
    "random_affine",
    "rotate",
    "rotation_degrees",
]


def rotation_degrees(theta: torch.Tensor) -> torch.Tensor:
    """θ (N, 2, 3) -> (N,) the rotation of its linear part in degrees,
    ``atan2(θ_10 − θ_01, θ_00 + θ_11)`` (exact for a rotation times a scale, the
    nearest rotation otherwise). In the sense of :func:`random_affine`'s angles: the θ
    that undoes its turn by ``a`` has rotation ``+a``."""
    angle = torch.atan2(theta[:, 1, 0] - theta[:, 0, 1], theta[:, 0, 0] + theta[:, 1, 1])
    return angle * 180.0 / math.pi


def random_affine(
    x: torch.Tensor,
    seed: int,
    degrees: float = 60.0,
    scale: tuple[float, float] = (0.8, 1.2),
    shift: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distort each (N, C, H, W) image by its own affine map, drawn from ``seed``: a
    rotation uniform in ±``degrees``, a scale uniform in ``scale``, a shift uniform in
    ±``shift`` of the side (the spirit of Jaderberg et al.'s "RTS" digits); the edge is
    repeated outside the image. Returns the images and the applied rotations (N,) in
    degrees (positive: clockwise as displayed, rows growing downward)."""
    generator = torch.Generator().manual_seed(seed)
    n = len(x)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * degrees
    size = scale[0] + torch.rand(n, generator=generator) * (scale[1] - scale[0])
    move = (torch.rand(n, 2, generator=generator) * 2 - 1) * shift * 2
    return resample(x, affine_theta(angle, size, move), "border"), angle


def affine_theta(
    degrees: torch.Tensor, size: torch.Tensor | None = None, move: torch.Tensor | None = None
) -> torch.Tensor:
    """θ (N, 2, 3) that turns each image by ``degrees`` (N,) (positive: clockwise as
    displayed), scales it by ``size`` (N,) (default 1) and shifts it by ``move`` (N, 2)
    (default 0) in normalised coordinates: θ maps output coordinates to input ones, so
    its linear part is the inverse of the turn and the scaling,
    ``[[cos a, sin a], [−sin a, cos a]] / s``."""
    radians = degrees * math.pi / 180
    size = torch.ones_like(degrees) if size is None else size
    move = torch.zeros(len(degrees), 2) if move is None else move
    cos, sin = torch.cos(radians) / size, torch.sin(radians) / size
    return torch.stack(
        [torch.stack([cos, sin, move[:, 0]], 1), torch.stack([-sin, cos, move[:, 1]], 1)], 1
    )


def rotate(x: torch.Tensor, degrees: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """(N, C, H, W) images each turned by its own ``degrees`` (N,) about the centre
    (positive: clockwise as displayed, as :func:`random_affine`); ``padding`` is what is
    read outside the image (``border`` repeats the edge)."""
    return resample(x, affine_theta(degrees.to(x.dtype)), padding)
