"""Pictures that explain themselves: titles, row and column labels drawn into grids."""

from __future__ import annotations

import numpy as np
import torch

from gankit.images import image_grid


def pixels(picture) -> np.ndarray:
    return np.asarray(picture.convert("L"), dtype=np.int16)


def test_labels_go_around_the_grid_and_leave_it_untouched():
    images = torch.rand(6, 1, 8, 8) * 2 - 1
    plain = pixels(image_grid(images, nrow=3, scale=4))
    labelled = pixels(
        image_grid(
            images, nrow=3, scale=4, title="run step 10",
            row_labels=["input", "reconstruction"], column_labels=["-1", "0", "+1"],
        )
    )  # fmt: skip
    rows, columns = plain.shape
    top, left = labelled.shape[0] - rows - 2, labelled.shape[1] - columns
    assert top == 32 and left > 40  # a title line and a column-label line; the row labels
    assert np.array_equal(labelled[top : top + rows, left:], plain)
    # the text is drawn: dark pixels in the title line, beside each row, above each column
    assert labelled[:16].min() < 100
    row_height = (rows - 2) // 2
    for row in range(2):
        band = labelled[top + 2 + row * row_height : top + (row + 1) * row_height, : left - 2]
        assert band.min() < 100, f"no label beside row {row}"
    column_width = (columns - 2) // 3
    for column in range(3):
        band = labelled[
            16:top, left + 2 + column * column_width : left + (column + 1) * column_width
        ]
        assert band.min() < 100, f"no label above column {column}"


def test_no_labels_no_margin():
    images = torch.zeros(4, 3, 8, 8)
    assert image_grid(images).size == (2 * 10 + 2, 2 * 10 + 2)
