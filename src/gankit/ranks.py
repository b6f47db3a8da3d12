"""An evaluation shared by the ranks of a ``torch.distributed`` process group.

Under ``torchrun`` (``gankit eval``, or ``eval_every`` while training on N processes),
every rank draws and embeds its own block of rows of the ``n`` samples and real
images; the blocks are gathered in rank order, so rank 0 holds exactly the rows one
process would have computed, and it alone computes the scores. Rank r of W takes
rows ``[r·n // W, (r+1)·n // W)``: contiguous blocks, sizes differing by at most one.

The gathers move CPU tensors: gankit's process group is ``gloo`` on CPU, and on CUDA it
is ``cpu:gloo,cuda:nccl`` (:func:`gankit.training.distributed.init_from_environment`),
so they go through gloo on either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class RankShare:
    """This process's place in a shared evaluation: its rank of ``world_size``.

    Every method that communicates is a collective: under several ranks, every rank
    must call it, in the same order.
    """

    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> RankShare:
        """The process group's ranks when one is joined (under torchrun), else one."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 receives the gathered rows and computes the scores."""
        return self.rank == 0

    def block(self, n: int, rank: int | None = None) -> slice:
        """The rows of ``n`` that ``rank`` (default: this one) draws and embeds."""
        rank = self.rank if rank is None else rank
        return slice(rank * n // self.world_size, (rank + 1) * n // self.world_size)

    def gather(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """Every rank's block of (rows, ...) ``part`` (of ``n`` rows in all), in rank order:
        (n, ...) on every rank. Blocks are padded to the largest before ``all_gather``
        (which needs equal shapes) and cut back after."""
        part = part.detach().cpu().contiguous()
        if not self.enabled:
            return part
        sizes = [len(range(n)[self.block(n, r)]) for r in range(self.world_size)]
        padded = part.new_zeros((max(sizes), *part.shape[1:]))
        padded[: len(part)] = part
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([block[:size] for block, size in zip(parts, sizes)])

    def all_agree(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every rank (one small all-reduce)."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([0.0 if flag else 1.0])
        dist.all_reduce(tensor)
        return tensor.item() == 0.0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


SINGLE_RANK = RankShare()
