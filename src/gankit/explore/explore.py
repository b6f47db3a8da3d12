"""``gankit explore RUN --what ...``: write one kind of picture for a run.

Every picture goes to ``RUN/explore/`` (or ``--out``) under a name that says what it
shows; an existing file is never replaced unless asked.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gankit.errors import GankitError, choices

WHATS = ("grid", "interp", "classes", "traverse", "manifold", "toy", "segment")


@dataclass
class ExploreOptions:
    """The options of ``gankit explore``; each kind of picture reads the ones it needs."""

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
    compare: list = field(default_factory=list)


def _target(out_dir: Path, name: str, overwrite: bool) -> Path:
    path = out_dir / name
    if path.exists() and not overwrite:
        raise GankitError(f"'{path}' already exists; pass --overwrite or choose another --out")
    return path


def explore(
    run,
    what: str,
    options: ExploreOptions | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write the pictures of ``what`` for a loaded run; returns their paths."""
    from gankit.explore import latent, toy
    from gankit.explore.pictures import save_samples

    if what not in WHATS:
        raise GankitError(f"unknown --what '{what}'; valid: {choices(WHATS)}")
    o = options or ExploreOptions()
    out = Path(out_dir) if out_dir is not None else run.paths.explore
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(picture, name: str) -> None:
        path = _target(out, name, overwrite)
        picture.save(path)
        written.append(path)

    def save_gif(frames, name: str, duration: int = 120) -> None:
        path = _target(out, name, overwrite)
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration, loop=0)
        written.append(path)

    if what == "grid":
        samples = latent.grid(run, o.n, o.seed, o.truncation)
        suffix = f"_trunc{o.truncation:g}" if o.truncation is not None else ""
        path = _target(out, f"grid_seed{o.seed}{suffix}.png", overwrite)
        real = _real_points(run) if samples.dim() == 2 else None
        save_samples(path, samples, real=real, title=f"{run.path.name} step {run.step}")
        written.append(path)
    elif what == "interp":
        latent._images_only(run, what)
        samples = latent.interpolate(run, o.pairs, o.steps, o.method, o.seeds)
        strip, frames = latent.interpolation_pictures(samples)
        tag = f"{o.method}_seeds{o.seeds[0]}-{o.seeds[1]}" if o.seeds else o.method
        save(strip, f"interp_{tag}.png")
        save_gif(frames, f"interp_{tag}.gif")
    elif what == "classes":
        latent._images_only(run, what)
        save(
            latent.block_picture(latent.classes(run, o.steps, o.seed)), f"classes_seed{o.seed}.png"
        )
    elif what == "traverse":
        latent._images_only(run, what)
        blocks = latent.traverse(run, o.steps, o.seed)
        for index, block in enumerate(blocks):
            name = f"traverse_c{index}" if run.model.n_continuous else "traverse_categories"
            save(latent.block_picture(block), f"{name}_seed{o.seed}.png")
    elif what == "manifold":
        latent._images_only(run, what)
        _manifold(run, o, latent, save)
    elif what == "segment":
        _segment(run, o, out, overwrite, written)
    else:
        _toy(run, o, out, overwrite, toy, written)
    return written


def _manifold(run, o: ExploreOptions, latent, save) -> None:
    if o.view not in ("auto", "plane", "recon"):
        raise GankitError(f"--view must be auto, plane or recon, got '{o.view}'")
    views = [o.view] if o.view != "auto" else ["recon"]
    if o.view == "auto" and getattr(run.model, "latent_dim", None) == 2:
        views.insert(0, "plane")
    for view in views:
        if view == "plane":
            save(
                latent.block_picture(latent.manifold_plane(run, min(o.steps, 30))),
                "manifold_plane.png",
            )
        else:
            images = _held_out(run, o.n, o.seed)
            pair = latent.reconstructions(run, images)
            # rows alternate: inputs, then their reconstructions, 16 per row
            per_row = 16
            rows = []
            for start in range(0, pair.shape[1], per_row):
                rows += [pair[0, start : start + per_row], pair[1, start : start + per_row]]
            width = min(per_row, pair.shape[1])
            rows = [r for r in rows if len(r) == width]
            save(latent.block_picture(torch.stack(rows)), f"reconstructions_seed{o.seed}.png")


def _segment(run, o: ExploreOptions, out: Path, overwrite: bool, written: list[Path]) -> None:
    """Target test scenes: the image, each compared run's prediction, this run's, the truth.
    Column titles carry each run's mIoU on the whole target test split."""
    from gankit.explore.segment import held_out_scenes, save_segmentation_figure, segment_scenes

    runs = [*o.compare, run]
    scenes = segment_scenes(runs, min(o.n, 12), o.seed)
    # the whole target split for the titles, not just the n scenes drawn
    x, y, _ = held_out_scenes(run)
    # run names wrap at hyphens, so long ones do not run into the next column's title
    titles = [
        f"{textwrap.fill(r.path.name, 18)}\nmIoU {100 * r.model.data_metrics(x, y)['miou']:.1f}"
        for r in runs
    ]
    path = _target(out, f"segment_seed{o.seed}.png", overwrite)
    save_segmentation_figure(path, scenes, titles, image_title="target image")
    written.append(path)


def _bundle(run):
    from gankit.data import load_data

    return load_data(run.config["data"])


def _held_out(run, n: int, seed: int) -> torch.Tensor:
    bundle = _bundle(run)
    split = bundle.test if bundle.test is not None else bundle.train
    index = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.stack([split[int(i)][0] for i in index])


def _real_points(run) -> torch.Tensor:
    return _bundle(run).train.tensors[0][:2000]


def _toy(run, o: ExploreOptions, out: Path, overwrite: bool, toy, written: list[Path]) -> None:
    if run.model.data_shape != (2,):
        raise GankitError(
            f"--what toy needs a run on 2-D points; '{run.path.name}' models images "
            f"{run.model.data_shape}: use --what grid"
        )
    real = _real_points(run)
    if not o.animate:
        frame = toy.snapshot(run.model, run.sampler_net, real, run.step, seed=o.seed)
        path = _target(out, f"toy_step{run.step}.png", overwrite)
        toy.save_frame(path, frame, real, f"{run.path.name} step {run.step}")
        written.append(path)
        return
    paths = sorted(run.paths.snapshots.glob("step_*.pt"))
    if len(paths) < 2:
        raise GankitError(
            f"--animate needs the run's snapshots; '{run.paths.snapshots}' holds {len(paths)} "
            "(toy runs save one per train.sample_every: lower it for more frames)"
        )
    frames = [torch.load(p, weights_only=True) for p in paths]
    path = _target(out, "toy_animation.gif", overwrite)
    toy.save_animation(path, frames, real, run.path.name)
    written.append(path)
