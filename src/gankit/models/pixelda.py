r"""Pixel-level domain adaptation (in the spirit of PixelDA, Bousmalis et al. 2017, and
CyCADA, Hoffman et al. 2018): translate the labelled source into the target's look,
then learn the labels there.

DANN aligns *features*. When the domains differ by a pixel-level change that features
do not undo (on digits -> digits-m the photo patches invert the strokes' polarity
where they are bright), a translator can undo it in pixel space. One run has two
phases, in this order:

1. **Translator** (steps ``0 … T−1``, ``T = translator_steps``): a CycleGAN between the
   source A and the target B, with its own objective (LSGAN + λ_cyc cycle + identity;
   see :mod:`gankit.models.cyclegan`). Labels are not read.

   ``min_{G,F} max_{D_A,D_B}  L_GAN(G, D_B) + L_GAN(F, D_A) + λ_cyc L_cyc(G, F) + λ_id L_id``

2. **Classifier** (steps ``T … S−1``): G is frozen; the classifier ``C = G_y ∘ G_f``
   learns the source labels on translated source images, and (``domain_weight`` > 0)
   DANN's adversary aligns translated source with real target features on top:

   ``min_{θ_f,θ_y} max_{θ_d}  Σ_S L_y(C(G(x)), y) − λ_p Σ_{G(S) ∪ T} L_d(G_d(G_f(·)), d)``

   with DANN's schedule ``λ_p = 2 / (1 + exp(−γ p)) − 1`` over the classifier phase.

At test time ``C`` reads target images directly; the translator is training's business.

``pixel_gan`` is PixelDA itself (Bousmalis et al. 2017): one phase, in which a
generator ``G(x, z)`` of a source image and noise ``z ~ U(−1, 1)^k`` and the
classifier ``C`` learn together. A deterministic translator paints one target look
per source image; on digits-m the target's looks (photo patches, bright or dark,
strokes the complement of the background) are many, and a classifier that saw only
one of them fails on the rest. The noise, and a mode-seeking term (Mao et al. 2019,
"Mode Seeking GANs") that keeps ``G`` from ignoring it, let ``C`` see many:

``min_{G,C} max_D  L_GAN(G, D) + β [L_y(C(G(x, z₁)), y) + L_y(C(x), y)] − λ_ms L_ms``

``D`` maximises ``E_t[log D(t)] + E[log(1 − D(G(x, z₁)))]``; ``G`` minimises
``L_GAN = −Σ_{k=1,2} E[log D(G(x, z_k))]`` (non-saturating), and
``L_ms = E[ |G(x, z₁) − G(x, z₂)|₁ / |z₁ − z₂|₁ ]`` over the two noise draws per image.

Where the translator comes from: by default it is **trained in the same run**, so the
budget (``train.steps``, ``train.time_limit``) counts its time, a resume continues
whichever phase was running, and the run folder alone rebuilds everything. With
``translator_run: PATH`` the translator is copied from a finished CycleGAN run instead
(``translator_steps`` must then be 0); the trainer checks that the run maps the same
pair of domains, and its weights travel in this run's checkpoints from then on.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError, check_finite
from gankit.losses import bce_d_loss, non_saturating_g_loss
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_WIDTH,
    Model,
    check_optimizer,
    check_sizes,
    check_weights,
    two_domains,
)
from gankit.models.cyclegan import CycleGAN
from gankit.models.dann import DANN
from gankit.nn import Norm, ResBlock, eval_mode, frozen, norm_layer
from gankit.registry import register_model

#: The CycleGAN settings this family takes as ``translator_<name>``; a ``translator_run``
#: sets them from that run's model config.
TRANSLATOR_SETTINGS = (
    "channels",
    "n_blocks",
    "d_channels",
    "d_layers",
    "cycle_weight",
    "identity_weight",
    "pool_size",
    "lr",
    "decay_start",
)
#: The classifier settings, shared with DANN (and with ``gankit adapt``'s baselines).
CLASSIFIER_SETTINGS = ("channels", "hidden_dim", "n_layers", "norm", "lr", "gamma", "schedule")


class ClassifierPart(Model):
    """Task ``classify`` served by the part ``self.classifier`` (DANN's network), which
    reads target images at test time; ``gankit adapt`` compares it with that network
    trained as source-only and as DANN, with this run's classifier settings, never
    shown a translation."""

    task = "classify"
    baseline_overrides: ClassVar[dict[str, str | float]] = {
        "name": "source_only",
        "domain_weight": 0.0,
    }
    classifier: DANN

    @classmethod
    def baselines(cls, model_config: dict) -> dict[str, dict]:
        shared = {k: model_config[k] for k in CLASSIFIER_SETTINGS if k in model_config}
        return {
            "source-only": {"name": "source_only", **shared},
            "dann": {"name": "dann", **shared, "domain_weight": 1.0},
        }

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.class_logits(x)

    def feature_maps(self) -> dict[str, nn.Module]:
        return self.classifier.feature_maps()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.predict(x)

    def predictor(self) -> nn.Module:
        """The classifier alone: target images -> class logits."""
        return self.classifier.predictor()


class PixelAdaptation(ClassifierPart):
    """A CycleGAN translator trained first, then a (DANN) classifier on translated source.

    Args:
        data_shape: (C, H, W) of the source; data_shape_b: of the target (same shape).
        num_classes: the source's label count.
        translator_steps: T, the steps of phase 1; the rest of ``train.steps`` trains
            the classifier. 0 with ``translator_run``.
        translator_batch: how many images of each domain's batch a translator step uses
            (CycleGAN learns well from small batches, and each image costs 10 convolutions
            through four networks); the classifier phase uses the whole batch.
        translator_run: a finished CycleGAN run (folder) between the same domains, whose
            networks replace phase 1; the trainer reads it when training starts.
        translator_channels, translator_n_blocks, translator_d_channels,
        translator_d_layers, translator_cycle_weight, translator_identity_weight,
        translator_pool_size, translator_lr, translator_decay_start: the CycleGAN's
            settings (see :class:`~gankit.models.cyclegan.CycleGAN`); its learning-rate
            decay runs over the T translator steps.
        channels, hidden_dim, n_layers, norm, lr, gamma, schedule: the classifier's, as
            in :class:`~gankit.models.dann.DANN`.
        domain_weight: DANN's final λ on translated source against target; 0 trains the
            classifier on translated source alone.
    """

    #: ``model.translator_run`` names a run whose model weights fill ``self.translator``.
    pretrained: ClassVar[dict[str, str]] = {"translator_run": "translator"}

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        data_shape_b: tuple[int, ...] | None = None,
        *,
        translator_steps: int = 3000,
        translator_batch: int = 16,
        translator_run: str | None = None,
        translator_channels: int = 16,
        translator_n_blocks: int = 2,
        translator_d_channels: int = 16,
        translator_d_layers: int | None = None,
        translator_cycle_weight: float = 10.0,
        translator_identity_weight: float = 0.5,
        translator_pool_size: int = 50,
        translator_lr: float = 2e-4,
        translator_decay_start: float = 0.5,
        channels: int = 32,
        hidden_dim: int = 128,
        n_layers: int = 2,
        norm: Norm = "batch",
        domain_weight: float = 0.0,
        gamma: float = 10.0,
        schedule: Literal["ganin", "constant"] = "ganin",
        lr: float = 1e-3,
    ) -> None:
        super().__init__(data_shape, num_classes)
        # checked here under this family's names first; the parts check their own again
        check_sizes(10**7, 0, translator_steps=translator_steps)
        check_sizes(4096, translator_batch=translator_batch)
        check_sizes(
            MAX_CHANNELS,
            translator_channels=translator_channels,
            translator_d_channels=translator_d_channels,
            channels=channels,
        )
        check_sizes(MAX_DEPTH, 0, translator_n_blocks=translator_n_blocks)
        check_sizes(MAX_WIDTH, hidden_dim=hidden_dim)
        check_optimizer(translator_lr=translator_lr, lr=lr)
        check_weights(
            translator_cycle_weight=translator_cycle_weight,
            translator_identity_weight=translator_identity_weight,
            domain_weight=domain_weight,
        )
        if translator_run is not None and translator_steps:
            raise GankitError(
                f"model: translator_run '{translator_run}' brings a trained translator; set "
                f"model.translator_steps=0 (got {translator_steps}), or drop translator_run "
                "to train one in this run"
            )
        self.translator_steps, self.translator_batch = translator_steps, translator_batch
        self.translator_run = translator_run
        self.data_shape_b = tuple(data_shape_b) if data_shape_b is not None else self.data_shape
        if self.data_shape_b != self.data_shape:
            raise GankitError(
                f"model: {type(self).__name__} trains one classifier on translated source "
                f"and on target images, so both need one shape; source {self.data_shape}, "
                f"target {self.data_shape_b} (set data.channels=3 for a colour target)"
            )
        self.translator = CycleGAN(
            self.data_shape,
            None,
            self.data_shape_b,
            channels=translator_channels,
            n_blocks=translator_n_blocks,
            d_channels=translator_d_channels,
            d_layers=translator_d_layers,
            cycle_weight=translator_cycle_weight,
            identity_weight=translator_identity_weight,
            pool_size=translator_pool_size,
            lr=translator_lr,
            decay_start=translator_decay_start,
        )
        self.classifier = DANN(
            self.data_shape,
            num_classes,
            channels=channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            norm=norm,
            domain_weight=domain_weight,
            gamma=gamma,
            schedule=schedule,
            lr=lr,
        )
        for part in (self.translator, self.classifier):
            part.model_name = f"{type(self).__name__.lower()}.{type(part).__name__.lower()}"

    # ------------------------------------------------------------------ training
    def training_data(self, bundle) -> dict:
        """Labelled source ``x``, ``y`` and unlabelled target ``x_b``, both phases."""
        return two_domains(self, bundle)

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size < self.translator_batch and self.translator_steps:
            raise GankitError(
                f"train.batch_size {batch_size} is below model.translator_batch "
                f"{self.translator_batch}; raise the batch or lower translator_batch"
            )

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        self.translator.setup_optimizers()
        self.classifier.setup_optimizers()
        return {
            **{f"translator_{k}": v for k, v in self.translator.optimizers.items()},
            **self.classifier.optimizers,
        }

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        for part in (self.translator, self.classifier):
            part.grad_scaler = self.grad_scaler
        if step < self.translator_steps:
            self.translator.max_steps = self.translator_steps
            n = self.translator_batch
            stats = self.translator.train_step({"x": batch["x"][:n], "x_b": batch["x_b"][:n]}, step)
            return {f"translator_{k}": v for k, v in stats.items()}
        self.classifier.max_steps = max(1, self.max_steps - self.translator_steps)
        translated = self.translate_source(batch["x"])
        return self.classifier.train_step(
            {"x": translated, "y": batch["y"], "x_b": batch["x_b"]}, step - self.translator_steps
        )

    @torch.no_grad()
    def translate_source(self, x: torch.Tensor) -> torch.Tensor:
        """G(x): source images in the target's look, from the frozen translator."""
        with eval_mode(self.translator.G_AB):
            return self.translator.G_AB(x)

    @classmethod
    def pretrained_settings(cls, option: str, run_model_config: dict) -> dict:
        """``translator_<name>`` settings copied from a CycleGAN run's model config."""
        return {
            f"translator_{k}": run_model_config[k]
            for k in TRANSLATOR_SETTINGS
            if k in run_model_config
        }


# --------------------------------------------------------------------------- PixelDA
class NoiseTranslator(nn.Module):
    """PixelDA's generator: (N, C, H, W) source images and (N, k) noise -> (N, C, H, W)
    in [-1, 1], at full resolution throughout.

    A linear layer spreads ``z`` over ``noise_maps`` image-sized channels, which join the
    image's; a 3x3 conv, ``n_blocks`` residual blocks (batch norm), then norm, ReLU, a 3x3
    conv to C channels and tanh. No down-sampling: the inputs are small, and the strokes
    must stay where they are.
    """

    def __init__(
        self,
        data_shape: tuple[int, ...],
        noise_dim: int,
        noise_maps: int,
        width: int,
        n_blocks: int,
    ) -> None:
        super().__init__()
        channels, height, width_px = data_shape
        self.maps = (noise_maps, height, width_px)
        self.project = nn.Linear(noise_dim, noise_maps * height * width_px)
        self.body = nn.Sequential(
            nn.Conv2d(channels + noise_maps, width, 3, padding=1),
            *[ResBlock(width, width, norm="batch") for _ in range(n_blocks)],
            norm_layer("batch", width, conv=True),
            nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        noise = self.project(z).view(len(z), *self.maps)
        return self.body(torch.cat([x, noise], dim=1))


class PixelDiscriminator(nn.Module):
    """PixelDA's discriminator: (N, C, H, W) -> (N, 1) logits.

    A 3x3 conv at full resolution, then three stride-2 3x3 convs that double the width
    (batch norm, leaky ReLU and dropout after each), and a linear logit. It looks at the
    full-resolution image first, where the photo texture of a target is.
    """

    def __init__(self, data_shape: tuple[int, ...], width: int, dropout: float) -> None:
        super().__init__()
        channels, height, width_px = data_shape
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        for i in range(3):
            layers += [
                nn.Conv2d(width * 2**i, width * 2 ** (i + 1), 3, 2, padding=1),
                norm_layer("batch", width * 2 ** (i + 1), conv=True),
                nn.LeakyReLU(0.2),
                nn.Dropout(dropout),
            ]
            height, width_px = (height + 1) // 2, (width_px + 1) // 2
        layers += [nn.Flatten(), nn.Linear(width * 8 * height * width_px, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class PixelGAN(ClassifierPart):
    """PixelDA: a noise-conditioned generator ``G(x, z)`` and the classifier, trained
    together in one phase; ``D`` tells target images from ``G``'s.

    Args:
        data_shape: (C, H, W) of the source; data_shape_b: of the target (same shape).
        num_classes: the source's label count.
        noise_dim: k, the size of ``z ~ U(−1, 1)^k``.
        noise_maps: image-sized channels that ``z`` is spread over at G's input.
        g_channels, g_blocks: G's width and residual blocks.
        d_channels: the width of D's first layer (see :class:`PixelDiscriminator`).
        d_dropout: dropout after each of D's layers.
        d_input_noise: the standard deviation of Gaussian noise added to D's inputs, real
            and generated (PixelDA's guard against a D that wins at once).
        task_weight: β, the weight of the classifier's loss in G's objective (G is asked
            to keep the class readable) and in C's.
        mode_seeking: λ_ms, the weight of the mode-seeking term; 0 lets G ignore ``z``.
        lr, betas: Adam's, for G, C and D alike.
        channels, hidden_dim, n_layers, norm: the classifier's, as in
            :class:`~gankit.models.dann.DANN`.
    """

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        data_shape_b: tuple[int, ...] | None = None,
        *,
        noise_dim: int = 10,
        noise_maps: int = 4,
        g_channels: int = 32,
        g_blocks: int = 2,
        d_channels: int = 32,
        d_dropout: float = 0.2,
        d_input_noise: float = 0.05,
        task_weight: float = 1.0,
        mode_seeking: float = 1.0,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        channels: int = 32,
        hidden_dim: int = 128,
        n_layers: int = 2,
        norm: Norm = "batch",
    ) -> None:
        super().__init__(data_shape, num_classes)
        check_sizes(1024, noise_dim=noise_dim)
        check_sizes(64, noise_maps=noise_maps)
        check_sizes(MAX_CHANNELS, g_channels=g_channels, d_channels=d_channels, channels=channels)
        check_sizes(MAX_DEPTH, 0, g_blocks=g_blocks)
        check_sizes(MAX_WIDTH, hidden_dim=hidden_dim)
        check_optimizer(betas, lr=lr)
        check_weights(task_weight=task_weight, mode_seeking=mode_seeking)
        if not 0.0 <= d_dropout < 1.0:
            raise GankitError(f"model: d_dropout must be in [0, 1), got {d_dropout}")
        check_finite("model: d_input_noise", d_input_noise, 0.0)
        self.data_shape_b = tuple(data_shape_b) if data_shape_b is not None else self.data_shape
        if self.data_shape_b != self.data_shape or len(self.data_shape) != 3:
            raise GankitError(
                f"model: {type(self).__name__} generates target-like images from source "
                f"images, so both must be images of one shape; source {self.data_shape}, "
                f"target {self.data_shape_b} (set data.channels=3 for a colour target)"
            )
        self.noise_dim, self.d_input_noise = noise_dim, d_input_noise
        self.task_weight, self.mode_seeking = task_weight, mode_seeking
        self.lr, self.betas = lr, tuple(betas)
        self.G = NoiseTranslator(self.data_shape, noise_dim, noise_maps, g_channels, g_blocks)
        self.D = PixelDiscriminator(self.data_shape, d_channels, d_dropout)
        # DANN's network without its domain head in use: the same classifier as the
        # baselines', so the comparison is of what it is shown, not of its shape
        self.classifier = DANN(
            self.data_shape,
            num_classes,
            channels=channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            norm=norm,
            domain_weight=0.0,
        )
        self.classifier.model_name = f"{type(self).__name__.lower()}.dann"

    def training_data(self, bundle) -> dict:
        """Labelled source ``x``, ``y`` and unlabelled target ``x_b``."""
        return two_domains(self, bundle)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # the classifier's domain head is never used here: only its trunk and label head
        task = [*self.classifier.features.parameters(), *self.classifier.classifier.parameters()]
        return {
            "G": torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas),
            "C": torch.optim.Adam(task, lr=self.lr, betas=self.betas),
            "D": torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=self.betas),
        }

    def noise(self, n: int) -> torch.Tensor:
        """z ~ U(−1, 1)^k for n images."""
        return torch.rand(n, self.noise_dim, device=self.device).mul_(2.0).sub_(1.0)

    def judge(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits on noised inputs."""
        if self.d_input_noise > 0:
            x = x + self.d_input_noise * torch.randn_like(x)
        return self.D(x)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        source, labels, target = batch["x"], batch["y"], batch["x_b"]
        z1, z2 = self.noise(len(source)), self.noise(len(source))
        fake1, fake2 = self.G(torch.cat([source, source]), torch.cat([z1, z2])).chunk(2)

        # ---- D: target images against the first draw's
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        loss_d = bce_d_loss(self.judge(target), self.judge(fake1.detach()))
        self.backward(loss_d)
        self.step(opt_d)

        # ---- G and C: both draws fool D, the class stays readable, the noise is used
        opt_g, opt_c = self.optimizers["G"], self.optimizers["C"]
        opt_g.zero_grad(set_to_none=True)
        opt_c.zero_grad(set_to_none=True)
        with frozen(self.D):
            loss_gan = non_saturating_g_loss(self.judge(fake1))
            loss_gan = loss_gan + non_saturating_g_loss(self.judge(fake2))
        logits = self.classifier.class_logits(torch.cat([fake1, source]))
        loss_task = F.cross_entropy(logits, torch.cat([labels, labels]))
        spread = (fake1 - fake2).abs().mean(dim=(1, 2, 3)) / (z1 - z2).abs().mean(dim=1)
        loss_ms = spread.mean()
        loss = loss_gan + self.task_weight * loss_task - self.mode_seeking * loss_ms
        self.backward(loss)
        self.step(opt_g)
        self.step(opt_c)
        return {
            "loss_d": loss_d.item(),
            "loss_gan": loss_gan.item(),
            "loss_task": loss_task.item(),
            "mode_seeking": loss_ms.item(),
        }

    @torch.no_grad()
    def translate_source(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """G(x, z): source images in the target's look (fresh noise unless given)."""
        with eval_mode(self.G):
            return self.G(x, self.noise(len(x)) if z is None else z)


# --------------------------------------------------------------------------- variants
register_model(
    "pixel_da",
    PixelAdaptation,
    "pixel-level adaptation: a CycleGAN translator, then a classifier on translated source",
)
register_model(
    "pixel_dann",
    PixelAdaptation,
    "pixel-level adaptation with DANN on top: translated source aligned with the target",
    domain_weight=1.0,
)
register_model(
    "pixel_gan",
    PixelGAN,
    "PixelDA: a noise-conditioned generator G(x, z) trained with the classifier",
)
