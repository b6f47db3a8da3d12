"""Any folder of images as a data source: ``folder:PATH``.

Images are found recursively and sorted, so the same folder always gives the same
order. If every image sits inside a subfolder of PATH, the subfolder names are the
class labels (sorted, 0..K-1), as in torchvision's ImageFolder; otherwise the data is
unlabelled. Hidden files and folders (names starting with ".") are ignored: they are
usually editor or OS litter, such as macOS's ``._photo.jpg`` resource forks, which are
not images.

Small folders are decoded once into memory; large ones are streamed from disk. An
unreadable image is an error naming it, unless ``skip_bad`` is set:

* in memory, every image is decoded up front, so bad files are dropped and counted;
* streamed, each file is checked up front with Pillow's cheap ``Image.verify()``
  (headers and, for PNG, checksums; no pixel decoding) and failures are dropped and
  counted. ``verify`` cannot catch everything (a truncated JPEG passes it), so a file
  that still fails when read is replaced by the next readable file in order, with a
  warning: one odd sample is better than a crash hours into training.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from gankit.data.base import (
    NO_LABEL,
    DataBundle,
    check_resolution,
    check_seed,
    open_regular,
    tensor_split,
    to_unit_range,
)
from gankit.errors import GankitError

#: Decoded float32 pixels a folder may hold in memory. ``in_memory_limit`` counts
#: images, and 20,000 images are 63 MB at 28 px grayscale but 15.7 GB at 256 px RGB:
#: above this many bytes a folder streams, whatever its image count.
IN_MEMORY_BYTES = 512 * 2**20

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
MODES = {1: "L", 3: "RGB"}

#: The most pixels an image file may declare: 8192 x 8192, 64 megapixels. Pillow's own
#: default is 89 million with only a warning up to twice that, so a PNG of a few
#: kilobytes could declare 178 million pixels and make Pillow allocate over 0.5 GB.
#: gankit reads images to at most 64 px; a photo of 64 megapixels is still accepted.
MAX_IMAGE_PIXELS = 2**26

# Pillow checks the declared size when it opens a file (and a frame, for some formats);
# with the warning raised as an error (open_image), the check refuses exactly above this.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

_BOMBS = (Image.DecompressionBombError, Image.DecompressionBombWarning)

# Exceptions Pillow raises for files it cannot decode (UnidentifiedImageError is an
# OSError; some plugins raise SyntaxError, ValueError or EOFError on bad data); OSError
# also covers a path that is not a regular file (gankit.data.base.NotRegularFile).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, *_BOMBS)


class UnreadableImage(Exception):
    """An image file Pillow could not decode; carries the path and the reason."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = " ".join(reason.split())


def _bad_file_error(err: UnreadableImage) -> GankitError:
    return GankitError(
        f"cannot read image {err.path} ({err.reason}); remove it, or set skip_bad: true "
        "to skip unreadable files"
    )


@contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """Open an image file with Pillow, within bounds: ``with open_image(p) as image: ...``.

    Only a regular file is opened (a FIFO would block forever, a device never ends), and
    only one that declares at most ``MAX_IMAGE_PIXELS`` pixels. Decoding errors in the
    ``with`` block are reported the same way.

    Raises:
        UnreadableImage: the path is not a regular file, or Pillow refused or failed it.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(path) as handle, Image.open(handle) as image:
                yield image
    except _DECODE_ERRORS as err:
        reason = str(err) or type(err).__name__
        if isinstance(err, UnidentifiedImageError):  # its message names the handle
            reason = "cannot identify image file"
        if isinstance(err, _BOMBS):
            reason = f"it declares over {MAX_IMAGE_PIXELS} pixels (8192 x 8192), gankit's limit"
        raise UnreadableImage(path, reason) from err


def decode_image(path: str | Path, resolution: int, channels: int) -> torch.Tensor:
    """One image as a (C, R, R) float tensor in [-1, 1].

    The short side is resized to ``resolution`` (bilinear, antialiased by Pillow when
    shrinking), then the centre square is cropped, so no image is stretched.

    Raises:
        UnreadableImage: the file is not a regular file, declares more than
            ``MAX_IMAGE_PIXELS`` pixels, or Pillow could not open or decode it.
    """
    with open_image(path) as image:
        # JPEG only: decode at a reduced scale when the file is much larger than
        # needed; the result is never smaller than (resolution, resolution).
        image.draft(None, (resolution, resolution))
        image = image.convert(MODES[channels])
    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    pixels = pixels.unsqueeze(0) if channels == 1 else pixels.permute(2, 0, 1)
    return to_unit_range(pixels)


def verify_image(path: str | Path) -> None:
    """Cheap check that ``path`` looks like a readable image, without decoding pixels.

    Raises:
        UnreadableImage: the header or (for PNG) a checksum is bad, or the file is not a
            regular file or declares too many pixels (see :func:`open_image`).
    """
    with open_image(path) as image:
        image.verify()


def list_images(root: Path) -> list[Path]:
    """Image files under ``root``, recursively, sorted by relative path; hidden ones skipped."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        found += [
            Path(directory, name)
            for name in files
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


class ImageFiles(Dataset):
    """A streamed split: each ``__getitem__`` reads one file, nothing else is held.

    Items are ``(x, y)``: x a (C, R, R) float tensor in [-1, 1], y a 0-d int64 tensor,
    the same as the in-memory TensorDataset.
    """

    def __init__(
        self, files: list[Path], labels: list[int], resolution: int, channels: int, skip_bad: bool
    ):
        # Strings, not Paths: a fraction of the memory, and every DataLoader worker
        # holds a copy of this list.
        self.files = [str(f) for f in files]
        self.labels = labels
        self.resolution = resolution
        self.channels = channels
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self.files) <= index < len(self.files):
            # IndexError also ends plain iteration (``for x, y in dataset``).
            raise IndexError(f"index {index} out of range for {len(self.files)} images")
        # Without skip_bad only the requested file is tried; with it, the next files
        # in order stand in for one that fails, so a batch is always full.
        attempts = len(self.files) if self.skip_bad else 1
        for offset in range(attempts):
            position = (index + offset) % len(self.files)
            try:
                image = decode_image(self.files[position], self.resolution, self.channels)
            except UnreadableImage as err:
                if not self.skip_bad:
                    raise _bad_file_error(err) from err
                warnings.warn(f"skipping unreadable image {err.path} ({err.reason})", stacklevel=2)
                continue
            return image, torch.tensor(self.labels[position], dtype=torch.long)
        raise GankitError(f"no image in this split can be read (first: {self.files[0]})")


def split_indices(
    n: int, test_fraction: float, seed: int, root: Path
) -> tuple[list[int], list[int]]:
    """Deterministic (train, test) positions: a seeded permutation, each part re-sorted."""
    if test_fraction == 0:
        return list(range(n)), []
    n_test = max(1, round(n * test_fraction))
    if n_test >= n:
        raise GankitError(
            f"data (folder): test_fraction {test_fraction} leaves no training images "
            f"out of {n} in {root}; use a smaller test_fraction or 0"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[n_test:]), sorted(order[:n_test])


def _check_options(
    resolution: int, channels: int, in_memory_limit: int, test_fraction: float
) -> None:
    where = "data (folder)"
    check_resolution(resolution, where)
    if channels not in MODES:
        raise GankitError(f"{where}: channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if in_memory_limit < 0:
        raise GankitError(f"{where}: in_memory_limit must be >= 0, got {in_memory_limit}")
    if not 0.0 <= test_fraction < 1.0:
        raise GankitError(f"{where}: test_fraction must be in [0, 1), got {test_fraction}")


def folder(
    *,
    path: str,
    resolution: int = 32,
    channels: int = 3,
    skip_bad: bool = False,
    in_memory_limit: int = 20000,
    test_fraction: float = 0.0,
    seed: int = 0,
) -> DataBundle:
    """Every image under ``path`` as (C, R, R) images in [-1, 1].

    Args:
        path: the folder, searched recursively for .png, .jpg, .jpeg, .bmp, .gif,
            .webp, .tif and .tiff files (any case).
        resolution: side R of the square images: short side resized, centre cropped.
        channels: 1 for grayscale, 3 for RGB.
        skip_bad: skip unreadable files (counted in ``info``) instead of failing.
        in_memory_limit: folders with at most this many images, decoding to at most
            ``IN_MEMORY_BYTES`` (512 MiB), are decoded once into memory; larger ones
            are read from disk on every access.
        test_fraction: fraction of images held out as ``test``, chosen by ``seed``.
        seed: seed of the train/test split.

    Raises:
        GankitError: a bad option, a missing or empty folder, or (unless ``skip_bad``)
            an unreadable image, named.
    """
    _check_options(resolution, channels, in_memory_limit, test_fraction)
    check_seed(seed, "data (folder)")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise GankitError(f"data (folder): '{root}' is not a folder; give a folder of images")
    files = list_images(root)
    if not files:
        raise GankitError(
            f"data (folder): no images in {root}; looked for {', '.join(IMAGE_EXTENSIONS)}"
        )

    relative = [f.relative_to(root).parts for f in files]
    if all(len(parts) >= 2 for parts in relative):
        class_names = sorted({parts[0] for parts in relative})
        label_of = {name: i for i, name in enumerate(class_names)}
        labels = [label_of[parts[0]] for parts in relative]
    else:
        class_names, labels = None, [NO_LABEL] * len(files)

    decoded_bytes = len(files) * channels * resolution * resolution * 4
    in_memory = len(files) <= in_memory_limit and decoded_bytes <= IN_MEMORY_BYTES
    skipped: list[str | Path] = []

    def build(positions: list[int]) -> Dataset:
        if in_memory:
            images, kept = [], []
            for i in positions:
                try:
                    images.append(decode_image(files[i], resolution, channels))
                    kept.append(labels[i])
                except UnreadableImage as err:
                    if not skip_bad:
                        raise _bad_file_error(err) from err
                    skipped.append(err.path)
            if not images:
                return tensor_split(torch.empty(0, channels, resolution, resolution))
            return tensor_split(torch.stack(images), torch.tensor(kept, dtype=torch.long))
        kept_positions = []
        for i in positions:
            if skip_bad:
                try:
                    verify_image(files[i])
                except UnreadableImage as err:
                    skipped.append(err.path)
                    continue
            kept_positions.append(i)
        return ImageFiles(
            [files[i] for i in kept_positions],
            [labels[i] for i in kept_positions],
            resolution,
            channels,
            skip_bad,
        )

    train_positions, test_positions = split_indices(len(files), test_fraction, seed, root)
    train = build(train_positions)
    test = build(test_positions) if test_positions else None
    if len(train) == 0:
        raise GankitError(
            f"data (folder): none of the {len(files)} images in {root} could be read "
            f"(first: {skipped[0]})"
        )

    labelled = f"{len(class_names)} classes" if class_names else "unlabelled"
    storage = "in memory" if in_memory else "streamed from disk"
    info = (
        f"folder {root}: {len(train)} train / {len(test) if test else 0} test images, "
        f"{labelled}, {resolution}px, {storage}"
    )
    if skipped:
        info += f"; skipped {len(skipped)} unreadable files"
    return DataBundle(
        name=f"folder:{path}",
        kind="image",
        train=train,
        test=test,
        shape=(channels, resolution, resolution),
        num_classes=len(class_names) if class_names else None,
        class_names=class_names,
        info=info,
        extra={"skipped_files": [str(p) for p in skipped]},
    )
