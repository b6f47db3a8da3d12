"""Multi-process training on PyTorch's own engine: ``torch.distributed`` with DDP.

Launch with ``torchrun`` (or ``gankit train --nproc N``, which calls it)::

    torchrun --standalone --nproc_per_node=2 -m gankit train dcgan-digits
    # several machines: the same command on each, with torchrun's rendezvous flags
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 \\
        --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 -m gankit train dcgan-fashion

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init_from_environment`
reads them and joins the process group (``gloo`` on CPU, ``nccl`` on CUDA). Model files
know nothing of this: the trainer wraps each of the model's networks in
:class:`~torch.nn.parallel.DistributedDataParallel`, and the families call their
networks as before.

``train.batch_size`` is per process: N processes with batch B train on a global batch
of N·B, each rank drawing its own slice of the same global batch (see
:class:`gankit.training.data.BatchStream`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from gankit.errors import GankitError
from gankit.ranks import RankShare


@dataclass(frozen=True)
class DistContext(RankShare):
    """Where this process stands: rank, world size, local rank and backend. Rank 0
    alone logs, draws previews and checkpoints; evaluations are shared
    (:class:`~gankit.ranks.RankShare`)."""

    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None


SINGLE = DistContext()


def launch_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun), known before the
    process group is joined."""
    return int(os.environ.get("RANK", "0"))


def init_from_environment(device_type: str) -> DistContext:
    """Join the process group torchrun set up; a single process needs nothing."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_available():
        raise GankitError(
            f"{world_size} processes need torch.distributed, which this torch build lacks; "
            "run one process"
        )
    if backend not in available_backends():
        have = ", ".join(available_backends()) or "none"
        hint = (
            "set train.device=cpu to use gloo"
            if device_type != "cpu" and "gloo" in available_backends()
            else "run one process"
        )
        raise GankitError(
            f"train.device {device_type} needs the {backend} backend for {world_size} "
            f"processes, which this torch build lacks; available backends: {have}; {hint}"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        # one GPU per process: "cuda" then means this rank's GPU, not GPU 0 for all
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        # NCCL reduces CUDA tensors only; the trainer's small agreements (stop flags,
        # the clock, logged means) are CPU tensors, which go through gloo
        dist.init_process_group("cpu:gloo,cuda:nccl" if backend == "nccl" else backend)
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))),
        backend=backend,
    )


def launch(nproc: int, command: list[str]) -> int:
    """Run ``python -m gankit COMMAND`` in ``nproc`` processes on this machine, as
    ``torchrun --standalone --nproc_per_node=N -m gankit COMMAND`` would; returns the
    exit code (the first failed rank's, else 0).

    Goes through torch's launcher API (the agent behind torchrun), so the workers get
    torchrun's environment, rendezvous and signal handling; a failed rank is not
    restarted. SIGTERM, SIGINT (Ctrl-C), SIGHUP or SIGQUIT to this process reach every
    worker as that signal: they stop after the step they are in, rank 0 saves a
    checkpoint, and this returns 128 + the signal's number. Workers still running
    30 s later are killed. The agent's own log lines are silenced: rank 0 says what
    happened.
    """
    import logging
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # each of the agent's modules has a logger of its own level (torch sets them)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"gankit-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # standalone: a free port on this machine
        max_restarts=0,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "gankit", *command)
    except SignalException as err:
        return 128 + int(err.sigval)
    except ChildFailedError as err:
        codes = [failure.exitcode for failure in err.failures.values()]
        return next((code for code in codes if code and code > 0), 1)
    return 0


def available_backends() -> list[str]:
    """The process-group backends this torch build has, of gloo, nccl and mpi."""
    if not dist.is_available():
        return []
    checks = {
        "gloo": dist.is_gloo_available,
        "nccl": dist.is_nccl_available,
        "mpi": dist.is_mpi_available,
    }
    return [name for name, check in checks.items() if check()]


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def wrap_networks(
    model: nn.Module, ctx: DistContext, device: torch.device, sync_batchnorm: bool = False
) -> dict[str, nn.Module]:
    """Wrap each of the model's networks (its direct children with trainable
    parameters) in DDP in place; returns the unwrapped networks by attribute name.

    GAN-specific pitfalls, and how they are handled:

    - D runs on real and on fake data before one backward: fine for DDP, because each
      parameter's gradient hook fires once per backward, with both uses summed.
    - G's step backpropagates *through* D without updating it: D's parameters are
      frozen then (:func:`gankit.nn.frozen`), and ``frozen`` also enters D's
      ``no_sync()``, so D's reducer does not wait for gradients that never come (which
      would hang or fail at the next step).
    - A network is wrapped separately from the others, so a step that updates only
      some of them (D steps of WGAN, InfoGAN's Q with D) leaves the rest alone. Within
      one network, a head unused in some step would need ``find_unused_parameters``;
      gankit's families use every parameter of a network whenever they backpropagate
      through it, so it stays off (it costs a graph traversal per step).
    - Buffers (batch-norm running statistics) are broadcast from rank 0 at each
      forward (DDP's default), so every rank samples from the same generator.
    """
    if not ctx.enabled:
        return {}
    if sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    originals = {}
    device_ids = [device.index if device.index is not None else ctx.local_rank]
    for name, child in list(model.named_children()):
        if not any(p.requires_grad for p in child.parameters()):
            continue
        originals[name] = child
        wrapped = nn.parallel.DistributedDataParallel(
            child, device_ids=device_ids if device.type == "cuda" else None
        )
        setattr(model, name, wrapped)
    return originals


@contextlib.contextmanager
def unwrapped(model: nn.Module, originals: dict[str, nn.Module]) -> Iterator[nn.Module]:
    """Within the block, ``model`` holds its plain networks: for rank 0's previews,
    evaluation and checkpoints, which must neither run collectives nor save DDP's
    ``module.`` prefixes (so a checkpoint resumes with any world size)."""
    wrapped = {name: getattr(model, name) for name in originals}
    for name, net in originals.items():
        setattr(model, name, net)
    try:
        yield model
    finally:
        for name, net in wrapped.items():
            setattr(model, name, net)


def all_reduce_mean(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """The mean of each logged number over ranks (every rank must pass the same keys)."""
    if not ctx.enabled or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(tensor)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, tensor.tolist())}


def agree(flags: list[bool], seconds: float, ctx: DistContext) -> tuple[list[bool], float]:
    """For each flag, whether it is set on any rank, and the slowest rank's clock: one
    small all-reduce, so that every rank stops (on divergence, a signal or the time limit)
    at the same step instead of waiting forever, and time-based schedules give every rank
    the same learning rate."""
    if not ctx.enabled:
        return flags, seconds
    tensor = torch.tensor([float(f) for f in flags] + [seconds], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    values = tensor.tolist()
    return [bool(v) for v in values[:-1]], values[-1]


def broadcast_state(net: nn.Module | None, ctx: DistContext) -> None:
    """Give every rank rank 0's parameters and buffers of ``net`` (in place).

    Before a shared evaluation: DDP keeps the parameters equal, but each rank's last
    training forward updated its own batch-norm running statistics, which eval mode
    then uses, so without this the ranks would sample from slightly different
    generators."""
    if not ctx.enabled or net is None:
        return
    for tensor in net.state_dict().values():
        dist.broadcast(tensor, src=0)
