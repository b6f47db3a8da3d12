r"""The spatial transformer (Jaderberg et al. 2015): a learned geometric change.

A small localisation network reads the image and gives the six parameters θ of an
affine map; the image is then resampled through it:

``θ = f_loc(x) ∈ R^{2×3}``, ``(x_s, y_s)ᵀ = θ (x_t, y_t, 1)ᵀ`` for every target pixel
``(x_t, y_t)`` in normalised coordinates [-1, 1], and ``V(x_t, y_t) = Σ_{n,m} U_{nm}
max(0, 1 − |x_s − m|) max(0, 1 − |y_s − n|)`` (bilinear sampling: ``F.affine_grid`` then
``F.grid_sample``). Everything is differentiable, so θ is learned from the task's loss
alone (a classifier's cross-entropy): the network learns to undo the distortions that
hurt it.

θ starts at the identity ``[[1, 0, 0], [0, 1, 0]]`` (the last layer's weights are zero,
its bias the identity), so an untrained transformer passes the image through.

This module is meant for ``gankit.nn`` beside the other shared blocks; it is a file of its
own for now because ``nn.py`` is being reworked.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class SpatialTransformer(nn.Module):
    """(N, C, H, W) -> (N, C, H, W): the image resampled through a predicted affine map.

    Args:
        channels: C of the images.
        width: channels of the localisation network's first conv layer (the second has
            twice as many).
        hidden: width of its fully connected layer.
        padding: what is sampled outside the image: ``border`` repeats the edge (a
            digit's background), ``zeros`` reads 0.
    """

    def __init__(
        self, channels: int, *, width: int = 8, hidden: int = 32, padding: str = "border"
    ) -> None:
        super().__init__()
        self.padding = padding
        self.localisation = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(8 * width, hidden), nn.ReLU(),
        )  # fmt: skip
        self.theta = nn.Linear(hidden, 6)
        # start at the identity: the classifier first sees the image as it is
        nn.init.zeros_(self.theta.weight)
        with torch.no_grad():
            self.theta.bias.copy_(torch.tensor(IDENTITY))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> θ (N, 2, 3), mapping output coordinates to input ones."""
        return self.theta(self.localisation(x)).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(self.transform(x), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, padding_mode=self.padding, align_corners=False)


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
    radians = angle * math.pi / 180
    # θ maps output coordinates to input ones: the inverse of the turn and the scaling
    cos, sin = torch.cos(radians) / size, torch.sin(radians) / size
    theta = torch.stack(
        [torch.stack([cos, sin, move[:, 0]], 1), torch.stack([-sin, cos, move[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False), angle
