"""The contract between a model family and the trainer.

The model owns its update rule; the trainer owns the clock. A family implements:

- ``configure_optimizers()`` -> named optimizers (the trainer checkpoints them);
- ``train_step(batch, step)`` -> a dict of floats to log. It does its own
  ``zero_grad``, ``backward`` and optimizer steps, however many networks it has;
- ``sample_latent(n)`` and ``generate(latent)``, which give the trainer's fixed-noise
  previews and ``gankit sample``.

The trainer never looks inside: InfoGAN's Q head, a VAE's encoder, CycleGAN's four
networks or DANN's domain critic are all the family's business.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def linear_decay(step: int, max_steps: int, start_fraction: float) -> float:
    """Learning-rate factor: 1 until ``start_fraction * max_steps``, then linearly to 0.

    The schedule of CycleGAN (constant, then linear decay to zero), also useful for
    sharpening toy GANs at the end of training.
    """
    start = start_fraction * max_steps
    if max_steps <= 0 or step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(1.0, max_steps - start))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class GenerativeModel(nn.Module):
    """Base class of every model family.

    Attributes:
        generator_name: the attribute holding the network that makes samples; the
            trainer keeps its exponential moving average when ``ema_decay`` is set.
        model_name: the registered variant name (set by ``create_model``).
        hparams: every constructor argument, so a checkpoint rebuilds the model alone.
        optimizers: filled by :meth:`setup_optimizers`.
    """

    generator_name: str = "G"
    #: False for families that draw no samples (DANN): no previews, EMA or sampling.
    generative: bool = True
    #: True for families that train on two domains: their batches carry ``x_b``/``y_b``
    #: from the data's second domain (``data.target``, or a two-domain source).
    uses_domain_b: bool = False
    #: True for translators (CycleGAN): their inputs are images, not noise, so
    #: ``sample_latent`` refuses, previews come from held-out data, ``gankit translate``
    #: and the translation metrics of ``gankit eval`` apply.
    translates: bool = False

    def __init__(self, data_shape: tuple[int, ...], num_classes: int | None = None) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes
        self.model_name = type(self).__name__.lower()
        self.hparams: dict[str, Any] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        #: The run's total steps, set by the trainer; learning-rate schedules use it.
        self.max_steps = 0

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def setup_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Create the optimizers once; ``train_step`` uses them by name."""
        self.optimizers = self.configure_optimizers()
        return self.optimizers

    @property
    def real_batches_per_step(self) -> int:
        """How many real batches one ``train_step`` consumes (e.g. ``n_critic``).

        The trainer concatenates that many batches, so ``batch["x"]`` has
        ``batch_size * real_batches_per_step`` rows.
        """
        return 1

    def check_batch_size(self, batch_size: int) -> None:
        """Raise :class:`~gankit.errors.GankitError` if the model cannot use this batch size."""

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One update of every network. ``step`` counts from 0 across resumes.

        Families call :meth:`backward` and :meth:`step` rather than ``loss.backward()``
        and ``optimizer.step()``, so that mixed precision can scale the losses.
        """
        raise NotImplementedError

    #: Set by the trainer for float16 training on CUDA: scales each loss before its
    #: backward so small gradients do not underflow, and unscales before each step.
    grad_scaler: torch.amp.GradScaler | None = None

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled under float16 mixed precision."""
        (self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; under float16, skipped when the gradients overflowed."""
        if self.grad_scaler is not None:
            self.grad_scaler.step(optimizer)
        else:
            optimizer.step()

    # ------------------------------------------------------------------ sampling
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def generator(self) -> nn.Module:
        return getattr(self, self.generator_name)

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Inputs for ``n`` samples, e.g. ``{"z": (n, latent_dim)}``, on the CPU."""
        raise NotImplementedError

    def generate(
        self, latent: dict[str, torch.Tensor], net: nn.Module | None = None
    ) -> torch.Tensor:
        """Samples from the given latent; ``net`` replaces the generator (e.g. its EMA)."""
        raise NotImplementedError

    def preview_latent(
        self, n: int, generator: torch.Generator, bundle: Any
    ) -> dict[str, torch.Tensor]:
        """The inputs of the trainer's previews, saved with the run: ``n`` draws of
        ``sample_latent``; a translator picks held-out images from ``bundle`` instead."""
        return self.sample_latent(n, generator)

    def preview_images(
        self, latent: dict[str, torch.Tensor], net: nn.Module | None = None
    ) -> torch.Tensor:
        """What a preview shows for ``preview_latent``'s inputs: the samples (N, ...)."""
        return self.render(latent, net=net)

    @torch.no_grad()
    def render(self, latent: dict[str, torch.Tensor], net: nn.Module | None = None) -> torch.Tensor:
        """``generate`` in eval mode without gradients: previews and sampling.

        Eval mode matters: batch norm must use its running statistics and must not
        update them, or drawing a preview would change the model.
        """
        net = net if net is not None else self.generator
        was_training = net.training
        net.eval()
        try:
            return self.generate(latent, net=net)
        finally:
            net.train(was_training)

    def sample(
        self, n: int, generator: torch.Generator | None = None, net: nn.Module | None = None
    ) -> torch.Tensor:
        """``n`` samples: (n, C, H, W) images in [-1, 1] or (n, D) points."""
        return self.render(self.sample_latent(n, generator), net=net)

    # ------------------------------------------------------------------ optional hooks
    def with_labels(
        self, latent: dict[str, torch.Tensor], labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``latent`` asking for the given (n,) class labels; conditional families only."""
        from gankit.errors import GankitError

        raise GankitError(
            f"model '{self.model_name}' is unconditional and takes no labels; "
            "train a conditional model (cgan, acgan) to choose classes"
        )

    def critic_scores(self, x: torch.Tensor) -> torch.Tensor | None:
        """D's raw output for (N, ...) samples as (N,), for pictures of what D learned;
        None when the family has no discriminator (or one that needs more than x)."""
        return None

    def data_metrics(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, float]:
        """Family-specific numbers on held-out data (a VAE's ELBO, say); empty by default."""
        return {}

    def extra_repr(self) -> str:
        return f"model_name={self.model_name!r}, data_shape={self.data_shape}"
