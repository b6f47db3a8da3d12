"""An exponential moving average of the generator's weights (Yazıcı et al. 2019).

``theta_ema <- decay * theta_ema + (1 - decay) * theta`` after every step; sampling
from the average usually gives smoother, better samples than the raw generator.

Batch norm needs care: running statistics gathered by the live generator do not match
the averaged weights (averaging them too, as ``AveragedModel(use_buffers=True)`` does,
gives neither). Measured on ``dcgan-digits`` after 2000 steps: FD 80.6 with averaged
statistics against 11.9 for the live generator. So the average keeps parameters only,
and :func:`recompute_batch_norm` re-estimates its statistics on fresh latents before it
is used ("standing statistics", Brock et al. 2019).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

#: torch's public batch-norm classes (their shared base class is private).
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def make_ema(net: nn.Module, decay: float) -> AveragedModel:
    """Torch's own AveragedModel with its EMA update, over parameters only."""
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: AveragedModel, net: nn.Module) -> None:
    ema.update_parameters(net)


@torch.no_grad()
def recompute_batch_norm(
    net: nn.Module, model: nn.Module, n_batches: int = 16, batch_size: int = 128, seed: int = 0
) -> bool:
    """Re-estimate ``net``'s batch-norm statistics as its exact average over
    ``n_batches`` batches of fresh latents from ``model.sample_latent``.

    ``net`` is a generator of ``model`` (e.g. its EMA). Uses a private random stream,
    so the caller's randomness is untouched. Returns False when ``net`` has no batch norm.
    """
    norms = [m for m in net.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]
    if not norms:
        return False
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: a cumulative average over all batches, not an EMA
    was_training = net.training
    net.train()
    generator = torch.Generator().manual_seed(seed)
    try:
        for _ in range(n_batches):
            model.generate(model.sample_latent(batch_size, generator), net=net)
    finally:
        net.train(was_training)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
    return True
