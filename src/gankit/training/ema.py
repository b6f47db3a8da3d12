"""An exponential moving average of the generator's weights (Yazıcı et al. 2019).

``theta_ema <- decay * theta_ema + (1 - decay) * theta`` after every step; sampling
from the average usually gives smoother, better samples than the raw generator.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def make_ema(net: nn.Module, decay: float) -> AveragedModel:
    """Torch's own AveragedModel with its EMA update; buffers (batch-norm statistics)
    are averaged too, so the average is usable in eval mode as it is."""
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: AveragedModel, net: nn.Module) -> None:
    ema.update_parameters(net)
