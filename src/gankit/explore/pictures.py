"""Sample grids (Pillow, through :mod:`gankit.images`), toy scatter plots and loss
curves (matplotlib)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from gankit.errors import GankitError
from gankit.files import atomic_save, atomic_write, atomic_write_text, current_umask, read_jsonl
from gankit.images import image_grid, to_pil

#: The most samples a grid picture shows (``--n`` of ``explore --what grid`` and of
#: ``gankit sample`` to a picture): 32 x 32.
MAX_GRID = 1024


@contextmanager
def writing(path: Path, option: str = "--out") -> Iterator[None]:
    """Report a file that cannot be written (a read-only folder, a parent that is a
    file, a full disk) as a one-line error naming it and the option that chose it."""
    try:
        yield
    except OSError as err:
        reason = err.strerror or str(err)
        raise GankitError(
            f"cannot write {option} '{path}': {reason}; choose a path in a writable folder"
        ) from None


def write_sample_file(path: Path, chunks: Iterable[torch.Tensor], n: int, title: str = "") -> Path:
    """Write ``n`` samples, given in chunks of (k, ...), as ``.npy``, ``.pt`` or a picture.

    A ``.npy`` file is written chunk by chunk into a memory-mapped array, so it never
    sits in memory whole; ``.pt`` and pictures hold all the samples at once.
    """
    path = Path(path)
    if path.suffix not in (".npy", ".pt") and n > MAX_GRID:
        raise GankitError(
            f"--n {n} is more than the {MAX_GRID} samples a picture shows; write them to a "
            ".npy or .pt file instead"
        )
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npy":

            def fill(tmp: Path) -> None:
                array = None
                start = 0
                for chunk in chunks:
                    if array is None:
                        shape = (n, *chunk.shape[1:])
                        array = np.lib.format.open_memmap(tmp, "w+", np.float32, shape)
                    array[start : start + len(chunk)] = chunk.numpy()
                    start += len(chunk)
                array.flush()
                del array  # closes the memory map

            atomic_write(path, fill)
            return path
        samples = torch.cat(list(chunks))
        if path.suffix == ".pt":
            atomic_save(samples, path)
            return path
        return save_samples(path, samples, title=title)


#: The files of a sample folder: ``000000.png``, ``000001.png``, ... and ``samples.json``.
SAMPLE_PNG = re.compile(r"^\d{6,}\.png$")
SAMPLE_FOLDER_META = "samples.json"


def write_sample_folder(
    folder: Path, chunks: Iterable[torch.Tensor], meta: dict, overwrite: bool = False
) -> Path:
    """Write samples as one PNG each (``000000.png``, ...) plus ``samples.json``: the
    folder layout that torch-fidelity, clean-fid and ``gankit fid`` read.

    The PNGs go to a hidden folder beside ``folder``, renamed into place when all are
    written, so an interrupted run never leaves a half-filled folder under the final
    name. An existing folder is refused; with ``overwrite`` it is replaced only if it
    holds nothing but a sample folder's own files.
    """
    folder = Path(folder)
    if folder.exists():
        if not folder.is_dir():
            raise GankitError(f"--out '{folder}' is a file; a sample folder needs a new path")
        others = [p.name for p in folder.iterdir() if not _sample_folder_file(p.name)]
        if not overwrite:
            raise GankitError(
                f"--out '{folder}' already exists; pass --overwrite or choose another folder"
            )
        if others:
            raise GankitError(
                f"--out '{folder}' holds '{others[0]}', which is not a sample PNG; "
                "--overwrite replaces only sample folders: choose another folder"
            )
    with writing(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it 0700
        try:
            index = 0
            for chunk in chunks:
                if chunk.dim() != 4 or chunk.shape[1] not in (1, 3):
                    raise GankitError(
                        f"a sample folder holds images, and this run draws samples of shape "
                        f"{tuple(chunk.shape[1:])}; write them to a .npy or .pt file instead"
                    )
                for image in chunk:
                    to_pil(image).save(staging / f"{index:06d}.png")
                    index += 1
            atomic_write_text(staging / SAMPLE_FOLDER_META, json.dumps({**meta, "n": index}))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    return folder


def _sample_folder_file(name: str) -> bool:
    return bool(SAMPLE_PNG.match(name)) or name == SAMPLE_FOLDER_META


def pyplot():
    """matplotlib's pyplot on the Agg backend: pictures are files, never windows. Text
    is drawn as it is written: run names and logged keys come from run folders anyone
    can hand over, and a ``$`` in one would start mathtext, whose parser failed the
    figure on ``$\\foo$``."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def save_points(
    path: Path, points: torch.Tensor, real: torch.Tensor | None = None, title: str = ""
) -> None:
    """Scatter (N, 2) generated points over (M, 2) real points."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=4, c="#1f77b4", alpha=0.4, label="real")
    ax.scatter(points[:, 0], points[:, 1], s=4, c="#d62728", alpha=0.6, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_codes(
    path: Path, codes: torch.Tensor, labels: torch.Tensor, prior: torch.Tensor, title: str = ""
) -> None:
    """Scatter (N, D) codes in their first two dimensions, coloured by their (N,) labels
    (grey where -1), over (M, D) prior draws in light grey."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    ax.scatter(prior[:, 0], prior[:, 1], s=3, c="#cccccc", alpha=0.6, label="prior p(z)")
    cmap = plt.get_cmap("tab10")
    for label in sorted(set(labels.tolist())):
        at = labels == label
        colour = "#555555" if label < 0 else cmap(label % 10)
        name = "no label" if label < 0 else str(label)
        ax.scatter(codes[at, 0], codes[at, 1], s=4, color=colour, alpha=0.8, label=name)
    ax.set_aspect("equal")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, markerscale=2)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_samples(
    path: Path, samples: torch.Tensor, real: torch.Tensor | None = None, title: str = ""
) -> Path:
    """Write samples as a picture: a grid for images, a scatter for 2-D points."""
    path = Path(path)

    def draw(tmp: Path) -> None:
        if samples.dim() == 4:
            scale = max(1, 128 // samples.shape[-1])
            image_grid(samples, scale=scale, title=title).save(tmp)
        else:
            save_points(tmp, samples.cpu(), None if real is None else real.cpu(), title)

    atomic_write(path, draw, keep_suffix=True)
    return path


def read_metrics(path: Path) -> list[dict]:
    """The rows of ``metrics.jsonl``; a line cut short by a killed run is skipped."""
    return read_jsonl(path)


def _is_number(value: object) -> bool:
    """A logged number that can be plotted: not null, not a bool, finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: Logged numbers that are bookkeeping, not curves.
NOT_CURVES = frozenset({"step", "time", "eval_seconds"})


def curve_panels(rows: list[dict], overlay: bool = False) -> list[tuple[str, list[str]]]:
    """The panels of a curve figure as (title, keys): the losses together on one panel
    (they share a scale), then one panel per other number, so that numbers of different
    scales (a mode count, a distance, an accuracy) are never flattened onto one axis.
    With ``overlay`` (several runs on one figure) every loss gets its own panel too."""
    # numbers only: a value that was not finite is logged as null (see files.finite_json)
    keys = sorted({k for row in rows for k, v in row.items() if _is_number(v)} - NOT_CURVES)
    loss_keys = [k for k in keys if k.startswith("loss")]
    panels = [] if overlay or not loss_keys else [("losses", loss_keys)]
    panels += [(k, [k]) for k in keys if overlay or k not in loss_keys]
    return panels


def curve_figure(runs: dict[str, list[dict]], title: str = ""):
    """Small multiples of every logged number against the step, one panel per scale.

    Args:
        runs: run name -> the rows of its ``metrics.jsonl``. One run: its losses share
            a panel, each in its own colour. Several runs: one colour per run, the same
            on every panel, and a legend of runs.
        title: the figure's title (the run's name).
    """
    plt = pyplot()
    overlay = len(runs) > 1
    panels = curve_panels([row for rows in runs.values() for row in rows], overlay)
    columns = min(4, len(panels))
    lines = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(
        lines, columns, figsize=(3.6 * columns, 2.7 * lines + 0.3), dpi=100, squeeze=False
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (panel_title, keys) in zip(axes.flat, panels):
        for index, (name, rows) in enumerate(runs.items()):
            for key_index, key in enumerate(keys):
                points = [
                    (r["step"], r[key])
                    for r in rows
                    if _is_number(r.get(key)) and _is_number(r.get("step"))
                ]
                if not points:
                    continue
                steps, values = zip(*points)
                colour = colours[(index if overlay else key_index) % len(colours)]
                # markers where points are few: evaluations, or a run one log line old
                dots = key.startswith("eval_") or len(points) == 1
                ax.plot(
                    steps, values, color=colour, linewidth=1.2, label=name if overlay else key,
                    marker="o" if dots else None, markersize=3,
                )  # fmt: skip
        ax.set_title(panel_title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if overlay:
        handles = [
            plt.Line2D([], [], color=colours[i % len(colours)], label=name)
            for i, name in enumerate(runs)
        ]
        fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=min(4, len(runs)))
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, y=0.995, ha="left", va="top")
    # tight_layout leaves room for the title; the legend of runs needs 0.3 inch more
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight() if overlay else 1))
    return fig


def save_loss_curves(metrics_path: Path, out_path: Path) -> Path | None:
    """Plot every logged number against the step (:func:`curve_figure`), titled with the
    run's name."""
    rows = read_metrics(metrics_path)
    if not rows:
        return None
    plt = pyplot()
    fig = curve_figure(
        {metrics_path.parent.name: rows}, f"{metrics_path.parent.name}: training curves"
    )
    atomic_write(out_path, fig.savefig, keep_suffix=True)
    plt.close(fig)
    return out_path
