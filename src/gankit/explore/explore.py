"""``gankit explore RUN --what ...``: the pictures of a run, one function per kind.

Each *view* takes a loaded run and the options, and returns :class:`Picture` s: a file
name and how to write it. Which views apply to a run is not decided here: the run's
task lists them (:mod:`gankit.tasks`), and a family adds its own (``Model.views``).
:func:`write_pictures` writes them into ``RUN/explore/`` (or ``--out``), and replaces no
existing file unless asked: it checks every name before it writes the first.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gankit.conventions import MAX_SEED
from gankit.data import load_data
from gankit.errors import GankitError, check_finite, check_int
from gankit.explore import latent, toy
from gankit.explore.pictures import MAX_GRID, save_codes, save_samples, writing
from gankit.files import atomic_write, make_folder, record_written, regular_files
from gankit.runs.load import Run

#: The most pairs a walk shows (rows), and the most steps (columns) of a walk, a
#: traversal or a row of classes; ``latent.MAX_BLOCK`` bounds their product.
MAX_PAIRS = 64
MAX_STEPS = 64


@dataclass
class ExploreOptions:
    """The options of ``gankit explore``; each view reads the ones it needs.

    Bounded so that a picture stays a picture: ``n`` in [1, 1024] (a 32 x 32 grid),
    ``pairs`` and ``steps`` in [1, 64], seeds in [0, 2**32 - 1].
    """

    n: int = 64
    seed: int = 0
    truncation: float | None = None
    method: str = "slerp"
    pairs: int = 6
    steps: int = 10
    seeds: tuple[int, int] | None = None
    view: str = "auto"
    animate: bool = False
    extra: dict = field(default_factory=dict)
    #: segment: loaded runs whose predictions go next to this run's (e.g. source-only).
    compare: list[Run] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_int("--n", self.n, 1, MAX_GRID)
        check_int("--pairs", self.pairs, 1, MAX_PAIRS)
        check_int("--steps", self.steps, 1, MAX_STEPS)
        check_int("--seed", self.seed, 0, MAX_SEED)
        for seed in self.seeds or ():
            check_int("--seeds", seed, 0, MAX_SEED)
        if self.truncation is not None:
            check_finite("--truncation", self.truncation, 0.0, above=True)


@dataclass
class Picture:
    """One file a view writes: its name and a function that writes it to a path."""

    name: str
    write: Callable[[Path], object]


#: ``view(run, options) -> pictures``.
View = Callable[[object, ExploreOptions], list[Picture]]
#: The frames toy runs save for ``--animate``.
SNAPSHOT = re.compile(r"^step_\d{8}\.pt$")


def write_pictures(pictures: list[Picture], out_dir: Path, overwrite: bool) -> list[Path]:
    """Write ``pictures`` into ``out_dir``; nothing is written when one of them exists
    already and ``overwrite`` is False."""
    with writing(out_dir):
        make_folder(out_dir)
    paths = [out_dir / picture.name for picture in pictures]
    for path in paths:
        if path.exists() and not overwrite:
            raise GankitError(f"'{path}' already exists; pass --overwrite or choose another --out")
    for picture, path in zip(pictures, paths):
        with writing(path):
            # written beside, then renamed over: a link planted at ``path`` is replaced,
            # never written through
            atomic_write(path, picture.write, keep_suffix=True)
    # listed, so that replacing the run (train --overwrite) can tell them from the user's
    record_written(out_dir, [path.name for path in paths])
    return paths


def _gif(frames, duration: int = 120) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration, loop=0)

    return write


def _bundle(run: Run):
    return load_data(run.config["data"])


def on_images(data_shape: tuple[int, ...]) -> bool:
    """A view of images: it draws runs on (C, H, W) items."""
    return len(data_shape) == 3


def on_points(data_shape: tuple[int, ...]) -> bool:
    """A view of the plane: it draws runs on 2-D points."""
    return tuple(data_shape) == (2,)


# --------------------------------------------------------------------------- samplers
def grid(run: Run, o: ExploreOptions) -> list[Picture]:
    """Samples: a grid of images, or a scatter over the real points."""
    samples = latent.grid(run, o.n, o.seed, o.truncation)
    suffix = f"_trunc{o.truncation:g}" if o.truncation is not None else ""
    real = _bundle(run).train.tensors[0][:2000] if samples.dim() == 2 else None
    title = f"{run.path.name} step {run.step}"
    return [
        Picture(
            f"grid_seed{o.seed}{suffix}.png",
            lambda path: save_samples(path, samples, real=real, title=title),
        )
    ]


def interp(run: Run, o: ExploreOptions) -> list[Picture]:
    """Walks between latents: a strip per pair, and a GIF."""
    latent.images_only(run, "interp")
    samples = latent.interpolate(run, o.pairs, o.steps, o.method, o.seeds)
    strip, frames = latent.interpolation_pictures(samples)
    tag = f"{o.method}_seeds{o.seeds[0]}-{o.seeds[1]}" if o.seeds else o.method
    return [Picture(f"interp_{tag}.png", strip.save), Picture(f"interp_{tag}.gif", _gif(frames))]


def classes(run: Run, o: ExploreOptions) -> list[Picture]:
    """Conditional samplers: one row per class, one noise per column."""
    latent.images_only(run, "classes")
    block = latent.classes(run, o.steps, o.seed)
    picture = latent.block_picture(
        block,
        f"{run.path.name} step {run.step}: a row per class, the same noise down each column",
        [f"class {k}" for k in range(len(block))],
    )
    return [Picture(f"classes_seed{o.seed}.png", picture.save)]


def traverse(run: Run, o: ExploreOptions) -> list[Picture]:
    """InfoGAN: each continuous code swept, one row per categorical value."""
    latent.images_only(run, "traverse")
    pictures = []
    span = 2.0
    for index, block in enumerate(latent.traverse(run, o.steps, o.seed, span)):
        rows = [f"c_cat = {k}" for k in range(len(block))]
        if run.model.n_continuous:
            name = f"traverse_c{index}"
            columns = [f"{v:+.1f}" for v in torch.linspace(-span, span, block.shape[1]).tolist()]
            title = f"{run.path.name} step {run.step}: c_con[{index}] across, other codes 0"
        else:
            name, columns = "traverse_categories", None
            title = f"{run.path.name} step {run.step}: a row per c_cat value, a noise per column"
        picture = latent.block_picture(block, title, rows, columns)
        pictures.append(Picture(f"{name}_seed{o.seed}.png", picture.save))
    return pictures


def manifold(run: Run, o: ExploreOptions) -> list[Picture]:
    """VAE: the decoded latent plane (2-D latents) and held-out reconstructions."""
    latent.images_only(run, "manifold")
    if o.view not in ("auto", "plane", "recon"):
        raise GankitError(f"--view must be auto, plane or recon, got '{o.view}'")
    views = [o.view] if o.view != "auto" else ["recon"]
    if o.view == "auto" and run.model.latent_dim == 2:
        views.insert(0, "plane")
    pictures = []
    for view in views:
        if view == "plane":
            plane = latent.manifold_plane(run, min(o.steps, 30))
            values = [f"{v:+.1f}" for v in latent.plane_values(len(plane)).tolist()]
            title = f"{run.path.name} step {run.step}: decoded z (z1 across, z2 down)"
            picture = latent.block_picture(plane, title, values[::-1], values)
            pictures.append(Picture("manifold_plane.png", picture.save))
            continue
        split = _bundle(run).held_out
        index = torch.randperm(len(split), generator=torch.Generator().manual_seed(o.seed))
        images = torch.stack([split[int(i)][0] for i in index[: o.n]])
        pair = latent.reconstructions(run, images)
        # rows alternate: inputs, then their reconstructions, 16 per row
        per_row = 16
        rows = []
        for start in range(0, pair.shape[1], per_row):
            rows += [pair[0, start : start + per_row], pair[1, start : start + per_row]]
        width = min(per_row, pair.shape[1])
        rows = [r for r in rows if len(r) == width]
        labels = ["input", "reconstruction"] * (len(rows) // 2)
        title = f"{run.path.name} step {run.step}: held-out inputs above their reconstructions"
        picture = latent.block_picture(torch.stack(rows), title, labels)
        pictures.append(Picture(f"reconstructions_seed{o.seed}.png", picture.save))
    return pictures


#: Held-out items the ``codes`` view encodes.
CODES_N = 2000


def codes(run: Run, o: ExploreOptions) -> list[Picture]:
    """Autoencoders (the adversarial autoencoder): up to 2000 held-out codes ``encode(x)``
    in their first two dimensions, coloured by class, over as many prior draws
    (``sample_latent``): Makhzani et al.'s figure 2."""
    from gankit.data.base import take

    model = run.model
    x, y = take(_bundle(run).held_out, CODES_N, o.seed)
    z = model.encode(x).cpu()
    prior = model.sample_latent(len(z), torch.Generator().manual_seed(o.seed))["z"].cpu()
    title = f"{run.path.name} step {run.step}: held-out codes by class, prior in grey"
    return [
        Picture(
            f"codes_seed{o.seed}.png",
            lambda path: save_codes(path, z, y, prior, title),
        )
    ]


def toy_field(run: Run, o: ExploreOptions) -> list[Picture]:
    """2-D points: D's field, G's push and both point sets, or a GIF over the run."""
    if not on_points(run.model.data_shape):
        raise GankitError(
            f"--what toy needs a run on 2-D points; '{run.path.name}' models images "
            f"{run.model.data_shape}: use --what grid"
        )
    real = _bundle(run).train.tensors[0][:2000]
    if not o.animate:
        frame = toy.snapshot(run.model, run.sampler_net, real, run.step, seed=o.seed)
        title = f"{run.path.name} step {run.step}"
        return [
            Picture(
                f"toy_step{run.step}.png", lambda path: toy.save_frame(path, frame, real, title)
            )
        ]
    paths = [p for p in regular_files(run.paths.snapshots) if SNAPSHOT.match(p.name)]
    frames = toy.load_snapshots(paths)
    if len(frames) < 2:
        raise GankitError(
            f"--animate needs two of the run's snapshots; '{run.paths.snapshots}' holds "
            f"{len(frames)} that can be read (toy runs save one per train.sample_every: "
            "lower it for more frames)"
        )
    return [
        Picture(
            "toy_animation.gif", lambda path: toy.save_animation(path, frames, real, run.path.name)
        )
    ]


# --------------------------------------------------------------------------- segmenters
def segment(run: Run, o: ExploreOptions) -> list[Picture]:
    """Target test scenes: the image, each compared run's prediction, this run's, the
    truth. Column titles carry each run's mIoU on the whole target test split."""
    from gankit.explore.segment import held_out_scenes, save_segmentation_figure, segment_scenes
    from gankit.metrics.segmentation import segmentation_scores

    runs = [*o.compare, run]
    scenes = segment_scenes(runs, min(o.n, 12), o.seed)
    # the whole target split for the titles, not just the n scenes drawn
    x, y, _ = held_out_scenes(run)
    # run names wrap at hyphens, so long ones do not run into the next column's title
    titles = [
        f"{textwrap.fill(r.path.name, 18)}\nmIoU "
        f"{100 * segmentation_scores(r.model.predict(x), y, r.model.num_classes)['miou']:.1f}"
        for r in runs
    ]
    return [
        Picture(
            f"segment_seed{o.seed}.png",
            lambda path: save_segmentation_figure(path, scenes, titles, "target image"),
        )
    ]
