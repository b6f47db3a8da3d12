"""Pictures of segmentation runs: images, each run's prediction and the ground truth.

``gankit explore RUN --what segment --compare BASELINE`` puts a source-only run's
predictions next to an adapted run's on the same target scenes, so the effect of
adaptation can be seen rather than only read off the mIoU.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.errors import GankitError
from gankit.runs.load import Run

#: Distinct colours for class indices (matplotlib's tab10); ignored pixels are black.
CLASS_COLOURS = torch.tensor(
    [
        [0.12, 0.47, 0.71],
        [0.50, 0.50, 0.50],
        [0.84, 0.15, 0.16],
        [0.17, 0.63, 0.17],
        [1.00, 0.73, 0.05],
        [0.58, 0.40, 0.74],
        [0.55, 0.34, 0.29],
        [0.89, 0.47, 0.76],
        [0.74, 0.74, 0.13],
        [0.09, 0.75, 0.81],
    ]
)


def colour_labels(labels: torch.Tensor) -> torch.Tensor:
    """(N, H, W) class indices -> (N, H, W, 3) RGB in [0, 1]; negative (ignored) -> black.

    Colours repeat after 10 classes.
    """
    colours = CLASS_COLOURS[labels.clamp(min=0) % len(CLASS_COLOURS)]
    return torch.where((labels < 0)[..., None], torch.zeros(3), colours)


def _check_segmentation(run: Run) -> None:
    if run.model.task != "segment":
        raise GankitError(
            f"--what segment needs segmentation runs (adaptseg); '{run.path.name}' is a "
            f"'{run.model.model_name}' run"
        )


def held_out_scenes(
    run: Run, domain: str = "target"
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """A segmentation run's test split of one domain (train when there is none).

    Returns:
        (N, 3, H, W) images in [-1, 1], (N, H, W) label maps, and the class names.
    """
    from gankit.data import load_data

    _check_segmentation(run)
    if domain not in ("target", "source"):
        raise GankitError(f"domain must be target or source, got '{domain}'")
    bundle = load_data(run.config["data"])
    if domain == "target":
        if bundle.domain_b is None:
            raise GankitError(f"data '{bundle.name}' has no target domain")
        bundle = bundle.domain_b
    images, labels = bundle.held_out.tensors
    return images, labels, bundle.class_names or [str(c) for c in range(bundle.num_classes)]


def segment_scenes(
    runs: list[Run], n: int = 6, seed: int = 0, domain: str = "target"
) -> dict[str, torch.Tensor | list]:
    """Predict ``n`` test scenes of one domain with every run (all on the same data).

    Args:
        runs: loaded segmentation runs (:class:`~gankit.runs.load.Run`); the first
            one's data is used.
        n: scenes, a seeded random subset of the test split (train when there is none).
        seed: picks the scenes.
        domain: ``target`` (the data's domain_b) or ``source``.

    Returns:
        ``images`` (n, 3, H, W) in [-1, 1], ``labels`` (n, H, W), ``predictions`` a list of
        (n, H, W) per run, ``class_names``.
    """
    for run in runs:
        _check_segmentation(run)
    images, labels, class_names = held_out_scenes(runs[0], domain)
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    images, labels = images[index], labels[index]
    return {
        "images": images,
        "labels": labels,
        "predictions": [run.model.predict(images) for run in runs],
        "class_names": class_names,
    }


def save_segmentation_figure(
    path: str | Path, scenes: dict, titles: list[str], image_title: str = "image"
) -> Path:
    """Rows of scenes; columns: the image, each run's prediction, the ground truth.

    Args:
        path: where to write the PNG.
        scenes: what :func:`segment_scenes` returns.
        titles: one column title per run.
        image_title: the first column's title.
    """
    from matplotlib.patches import Patch

    from gankit.explore.pictures import pyplot

    plt = pyplot()
    images, labels = scenes["images"], scenes["labels"]
    columns = [
        (image_title, images.add(1).div(2).clamp(0, 1).permute(0, 2, 3, 1)),
        *((title, colour_labels(p)) for title, p in zip(titles, scenes["predictions"])),
        ("ground truth", colour_labels(labels)),
    ]
    rows = len(images)
    fig, axes = plt.subplots(
        rows, len(columns), figsize=(1.6 * len(columns), 1.6 * rows + 0.6), dpi=100, squeeze=False
    )
    for col, (title, pictures) in enumerate(columns):
        for row in range(rows):
            axis = axes[row, col]
            axis.imshow(pictures[row].numpy(), interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0, col].set_title(title, fontsize=8)
    legend = [
        Patch(color=CLASS_COLOURS[c % len(CLASS_COLOURS)].tolist(), label=name)
        for c, name in enumerate(scenes["class_names"])
    ]
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.5 / (1.6 * rows + 0.6), 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
