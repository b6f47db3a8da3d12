"""Toy 2-D distributions: mixtures with known modes, and curved manifolds.

``ring`` and ``grid`` follow PacGAN's geometry (Lin et al. 2018): 8 Gaussians of
std 0.01 on the unit circle, and 25 Gaussians of std 0.05 at {-4,-2,0,2,4}². Their
true centres and std travel with the data (``DataBundle.modes`` / ``mode_std``) so
mode-coverage metrics need no other input.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from gankit.conventions import MAX_SEED
from gankit.data.base import DataBundle, check_seed, tensor_split
from gankit.errors import GankitError, check_finite, check_int

#: The most points a split may hold: 10 million 2-D points are 80 MB of float32, and the
#: presets use 100,000.
MAX_POINTS = 10_000_000
#: The most modes of a mixture: a 100 x 100 grid.
MAX_MODES = 10_000


def _mixture(
    centres: torch.Tensor, std: float, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` points from an equal-weight Gaussian mixture; labels are mode indices."""
    labels = torch.randint(len(centres), (n,), generator=generator)
    points = centres[labels] + std * torch.randn(n, centres.shape[1], generator=generator)
    return points, labels


def _check_sizes(n_train: int, n_test: int, seed: int, std: float = 1.0) -> None:
    check_int("data: n_train", n_train, 1, MAX_POINTS)
    check_int("data: n_test", n_test, 0, MAX_POINTS)
    check_seed(seed, "data")
    check_finite("data: std", std, 0.0, above=True)


def _mixture_bundle(
    name: str, centres: torch.Tensor, std: float, n_train: int, n_test: int, seed: int
) -> DataBundle:
    _check_sizes(n_train, n_test, seed, std)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train = _mixture(centres, std, n_train, generator)
    x_test, y_test = _mixture(centres, std, n_test, generator)
    return DataBundle(
        name=name,
        kind="toy",
        train=tensor_split(x_train, y_train),
        test=tensor_split(x_test, y_test),
        shape=(2,),
        num_classes=len(centres),
        modes=centres,
        mode_std=std,
        info=f"{len(centres)}-mode Gaussian mixture, std {std}",
    )


def ring_centres(n_modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    """(n_modes, 2) centres evenly spaced on a circle, the first at angle 0."""
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_centres(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """(side², 2) centres on a square lattice centred on the origin."""
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


def ring(
    *,
    n_modes: int = 8,
    radius: float = 1.0,
    std: float = 0.01,
    n_train: int = 100_000,
    n_test: int = 10_000,
    seed: int = 0,
) -> DataBundle:
    """Gaussians on a circle (PacGAN's 2D-ring: 8 modes, radius 1, std 0.01)."""
    check_int("data: n_modes", n_modes, 1, MAX_MODES)
    check_finite("data: radius", radius)
    return _mixture_bundle("ring", ring_centres(n_modes, radius), std, n_train, n_test, seed)


def grid(
    *,
    side: int = 5,
    spacing: float = 2.0,
    std: float = 0.05,
    n_train: int = 100_000,
    n_test: int = 10_000,
    seed: int = 0,
) -> DataBundle:
    """Gaussians on a lattice (PacGAN's 2D-grid: 5x5 at {-4,-2,0,2,4}², std 0.05)."""
    check_int("data: side", side, 1, math.isqrt(MAX_MODES))
    check_finite("data: spacing", spacing)
    return _mixture_bundle("grid", grid_centres(side, spacing), std, n_train, n_test, seed)


#: The most centres of a ``points`` mixture (points clicked onto ``gankit lab``'s canvas).
MAX_POINTS_CENTRES = 256


def points(
    *,
    centres: list[list[float]],
    std: float = 0.05,
    n_train: int = 20_000,
    n_test: int = 2_000,
    seed: int = 0,
) -> DataBundle:
    """Gaussians of ``std`` around given 2-D centres (the points clicked in ``gankit lab``).

    Like ``ring`` and ``grid``, the centres travel with the data, so mode coverage
    scores a run on them; and they are the config, so a saved run reloads its data.
    """
    if not isinstance(centres, list) or not 1 <= len(centres) <= MAX_POINTS_CENTRES:
        raise GankitError(
            f"data: centres must be a list of 1 to {MAX_POINTS_CENTRES} points [x, y], got "
            f"{len(centres) if isinstance(centres, list) else type(centres).__name__}"
        )
    for centre in centres:
        if len(centre) != 2:
            raise GankitError(f"data: each centre is a point [x, y], got {centre}")
        for value in centre:
            check_finite("data: centres", value)
    tensor = torch.tensor(centres, dtype=torch.float32)
    return _mixture_bundle("points", tensor, std, n_train, n_test, seed)


def spiral(
    *,
    variant: Literal["spiral", "swissroll"] = "spiral",
    noise: float = 0.05,
    turns: float = 2.0,
    n_train: int = 100_000,
    n_test: int = 10_000,
    seed: int = 0,
) -> DataBundle:
    """A 2-D spiral (Archimedean), or scikit-learn's swiss roll seen from above.

    Both are scaled to fit roughly in [-1, 1]²; they have no modes, so they are
    scored with distances between sample sets rather than mode coverage.
    """
    _check_sizes(n_train, n_test, seed)
    check_finite("data: noise", noise, 0.0)
    check_finite("data: turns", turns, 0.0, above=True)
    rng = np.random.default_rng(seed)

    def draw(n: int) -> torch.Tensor:
        if variant == "swissroll":
            from sklearn.datasets import make_swiss_roll

            points, _ = make_swiss_roll(n, noise=0.0, random_state=rng.integers(2**31))
            points = points[:, [0, 2]] / 12.0
        else:
            t = np.sqrt(rng.uniform(0.0, 1.0, n)) * turns * 2 * np.pi
            points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * np.pi)
        points = points + noise * rng.standard_normal(points.shape)
        return torch.from_numpy(points).float()

    return DataBundle(
        name=variant,
        kind="toy",
        train=tensor_split(draw(n_train)),
        test=tensor_split(draw(n_test)),
        shape=(2,),
        info=f"{variant}, noise {noise}",
    )


def moons(
    *,
    noise: float = 0.05,
    rotation: float = 0.0,
    n_train: int = 100_000,
    n_test: int = 10_000,
    seed: int = 0,
) -> DataBundle:
    """scikit-learn's two interleaving half circles, centred; labels say which moon.

    ``rotation`` (degrees, anticlockwise about the centre) makes a shifted domain with
    the same labels: the classic toy problem of domain adaptation.
    """
    from sklearn.datasets import make_moons

    _check_sizes(n_train, n_test, seed)
    check_finite("data: noise", noise, 0.0)
    check_finite("data: rotation", rotation)
    angle = math.radians(rotation)
    turn = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])

    def draw(n: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        # modulo: the test split's seed + 1 stays in numpy's range
        random_state = (seed + offset) % (MAX_SEED + 1)
        points, labels = make_moons(n, noise=noise, random_state=random_state)
        points = (points - np.array([0.5, 0.25])) @ turn
        return torch.from_numpy(points).float(), torch.from_numpy(labels)

    return DataBundle(
        name="moons",
        kind="toy",
        train=tensor_split(*draw(n_train, 0)),
        test=tensor_split(*draw(n_test, 1)),
        shape=(2,),
        num_classes=2,
        class_names=["upper", "lower"],
        info=f"two moons, noise {noise}, rotated {rotation:g}°",
    )
