"""MNIST and Fashion-MNIST, read from their IDX files.

The IDX format (LeCun et al.) is a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then
NDIM big-endian uint32 dimensions, then the values, big-endian, row-major. Files are
usually gzipped; both forms are read. The reader is written here rather than borrowed
from torchvision so gankit does not depend on it.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from gankit.data.base import (
    DataBundle,
    check_resolution,
    open_regular,
    resize_images,
    tensor_split,
    to_unit_range,
)
from gankit.data.download import find_files, find_or_fetch, locate, search_dirs
from gankit.errors import GankitError

#: IDX type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

GZIP_MAGIC = b"\x1f\x8b"

#: The four files of an MNIST-like dataset: split -> (images, labels).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
NATIVE_RESOLUTION = 28

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: MD5s of the official ``.gz`` files, as published by Zalando Research and listed in
#: torchvision's ``FashionMNIST.resources``.
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

# yann.lecun.com often refuses downloads; this mirror is the one torchvision falls back to.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
#: MD5s of the standard MNIST ``.gz`` files, as listed in torchvision's ``MNIST.resources``.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}


#: The most bytes of values an IDX file may declare. The largest MNIST-like file,
#: EMNIST ByClass's training images, holds 0.64 GB; a header that declares more is
#: refused before anything is decompressed, so a small gzip cannot expand without bound.
MAX_IDX_BYTES = 2**30


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file, gzipped or not (detected from its first bytes).

    The header is read first; the values are then read in exactly the number of bytes
    its dimensions give, never more, and the file must end there.

    Returns:
        A tensor with the file's dimensions, e.g. (N, 28, 28) uint8 for images or
        (N,) uint8 for labels; multi-byte types are converted to native byte order.

    Raises:
        GankitError: naming the file, when it is unreadable, not IDX, truncated, longer
            than its header says, or declares more than ``MAX_IDX_BYTES`` of values.
    """
    path = Path(path)
    try:
        with open_regular(path) as raw_file:
            compressed = raw_file.read(2) == GZIP_MAGIC
            raw_file.seek(0)
            with gzip.GzipFile(fileobj=raw_file) if compressed else raw_file as handle:
                return _read_idx_stream(handle, path)
    except (OSError, EOFError, zlib.error) as err:
        raise GankitError(f"cannot read IDX file {path}: {err}") from err


def _read_idx_stream(handle: BinaryIO, path: Path) -> torch.Tensor:
    magic = handle.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
        raise GankitError(
            f"{path} is not an IDX file: bad magic number {magic.hex() or '(empty)'}; "
            f"expected 0000 then a type code in {sorted(hex(c) for c in IDX_DTYPES)}"
        )
    dtype, ndim = np.dtype(IDX_DTYPES[magic[2]]), magic[3]
    header = handle.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise GankitError(f"IDX file {path} is truncated: its header needs {4 + 4 * ndim} bytes")
    dims = struct.unpack(f">{ndim}I", header)
    size = math.prod(dims) * dtype.itemsize
    if size > MAX_IDX_BYTES:
        raise GankitError(
            f"IDX file {path} declares dimensions {dims}: {size} bytes of values, more than "
            f"the {MAX_IDX_BYTES} an IDX file may hold"
        )
    values = handle.read(size)
    if len(values) < size:
        raise GankitError(
            f"IDX file {path} is truncated: its dimensions {dims} need {size} bytes of values, "
            f"it holds {len(values)}"
        )
    if handle.read(1):  # one byte past the values, not the rest: it may never end
        raise GankitError(
            f"IDX file {path} is corrupt: it holds more than the {size} bytes of values its "
            f"dimensions {dims} give"
        )
    array = np.frombuffer(values, dtype=dtype).reshape(dims)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def _read_split(
    directory: Path, images_name: str, labels_name: str, limit: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 28, 28) uint8 images and (N,) int64 labels of one split, checked."""
    images_path, labels_path = locate(directory, images_name), locate(directory, labels_name)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != torch.uint8 or images.ndim != 3:
        raise GankitError(
            f"{images_path}: expected uint8 images of shape (N, H, W), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise GankitError(
            f"{labels_path}: expected {len(images)} labels to match {images_path}, "
            f"got shape {tuple(labels.shape)}"
        )
    if len(labels) and not (int(labels.min()) >= 0 and int(labels.max()) <= 9):
        raise GankitError(f"{labels_path}: labels must be in 0..9")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels.long()


def _idx_bundle(
    dataset: str,
    md5: dict[str, str],
    base_url: str,
    subdirs: tuple[str, ...],
    hint: str,
    class_names: list[str],
    data_dir: str | None,
    resolution: int | None,
    download: bool,
    limit: int | None,
) -> DataBundle:
    where = f"data ({dataset})"
    if limit is not None and limit < 1:
        raise GankitError(f"{where}: limit must be >= 1 or null, got {limit}")
    resolution = NATIVE_RESOLUTION if resolution is None else resolution
    # Before any file is read or downloaded, so a typo fails fast.
    check_resolution(resolution, where)

    filenames = [name for pair in IDX_FILES.values() for name in pair]
    directory = find_or_fetch(
        dataset,
        filenames,
        data_dir,
        urls={name: f"{base_url}{name}.gz" for name in filenames},
        md5=md5,
        hint=hint,
        download=download,
        subdirs=subdirs,
    )
    splits = {}
    for split, (images_name, labels_name) in IDX_FILES.items():
        images, labels = _read_split(directory, images_name, labels_name, limit)
        # Slice before converting: float32 is 4x the bytes of the uint8 file.
        pixels = resize_images(to_unit_range(images.unsqueeze(1)), resolution, where)
        splits[split] = tensor_split(pixels, labels)
    n_train, n_test = len(splits["train"]), len(splits["test"])
    return DataBundle(
        name=dataset,
        kind="image",
        train=splits["train"],
        test=splits["test"],
        shape=(1, resolution, resolution),
        num_classes=10,
        class_names=list(class_names),
        info=f"{dataset} from {directory}, {n_train} train / {n_test} test, {resolution}px",
    )


def fashion_mnist(
    *,
    data_dir: str | None = None,
    resolution: int | None = None,
    download: bool = True,
    limit: int | None = None,
    channels: int = 1,
) -> DataBundle:
    """Zalando's Fashion-MNIST: 60k train / 10k test (C, R, R) images in [-1, 1], 10 classes.

    Args:
        data_dir: a folder with the four IDX files (plain or ``.gz``), searched first;
            see :mod:`gankit.data.download` for the other places searched.
        resolution: 28 (native, the default), or 8/16/32/64 resized bilinearly.
        download: fetch the files into the user cache when found nowhere.
        limit: keep only the first N images of each split.
        channels: 1 (grey), or 3: the grey image in each of R, G, B, to pair with an RGB
            domain such as ``fashion-m``.
    """
    if channels not in (1, 3):
        raise GankitError(f"data (fashion-mnist): channels must be 1 or 3, got {channels}")
    bundle = _idx_bundle(
        "fashion-mnist",
        FASHION_MNIST_MD5,
        FASHION_MNIST_URL,
        subdirs=("FashionMNIST/raw",),
        hint="apt-get install dataset-fashion-mnist, or pass --data-dir",
        class_names=FASHION_MNIST_CLASSES,
        data_dir=data_dir,
        resolution=resolution,
        download=download,
        limit=limit,
    )
    if channels == 1:
        return bundle

    def colour(split):
        x, y = split.tensors
        return tensor_split(x.expand(-1, channels, -1, -1), y)

    return dataclasses.replace(
        bundle,
        train=colour(bundle.train),
        test=colour(bundle.test),
        shape=(channels, *bundle.shape[1:]),
    )


def mnist(
    *,
    data_dir: str | None = None,
    resolution: int | None = None,
    download: bool = True,
    limit: int | None = None,
) -> DataBundle:
    """LeCun's MNIST digits: 60k train / 10k test (1, R, R) images in [-1, 1], 10 classes.

    Args:
        data_dir: a folder with the four IDX files (plain or ``.gz``), searched first;
            see :mod:`gankit.data.download` for the other places searched.
        resolution: 28 (native, the default), or 8/16/32/64 resized bilinearly.
        download: fetch the files into the user cache when found nowhere.
        limit: keep only the first N images of each split.
    """
    return _idx_bundle(
        "mnist",
        MNIST_MD5,
        MNIST_URL,
        subdirs=("MNIST/raw",),
        hint=f"download the four .gz files from {MNIST_URL} into one of these, or pass --data-dir",
        class_names=[str(d) for d in range(10)],
        data_dir=data_dir,
        resolution=resolution,
        download=download,
        limit=limit,
    )


def fashion_mnist_files(data_dir: str | None = None) -> Path | None:
    """The folder holding Fashion-MNIST's four IDX files, or None (nothing is fetched)."""
    filenames = [name for pair in IDX_FILES.values() for name in pair]
    return find_files(search_dirs("fashion-mnist", data_dir, ("FashionMNIST/raw",)), filenames)


def mnist_files(data_dir: str | None = None) -> Path | None:
    """The folder holding MNIST's four IDX files, or None (nothing is fetched)."""
    filenames = [name for pair in IDX_FILES.values() for name in pair]
    return find_files(search_dirs("mnist", data_dir, ("MNIST/raw",)), filenames)
