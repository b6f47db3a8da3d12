"""``segfolder:PATH``: real segmentation data, PATH/images with PATH/labels (index PNGs).

Read as the source domain of an adaptation; its target comes from another source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit.data.base import NO_LABEL, DataBundle, check_resolution, check_seed, tensor_split
from gankit.data.folders import (
    UnreadableImage,
    decode_image,
    list_images,
    open_image,
    split_indices,
)
from gankit.errors import GankitError

#: The label value that marks pixels to ignore, as in Cityscapes and Pascal VOC.
IGNORE_VALUE = 255
LABEL_MODES = ("P", "L", "I", "I;16")


def _square(image: Image.Image, resolution: int, resample: Image.Resampling) -> Image.Image:
    """Short side to ``resolution``, then the centre square: the geometry of
    :func:`gankit.data.folders.decode_image`, so labels stay aligned with images."""
    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    return image.resize(size, resample).crop((left, top, left + resolution, top + resolution))


def _read_label(
    path: Path, image_size: tuple[int, int], num_classes: int, resolution: int, where: str
) -> torch.Tensor:
    """One index PNG as an (R, R) int64 label map; 255 becomes ``NO_LABEL``."""
    try:
        with open_image(path) as label:
            label.load()
    except UnreadableImage as err:
        raise GankitError(f"{where}: cannot read label file {path} ({err.reason})") from err
    if label.mode not in LABEL_MODES:
        raise GankitError(
            f"{where}: label file {path} has mode {label.mode}; expected a single-channel "
            f"index image ({', '.join(LABEL_MODES)})"
        )
    if label.size != image_size:
        raise GankitError(
            f"{where}: label file {path} is {label.size[0]}x{label.size[1]} but its image "
            f"is {image_size[0]}x{image_size[1]}"
        )
    # Checked at full size, before resizing can drop a stray pixel.
    values = np.unique(np.asarray(label))
    bad = values[(values >= num_classes) & (values != IGNORE_VALUE)]
    if len(bad):
        raise GankitError(
            f"{where}: label file {path} has values {bad[:5].tolist()} outside "
            f"0..{num_classes - 1}; use {IGNORE_VALUE} for pixels to ignore"
        )
    # Nearest: a blend of two class indices is no class at all.
    square = _square(label.convert("I"), resolution, Image.Resampling.NEAREST)
    labels = torch.from_numpy(np.asarray(square, dtype=np.int64).copy())
    return labels.masked_fill_(labels == IGNORE_VALUE, NO_LABEL)


def _read_segmentation(
    root: Path, num_classes: int, resolution: int, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """root/images and root/labels as (N, 3, R, R) images and (N, R, R) label maps."""
    images_dir, labels_dir = root / "images", root / "labels"
    files = list_images(images_dir) if images_dir.is_dir() else []
    if not files:
        raise GankitError(f"{where}: no images in {images_dir}; expected PATH/images, PATH/labels")
    images, labels = [], []
    for image_path in files:
        label_path = labels_dir / image_path.relative_to(images_dir).with_suffix(".png")
        if not label_path.is_file():
            raise GankitError(f"{where}: missing label file {label_path} for image {image_path}")
        try:
            with open_image(image_path) as header:  # reads the size, not the pixels
                image_size = header.size
            images.append(decode_image(image_path, resolution, channels=3))
        except UnreadableImage as err:
            raise GankitError(f"{where}: cannot read image {image_path} ({err.reason})") from err
        labels.append(_read_label(label_path, image_size, num_classes, resolution, where))
    return torch.stack(images), torch.stack(labels)


def segfolder(
    *,
    path: str,
    num_classes: int | None = None,
    resolution: int = 32,
    test_fraction: float = 0.0,
    seed: int = 0,
) -> DataBundle:
    """Real segmentation data: (3, R, R) images in [-1, 1] with (R, R) int64 label maps.

    Layout: PATH/images/NAME.(png|jpg|...) with PATH/labels/NAME.png, an index PNG
    (mode P or L) holding one class per pixel, 255 for pixels to ignore (``NO_LABEL``).
    The test split is PATH/test/images with PATH/test/labels when present, else a
    ``test_fraction`` of the images. Images are resized bilinearly and labels by nearest
    neighbour, both short side to R then centre-cropped. Everything is decoded into
    memory: label maps are small, and segmentation sets are thousands of images.

    Args:
        path: the folder holding images/ and labels/ (and optionally test/).
        num_classes: required; label values must be in 0..num_classes-1 or 255.
        resolution: side R.
        test_fraction: fraction of images held out as ``test`` when there is no PATH/test.
        seed: seed of that split.

    Raises:
        GankitError: a bad option or layout, or a label file that is missing, of another
            size than its image, or holding a value >= num_classes; each one named.
    """
    where = "data (segfolder)"
    check_resolution(resolution, where)
    check_seed(seed, where)
    if num_classes is None or num_classes < 1:
        raise GankitError(
            f"{where}: num_classes is required: a positive int, the number of classes in the "
            f"label files, got {num_classes}"
        )
    if not 0.0 <= test_fraction < 1.0:
        raise GankitError(f"{where}: test_fraction must be in [0, 1), got {test_fraction}")
    root = Path(path).expanduser()
    has_test_folder = (root / "test").is_dir()
    if has_test_folder and test_fraction > 0:
        raise GankitError(
            f"{where}: {root / 'test'} exists, so test_fraction {test_fraction} is ambiguous; "
            "remove one of them"
        )

    x, y = _read_segmentation(root, num_classes, resolution, where)
    train, test = tensor_split(x, y), None
    if has_test_folder:
        test = tensor_split(*_read_segmentation(root / "test", num_classes, resolution, where))
    elif test_fraction > 0:
        train_idx, test_idx = split_indices(len(x), test_fraction, seed, root)
        train = tensor_split(x[train_idx], y[train_idx])
        test = tensor_split(x[test_idx], y[test_idx])
    return DataBundle(
        name=f"segfolder:{path}",
        kind="segmentation",
        train=train,
        test=test,
        shape=(3, resolution, resolution),
        num_classes=num_classes,
        info=f"segfolder {root}: {len(train)} train / {len(test) if test else 0} test images, "
        f"{num_classes} classes, {resolution}px, in memory",
    )
