"""CIFAR-10 (Krizhevsky 2009), read from the official python pickle batches.

The files are ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``,
found already extracted or inside ``cifar-10-python.tar.gz``; a tarball is extracted
into the user cache once. Each batch is a pickled dict whose ``data`` is an (N, 3072)
uint8 array, each row the 1024 red, then green, then blue values of a 32x32 image.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from gankit.data.base import (
    DataBundle,
    check_resolution,
    resize_images,
    tensor_split,
    to_unit_range,
)
from gankit.data.download import cache_dir, find_files, find_or_fetch, search_dirs
from gankit.errors import GankitError

DATASET = "cifar10"
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
BATCH_FILES = [*TRAIN_BATCHES, TEST_BATCH, META]

TARBALL = "cifar-10-python.tar.gz"
TARBALL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: MD5 published with the dataset and listed in torchvision's ``CIFAR10.tgz_md5``.
TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"
HINT = (
    f"download {TARBALL} from https://www.cs.toronto.edu/~kriz/cifar.html into one of "
    "these (or extract it there), or pass --data-dir"
)
NATIVE_RESOLUTION = 32

#: The only globals a CIFAR batch needs. Anything else in a pickle could run code, and
#: these files may come from anywhere a user points ``data_dir`` at.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _load_pickle(path: Path) -> dict[str, Any]:
    """A batch dict with str keys.

    The official batches were pickled by Python 2: ``latin1`` decodes their byte
    strings losslessly (numpy's advice for arrays), and keys that arrive as bytes,
    as in pickles written by Python 3, are decoded the same way.
    """
    try:
        with open(path, "rb") as handle:
            entry = _BatchUnpickler(handle, encoding="latin1").load()
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as err:
        raise GankitError(f"cannot read CIFAR-10 batch {path}: {err}") from err
    if not isinstance(entry, dict):
        raise GankitError(f"CIFAR-10 batch {path} is not a pickled dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 32, 32) uint8 images and (N,) int64 labels from one batch file."""
    entry = _load_pickle(path)
    if "data" not in entry or "labels" not in entry:
        raise GankitError(f"CIFAR-10 batch {path} lacks the keys 'data' and 'labels'")
    data, labels = np.asarray(entry["data"]), np.asarray(entry["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise GankitError(
            f"CIFAR-10 batch {path}: 'data' must be uint8 of shape (N, 3072), "
            f"got {data.dtype} {data.shape}"
        )
    if labels.shape != (len(data),) or (len(labels) and not 0 <= labels.min() <= labels.max() < 10):
        raise GankitError(f"CIFAR-10 batch {path}: 'labels' must be {len(data)} values in 0..9")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def _read_split(
    directory: Path, batches: list[str], limit: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate batches, stopping as soon as ``limit`` images are read."""
    images, labels, count = [], [], 0
    for name in batches:
        if limit is not None and count >= limit:
            break
        batch_images, batch_labels = _read_batch(directory / name)
        images.append(batch_images)
        labels.append(batch_labels)
        count += len(batch_images)
    images_all, labels_all = torch.cat(images), torch.cat(labels)
    if limit is not None:
        images_all, labels_all = images_all[:limit], labels_all[:limit]
    return images_all, labels_all


def _safe_member_path(member: tarfile.TarInfo, tarball: Path) -> PurePosixPath:
    """The member's relative path; rejects what could write outside the target."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or member.name.startswith(("/", "\\")):
        raise GankitError(f"unsafe path '{member.name}' in {tarball}; refusing to extract it")
    if not (member.isfile() or member.isdir()):
        raise GankitError(
            f"unexpected link or device '{member.name}' in {tarball}; refusing to extract it"
        )
    return path


def extract_tarball(tarball: Path, target: Path) -> Path:
    """Extract ``tarball``'s ``cifar-10-batches-py`` into ``target``; returns that folder.

    Every member is checked first (no absolute paths, no ``..``, no links), and the
    files are written into a temporary folder that is renamed into place at the end,
    so an interrupted extraction leaves nothing a later run would trust.
    """
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=target))
    try:
        try:
            with tarfile.open(tarball, "r:*") as archive:
                members = [(m, _safe_member_path(m, tarball)) for m in archive.getmembers()]
                for member, relative in members:
                    if member.isfile() and relative.parts[0] == BATCHES_DIR:
                        destination = staging.joinpath(*relative.parts)
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        with archive.extractfile(member) as src, open(destination, "wb") as out:
                            shutil.copyfileobj(src, out)
        except (OSError, EOFError, tarfile.TarError) as err:
            raise GankitError(f"cannot extract {tarball}: {err}") from err
        extracted = staging / BATCHES_DIR
        missing = [name for name in BATCH_FILES if not (extracted / name).is_file()]
        if missing:
            raise GankitError(f"{tarball} lacks {BATCHES_DIR}/{', '.join(missing)}")
        final = target / BATCHES_DIR
        # A stale partial folder from an older gankit or a hand copy is replaced.
        if final.exists():
            shutil.rmtree(final)
        os.replace(extracted, final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cifar10_files(data_dir: str | None = None) -> Path | None:
    """The folder holding CIFAR-10's batch files, or else its tarball; None if neither
    is on disk (nothing is fetched)."""
    for directory in search_dirs(DATASET, data_dir):
        for candidate in (directory / BATCHES_DIR, directory):
            if all((candidate / name).is_file() for name in BATCH_FILES):
                return candidate
    return find_files(search_dirs(DATASET, data_dir), [TARBALL])


def _find_batches(data_dir: str | None, download: bool) -> Path:
    """The folder holding every batch file, extracting or downloading the tarball if need be."""
    found = cifar10_files(data_dir)
    if found is not None and all((found / name).is_file() for name in BATCH_FILES):
        return found
    tarball_dir = find_or_fetch(
        DATASET,
        [TARBALL],
        data_dir,
        urls={TARBALL: TARBALL_URL},
        md5={TARBALL: TARBALL_MD5},
        hint=HINT,
        download=download,
    )
    return extract_tarball(tarball_dir / TARBALL, cache_dir(DATASET))


def cifar10(
    *,
    data_dir: str | None = None,
    resolution: int | None = None,
    download: bool = True,
    limit: int | None = None,
) -> DataBundle:
    """CIFAR-10: 50k train / 10k test (3, R, R) images in [-1, 1], 10 classes.

    Args:
        data_dir: a folder holding ``cifar-10-batches-py/`` (or its files) or
            ``cifar-10-python.tar.gz``, searched first; see :mod:`gankit.data.download`
            for the other places searched.
        resolution: 32 (native, the default), or 8/16/28/64 resized bilinearly.
        download: fetch the tarball into the user cache when found nowhere.
        limit: keep only the first N images of each split.
    """
    where = f"data ({DATASET})"
    if limit is not None and limit < 1:
        raise GankitError(f"{where}: limit must be >= 1 or null, got {limit}")
    resolution = NATIVE_RESOLUTION if resolution is None else resolution
    check_resolution(resolution, where)

    directory = _find_batches(data_dir, download)
    meta = _load_pickle(directory / META)
    class_names = [
        n.decode("latin1") if isinstance(n, bytes) else str(n) for n in meta.get("label_names", [])
    ]
    if len(class_names) != 10:
        raise GankitError(f"{directory / META}: expected 10 'label_names', got {class_names}")
    splits = {}
    for split, batches in (("train", TRAIN_BATCHES), ("test", [TEST_BATCH])):
        images, labels = _read_split(directory, batches, limit)
        splits[split] = tensor_split(
            resize_images(to_unit_range(images), resolution, where), labels
        )
    n_train, n_test = len(splits["train"]), len(splits["test"])
    return DataBundle(
        name=DATASET,
        kind="image",
        train=splits["train"],
        test=splits["test"],
        shape=(3, resolution, resolution),
        num_classes=10,
        class_names=class_names,
        info=f"cifar10 from {directory}, {n_train} train / {n_test} test, {resolution}px",
    )
