"""Pictures and files of the change family: rows ``x, G(x, 0), G(x, 0.25), …, G(x, 1)``.

- previews during training and ``gankit explore RUN --what change``: held-out earlier
  items, one per row, changed by the amounts of the labelled columns (images as tiles,
  series as curves over the input in grey);
- ``gankit translate RUN --amount C``: image files changed by C, written as PNGs; on a
  series run, a ``.npy`` or ``.csv`` file of series changed by C, written as ``.npy`` or
  ``.csv`` (by ``--out``'s suffix) with a labelled plot beside it.

Series are drawn as labelled plots: one panel per input, the input x in black and
G(x, c) for c = 0.25, 0.5, 0.75, 1 in colours from light to dark, with axes, a legend and
a title.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.data import load_data
from gankit.errors import GankitError, check_finite
from gankit.explore.explore import Picture
from gankit.explore.pictures import pyplot
from gankit.explore.translate import read_inputs, save_planned
from gankit.files import atomic_write
from gankit.images import to_pil
from gankit.runs.load import Run

#: The columns of every change picture: c = 0, 0.25, 0.5, 0.75, 1.
AMOUNTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Rows of a preview.
PREVIEW_ROWS = 6
#: The curves of a series plot beside the input (G(x, 0) is x itself, ``identity``).
SERIES_AMOUNTS = (0.25, 0.5, 0.75, 1.0)
#: Panels per row of a series plot, and the series of a ``gankit translate`` plot.
SERIES_COLUMNS, SERIES_PLOTTED = 3, 6


def held_out_inputs(bundle, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` held-out earlier items (N, ...), chosen by ``generator``."""
    split = bundle.held_out
    index = torch.randperm(len(split), generator=generator)[: min(n, len(split))]
    return torch.stack([split[int(i)][0] for i in index])


def series_figure(path: Path, model, x: torch.Tensor, net, title: str) -> Path:
    """One panel per series of ``x`` (N, L): x, then G(x, c) for each c of
    ``SERIES_AMOUNTS``, against the point index, with a legend and a title."""
    plt = pyplot()
    curves = [("x (earlier)", x, "black")] + [
        (f"G(x, {c:g})", model.change(x, c, net), plt.cm.viridis(0.85 - 0.75 * c))
        for c in SERIES_AMOUNTS
    ]
    columns = min(SERIES_COLUMNS, len(x))
    rows = -(-len(x) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.4 * columns, 2.3 * rows + 0.6), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        if i >= len(x):
            ax.axis("off")
            continue
        for label, values, colour in curves:
            ax.plot(values[i].numpy(), label=label, color=colour, linewidth=1.0)
        ax.set_title(f"input {i}", fontsize=8)
        ax.set_xlabel("point", fontsize=7)
        ax.set_ylabel("value", fontsize=7)
        ax.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def change_figure(path: Path, model, x: torch.Tensor, net, title: str) -> Path:
    """One row per item of ``x``: the input, then G(x, c) for each c of ``AMOUNTS``
    (series: :func:`series_figure`)."""
    if x.dim() == 2:
        return series_figure(path, model, x, net, title)
    plt = pyplot()
    columns = [x] + [model.change(x, c, net) for c in AMOUNTS]
    names = ["x (earlier)"] + [f"G(x, c={c:g})" for c in AMOUNTS]
    fig, axes = plt.subplots(
        len(x), len(columns), figsize=(1.3 * len(columns), 1.1 * len(x) + 0.6), squeeze=False
    )
    for j, (column, name) in enumerate(zip(columns, names)):
        axes[0, j].set_title(name, fontsize=8)
        for i in range(len(x)):
            ax = axes[i, j]
            pixels = column[i].add(1).div(2).clamp(0, 1).permute(1, 2, 0).squeeze(-1)
            ax.imshow(pixels.numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"input {i}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class ChangePreviews:
    """Held-out earlier items changed by c = 0 … 1, every ``sample_every`` steps."""

    def __init__(self, model, bundle, seed: int) -> None:
        self.model, self.bundle = model, bundle

    def inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"x": held_out_inputs(self.bundle, min(n, PREVIEW_ROWS), generator)}

    def draw(self, step: int, inputs, net, paths, title: str) -> Path:
        path = paths.samples / f"step_{step:08d}.png"
        atomic_write(
            path,
            lambda tmp: change_figure(tmp, self.model, inputs["x"], net, f"{title}: change by c"),
            keep_suffix=True,
        )
        return path


def change_view(run: Run, options) -> list[Picture]:
    """``--what change``: ``--pairs`` held-out earlier items (rows), seeded by ``--seed``."""
    bundle = load_data(run.config["data"])
    x = held_out_inputs(bundle, options.pairs, torch.Generator().manual_seed(options.seed))
    title = f"{run.path.name}, step {run.step}: held-out earlier items changed by c"

    def write(path: Path) -> Path:
        return change_figure(path, run.model, x, run.sampler_net, title)

    return [Picture("change.png", write)]


def check_amount(amount: float | None) -> float:
    """``--amount`` for a change run: a number in [0, 1]."""
    if amount is None:
        raise GankitError("--amount is required for a change run: a number in [0, 1]")
    check_finite("--amount", amount)
    if not 0.0 <= amount <= 1.0:
        raise GankitError(f"--amount must be in [0, 1] (0: no change, 1: the most), got {amount}")
    return float(amount)


def change_files(
    run: Run,
    direction: str,
    input_path: str | Path,
    out_dir: str | Path,
    strips: bool = False,
    overwrite: bool = False,
    amount: float | None = None,
) -> list[Path]:
    """``gankit translate RUN --amount C``: the image files at ``input_path`` changed by
    C into ``out_dir`` as PNGs (with ``strips``: ``NAME_strip.png``, input | changed).

    On a series run, ``input_path`` is one ``.npy`` or ``.csv`` file of series and
    ``out_dir`` a file: :func:`change_series_file`.

    Raises:
        GankitError: ``amount`` missing or outside [0, 1], a direction other than AtoB,
            or an output that exists without ``overwrite``.
    """
    from gankit.images import image_grid

    amount = check_amount(amount)
    if direction != "AtoB":
        raise GankitError(f"--direction: a change run goes forward only (AtoB), got '{direction}'")
    model = run.model
    if len(model.data_shape) == 1:
        return change_series_file(run, Path(input_path).expanduser(), Path(out_dir), amount,
                                  overwrite)  # fmt: skip
    root = Path(input_path).expanduser()
    files, images = read_inputs(root, model.data_shape)
    changed = model.change(images, amount, run.sampler_net).clamp(-1.0, 1.0)
    out = Path(out_dir).expanduser()
    planned = {}
    for file, source, result in zip(files, images, changed):
        name = (file.relative_to(root) if root.is_dir() else Path(file.name)).with_suffix("")
        target = out / name.with_name(name.name + ".png")
        if target in planned:
            raise GankitError(f"two inputs would both be written to {target}; rename one of them")
        planned[target] = to_pil(result)
        if strips:
            scale = max(1, 32 // source.shape[-1])
            planned[out / name.with_name(name.name + "_strip.png")] = image_grid(
                [[source, result]], scale=scale
            )
    return save_planned(planned, overwrite, files)


class _Output:
    """A planned output file for :func:`save_planned`: ``save(path)`` writes it."""

    def __init__(self, save) -> None:
        self.save = save


def change_series_file(
    run: Run, input_path: Path, out: Path, amount: float, overwrite: bool = False
) -> list[Path]:
    """Series of a ``.npy`` (N, T) or ``.csv`` file (one series per row, as the
    ``series:`` source reads them) changed by ``amount``: written to ``out`` as ``.npy``
    (float32, (N, T)) or ``.csv`` (one series per row, no header) by its suffix, with
    ``out`` named ``.png`` beside it: the first ``SERIES_PLOTTED`` series as
    :func:`series_figure` draws them.

    Raises:
        GankitError: a folder or unreadable file as input, series of another length than
            the run's, an ``out`` of another suffix, or an output that exists without
            ``overwrite``.
    """
    import numpy as np

    from gankit.data.periods import SERIES_SUFFIXES, check_series, read_series_file

    where = "--input"
    if input_path.is_dir():
        raise GankitError(
            f"--input '{input_path}' is a folder; a series run changes one .npy (N, T) or "
            ".csv file of series (one series per row)"
        )
    values = read_series_file(input_path, where)
    check_series(values, str(input_path), where)
    length = run.model.data_shape[0]
    if values.shape[1] != length:
        raise GankitError(
            f"--input '{input_path}' holds series of {values.shape[1]} points; run "
            f"'{run.path.name}' changes series of {length}"
        )
    if out.suffix.lower() not in SERIES_SUFFIXES:
        raise GankitError(
            f"--out '{out}': a series run writes a .npy or .csv file (by the suffix); "
            "give --out NAME.npy or NAME.csv"
        )
    x = torch.from_numpy(values).float()
    changed = run.model.change(x, amount, run.sampler_net).numpy()
    if out.suffix.lower() == ".npy":
        data = _Output(lambda path: np.save(path, changed))
    else:
        data = _Output(lambda path: np.savetxt(path, changed, delimiter=",", fmt="%.9g"))
    title = f"{run.path.name}, step {run.step}: series of {input_path.name} changed by c"
    plotted = x[:SERIES_PLOTTED]
    plot = _Output(lambda path: series_figure(path, run.model, plotted, run.sampler_net, title))
    return save_planned({out: data, out.with_suffix(".png"): plot}, overwrite, [input_path])
