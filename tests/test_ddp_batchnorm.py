"""The batch-norm rule under DDP (docs/distributed.md): gankit keeps DDP's
``broadcast_buffers``, so every forward of a wrapped network starts from rank 0's
running statistics, whatever each rank saw before. D's batch norm therefore normalises
with the same statistics on every rank at sampling and evaluation, and a checkpoint
(rank 0's) holds the statistics that every rank used."""

from __future__ import annotations

import os

import torch
import torch.multiprocessing as mp
from torch import nn

from test_distributed import free_port

WORLD = 2


def _rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from gankit.training.distributed import init_from_environment, shutdown, wrap_networks

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    ctx = init_from_environment("cpu")
    try:
        model = nn.Module()
        model.D = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        # each rank's statistics its own: a batch norm update on data that differs per rank
        model.D.train()
        model.D(torch.randn(64, 3) * (rank + 1) + 10 * rank)
        before = model.D[1].running_mean.clone()
        wrap_networks(model, ctx, torch.device("cpu"))
        model.D.eval()
        with torch.no_grad():
            model.D(torch.randn(8, 3))  # a forward of the wrapped D, as sampling does
        after = model.D.module[1].running_mean.clone()
        gathered = [torch.zeros(4) for _ in range(WORLD)]
        dist.all_gather(gathered, before)
        torch.save({"before": gathered, "after": after}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        shutdown(ctx)


def test_every_forward_starts_from_rank_0s_batchnorm_statistics(tmp_path):
    mp.spawn(_rank, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    saved = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    rank_0, rank_1 = saved[0]["before"]
    assert not torch.allclose(rank_0, rank_1)  # the ranks' own statistics differed
    for state in saved:  # and after one forward both hold rank 0's
        assert torch.equal(state["after"], rank_0)
