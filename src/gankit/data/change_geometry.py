"""A geometric change for the change family: ``rotate``, a turn by ``m · MAX_ANGLE``.

``rotate(x, m)`` turns each image about its centre by ``m · 45°`` (clockwise as
displayed), resampled bilinearly with the edge (the background) repeated outside the
image: the affine map a spatial transformer learns (:func:`gankit.stn.rotate`).

Its read-back, :func:`rotation_between`, measures the turn between any two images
without knowing ``m``: it turns ``before`` by every angle of a grid (−90° to +90° in
steps of 0.5°, searched every 5° first, then every 0.5° around the best) and keeps, per
image, the angle whose result is nearest ``after`` in mean squared error,
``â = argmin_a ||rotate(before, a) − after||²``, returned in units of the full turn,
``â / 45°``. On the operator's own outputs it gives ``m`` up to the grid's step (and up
to the symmetries of the image: a turned ``0`` looks much like itself); a model that
turns the wrong way reads negative. The grid stops at ±90° so that a digit turned by
180° (a 6 and a 9) is not read as a small turn.
"""

from __future__ import annotations

import torch

from gankit.stn import rotate

#: The turn at m = 1, in degrees.
MAX_ANGLE = 45.0
#: The read-back's search: every ``COARSE_STEP`` degrees within ±``SEARCH_RANGE``, then
#: every ``FINE_STEP`` within one coarse step of the best coarse angle of each image.
SEARCH_RANGE = 90.0
COARSE_STEP = 5.0
FINE_STEP = 0.5


def turn(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images in [-1, 1], each turned by ``m · MAX_ANGLE`` degrees (m (N,))."""
    return rotate(images, m.to(images.dtype) * MAX_ANGLE)


def _best_turn(before: torch.Tensor, after: torch.Tensor, candidates) -> torch.Tensor:
    """(N,) per image, the candidate angle (each a (N,) tensor of degrees) whose turn of
    ``before`` is nearest ``after`` in mean squared error; among equal fits the first."""
    best_error = torch.full((len(before),), float("inf"))
    best_angle = torch.zeros(len(before))
    for angle in candidates:
        error = (rotate(before, angle) - after).pow(2).flatten(1).mean(dim=1)
        closer = error < best_error
        best_error = torch.where(closer, error, best_error)
        best_angle = torch.where(closer, angle, best_angle)
    return best_angle


def rotation_between(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """(N,) the turn from ``before`` to ``after`` (both (N, C, H, W)) in units of
    ``MAX_ANGLE``: ``argmin_a ||rotate(before, a) − after||²`` over a grid of angles in
    ±90°, searched coarse (5°) then fine (0.5°)."""
    before, after = before.float(), after.float()
    n = len(before)

    def offsets(half_width: float, step: float) -> list[float]:
        # from the smallest turn out, so that among equal fits the smallest stays
        count = round(half_width / step)
        return sorted((k * step for k in range(-count, count + 1)), key=abs)

    coarse = _best_turn(
        before, after, (torch.full((n,), a) for a in offsets(SEARCH_RANGE, COARSE_STEP))
    )
    fine = _best_turn(
        before, after,
        ((coarse + a).clamp(-SEARCH_RANGE, SEARCH_RANGE) for a in offsets(COARSE_STEP, FINE_STEP)),
    )  # fmt: skip
    return fine / MAX_ANGLE
