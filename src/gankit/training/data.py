"""Batches by step: a deterministic, stateless mapping from the global step to data.

The order of the data is a function of (seed, epoch) only, so a resumed run draws
exactly the batches the uninterrupted run would have drawn, with no sampler state to
save. Small datasets are indexed in memory (no DataLoader overhead, which dominates
for toy MLPs); larger ones stream through a DataLoader with the same index order.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from gankit.errors import GankitError


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


class IndexBatches(Sampler[list[int]]):
    """Index batches from global batch number ``start`` on, epoch after epoch."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int = 0) -> None:
        self.n, self.batch_size, self.seed, self.start = n, batch_size, seed, start
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def batch(self, number: int) -> torch.Tensor:
        epoch, position = divmod(number, self.per_epoch)
        if epoch != self._epoch:  # one permutation per epoch, not per batch
            self._epoch, self._perm = epoch, epoch_permutation(self.n, self.seed, epoch)
        perm = self._perm
        return perm[position * self.batch_size : (position + 1) * self.batch_size]

    def __iter__(self) -> Iterator[list[int]]:
        number = self.start
        while True:
            yield self.batch(number).tolist()
            number += 1


class _RankSlice(Sampler[list[int]]):
    """This rank's slice of each global batch: rank r of W takes rows [r·B, (r+1)·B)."""

    def __init__(self, batches: IndexBatches, batch_size: int, rank: int) -> None:
        self.batches, self.batch_size, self.rank = batches, batch_size, rank

    def batch(self, number: int) -> torch.Tensor:
        start = self.rank * self.batch_size
        return self.batches.batch(number)[start : start + self.batch_size]

    def __iter__(self) -> Iterator[list[int]]:
        number = self.batches.start
        while True:
            yield self.batch(number).tolist()
            number += 1


def check_batch_size(n: int, batch_size: int, world_size: int = 1) -> None:
    """Refuse a global batch larger than the dataset's ``n`` items."""
    if n < batch_size * world_size:
        raise GankitError(
            f"train.batch_size {batch_size} x {world_size} processes is larger than the "
            f"dataset ({n} items); use a batch_size of at most {n // world_size}"
        )


def worker_error(err: GankitError) -> GankitError:
    """The one-line error a DataLoader worker raised (a file it could not read).

    The worker's exception reaches this process as its type and a text: "Caught
    GankitError in DataLoader worker process 0", the worker's traceback, and last the
    original message after the exception's name. That message is the error.
    """
    text = str(err)
    name = f"{GankitError.__module__}.{GankitError.__name__}: "
    if "DataLoader worker" not in text or name not in text:
        return err
    return GankitError(text.rpartition(name)[2])


class BatchStream:
    """``stream.get(step)`` -> ``{"x": (k*B, ...), "y": (k*B,)}`` for ``k`` batches per step.

    Steps must be requested in order (as the trainer does); the in-memory path would
    allow any order, the streaming path follows a DataLoader.

    With ``world_size`` W > 1, every rank computes the same global batches of W·B
    items (same seed, same permutation) and keeps its own slice of B. So W processes
    with batch B see exactly the data of one process with batch W·B, and a run resumes
    with another world size without repeating or skipping data by more than a batch.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        batches_per_step: int,
        seed: int,
        device: torch.device,
        start_step: int = 0,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        n = len(dataset)
        check_batch_size(n, batch_size, world_size)
        self.k = batches_per_step
        self.device = device
        global_batches = IndexBatches(
            n, batch_size * world_size, seed, start=start_step * batches_per_step
        )
        self.indexer = _RankSlice(global_batches, batch_size, rank)
        self.tensors: tuple[torch.Tensor, ...] | None = None
        if isinstance(dataset, TensorDataset):
            self.tensors = tuple(t.to(device) for t in dataset.tensors)
        else:
            loader = DataLoader(
                dataset,
                batch_sampler=self.indexer,
                num_workers=num_workers,
                pin_memory=device.type == "cuda",
                persistent_workers=num_workers > 0,
            )
            self._iterator = iter(loader)

    def get(self, step: int) -> dict[str, torch.Tensor]:
        if self.tensors is not None:
            index = torch.cat([self.indexer.batch(step * self.k + j) for j in range(self.k)])
            index = index.to(self.device)
            x, y = (t.index_select(0, index) for t in self.tensors)
        else:
            try:
                parts = [next(self._iterator) for _ in range(self.k)]
            except GankitError as err:
                raise worker_error(err) from None
            x = torch.cat([p[0] for p in parts]).to(self.device, non_blocking=True)
            y = torch.cat([p[1] for p in parts]).to(self.device, non_blocking=True)
        return {"x": x, "y": y}
