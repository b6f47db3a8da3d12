"""Images as pictures: [-1, 1] tensors to 8-bit pixels, Pillow images and grids.

One leaf module for the conversions that sample grids, translation strips, written
translations and feature extractors all need. The grid is written here rather than taken
from torchvision, which gankit does not depend on (its wheels do not import beside the
CPU build of torch we pin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (any shape) -> uint8 pixels in [0, 255], on the CPU."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_pil(image: torch.Tensor) -> Image.Image:
    """(C, H, W) in [-1, 1] with C = 1 or 3 -> an L or RGB picture."""
    pixels = to_uint8(image)
    if pixels.shape[0] == 1:
        return Image.fromarray(pixels[0].numpy(), mode="L")
    return Image.fromarray(pixels.permute(1, 2, 0).numpy(), mode="RGB")


def image_grid(
    images: torch.Tensor | Sequence[Sequence[torch.Tensor]],
    nrow: int | None = None,
    padding: int = 2,
    scale: int = 1,
    title: str = "",
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
) -> Image.Image:
    """Tile images in [-1, 1] into one RGB picture with white gaps.

    Args:
        images: (N, C, H, W) laid ``nrow`` per row; or rows, each a sequence (or an
            (M, C, H, W) tensor) of (C, H, W) images laid left to right. Rows may differ
            in length, and grey (C = 1) and colour (C = 3) images may share a row.
        nrow: images per row for an (N, C, H, W) tensor; default the square root of N,
            rounded up.
        padding: pixels between tiles (not scaled).
        scale: integer enlargement of each tile by nearest neighbour, so 8x8 digits
            stay visible.
        title: a line of text above the grid (the run and its step).
        row_labels: a label left of each row (a class, "input" or "reconstruction").
        column_labels: a label above each column (a code's value, "translated").
    """
    if isinstance(images, torch.Tensor):
        nrow = nrow or math.ceil(math.sqrt(len(images)))
        rows: Sequence[Sequence[torch.Tensor]] = [
            images[i : i + nrow] for i in range(0, len(images), nrow)
        ]
    else:
        rows = images
    height, width = rows[0][0].shape[-2:]
    step_y, step_x = height * scale + padding, width * scale + padding
    columns = max(len(row) for row in rows)
    canvas = torch.full(
        (3, len(rows) * step_y + padding, columns * step_x + padding), 255, dtype=torch.uint8
    )
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            tile = to_uint8(image).expand(3, -1, -1)
            tile = tile.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
            top, left = padding + r * step_y, padding + c * step_x
            canvas[:, top : top + height * scale, left : left + width * scale] = tile
    picture = Image.fromarray(canvas.permute(1, 2, 0).numpy())
    if title or row_labels or column_labels:
        picture = labelled(picture, (step_y, step_x), padding, title, row_labels, column_labels)
    return picture


def font(size: int = 12) -> ImageFont.ImageFont:
    """Pillow's own font (no file to find): scalable from Pillow 10.1, a bitmap before."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def labelled(
    grid: Image.Image,
    steps: tuple[int, int],
    padding: int,
    title: str = "",
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
) -> Image.Image:
    """``grid`` on a white canvas with a title above it, a label left of each row and
    above each column. ``steps`` is (row height, column width) with the padding, so
    each label sits at the middle of its row or column."""
    face = font()
    measure = ImageDraw.Draw(grid)

    def width(text: str) -> int:
        box = measure.textbbox((0, 0), text, font=face)
        return box[2] - box[0]

    line = 16
    left = max((width(t) for t in row_labels or ()), default=-8) + 8
    top = (line if title else 0) + (line if column_labels else 0)
    canvas = Image.new("RGB", (grid.width + left, grid.height + top + (2 if title else 0)), "white")
    canvas.paste(grid, (left, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((2, 1), title, fill="black", font=face)
    step_y, step_x = steps
    for index, text in enumerate(column_labels or ()):
        middle = left + padding + index * step_x + (step_x - padding) // 2
        draw.text((middle - width(text) // 2, top - line + 1), text, fill="black", font=face)
    for index, text in enumerate(row_labels or ()):
        middle = top + padding + index * step_y + (step_y - padding) // 2
        draw.text((left - 4 - width(text), middle - line // 2 + 2), text, fill="black", font=face)
    return canvas


#: What ``gankit fid`` reads from a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively), in sorted order."""
    return sorted(
        p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def read_images(files: Sequence[Path]) -> torch.Tensor:
    """Image files of one size -> (N, C, H, W) in [-1, 1]: C = 1 if every file is grey,
    else 3 (RGB; an alpha channel is dropped).

    Raises:
        GankitError: a file Pillow cannot read, or one whose size differs from the first.
    """
    from gankit.errors import GankitError

    pictures = []
    for file in files:
        try:
            with Image.open(file) as picture:
                picture.load()
        except Exception as err:
            raise GankitError(f"cannot read image '{file}': {type(err).__name__}") from None
        pictures.append(picture)
    grey = all(picture.mode in ("L", "1", "I;16", "I") for picture in pictures)
    arrays = []
    for file, picture in zip(files, pictures):
        if picture.size != pictures[0].size:
            raise GankitError(
                f"image '{file}' is {picture.size[0]}x{picture.size[1]}, and '{files[0]}' is "
                f"{pictures[0].size[0]}x{pictures[0].size[1]}; one set holds images of one size"
            )
        array = np.asarray(picture.convert("L" if grey else "RGB"), dtype=np.uint8)
        arrays.append(array[None] if grey else array.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(arrays)).float() / 127.5 - 1.0


def array_images(array: np.ndarray, name: str) -> torch.Tensor:
    """An image array -> (N, C, H, W) float in [-1, 1].

    Layouts: (N, H, W) grey, (N, H, W, C) or (N, C, H, W) with C = 1 or 3. uint8 arrays
    hold pixels in [0, 255]; float arrays hold [-1, 1], as ``gankit sample --out x.npy``
    writes them.

    Raises:
        GankitError: any other layout or range.
    """
    from gankit.errors import GankitError

    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise GankitError(
            f"'{name}' has shape {array.shape}; images need (N, H, W), (N, H, W, C) or "
            "(N, C, H, W) with C = 1 or 3"
        )
    if array.dtype == np.uint8:
        return torch.from_numpy(np.array(array)).float() / 127.5 - 1.0  # a copy: writable
    if array.dtype.kind != "f":
        raise GankitError(f"'{name}' holds {array.dtype}; images need uint8 or float arrays")
    images = torch.from_numpy(np.array(array, dtype=np.float32))  # a copy: writable
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)) or low < -1.01 or high > 1.01:
        raise GankitError(
            f"'{name}' holds floats in [{low:.3g}, {high:.3g}]; float images need [-1, 1] "
            "(or give uint8 pixels)"
        )
    return images
