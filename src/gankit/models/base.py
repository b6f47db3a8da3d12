"""The contract between a model family and the shared code.

The model owns its update rule; the trainer owns the clock. A family implements:

- ``task``: what kind of thing it is, one name that the shared code reads, and the
  only one. ``"sample"`` draws samples from noise (GANs, the VAE), ``"translate"``
  maps images of one domain to another (CycleGAN), ``"classify"`` and ``"segment"``
  predict labels (DANN, AdaptSeg). :mod:`gankit.tasks` maps each name to what serves
  it: the previews during training, what ``gankit eval`` scores, which ``gankit
  explore`` pictures apply, how ``gankit adapt`` builds a baseline. A new task is a
  new entry there, not a new ``if`` in five places;
- ``configure_optimizers()`` -> named optimizers (the trainer checkpoints them);
- ``train_step(batch, step)`` -> a dict of floats to log. It does its own
  ``zero_grad``, ``backward`` and optimizer steps, however many networks it has;
- the methods of its task (below): ``sample_latent`` and ``generate`` to sample,
  ``translate`` to translate, ``predict`` to classify or segment.

Everything else is a hook with a default that the shared code calls without asking
which family it holds: ``training_data`` (one domain or two), ``family_scores``
(numbers only this family has), ``views`` (pictures only this family can draw),
``baseline_overrides`` (its non-adversarial baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from gankit.errors import GankitError, check_finite, check_int
from gankit.nn import eval_mode, parse_diffaugment


def linear_decay(progress: float, start_fraction: float) -> float:
    """Learning-rate factor: 1 until ``progress`` (the run's share done, see
    :meth:`Model.progress`) reaches ``start_fraction``, then linearly to 0 at the end.

    The schedule of CycleGAN (constant, then linear decay to zero), also useful for
    sharpening toy GANs at the end of training.
    """
    if progress < start_fraction:
        return 1.0
    return max(0.0, 1.0 - (progress - start_fraction) / max(1e-12, 1.0 - start_fraction))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


# --------------------------------------------------------------------------- argument checks
#: Upper bounds on the sizes a family's constructor accepts, so that a config cannot ask
#: for a network that fills memory (``latent_dim: 1e9`` alone would need 4 TB of
#: weights). Each is several times the largest value a published recipe uses: latent and
#: hidden sizes up to 2048 (BigGAN's z has 120, StyleGAN's 512), conv base widths up to
#: 128 (DCGAN's and CycleGAN's 64; DCGAN's deepest layer has 8 times the base), up to 32
#: layers or blocks (CycleGAN's 9). The largest model they allow, an MLP GAN on 64 px RGB
#: images packed by 8, has about 490 million parameters: 1.8 GiB of float32 weights.
MAX_WIDTH = 2048
MAX_CHANNELS = 128
MAX_DEPTH = 32


def check_sizes(high: int, low: int = 1, **sizes: int) -> None:
    """Refuse a size (``latent_dim=...``, ``n_layers=...``) outside ``[low, high]``.

    Raises:
        GankitError: naming the first size out of range and the valid range.
    """
    for name, value in sizes.items():
        check_int(f"model: {name}", value, low, high)


def check_optimizer(betas: tuple[float, ...] | None = None, **rates: float) -> None:
    """Refuse a learning rate that is not a finite number > 0, or Adam betas that are not
    two numbers in [0, 1) (Adam's averages would not decay).

    Raises:
        GankitError: naming the setting, its value and the valid range.
    """
    for name, rate in rates.items():
        check_finite(f"model: {name}", rate, 0.0, above=True)
    if betas is not None and (len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas)):
        raise GankitError(f"model: betas must be two numbers in [0, 1), got {list(betas)}")


def check_fractions(**fractions: float) -> None:
    """Refuse a share of the run or of the steps (``decay_start=...``) outside [0, 1]."""
    for name, value in fractions.items():
        if not 0.0 <= value <= 1.0:  # NaN fails this too
            raise GankitError(f"model: {name} must be in [0, 1], got {value}")


def check_weights(**weights: float) -> None:
    """Refuse a loss weight or penalty (``gp_weight=...``) that is not finite and >= 0."""
    for name, weight in weights.items():
        check_finite(f"model: {name}", weight, 0.0)


def check_leaky_slope(leaky_slope: float) -> None:
    """Refuse a LeakyReLU negative slope outside [0, 1) (0 is a plain ReLU)."""
    if not 0.0 <= leaky_slope < 1.0:  # NaN fails this too
        raise GankitError(f"model: leaky_slope must be in [0, 1), got {leaky_slope}")


#: StyleGAN2's lazy regularisation applies R1 every 16 D steps.
MAX_R1_INTERVAL = 64


def check_d_regularisers(
    data_shape: tuple[int, ...], d_norm: str, r1_gamma: float, r1_interval: int, diffaugment: str
) -> tuple[str, ...]:
    """Check the R1 and DiffAugment options of an adversarial image family; returns
    DiffAugment's policies in order (``()`` when off).

    Raises:
        GankitError: a negative or infinite ``r1_gamma``, an ``r1_interval`` outside
            [1, 64], R1 with batch norm in D (R1 is per sample, batch norm mixes
            samples), an unknown DiffAugment policy, or DiffAugment on points.
    """
    check_weights(r1_gamma=r1_gamma)
    check_sizes(MAX_R1_INTERVAL, r1_interval=r1_interval)
    if r1_gamma > 0 and d_norm == "batch":
        raise GankitError(
            "model: r1_gamma > 0 with d_norm 'batch' is invalid (R1 is a per-sample "
            "penalty, batch norm mixes samples); use d_norm 'layer' or 'none'"
        )
    try:
        policies = parse_diffaugment(diffaugment)
    except ValueError as error:
        raise GankitError(f"model: diffaugment: {error}") from None
    if policies and len(data_shape) != 3:
        raise GankitError(f"model: diffaugment needs (C, H, W) images, data is {tuple(data_shape)}")
    return policies


@dataclass
class ScoreContext:
    """What ``gankit eval`` hands a family's :meth:`Model.family_scores`.

    Attributes:
        x, y: held-out items (N, ...) and their labels (N,) (-1 where unlabelled).
        evaluator: the dataset's evaluator classifier (``logits(images)``,
            ``num_classes``, ``test_accuracy``), or None when the features are not an
            evaluator's (InceptionV3) or the data has none.
        num_classes: the data's label count, or None.
        n: how many samples a score should draw.
        seed: seeds those samples.
        net: the network samples come from (the EMA generator when the run kept one).
    """

    x: torch.Tensor
    y: torch.Tensor
    evaluator: Any
    num_classes: int | None
    n: int
    seed: int
    net: nn.Module | None


def two_domains(model: Model, bundle: Any, same_shape: bool = True) -> dict[str, Dataset]:
    """:meth:`Model.training_data` of two-domain families: batches get ``x``/``y`` from
    the source and ``x_b``/``y_b`` from the target, each in its own order.

    Raises:
        GankitError: the data has one domain, or (``same_shape``) the two domains give
            items of different shapes.
    """
    if bundle.domain_b is None:
        raise GankitError(
            f"model '{model.model_name}' trains on two domains; data '{bundle.name}' "
            "has one: set data.target (e.g. data.target=digits-m) or use a two-domain "
            "source (unpaired:PATH, segshift)"
        )
    if same_shape and tuple(bundle.domain_b.shape) != tuple(bundle.shape):
        raise GankitError(
            f"model '{model.model_name}' needs both domains to give items of one shape; "
            f"domain A gives {tuple(bundle.shape)}, domain B {tuple(bundle.domain_b.shape)} "
            "(set the source's channels, or the target's in data.target_options)"
        )
    return {"": bundle.train, "_b": bundle.domain_b.train}


class StepInterrupted(Exception):
    """A ``train_step`` left part-way, between two inner updates, because
    :attr:`Model.interrupt` asked: the step did not happen and must not be counted."""


class Model(nn.Module):
    """Base class of every model family.

    Attributes:
        task: what the family does (see the module docstring); every family sets it.
        generator_name: the attribute holding the network that makes the family's
            outputs (samples or translations); the trainer keeps its exponential
            moving average when ``ema_decay`` is set. None: no such network (DANN).
        views: ``gankit explore`` pictures that only this family can draw, beyond
            those of its task (``classes`` for conditional GANs, ``traverse`` for
            InfoGAN, ``manifold`` for the VAE). Declaring one promises the methods
            that the picture uses.
        baseline_overrides: model settings that turn this family into its
            non-adversarial baseline, for ``gankit adapt``; None when it has none.
            :meth:`baselines` turns them into the compared model configs.
        pretrained: model settings that name a finished run whose model weights fill
            one of this model's parts (the attribute named): ``{"translator_run":
            "translator"}``. The trainer reads that run when training starts.
        gaussian_latents: latent inputs drawn from N(0, I), which ``--truncation``
            may redraw.
        adversarial: the adversarial loss pair whose generator loss pushes samples
            (pictures of G against D on 2-D points); None without one.
        model_name: the registered variant name (set by ``create_model``).
        hparams: every constructor argument, so a checkpoint rebuilds the model alone.
        optimizers: filled by :meth:`setup_optimizers`.
    """

    task: ClassVar[str]
    generator_name: ClassVar[str | None] = None
    views: ClassVar[tuple[str, ...]] = ()
    baseline_overrides: ClassVar[dict[str, Any] | None] = None
    pretrained: ClassVar[dict[str, str]] = {}
    gaussian_latents: tuple[str, ...] = ()
    adversarial: Any = None

    def __init__(self, data_shape: tuple[int, ...], num_classes: int | None = None) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes
        self.model_name = type(self).__name__.lower()
        self.hparams: dict[str, Any] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        #: The run's total steps, set by the trainer; schedules read :meth:`progress`.
        self.max_steps = 0
        #: The share of ``train.time_limit`` used before the coming step (the slowest
        #: rank's clock, counted on from the share a resumed checkpoint saved), set by
        #: the trainer; 0 without a limit.
        self.time_used = 0.0

    # ------------------------------------------------------------------ training
    def progress(self, step: int) -> float:
        """How far along the run is at ``step``, in [0, 1], for schedules (learning-rate
        decays, loss ramps): ``step / max_steps``, or under ``train.time_limit`` the share
        of the limit used when that is further along. A schedule laid out over the steps
        then ends when the clock ends the run, whichever comes first; without a limit it
        depends on the step alone, so a resumed run repeats it exactly. A resumed call
        goes on from the share its checkpoint saved, so the schedule never starts again
        (its own clock still stops it after a whole limit).
        """
        by_steps = step / self.max_steps if self.max_steps > 0 else 0.0
        return min(1.0, max(by_steps, self.time_used))

    def decay_learning_rates(self, step: int, decay_start: float, **rates: float) -> None:
        """Set each named optimizer's learning rate to its base rate (``G=2e-4, ...``)
        times :func:`linear_decay` at this step's :meth:`progress`."""
        factor = linear_decay(self.progress(step), decay_start)
        for name, rate in rates.items():
            set_learning_rate(self.optimizers[name], rate * factor)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def setup_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Create the optimizers once; ``train_step`` uses them by name."""
        self.optimizers = self.configure_optimizers()
        return self.optimizers

    def training_data(self, bundle: Any) -> dict[str, Dataset]:
        """The datasets one batch is drawn from, by the suffix of their batch keys.

        One domain by default: ``{"": bundle.train}`` gives ``x`` and ``y``. Two-domain
        families return :func:`two_domains`, which adds ``x_b`` and ``y_b``.
        """
        return {"": bundle.train}

    @classmethod
    def baselines(cls, model_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``gankit adapt``'s other rows: label -> the model config of a run trained with
        the same data and budget. By default the one ``baseline_overrides`` make."""
        if cls.baseline_overrides is None:
            return {}
        return {"source-only": {**model_config, **cls.baseline_overrides}}

    @classmethod
    def pretrained_settings(cls, option: str, run_model_config: dict[str, Any]) -> dict[str, Any]:
        """The settings of this model that the run named by ``option`` (one of
        :attr:`pretrained`) fixes, so that its weights fit; none by default."""
        return {}

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

    #: Set by a caller that must be able to stop a long step part-way (``gankit lab``,
    #: whose pause and close never wait a step out): asked between a family's inner
    #: updates, True leaves the step with :class:`StepInterrupted`, some updates done.
    #: None (the trainer's case): never asked. Only the GAN family's n_critic loop asks
    #: today, as the lab trains only that family; another family with a long inner loop
    #: would call :meth:`check_interrupt` in it the same way.
    interrupt: Callable[[], bool] | None = None

    def check_interrupt(self) -> None:
        """Raise :class:`StepInterrupted` when :attr:`interrupt` says so."""
        if self.interrupt is not None and self.interrupt():
            raise StepInterrupted("the step was interrupted")

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled under float16 mixed precision."""
        (self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; under float16, skipped when the gradients overflowed."""
        if self.grad_scaler is not None:
            self.grad_scaler.step(optimizer)
        else:
            optimizer.step()

    # ------------------------------------------------------------------ outputs
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def generator(self) -> nn.Module | None:
        """The network named by ``generator_name``, or None."""
        return getattr(self, self.generator_name) if self.generator_name else None

    def family_scores(self, context: ScoreContext) -> tuple[dict[str, float], dict[str, float]]:
        """Numbers only this family has, and their floors where one exists, for
        ``gankit eval`` (a VAE's ELBO, a conditional GAN's label accuracy). None by
        default."""
        return {}, {}

    # ------------------------------------------------------------------ task "sample"
    def sample_latent(
        self, n: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Inputs for ``n`` samples, e.g. ``{"z": (n, latent_dim)}``, on the CPU."""
        raise GankitError(
            f"model '{self.model_name}' (task {self.task}) draws no samples from noise"
        )

    def generate(
        self, latent: dict[str, torch.Tensor], net: nn.Module | None = None
    ) -> torch.Tensor:
        """Samples from the given latent; ``net`` replaces the generator (e.g. its EMA)."""
        raise NotImplementedError

    @torch.no_grad()
    def render(self, latent: dict[str, torch.Tensor], net: nn.Module | None = None) -> torch.Tensor:
        """``generate`` in eval mode without gradients: previews and sampling."""
        net = net if net is not None else self.generator
        with eval_mode(net):
            return self.generate(latent, net=net)

    def sample(
        self, n: int, generator: torch.Generator | None = None, net: nn.Module | None = None
    ) -> torch.Tensor:
        """``n`` samples: (n, C, H, W) images in [-1, 1] or (n, D) points."""
        return self.render(self.sample_latent(n, generator), net=net)

    def with_labels(
        self, latent: dict[str, torch.Tensor], labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``latent`` asking for the given (n,) class labels; conditional families only."""
        raise GankitError(
            f"model '{self.model_name}' is unconditional and takes no labels; "
            "train a conditional model (cgan, acgan) to choose classes"
        )

    def requested_labels(self, labels: torch.Tensor | list[int], n: int) -> torch.Tensor:
        """Labels for :meth:`with_labels`: one for all ``n`` samples or one each, every one
        in ``0 .. num_classes - 1``; returned as (n,) int64.

        Raises:
            GankitError: a label out of range, or neither 1 nor ``n`` of them.
        """
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        bad = labels[(labels < 0) | (labels >= (self.num_classes or 0))]
        if len(bad):
            raise GankitError(
                f"label {int(bad[0])} is out of range; this model's labels are "
                f"0..{(self.num_classes or 0) - 1}"
            )
        if len(labels) not in (1, n):
            raise GankitError(f"give 1 label or {n} labels (one per sample), got {len(labels)}")
        return labels.expand(n).clone()

    # ------------------------------------------------------------------ tasks "classify", "segment"
    def predictor(self) -> nn.Module:
        """The network behind ``predict``, whole batches at once: (N, ...) inputs ->
        (N, K, ...) class scores (logits), for ``gankit export``. Classifiers and
        segmenters provide it; its weights are the model's own (not copies)."""
        raise GankitError(f"model '{self.model_name}' (task {self.task}) has no predictor network")

    def critic_scores(self, x: torch.Tensor) -> torch.Tensor | None:
        """D's raw output for (N, ...) samples as (N,), in eval mode, for pictures of
        what D learned; None when the family has no discriminator (or one that needs
        more than x)."""
        return None

    # ------------------------------------------------------------------ task "classify"
    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N, K) class logits, with gradients (Grad-CAM in ``gankit inspect``);
        classifying families only."""
        raise GankitError(
            f"model '{self.model_name}' (task {self.task}) gives no class logits; "
            "Grad-CAM needs a classify-task run such as DANN's"
        )

    def feature_maps(self) -> dict[str, nn.Module]:
        """Named modules whose outputs are (N, C, H, W) feature maps, input first, for
        ``gankit inspect``; empty when the family has none (an MLP)."""
        return {}

    def extra_repr(self) -> str:
        return f"model_name={self.model_name!r}, task={self.task!r}, data_shape={self.data_shape}"
