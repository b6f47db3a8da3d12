"""Two-domain data sources, for unpaired translation and domain adaptation.

* ``digits-m`` and ``fashion-m`` follow the MNIST-M recipe of Ganin et al. (2016),
  "Domain-Adversarial Training of Neural Networks": each grey image x in [0, 1] is
  blended with a random patch p of a colour photo as ``|x - p|`` per channel, so strokes
  invert the photo and the background keeps it. Ganin cut the patches from BSDS500; we
  cut them from the two photos scikit-learn ships (``load_sample_images``), offline.
* ``unpaired:PATH`` reads CycleGAN's layout: PATH/trainA, trainB, testA, testB.
* ``segshift`` draws street-like scenes twice over: in flat colours (the source, a
  stand-in for a game engine such as GTA5) and photo-textured, recoloured, noisy and
  blurred (the target, a stand-in for a camera such as Cityscapes').
* ``segfolder:PATH`` reads real segmentation data: PATH/images and PATH/labels.

Two-domain sources return domain A (the source) with domain B in ``bundle.domain_b``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.data.base import NO_LABEL, DataBundle, check_resolution, check_seed, tensor_split
from gankit.data.folders import (
    MODES,
    UnreadableImage,
    _split_indices,
    decode_image,
    folder,
    list_images,
    open_image,
)
from gankit.errors import GankitError, check_int


# --------------------------------------------------------------------------- shared
def _generators(seed: int, count: int) -> list[torch.Generator]:
    """``count`` independent generators derived from ``seed``, one per split and domain,
    so the size of one split never changes the images of another."""
    parent = torch.Generator().manual_seed(seed)
    seeds = torch.randint(2**62, (count,), generator=parent)
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


@functools.cache
def sample_photos() -> torch.Tensor:
    """scikit-learn's two sample photos (china.jpg, flower.jpg) as (2, 427, 640, 3) uint8."""
    from sklearn.datasets import load_sample_images

    return torch.from_numpy(np.stack(load_sample_images().images))


def _patch_corners(
    shape: tuple[int, ...], size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (photo, top, left) corners of ``size`` x ``size`` patches, each of ``shape``."""
    count, height, width, _ = sample_photos().shape
    return (
        torch.randint(count, shape, generator=generator),
        torch.randint(height - size + 1, shape, generator=generator),
        torch.randint(width - size + 1, shape, generator=generator),
    )


def _cut(which: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """Read (N, size, size) pixels of the sample photos in one advanced-indexing gather.

    Pixel (i, j) of image k comes from photo ``which[k, i, j]`` at row ``top[k, i, j] + i``
    and column ``left[k, i, j] + j``; the three index tensors broadcast to (N, size, size).

    Returns:
        (N, 3, size, size) float in [0, 1].
    """
    offsets = torch.arange(size)
    pixels = sample_photos()[which, top + offsets[:, None], left + offsets[None, :]]
    return pixels.permute(0, 3, 1, 2).contiguous().float().div_(255.0)


def random_patches(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` square crops of the sample photos, each of a random photo at a random place.

    Returns:
        (n, 3, size, size) float in [0, 1].
    """
    return _cut(*_patch_corners((n, 1, 1), size, generator), size)


def blend_with_photos(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The MNIST-M blend ``|x - p|`` per channel, in [0, 1] pixel space.

    Args:
        images: (N, 1, R, R) grey images in [-1, 1].

    Returns:
        (N, 3, R, R) colour images in [-1, 1].
    """
    n, _, size, _ = images.shape
    blended = random_patches(n, size, generator)
    blended.sub_(images.add(1.0).div(2.0)).abs_()
    return blended.mul_(2.0).sub_(1.0)


def _blend_bundle(grey: DataBundle, name: str, seed: int) -> DataBundle:
    """``grey`` with every image blended; labels, split and class names kept."""
    train_generator, test_generator = _generators(seed, 2)

    def blend(split, generator):
        x, y = split.tensors
        return tensor_split(blend_with_photos(x, generator), y)

    return DataBundle(
        name=name,
        kind="image",
        train=blend(grey.train, train_generator),
        test=blend(grey.test, test_generator) if grey.test is not None else None,
        shape=(3, *grey.shape[1:]),
        num_classes=grey.num_classes,
        class_names=grey.class_names,
        info=f"{grey.info}; blended with patches of scikit-learn's sample photos, seed {seed}",
    )


# --------------------------------------------------------------------------- MNIST-M style
def digits_m(*, resolution: int = 16, seed: int = 0) -> DataBundle:
    """scikit-learn's digits blended MNIST-M style: (3, R, R) colour images in [-1, 1].

    Labels and the fixed train/test split are those of ``digits`` at the same resolution.

    Args:
        resolution: side R, and the size of the photo patches; 16 by default so the
            photo texture has room to show.
        seed: chooses the patches; train and test draw independent positions.
    """
    from gankit.data.digits import digits

    check_resolution(resolution, "data (digits-m)")
    check_seed(seed, "data (digits-m)")
    return _blend_bundle(digits(resolution=resolution), "digits-m", seed)


def fashion_m(
    *,
    data_dir: str | None = None,
    resolution: int = 28,
    download: bool = True,
    limit: int | None = None,
    seed: int = 0,
) -> DataBundle:
    """Fashion-MNIST blended MNIST-M style: (3, R, R) colour images in [-1, 1], 10 classes.

    Args:
        data_dir: a folder with the four IDX files; see :func:`gankit.data.idx.fashion_mnist`.
        resolution: side R, and the size of the photo patches; 28 is native.
        download: fetch the files into the user cache when found nowhere.
        limit: keep only the first N images of each split.
        seed: chooses the patches; train and test draw independent positions.
    """
    from gankit.data.idx import fashion_mnist

    check_resolution(resolution, "data (fashion-m)")
    check_seed(seed, "data (fashion-m)")
    grey = fashion_mnist(data_dir=data_dir, resolution=resolution, download=download, limit=limit)
    return _blend_bundle(grey, "fashion-m", seed)


# --------------------------------------------------------------------------- unpaired folders
def unpaired(
    *, path: str, resolution: int = 32, channels: int = 3, skip_bad: bool = False
) -> DataBundle:
    """Two unpaired image domains in CycleGAN's layout: (C, R, R) images in [-1, 1].

    PATH/trainA and PATH/trainB are required; PATH/testA and PATH/testB are optional
    (a missing one leaves that domain's ``test`` as None, noted in ``info``). Images
    sit directly inside each folder and are unlabelled (``NO_LABEL``).

    Args:
        path: the folder holding trainA, trainB, testA, testB.
        resolution: side R: short side resized, centre cropped (as ``folder:``).
        channels: 1 for grayscale, 3 for RGB.
        skip_bad: skip unreadable files instead of failing.

    Returns:
        Domain A's bundle, with domain B's as ``domain_b``.

    Raises:
        GankitError: a bad option, a missing trainA/trainB, or an unreadable image.
    """
    where = "data (unpaired)"
    check_resolution(resolution, where)
    if channels not in MODES:
        raise GankitError(f"{where}: channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    root = Path(path).expanduser()
    for required in ("trainA", "trainB"):
        if not (root / required).is_dir():
            raise GankitError(
                f"{where}: missing folder '{required}' in {root}; expected the CycleGAN "
                "layout PATH/trainA, PATH/trainB and optionally PATH/testA, PATH/testB"
            )

    def read(subfolder: str):
        # The `folder:` source reads each folder: decoded into memory when it holds at
        # most 20000 images (every CycleGAN dataset does), streamed from disk otherwise.
        if not (root / subfolder).is_dir():
            return None
        images = folder(
            path=str(root / subfolder), resolution=resolution, channels=channels, skip_bad=skip_bad
        )
        return images.train

    bundles = {}
    for domain in "AB":
        train, test = read(f"train{domain}"), read(f"test{domain}")
        info = f"unpaired {root} domain {domain}: {len(train)} train / "
        info += f"{len(test)} test images" if test is not None else f"no test{domain} folder"
        bundles[domain] = DataBundle(
            name=f"unpaired:{path}" + ("" if domain == "A" else " (B)"),
            kind="image",
            train=train,
            test=test,
            shape=(channels, resolution, resolution),
            info=f"{info}, {resolution}px",
        )
    bundles["A"].domain_b = bundles["B"]
    return bundles["A"]


# --------------------------------------------------------------------------- segshift
SEGSHIFT_CLASSES = ["sky", "road", "building", "vegetation", "object"]
SKY, ROAD, BUILDING, VEGETATION, OBJECT = range(5)
#: The most scenes per domain and split: at 64 px, 10,000 scenes with their label maps are
#: 0.8 GB and take about 20 s to draw on one core; the presets draw 2,000.
MAX_SCENES = 10_000

#: Source colours, RGB in [0, 1]: one flat colour per class, as a game engine renders.
SOURCE_PALETTE = torch.tensor(
    [
        [0.45, 0.70, 0.95],  # sky: light blue
        [0.40, 0.40, 0.42],  # road: grey asphalt
        [0.70, 0.35, 0.25],  # building: brick
        [0.20, 0.60, 0.20],  # vegetation: green
        [0.95, 0.85, 0.10],  # object: a yellow car
    ]
)
#: Target tints: the same classes under dusk light, so colour alone does not transfer.
TARGET_PALETTE = torch.tensor(
    [
        [0.85, 0.55, 0.40],  # sky: orange
        [0.25, 0.22, 0.30],  # road: dark, wet
        [0.55, 0.60, 0.70],  # building: grey-blue concrete
        [0.35, 0.40, 0.15],  # vegetation: olive
        [0.80, 0.15, 0.20],  # object: a red car
    ]
)
#: Scenes drawn per batch: bounds the (n, shapes, H, W) masks for large n_train.
SCENES_PER_CHUNK = 1024
TARGET_NOISE_STD = 0.05


def draw_layouts(n: int, size: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Random street-like label maps, drawn with broadcast masks (no per-scene loop).

    Each scene is sky above a random horizon and road below it; then, painted in class
    order so later classes cover earlier ones, 1-4 buildings standing on the horizon,
    0-3 round trees on the horizon and 1-2 cars on the road. Only classes below
    ``num_classes`` are painted.

    Returns:
        (n, size, size) int64 class indices.
    """

    def uniform(low: float, high: float, shapes: int) -> torch.Tensor:
        """(n, shapes, 1, 1) draws in [low, high): one per shape, broadcast over pixels."""
        return low + (high - low) * torch.rand(n, shapes, 1, 1, generator=generator)

    def present(shapes: int, probability: float) -> torch.Tensor:
        return torch.rand(n, shapes, 1, 1, generator=generator) < probability

    # Pixel centres in [0, 1]: rows (S, 1) and columns (1, S).
    centres = (torch.arange(size) + 0.5) / size
    ys, xs = centres[:, None], centres[None, :]

    def boxes(top, bottom, left, right, shown) -> torch.Tensor:
        """(n, S, S) union of each scene's shown boxes; edges and shown are (n, k, 1, 1).
        Rows and columns are tested apart, so only one op runs at (n, k, S, S)."""
        rows = (ys >= top) & (ys < bottom) & shown
        return (rows & (xs >= left) & (xs < right)).any(1)

    horizon = uniform(0.35, 0.6, 1)  # (n, 1, 1, 1)
    labels = torch.where((ys < horizon[:, 0]).expand(n, size, size), SKY, ROAD)
    if num_classes > BUILDING:
        left, width, height = uniform(-0.1, 0.9, 4), uniform(0.1, 0.3, 4), uniform(0.1, 0.35, 4)
        shown = present(4, 0.7)
        shown[:, 0] = True
        buildings = boxes(horizon - height, horizon, left, left + width, shown)
        labels = torch.where(buildings, BUILDING, labels)
    if num_classes > VEGETATION:
        # A hidden tree gets radius 0, which covers no pixel.
        radius = uniform(0.06, 0.14, 3) * present(3, 0.6)
        x_centre, y_centre = uniform(0.0, 1.0, 3), horizon - radius * uniform(0.3, 1.0, 3)
        trees = ((xs - x_centre) ** 2 + (ys - y_centre) ** 2 < radius**2).any(1)
        labels = torch.where(trees, VEGETATION, labels)
    if num_classes > OBJECT:
        width, left = uniform(0.15, 0.3, 2), uniform(-0.1, 0.9, 2)
        bottom = horizon + 0.15 + (1.0 - horizon) * uniform(0.0, 0.85, 2)
        shown = present(2, 0.5)
        shown[:, 0] = True
        cars = boxes(bottom - width / 2, bottom, left, left + width, shown)
        labels = torch.where(cars, OBJECT, labels)
    return labels


def render_source(labels: torch.Tensor) -> torch.Tensor:
    """(N, H, W) label maps -> (N, 3, H, W) images in [-1, 1], one flat colour per class."""
    return SOURCE_PALETTE[labels].permute(0, 3, 1, 2).mul(2.0).sub(1.0)


def render_target(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, H, W) label maps -> (N, 3, H, W) images in [-1, 1], in a camera-like style.

    Each class of each scene gets its own photo texture (a random sample-photo patch)
    mixed half-way with the class's dusk tint; then, per image, a random exposure,
    Gaussian pixel noise and a 3x3 binomial blur, as a cheap camera would add.
    """
    n, size = labels.shape[0], labels.shape[-1]
    # One patch corner per scene and class, looked up by each pixel's class: every
    # class region is textured from its own patch in a single gather.
    corners = _patch_corners((n, len(TARGET_PALETTE)), size, generator)
    texture = _cut(*(c.gather(1, labels.flatten(1)).view_as(labels) for c in corners), size)
    image = 0.5 * TARGET_PALETTE[labels].permute(0, 3, 1, 2) + 0.5 * texture
    exposure = 0.7 + 0.5 * torch.rand(n, 1, 1, 1, generator=generator)
    image = image * exposure + TARGET_NOISE_STD * torch.randn(image.shape, generator=generator)
    binomial = torch.tensor([1.0, 2.0, 1.0])
    kernel = (binomial[:, None] * binomial[None, :] / 16.0).expand(3, 1, 3, 3)
    image = F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    return image.clamp(0.0, 1.0).mul(2.0).sub(1.0)


def _scenes(
    n: int, size: int, num_classes: int, generator: torch.Generator, target: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """n scenes of one domain and split: (n, 3, S, S) images and (n, S, S) labels."""
    images, labels = [], []
    for start in range(0, n, SCENES_PER_CHUNK):
        layout = draw_layouts(min(SCENES_PER_CHUNK, n - start), size, num_classes, generator)
        images.append(render_target(layout, generator) if target else render_source(layout))
        labels.append(layout)
    return torch.cat(images), torch.cat(labels)


def segshift(
    *,
    resolution: int = 32,
    num_classes: int = 5,
    n_train: int = 2000,
    n_test: int = 500,
    seed: int = 0,
) -> DataBundle:
    """Synthetic street scenes for segmentation under a domain shift.

    Source (domain A): flat colours per class. Target (domain B): other random layouts
    of the same kind, rendered with per-class photo textures, a shifted palette, noise
    and blur. Both carry (H, W) int64 label maps; the target's are for evaluation only
    (an adaptation method must not train on them).

    Args:
        resolution: side R of the (3, R, R) images in [-1, 1].
        num_classes: 2..5, the first classes of sky, road, building, vegetation, object.
        n_train: scenes per domain in the train split (at most 10,000).
        n_test: scenes per domain in the test split (0: no test split; at most 10,000).
        seed: draws layouts and textures; the four domain/split parts are independent.

    Returns:
        The source bundle (``kind="segmentation"``), with the target as ``domain_b``.
    """
    where = "data (segshift)"
    check_resolution(resolution, where)
    if not 2 <= num_classes <= len(SEGSHIFT_CLASSES):
        raise GankitError(
            f"{where}: num_classes must be in 2..{len(SEGSHIFT_CLASSES)} "
            f"({', '.join(SEGSHIFT_CLASSES)}), got {num_classes}"
        )
    check_int(f"{where}: n_train", n_train, 1, MAX_SCENES)
    check_int(f"{where}: n_test", n_test, 0, MAX_SCENES)
    check_seed(seed, where)

    # Source train, source test, target train, target test: independent draws.
    generators = iter(_generators(seed, 4))
    bundles = {}
    for domain, target in (("source", False), ("target", True)):
        train_generator, test_generator = next(generators), next(generators)
        train = tensor_split(*_scenes(n_train, resolution, num_classes, train_generator, target))
        test = None
        if n_test:
            test = tensor_split(*_scenes(n_test, resolution, num_classes, test_generator, target))
        style = "photo-textured, recoloured, noisy, blurred" if target else "flat colours"
        bundles[domain] = DataBundle(
            name="segshift" if domain == "source" else "segshift (target)",
            kind="segmentation",
            train=train,
            test=test,
            shape=(3, resolution, resolution),
            num_classes=num_classes,
            class_names=SEGSHIFT_CLASSES[:num_classes],
            info=f"segshift {domain} ({style}): {n_train} train / {n_test} test scenes, "
            f"{resolution}px, {num_classes} classes, seed {seed}",
        )
    bundles["source"].domain_b = bundles["target"]
    return bundles["source"]


# --------------------------------------------------------------------------- segfolder
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
        train_idx, test_idx = _split_indices(len(x), test_fraction, seed, root)
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
