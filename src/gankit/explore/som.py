"""``gankit som``: a self-organising map of the real data, with a run's samples on it.

The SOM (:mod:`gankit.metrics.som`) is fitted to held-out real data: the evaluator's
features for images, the raw points for 2-D data. Real and generated samples are then
mapped onto its grid; the picture shows the U-matrix, both hit maps side by side, and
the units that real data occupies and the generator never reaches, with the quantisation
error falling over training beside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gankit.data import DataBundle
from gankit.data.base import take
from gankit.errors import GankitError, check_int
from gankit.explore.explore import Picture, write_pictures
from gankit.explore.pictures import pyplot, writing
from gankit.files import atomic_write
from gankit.metrics.som import DEFAULT_GRID, DEFAULT_ITERATIONS, MAX_ITERATIONS, coverage, fit_som

MAX_N = 20_000


@dataclass
class SomMap:
    """What ``gankit som`` measured and wrote.

    Attributes:
        grid: (rows, columns); n: real and generated items mapped, each.
        space: what the SOM was fitted in (``raw points``, ``evaluator features``).
        coverage: share of the real-occupied units that samples reach.
        occupied, missed: how many units real data occupies, and how many of those no
            generated sample reaches.
        errors: the quantisation error over training, first to last.
    """

    run: str
    grid: tuple[int, int]
    n: int
    space: str
    coverage: float
    occupied: int
    missed: int
    errors: list[float]
    written: list[Path] = field(default_factory=list)

    def summary(self) -> list[str]:
        rows, columns = self.grid
        return [
            f"SOM {rows}x{columns} fitted to {self.n} real items ({self.space}); quantisation "
            f"error {self.errors[0]:.3f} -> {self.errors[-1]:.3f} over training",
            f"real data occupies {self.occupied} units; the samples reach "
            f"{self.occupied - self.missed} of them: SOM coverage {self.coverage:.3f}",
            *(f"wrote {path}" for path in self.written),
        ]


def _space(run, bundle: DataBundle, real: torch.Tensor, fake: torch.Tensor, data_dir):
    """(real, fake) as (n, d) arrays in the SOM's space, and its name."""
    if bundle.kind != "image":
        return real.flatten(1).numpy(), fake.flatten(1).numpy(), "raw points"
    from gankit.metrics.features import load_evaluator

    evaluator = load_evaluator(bundle.name, resolution=bundle.shape[-1], data_dir=data_dir)
    return (
        evaluator.features(real).numpy(),
        evaluator.features(fake).numpy(),
        f"the {bundle.name} evaluator's features",
    )


def _draw(path: Path, result: SomMap, som, real_hits, fake_hits) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 5, figsize=(19, 3.9), dpi=100)
    occupied = real_hits > 0
    missed = occupied & (fake_hits == 0)
    panels = (
        (som.u_matrix(), "U-matrix: mean distance to the\nneighbours' weights", "bone_r"),
        (real_hits, f"real hits ({result.n} items)", "Blues"),
        (fake_hits, f"generated hits ({result.n} samples)", "Oranges"),
    )
    for ax, (values, title, colours) in zip(axes, panels):
        image = ax.imshow(values, cmap=colours, origin="lower")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    # 0: no real data, 1: real data the samples reach, 2: real data they never reach
    states = ("#eeeeee", "#2ca02c", "#d62728")
    axes[3].imshow(occupied.astype(int) + missed, cmap=ListedColormap(states), vmin=0, vmax=2,
                   origin="lower")  # fmt: skip
    axes[3].set_title(f"units real data occupies:\n{result.missed} never reached", fontsize=9)
    names = ("no real data", "reached by samples", "never reached")
    axes[3].legend(
        handles=[Patch(color=c, label=name) for c, name in zip(states, names)],
        fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0),
    )  # fmt: skip
    for ax in axes[:4]:
        ax.set_xlabel("SOM column")
        ax.set_ylabel("SOM row")
    axes[4].plot(som.steps, som.errors, marker="o")
    axes[4].set_xlabel("training step (one input each)")
    axes[4].set_ylabel("quantisation error (standardised)")
    axes[4].set_title("quantisation error falls as it trains", fontsize=9)
    axes[4].grid(alpha=0.3)
    rows, columns = result.grid
    fig.suptitle(
        f"{result.run}: SOM {rows}x{columns} of {result.space}; SOM coverage "
        f"{result.coverage:.3f}", fontsize=10,
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


#: The names of the pictures ``--save`` keeps in ``RUN/explore/``.
SOM_PICTURE = re.compile(r"som_\d+x\d+_seed\d+\.png")


def som_picture_name(grid: tuple[int, int], seed: int) -> str:
    """The name ``--save`` gives the picture in ``RUN/explore/``: ``som_10x10_seed0.png``
    (``gankit report`` shows the pictures so named in a section of their own)."""
    return f"som_{grid[0]}x{grid[1]}_seed{seed}.png"


def som_map(
    run,
    bundle: DataBundle,
    out: Path | None,
    *,
    grid: tuple[int, int] = DEFAULT_GRID,
    n: int = 1000,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = 0,
    data_dir: str | None = None,
    overwrite: bool = False,
    save: bool = False,
) -> SomMap:
    """Fit a SOM to ``n`` held-out real items of ``bundle``, map ``n`` of the loaded
    ``run``'s samples onto it, and draw the picture into ``out`` (a PNG; None: none)
    and, with ``save``, into the run's ``explore/`` as :func:`som_picture_name`, where
    ``gankit report`` shows it.

    Raises:
        GankitError: a grid under 2x2, ``n`` or ``iterations`` out of range, a run that
            draws no samples, an existing ``out`` without ``overwrite``.
    """
    from gankit.metrics.som import check_grid

    grid = check_grid(tuple(grid))
    check_int("--n", n, 2, MAX_N)
    check_int("--iterations", iterations, 1, MAX_ITERATIONS)
    if run.model.task != "sample":
        raise GankitError(
            f"run '{run.path.name}' has task {run.model.task}; gankit som maps the samples of "
            "a sample-task run (a GAN or VAE)"
        )
    if out is not None:
        out = Path(out)
        if out.exists() and (not out.is_file() or not overwrite):
            raise GankitError(f"--out '{out}' exists; pass --overwrite to replace it")
    split = bundle.test if bundle.test is not None else bundle.train
    real = take(split, n, seed)[0]
    with torch.no_grad():
        fake = run.sample(len(real), seed=seed).float().cpu()
    real_points, fake_points, space = _space(run, bundle, real, fake, data_dir)
    som = fit_som(real_points, grid, iterations=iterations, seed=seed)
    real_hits, fake_hits = som.hits(real_points), som.hits(fake_points)
    occupied = int((real_hits > 0).sum())
    missed = int(((real_hits > 0) & (fake_hits == 0)).sum())
    result = SomMap(
        run.path.name, grid, len(real), space, coverage(real_hits, fake_hits), occupied,
        missed, som.errors,
    )  # fmt: skip
    if out is not None:
        with writing(out):
            atomic_write(out, lambda tmp: _draw(tmp, result, som, real_hits, fake_hits))
        result.written.append(out)
    if save:

        def draw(path: Path) -> None:
            _draw(path, result, som, real_hits, fake_hits)

        picture = Picture(som_picture_name(grid, seed), draw)
        result.written += write_pictures([picture], run.paths.explore, overwrite)
    return result
