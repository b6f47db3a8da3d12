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
from torch import nn

from gankit.errors import GankitError
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
from gankit.nn import Norm, eval_mode
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


class PixelAdaptation(Model):
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

    task = "classify"
    #: ``gankit adapt``'s comparison: DANN's classifier, never shown a translation.
    baseline_overrides: ClassVar[dict[str, str | float]] = {
        "name": "source_only",
        "domain_weight": 0.0,
    }
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

    # ------------------------------------------------------------------ task "classify"
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

    @classmethod
    def baselines(cls, model_config: dict) -> dict[str, dict]:
        """``gankit adapt``'s rows next to this one: DANN's network as source-only and as
        DANN, with this run's classifier settings, never shown a translation."""
        shared = {k: model_config[k] for k in CLASSIFIER_SETTINGS if k in model_config}
        return {
            "source-only": {"name": "source_only", **shared},
            "dann": {"name": "dann", **shared, "domain_weight": 1.0},
        }

    @classmethod
    def pretrained_settings(cls, option: str, run_model_config: dict) -> dict:
        """``translator_<name>`` settings copied from a CycleGAN run's model config."""
        return {
            f"translator_{k}": run_model_config[k]
            for k in TRANSLATOR_SETTINGS
            if k in run_model_config
        }


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
