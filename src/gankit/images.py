"""Images as pictures: [-1, 1] tensors to 8-bit pixels, Pillow images and grids.

One leaf module for the conversions that sample grids, translation strips, written
translations and feature extractors all need. The grid is written here rather than taken
from torchvision, which gankit does not depend on (its wheels do not import beside the
CPU build of torch we pin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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
