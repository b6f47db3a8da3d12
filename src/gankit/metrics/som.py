r"""Self-organising maps (Kohonen 1982) as a map of what a generator covers.

A SOM is a grid of units, each with a weight vector ``w_u`` in the data's space. It
learns by competition: each input ``x`` (in random order) is won by its best-matching
unit ``c = argmin_u ||x − w_u||``, and every unit moves toward ``x`` by its
neighbourhood's weight around the winner,

``w_u(t+1) = w_u(t) + η(t) h_{c,u}(t) (x − w_u(t))``,
``h_{c,u}(t) = exp(−||r_c − r_u||² / (2 σ(t)²))``,

where ``r_u`` is unit u's place on the grid and both the rate and the neighbourhood
shrink, ``η(t) = η_0 / (1 + 2t/T)`` and ``σ(t) = σ_0 / (1 + 2t/T)`` (MiniSom's
``asymptotic_decay``): first the whole map unfolds over the data, then each unit settles
on its own part of it. Neighbouring units end up with neighbouring weights, so the grid
is a 2-D picture of the data.

Fitted to real data (the evaluator's features for images, the raw points for 2-D data,
standardised with the real data's mean and spread), it shows a generator's coverage:
map real and generated samples onto the grid; the **SOM coverage** is the share of the
units that real data occupies which generated samples reach too.

The SOM is MiniSom's (a small numpy implementation, MIT).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from gankit.errors import GankitError, check_int

#: The smallest grid side: a 1-wide grid is a line, with no 2-D neighbourhood to show.
MIN_SIDE = 2
MAX_SIDE = 64
DEFAULT_GRID = (10, 10)
#: Training steps: one input each; 20 passes over 1,000 points by default.
DEFAULT_ITERATIONS = 20_000
MAX_ITERATIONS = 10_000_000


def check_grid(grid: tuple[int, int]) -> tuple[int, int]:
    """Refuse a grid under 2x2 or over 64x64; returns it as a tuple of ints.

    Raises:
        GankitError: naming the grid and the valid sides.
    """
    if len(grid) != 2 or any(not isinstance(side, int) or isinstance(side, bool) for side in grid):
        raise GankitError(f"a SOM grid is two integers such as 10x10; got {grid!r}")
    rows, columns = grid
    if min(rows, columns) < MIN_SIDE or max(rows, columns) > MAX_SIDE:
        raise GankitError(
            f"a SOM grid must be at least {MIN_SIDE}x{MIN_SIDE} and at most "
            f"{MAX_SIDE}x{MAX_SIDE}; got {rows}x{columns}"
        )
    return rows, columns


def parse_grid(text: str) -> tuple[int, int]:
    """``"10x10"`` (or ``"10,10"``) -> (10, 10), checked by :func:`check_grid`."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        grid = tuple(int(part) for part in parts)
    except ValueError:
        raise GankitError(f"--grid must be ROWSxCOLUMNS such as 10x10; got '{text}'") from None
    return check_grid(grid)


@dataclass
class SelfOrganisingMap:
    """A trained SOM and the standardisation of the data it was fitted to.

    Attributes:
        som: the MiniSom, its weights (rows, columns, d).
        mean, scale: (d,) the real data's mean and standard deviation; inputs are
            mapped as ``(x − mean) / scale`` before finding their unit.
        errors: the quantisation error on the fitted data after each training chunk
            (``steps``: the steps done by then), to see it fall.
    """

    som: object
    mean: np.ndarray
    scale: np.ndarray
    steps: list[int]
    errors: list[float]

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.som.get_weights().shape[:2])

    def standardise(self, x) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64).reshape(len(x), -1) - self.mean) / self.scale

    def hits(self, x) -> np.ndarray:
        """(rows, columns) counts: how many of the (n, d) inputs each unit wins."""
        return self.som.activation_response(self.standardise(x))

    def quantisation_error(self, x) -> float:
        """The mean distance from each (standardised) input to its unit's weights."""
        return float(self.som.quantization_error(self.standardise(x)))

    def u_matrix(self) -> np.ndarray:
        """(rows, columns): each unit's mean distance to its neighbours' weights,
        scaled to [0, 1]; high values are borders between clusters."""
        return self.som.distance_map(scaling="mean")


def fit_som(
    real,
    grid: tuple[int, int] = DEFAULT_GRID,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    sigma: float | None = None,
    learning_rate: float = 0.5,
    seed: int = 0,
    checkpoints: int = 10,
) -> SelfOrganisingMap:
    """A SOM fitted to ``real`` (n, d) (or (n, ...), flattened), standardised first.

    Weights start on the plane of the data's first two principal components (MiniSom's
    ``pca_weights_init``); inputs come in a seeded random order. ``sigma`` (σ_0) is a
    quarter of the grid's longer side by default, so the first updates move the whole
    map. The quantisation error is recorded ``checkpoints`` times during training.
    """
    from minisom import MiniSom

    rows, columns = check_grid(tuple(grid))
    check_int("SOM iterations", iterations, 1, MAX_ITERATIONS)
    data = np.asarray(real, dtype=np.float64).reshape(len(real), -1)
    if len(data) < 2:
        raise GankitError(f"a SOM needs at least 2 real items, got {len(data)}")
    mean = data.mean(axis=0)
    scale = data.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature (a blank pixel) stays 0, not NaN
    data = (data - mean) / scale
    sigma = max(rows, columns) / 4 if sigma is None else sigma
    som = MiniSom(
        rows, columns, data.shape[1], sigma=sigma, learning_rate=learning_rate,
        neighborhood_function="gaussian", random_seed=seed,
    )  # fmt: skip
    som.pca_weights_init(data)
    order = np.random.default_rng(seed).integers(0, len(data), size=iterations)
    steps, errors = [0], [float(som.quantization_error(data))]
    bounds = np.linspace(0, iterations, checkpoints + 1).astype(int)
    for start, stop in itertools.pairwise(bounds):
        # MiniSom's own update with the decay laid out over all ``iterations``
        for t in range(start, stop):
            x = data[order[t]]
            som.update(x, som.winner(x), t, iterations)
        steps.append(int(stop))
        errors.append(float(som.quantization_error(data)))
    return SelfOrganisingMap(som, mean, scale, steps, errors)


def coverage(real_hits: np.ndarray, fake_hits: np.ndarray) -> float:
    """The share of units with real hits that generated samples reach too."""
    occupied = real_hits > 0
    return float((occupied & (fake_hits > 0)).sum() / max(int(occupied.sum()), 1))


def som_coverage(real, fake, grid: tuple[int, int] = DEFAULT_GRID, seed: int = 0) -> dict:
    """``{"som_coverage": share}``: a SOM fitted to ``real`` (n, d), then the share of
    the units real data occupies that ``fake`` (m, d) reaches. Use as many generated
    samples as real ones: a unit reached by chance counts as covered."""
    som = fit_som(real, grid, seed=seed)
    return {"som_coverage": coverage(som.hits(real), som.hits(fake))}
