"""Pictures and files of the change family: rows ``x, G(x, 0), G(x, 0.25), …, G(x, 1)``.

- previews during training and ``gankit explore RUN --what change``: held-out earlier
  items, one per row, changed by the amounts of the labelled columns (images as tiles,
  series as curves over the input in grey);
- ``gankit translate RUN --amount C``: image files changed by C, written as PNGs.
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


def held_out_inputs(bundle, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` held-out earlier items (N, ...), chosen by ``generator``."""
    split = bundle.held_out
    index = torch.randperm(len(split), generator=generator)[: min(n, len(split))]
    return torch.stack([split[int(i)][0] for i in index])


def change_figure(path: Path, model, x: torch.Tensor, net, title: str) -> Path:
    """One row per item of ``x``: the input, then G(x, c) for each c of ``AMOUNTS``."""
    plt = pyplot()
    columns = [x] + [model.change(x, c, net) for c in AMOUNTS]
    names = ["x (earlier)"] + [f"G(x, c={c:g})" for c in AMOUNTS]
    images = x.dim() == 4
    fig, axes = plt.subplots(
        len(x), len(columns), figsize=(1.3 * len(columns), 1.1 * len(x) + 0.6), squeeze=False
    )
    for j, (column, name) in enumerate(zip(columns, names)):
        axes[0, j].set_title(name, fontsize=8)
        for i in range(len(x)):
            ax = axes[i, j]
            if images:
                pixels = column[i].add(1).div(2).clamp(0, 1).permute(1, 2, 0).squeeze(-1)
                ax.imshow(pixels.numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
            else:
                ax.plot(x[i].numpy(), color="0.7", linewidth=0.8)
                ax.plot(column[i].numpy(), color="C0", linewidth=1.0)
                ax.set_ylim(-1.6, 1.6)
                ax.tick_params(labelsize=5)
            if j == 0:
                ax.set_ylabel(f"input {i}", fontsize=7)
    fig.suptitle(title + ("" if images else "  (grey: the input x)"), fontsize=9)
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

    Raises:
        GankitError: ``amount`` missing or outside [0, 1], a direction other than AtoB,
            a run on series, or an output that exists without ``overwrite``.
    """
    from gankit.images import image_grid

    amount = check_amount(amount)
    if direction != "AtoB":
        raise GankitError(f"--direction: a change run goes forward only (AtoB), got '{direction}'")
    model = run.model
    if len(model.data_shape) != 3:
        raise GankitError(
            f"run '{run.path.name}' changes 1-D series; translate reads image files (use "
            "gankit explore --what change for its pictures)"
        )
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
