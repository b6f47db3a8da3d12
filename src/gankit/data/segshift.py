"""``segshift``: synthetic street scenes for segmentation under a domain shift.

The scenes are drawn twice over: in flat colours (the source, a stand-in for a game
engine such as GTA5) and photo-textured, recoloured, noisy and blurred (the target, a
stand-in for a camera such as Cityscapes'). A two-domain source: it returns the source
with the target in ``bundle.domain_b``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.data.base import DataBundle, check_resolution, check_seed, tensor_split
from gankit.data.photos import cut_patches, patch_corners, split_generators
from gankit.errors import GankitError, check_int

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
    corners = patch_corners((n, len(TARGET_PALETTE)), size, generator)
    texture = cut_patches(*(c.gather(1, labels.flatten(1)).view_as(labels) for c in corners), size)
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
    generators = iter(split_generators(seed, 4))
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
