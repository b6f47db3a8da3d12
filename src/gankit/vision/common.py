"""What DeepDream, style transfer and ``gankit inspect`` share: reading a picture (a
file, or one of scikit-learn's sample photos), the backbone's input, checks of the
user's numbers and layer lists, and writing PNGs atomically without overwriting."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.errors import GankitError, check_int, choices
from gankit.explore.pictures import pyplot
from gankit.files import atomic_write, refuse_inputs

#: The photos that scikit-learn ships (``sklearn.datasets.load_sample_image``): offline,
#: licensed for reuse (Creative Commons, see scikit-learn's ``datasets/images/README.txt``).
SAMPLE_PHOTOS = ("china.jpg", "flower.jpg")
#: The smallest side the InceptionV3 reads: its stem and first reductions need 75 px.
MIN_INCEPTION_SIZE = 75
#: The largest picture side: a 1024 px DeepDream takes minutes per octave on a CPU, and
#: its activations and gradients stay under a few GiB.
MAX_SIZE = 1024


def check_positive(what: str, value: float) -> None:
    """Refuse a number that is not finite and > 0, naming the option."""
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise GankitError(f"{what} must be a positive number, got {value}")


def parse_layers(text: str | Sequence[str], option: str = "--layers") -> list[str]:
    """``"mixed_3,mixed_5"`` -> ``["mixed_3", "mixed_5"]``; refuses an empty list."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    if not names:
        raise GankitError(f"{option} is empty; give comma-separated layer names")
    return names


def read_picture(source: str | Path | None, size: int, default: str = "china.jpg") -> torch.Tensor:
    """A picture -> (1, 3, H, W) in [-1, 1], its longer side resized to ``size``.

    Args:
        source: an image file; ``sample:NAME`` or None (``default``) for one of
            scikit-learn's sample photos.
        size: the longer side in pixels.

    Raises:
        GankitError: a missing or unreadable file (or one over gankit's image bounds),
            a ``size`` outside [1, ``MAX_SIZE``], or an unknown sample photo.
    """
    check_int("--size", size, 1, MAX_SIZE)
    if source is None or str(source).startswith("sample:"):
        name = default if source is None else str(source)[len("sample:") :]
        if name not in SAMPLE_PHOTOS:
            raise GankitError(f"unknown sample photo '{name}'; valid: {choices(SAMPLE_PHOTOS)}")
        from sklearn.datasets import load_sample_image

        picture = Image.fromarray(load_sample_image(name))
    else:
        from gankit.data.folders import UnreadableImage, open_image

        path = Path(source)
        if not path.exists():
            raise GankitError(f"image '{path}' does not exist")
        try:  # within gankit's image bounds: a regular file of at most 8192 x 8192 pixels
            with open_image(path) as opened:
                picture = opened.convert("RGB")
        except UnreadableImage as err:
            raise GankitError(f"cannot read image '{path}' ({err.reason})") from None
    scale = size / max(picture.size)
    width, height = (max(1, round(side * scale)) for side in picture.size)
    picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    array = np.asarray(picture, dtype=np.uint8).transpose(2, 0, 1).copy()
    return torch.from_numpy(array)[None].float() / 127.5 - 1.0


def network_input(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> the InceptionV3's input at the same size, with gradients."""
    from gankit.backbones import InceptionV3

    return InceptionV3.prepare(images, quantize=False, resize=False)


def check_inception_size(what: str, height: int, width: int) -> None:
    if min(height, width) < MIN_INCEPTION_SIZE:
        raise GankitError(
            f"{what} is {width}x{height} px; the InceptionV3 needs at least "
            f"{MIN_INCEPTION_SIZE} px on each side (raise --size)"
        )


def resize(images: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) to ``shape`` = (H', W')."""
    return F.interpolate(images, size=shape, mode="bilinear", align_corners=False)


def check_output(out: Path, overwrite: bool, option: str = "--out", inputs=()) -> Path:
    """Refuse to replace an existing file unless ``overwrite``, and always refuse to
    replace one of the command's ``inputs``."""
    out = Path(out)
    refuse_inputs([out], [i for i in inputs if isinstance(i, (str, Path))], option)
    if out.exists() and not out.is_file():
        raise GankitError(f"{option} '{out}' is not a file; name a PNG file")
    if out.exists() and not overwrite:
        raise GankitError(f"{option} '{out}' exists; pass --overwrite to replace it")
    return out


def save_figure(fig, out: Path) -> Path:
    """Save a matplotlib figure as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    atomic_write(Path(out), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(out)


def show(ax, image: torch.Tensor, title: str) -> None:
    """Draw a (C, H, W) image in [-1, 1] on ``ax`` with ``title``, without ticks."""
    pixels = ((image.detach().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()
    ax.imshow(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def save_panels(out: Path, panels: Sequence[tuple[str, torch.Tensor]], title: str) -> Path:
    """Images side by side, each labelled, under one title; written atomically as a PNG.

    Args:
        panels: (label, (C, H, W) image in [-1, 1]) pairs, left to right.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), dpi=110)
    for ax, (label, image) in zip(np.atleast_1d(axes), panels):
        show(ax, image, label)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def save_png(out: Path, image: torch.Tensor) -> Path:
    """A (C, H, W) image in [-1, 1] -> an 8-bit PNG at its own size, written atomically."""
    from gankit.images import to_pil

    atomic_write(Path(out), lambda tmp: to_pil(image).save(tmp, format="PNG"))
    return Path(out)
