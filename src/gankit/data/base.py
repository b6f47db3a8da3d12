"""What every data source returns: a :class:`DataBundle`."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from gankit.conventions import MAX_SEED, NO_LABEL
from gankit.errors import GankitError, check_int

#: Image resolutions the conv models are built for.
RESOLUTIONS = (8, 16, 28, 32, 64)


@dataclass
class DataBundle:
    """A dataset split into train and test, with the metadata models and metrics need.

    Attributes:
        name: the source name, e.g. ``"digits"`` or ``"folder:/data/faces"``.
        kind: ``"toy"`` for 2-D points, ``"image"`` for (C, H, W) images.
        train: items ``(x, y)``. A :class:`~torch.utils.data.TensorDataset` takes the
            trainer's in-memory fast path; any other Dataset is streamed by a DataLoader.
        test: the held-out split, or None when the source has none.
        shape: the shape of one item ``x``, e.g. ``(1, 16, 16)`` or ``(2,)``.
        num_classes: number of labels, or None when unlabelled.
        class_names: a name per label, when known.
        modes: (K, D) true mode centres for toy mixtures, else None.
        mode_std: the standard deviation of each toy mode, else None.
        info: a line of provenance (where the files were found, how many were skipped).
        domain_b: for two-domain sources (unpaired translation, domain adaptation), the
            second domain as a bundle of its own; this bundle is then domain A (the
            source). Models that read it get ``x_b``/``y_b`` in their batches.
        extra: source-specific metadata.

    ``kind="segmentation"`` bundles hold (C, H, W) images with (H, W) int64 label maps
    as ``y`` (``NO_LABEL`` marks pixels to ignore); ``num_classes`` counts the classes.
    ``kind="text"`` bundles hold (N,) int64 token windows and their next tokens as ``y``;
    ``class_names`` is the vocabulary (see :mod:`gankit.data.text`).
    ``kind="series"`` bundles hold (L,) 1-D series (see :mod:`gankit.data.change`).
    """

    name: str
    kind: Literal["toy", "image", "segmentation", "text", "series"]
    train: Dataset
    test: Dataset | None
    shape: tuple[int, ...]
    num_classes: int | None = None
    class_names: list[str] | None = None
    modes: torch.Tensor | None = None
    mode_std: float | None = None
    info: str = ""
    domain_b: DataBundle | None = None
    extra: dict = field(default_factory=dict)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, TensorDataset)

    @property
    def held_out(self) -> Dataset:
        """The split to score and preview on: the test split, else the training split."""
        return self.test if self.test is not None else self.train


def take(dataset: Dataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` items of a split and their labels, a seeded random subset when it has more:
    ((n, ...), (n, ...))."""
    total = len(dataset)
    index = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[: min(n, total)]
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors[0][index], dataset.tensors[1][index]
    else:
        items = [dataset[int(i)] for i in index]
        x = torch.stack([item[0] for item in items])
        y = torch.as_tensor([int(item[1]) for item in items])
    return x, y


def tensor_split(x: torch.Tensor, y: torch.Tensor | None = None) -> TensorDataset:
    """Wrap tensors as an in-memory split; missing labels become ``NO_LABEL``."""
    if y is None:
        y = torch.full((len(x),), NO_LABEL, dtype=torch.long)
    return TensorDataset(x.float().contiguous(), y.long())


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels [0, 255] to float [-1, 1], the range of a tanh generator."""
    return images_uint8.float().div(127.5).sub(1.0)


def check_resolution(resolution: int, where: str) -> None:
    """Reject a resolution the models are not built for; sources call it before reading
    (or downloading) any file."""
    if resolution not in RESOLUTIONS:
        valid = ", ".join(map(str, RESOLUTIONS))
        raise GankitError(f"{where}: resolution {resolution} is not supported; valid: {valid}")


def check_seed(seed: int, where: str) -> None:
    """Refuse a data seed outside ``[0, MAX_SEED]`` (numpy's range)."""
    check_int(f"{where}: seed", seed, 0, MAX_SEED)


def resize_images(images: torch.Tensor, resolution: int, where: str) -> torch.Tensor:
    """Resize (N, C, H, W) images in [-1, 1] to (N, C, R, R), bilinear with antialias."""
    check_resolution(resolution, where)
    if images.shape[-1] == resolution:
        return images
    resized = F.interpolate(
        images, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.clamp(-1.0, 1.0)


_FILE_KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


class NotRegularFile(OSError):
    """A data path that is a FIFO, a device, a socket or a folder, not a file."""


def open_regular(path: str | Path) -> BinaryIO:
    """Open ``path`` to read bytes, refusing anything but a regular file.

    A FIFO would block its reader forever and a device such as ``/dev/zero`` never
    ends, so the path is opened without blocking and checked before any byte is read
    (one ``open``, then ``fstat`` on it: the path cannot change in between).

    Raises:
        NotRegularFile: ``path`` is not a regular file (an OSError, with the others
            ``open`` raises).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_KINDS.items() if test(mode)), "special")
            raise NotRegularFile(f"{kind}, not a regular file")
        return os.fdopen(fd, "rb")  # O_NONBLOCK does not change reads of a regular file
    except BaseException:
        os.close(fd)
        raise
