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
from PIL import Image


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
    return Image.fromarray(canvas.permute(1, 2, 0).numpy())
