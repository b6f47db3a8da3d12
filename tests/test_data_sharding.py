"""Data under several ranks: within an epoch the ranks' batches are disjoint and together
cover the epoch, for a streamed folder (read from disk through a DataLoader) as for an
in-memory source.

Each rank of W computes the same global batch of W·B indices (one seed, one permutation
per epoch) and keeps its own slice of B (``training/data.py``'s ``BatchStream``). The
ranks are built here in one process, as each of W processes builds its own stream.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from gankit.data.folders import folder
from gankit.training.data import BatchStream

WORLD, BATCH = 2, 3
#: 25 images: an epoch is 25 // (2·3) = 4 global batches of 6, the 25th item waits
#: for the next epoch's permutation, as with one process and batch 6
N_IMAGES = 25


def _numbered_folder(root) -> None:
    """Image ``i`` is a flat gray of level 10·i, so a batch says which items it holds."""
    root.mkdir()
    for i in range(N_IMAGES):
        Image.new("L", (8, 8), 10 * i).save(root / f"{i:02d}.png")


def _items(x: torch.Tensor) -> list[int]:
    """The image numbers of (N, 1, R, R) images in [-1, 1]."""
    return [round(float(level)) for level in (x.mean(dim=(1, 2, 3)) + 1) * 127.5 / 10]


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "in-memory"])
@pytest.mark.parametrize("batches_per_step", [1, 2])
def test_ranks_see_disjoint_items_that_cover_the_epoch(tmp_path, streamed, batches_per_step):
    _numbered_folder(tmp_path / "numbered")
    bundle = folder(
        path=str(tmp_path / "numbered"), resolution=8, channels=1,
        in_memory_limit=1 if streamed else 100,
    )  # fmt: skip
    assert isinstance(bundle.train, TensorDataset) is not streamed
    per_epoch = N_IMAGES // (WORLD * BATCH)
    steps_per_epoch = per_epoch // batches_per_step
    seen = []  # seen[rank][epoch]: the items the rank drew in that epoch
    for rank in range(WORLD):
        stream = BatchStream(
            bundle.train, BATCH, batches_per_step, seed=7, device=torch.device("cpu"),
            rank=rank, world_size=WORLD,
        )  # fmt: skip
        epochs = [[], []]
        for step in range(2 * steps_per_epoch):
            epochs[step // steps_per_epoch] += _items(stream.get(step)["x"])
        seen.append(epochs)
    for epoch in range(2):
        mine = [seen[rank][epoch] for rank in range(WORLD)]
        for items in mine:  # no item twice on one rank in an epoch
            assert len(items) == len(set(items)) == steps_per_epoch * batches_per_step * BATCH
        # nor on two ranks, and together they are the epoch: all but the one item that
        # does not fill a global batch
        assert not set(mine[0]) & set(mine[1])
        assert len(set(mine[0]) | set(mine[1])) == N_IMAGES - 1
    # each epoch has its own permutation
    assert seen[0][0] != seen[0][1]
