"""Paired image-to-image data: every input image of domain A has its own target in B.

A paired source returns domain A's bundle (the inputs) with domain B's (the targets)
as ``domain_b``; item i of A's train (test) split belongs with item i of B's, and
``extra["paired"]`` is True on A's bundle. Models that learn from pairs (pix2pix) read
the two splits side by side; unpaired models (CycleGAN) can still train on them.

- ``edges2digits``: scikit-learn's digits, with their Sobel edge map as input (built in);
- ``edges2fashion``: the footwear and bag classes of Fashion-MNIST, likewise;
- ``paired:PATH``: your pairs, PATH/A and PATH/B with matching file names, or PATH/train
  (and optionally PATH/test) holding AB images, input left and target right (the
  layout of pix2pix's own datasets).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit.data.base import DataBundle, check_resolution, tensor_split, to_unit_range
from gankit.data.folders import (
    MODES,
    UnreadableImage,
    decode_image,
    list_images,
    open_image,
    split_indices,
)
from gankit.errors import GankitError

#: Fashion-MNIST's footwear and bag classes: sandal, sneaker, bag, ankle boot.
FASHION_PAIRED_CLASSES = (5, 7, 8, 9)
#: Pairs a folder may hold: every pair is decoded into memory.
MAX_PAIRS = 20000


def sobel_edges(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) images in [-1, 1] -> (N, 1, H, W) edge maps in [-1, 1].

    The Sobel gradient magnitude ``sqrt(S_x(I)^2 + S_y(I)^2)`` (scipy.ndimage.sobel,
    reflecting at the borders), divided by each image's largest value, so every map
    spans black (flat) to white (the strongest edge). Deterministic: no noise, no seed.
    """
    from scipy import ndimage

    # One image at a time: on an (N, H, W) stack, sobel would also smooth across
    # neighbouring images (it smooths along every axis but the derivative's).
    magnitude = np.stack(
        [
            np.hypot(
                ndimage.sobel(image, axis=1, mode="reflect"),
                ndimage.sobel(image, axis=0, mode="reflect"),
            )
            for image in images[:, 0].double().numpy()
        ]
    )
    peak = magnitude.reshape(len(magnitude), -1).max(axis=1).reshape(-1, 1, 1)
    unit = magnitude / np.maximum(peak, 1e-12)
    return torch.from_numpy(unit).float().unsqueeze(1).mul(2.0).sub(1.0)


def edge_pairs(bundle: DataBundle, name: str) -> DataBundle:
    """A grey image bundle turned paired: its edge maps as domain A, itself as B."""
    if bundle.shape[0] != 1:
        raise GankitError(f"data ({name}): edge maps are drawn from grey images")

    def edges(split):
        x, y = split.tensors
        return tensor_split(sobel_edges(x), y)

    # The targets keep the source's name ("digits", "fashion-mnist"): they are its
    # images, so its evaluator classifier scores translations (FD, class kept).
    targets = dataclasses.replace(bundle)
    return dataclasses.replace(
        bundle,
        name=name,
        train=edges(bundle.train),
        test=edges(bundle.test),
        info=f"Sobel edges -> images, paired; {bundle.info}",
        domain_b=targets,
        extra={**bundle.extra, "paired": True},
    )


def edges2digits(*, resolution: int = 16) -> DataBundle:
    """scikit-learn's digits as pairs: the Sobel edge map (A) and the digit (B), (1, R, R).

    Built in, so it serves tests and CPU presets. Labels are the digits, on both sides.

    Args:
        resolution: 8, 16, 28, 32 or 64 (the digits are upscaled before edges are drawn).
    """
    from gankit.data.digits import digits

    return edge_pairs(digits(resolution=resolution), "edges2digits")


def edges2fashion(
    *, resolution: int = 32, data_dir: str | None = None, limit: int | None = None
) -> DataBundle:
    """Fashion-MNIST's sandals, sneakers, bags and ankle boots as pairs: the Sobel edge
    map (A) and the article (B), (1, R, R). Labels keep Fashion-MNIST's class numbers.

    Args:
        resolution: 8, 16, 28, 32 or 64.
        data_dir: a folder with Fashion-MNIST's IDX files (see ``fashion-mnist``).
        limit: keep only the first N pairs of each split (after the class filter).
    """
    from gankit.data.idx import fashion_mnist

    source = fashion_mnist(data_dir=data_dir, resolution=resolution)

    def keep(split):
        x, y = split.tensors
        chosen = torch.isin(y, torch.tensor(FASHION_PAIRED_CLASSES))
        x, y = x[chosen], y[chosen]
        return tensor_split(x[:limit], y[:limit])

    source = dataclasses.replace(source, train=keep(source.train), test=keep(source.test))
    return edge_pairs(source, "edges2fashion")


def _decode_halves(path: Path, resolution: int, channels: int) -> tuple[torch.Tensor, ...]:
    """An AB image: its left half (A) and right half (B), each resized to (C, R, R)."""
    with open_image(path) as image:
        image = image.convert(MODES[channels])
    width, height = image.size
    halves = []
    for left in (0, width // 2):
        half = image.crop((left, 0, left + width // 2, height))
        half = half.resize((resolution, resolution), Image.Resampling.BILINEAR)
        pixels = torch.from_numpy(np.asarray(half, dtype=np.uint8).copy())
        halves.append(
            to_unit_range(pixels.unsqueeze(0) if channels == 1 else pixels.permute(2, 0, 1))
        )
    return tuple(halves)


def _read_pairs(files: list[tuple[Path, ...]], resolution: int, channels: int):
    """(inputs, targets): (N, C, R, R) each, from (a, b) file pairs or AB files."""
    inputs, targets = [], []
    for pair in files:
        try:
            if len(pair) == 1:
                a, b = _decode_halves(pair[0], resolution, channels)
            else:
                a, b = (decode_image(p, resolution, channels) for p in pair)
        except UnreadableImage as err:
            raise GankitError(
                f"data (paired): cannot read image {err.path} ({err.reason})"
            ) from None
        inputs.append(a)
        targets.append(b)
    return torch.stack(inputs), torch.stack(targets)


def _folder_pairs(root: Path) -> dict[str, list[tuple[Path, ...]]]:
    """{split: [files of a pair]} for the A/B layout ("all") or the AB layout."""
    if (root / "A").is_dir() and (root / "B").is_dir():
        a_files = {
            p.relative_to(root / "A").with_suffix("").as_posix(): p for p in list_images(root / "A")
        }
        b_files = {
            p.relative_to(root / "B").with_suffix("").as_posix(): p for p in list_images(root / "B")
        }
        unmatched = sorted(set(a_files) ^ set(b_files))
        if unmatched:
            raise GankitError(
                f"data (paired): {len(unmatched)} images of {root}/A and {root}/B have no "
                f"partner (first: '{unmatched[0]}'); every A/NAME needs a B/NAME"
            )
        return {"all": [(a_files[k], b_files[k]) for k in sorted(a_files)]}
    if (root / "train").is_dir():
        splits = {"train": [(p,) for p in list_images(root / "train")]}
        for test in ("test", "val"):
            if (root / test).is_dir():
                splits["test"] = [(p,) for p in list_images(root / test)]
                break
        return splits
    raise GankitError(
        f"data (paired): {root} has neither A/ and B/ (matching names) nor train/ (AB "
        "images, input left, target right)"
    )


def paired(
    *,
    path: str,
    resolution: int = 32,
    channels: int = 3,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> DataBundle:
    """Your image pairs, pix2pix's layout: (C, R, R) inputs (A) and targets (B) in [-1, 1].

    PATH/A and PATH/B with matching file names (any extension), split into train and
    test by ``test_fraction`` with ``seed``; or PATH/train (and optionally PATH/test or
    PATH/val) with AB images, input on the left half and target on the right. Items
    are unlabelled. Every pair is read into memory (at most 20000).

    Args:
        path: the folder.
        resolution: side R (A/B: short side resized, centre cropped; AB: each half resized).
        channels: 1 for grayscale, 3 for RGB.
        test_fraction: share of A/B pairs held out as the test split.
        seed: the A/B split's seed.
    """
    where = "data (paired)"
    check_resolution(resolution, where)
    if channels not in MODES:
        raise GankitError(f"{where}: channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if not 0.0 < test_fraction < 1.0:
        raise GankitError(f"{where}: test_fraction must be in (0, 1), got {test_fraction}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise GankitError(f"{where}: no folder {root}")
    files = _folder_pairs(root)
    total = sum(len(v) for v in files.values())
    if total > MAX_PAIRS or not files.get("all", files.get("train")):
        raise GankitError(f"{where}: {root} holds {total} pairs; expected 1 to {MAX_PAIRS}")
    if "all" in files:
        train_at, test_at = split_indices(len(files["all"]), test_fraction, seed, root)
        files = {
            "train": [files["all"][i] for i in train_at],
            "test": [files["all"][i] for i in test_at],
        }
    splits = {name: _read_pairs(pairs, resolution, channels) for name, pairs in files.items()}
    bundles = []
    for side in (0, 1):
        test = splits.get("test")
        bundles.append(
            DataBundle(
                name=f"paired:{path}" + ("" if side == 0 else " (B)"),
                kind="image",
                train=tensor_split(splits["train"][side]),
                test=tensor_split(test[side]) if test is not None else None,
                shape=(channels, resolution, resolution),
                info=f"paired {root}: {len(splits['train'][0])} train pairs, {resolution}px",
                extra={"paired": True} if side == 0 else {},
            )
        )
    bundles[0].domain_b = bundles[1]
    return bundles[0]
