r"""Domain-adversarial neural networks (DANN; Ganin & Lempitsky 2015, Ganin et al. 2016).

A classifier is trained on labelled *source* data and should work on an unlabelled
*target* domain (digits -> digits on photo backgrounds, synthetic -> real). DANN adds an
adversary: a domain classifier that tries to tell source features from target features.
The feature extractor is trained to make that impossible, so the label classifier
ends up relying on features that the two domains share.

With features ``f = G_f(x)``, label classifier ``G_y`` and domain classifier ``G_d``:

``E(θ_f, θ_y, θ_d) = Σ_{source} L_y(G_y(G_f(x)), y) − λ Σ_{source ∪ target} L_d(G_d(G_f(x)), d)``

is minimised over θ_f and θ_y and maximised over θ_d: a saddle point, like a GAN's,
where the "generator" is the feature extractor and the "discriminator" the domain
classifier. One backward pass does both: the gradient reversal layer between G_f and
G_d is the identity going forward and multiplies the gradient by −λ going back.

λ grows over training as ``λ_p = 2 / (1 + exp(−γ p)) − 1`` with ``p`` the progress from 0
to 1 and γ = 10: the domain signal is ignored while the features are still noise, then
counts fully. ``domain_weight: 0`` turns adaptation off; that model is the
*source-only* baseline, trained with the same budget.

``adversarial_eps > 0`` adds adversarial training (Madry et al. 2018): the label loss is
taken on PGD examples of the source batch, ``min_θ E[max_{||δ||_p <= ε} L_y(x + δ, y)]``
(:mod:`gankit.attacks`; ``gankit attack`` measures what it buys, docs/attack.md).

``stn: true`` puts a spatial transformer (:class:`gankit.nn.SpatialTransformer`, Jaderberg
et al. 2015) in front of the conv feature extractor: ``G_f(T_θ(x)(x))``, θ learned from
the same losses; ``gankit explore RUN --what transform`` shows what it does.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.attacks import MAX_STEPS, bounds_of, madry_examples
from gankit.errors import GankitError, check_finite, check_int
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
from gankit.nn import (
    Arch,
    Norm,
    SpatialTransformer,
    eval_mode,
    feature_trunk,
    grad_reverse,
    mlp,
    resolve_arch,
)
from gankit.registry import register_model


class DANN(Model):
    """Feature extractor, label classifier, and a domain classifier behind gradient reversal.

    Args:
        data_shape: (C, H, W) images or (D,) points, the same in both domains.
        num_classes: the source's label count.
        arch: ``conv``, ``mlp`` or ``auto`` (conv for images).
        channels: width of the first conv layer (conv).
        hidden_dim, n_layers: widths and depth of the MLP trunk (points), and the width
            of both classifier heads.
        norm: normalisation in the feature extractor.
        domain_weight: the final λ; 0 trains the source-only baseline.
        gamma: γ of the schedule ``λ_p = 2 / (1 + exp(−γ p)) − 1``.
        schedule: ``ganin`` (the schedule above) or ``constant`` (λ from the start).
        lr: Adam's learning rate for all three networks.
        adversarial_eps: ε of adversarial training on the source batch; 0 turns it off.
        adversarial_norm: the ball of adversarial training, ``linf`` or ``l2``.
        adversarial_steps: PGD steps per training batch (step size 2.5 ε / steps).
        stn: a spatial transformer in front of the feature extractor (images only).
    """

    task = "classify"
    #: ``transform``: inputs beside what the spatial transformer makes of them. The
    #: family can draw it; a model offers it only when built with ``stn: true``.
    views = ("transform",)
    #: What ``gankit adapt`` changes in the model config for the source-only baseline:
    #: the registered ``source_only`` variant, without the domain classifier.
    baseline_overrides: ClassVar[dict[str, str | float]] = {
        "name": "source_only",
        "domain_weight": 0.0,
    }

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        arch: Arch = "auto",
        channels: int = 32,
        hidden_dim: int = 128,
        n_layers: int = 2,
        norm: Norm = "batch",
        domain_weight: float = 1.0,
        gamma: float = 10.0,
        schedule: Literal["ganin", "constant"] = "ganin",
        lr: float = 1e-3,
        adversarial_eps: float = 0.0,
        adversarial_norm: Literal["linf", "l2"] = "linf",
        adversarial_steps: int = 7,
        stn: bool = False,
    ) -> None:
        super().__init__(data_shape, num_classes)
        if not num_classes or num_classes < 2:
            raise GankitError(
                f"model: DANN classifies the source's labels; the source has "
                f"num_classes={num_classes} (choose a labelled source such as digits or moons)"
            )
        check_sizes(MAX_CHANNELS, channels=channels)
        check_sizes(MAX_WIDTH, hidden_dim=hidden_dim)
        check_sizes(MAX_DEPTH, n_layers=n_layers)
        check_optimizer(lr=lr)
        check_weights(domain_weight=domain_weight)
        check_finite("model: gamma", gamma, 0.0, above=True)
        check_finite("model: adversarial_eps", adversarial_eps, 0.0)
        check_int("model: adversarial_steps", adversarial_steps, 1, MAX_STEPS)
        self.adversarial_training = (adversarial_eps, adversarial_norm, adversarial_steps)
        self.arch = resolve_arch(arch, self.data_shape)
        if stn and self.arch != "conv":
            raise GankitError(
                f"model: stn transforms images; data of shape {self.data_shape} takes arch "
                f"'{self.arch}' (use stn: false, or image data with arch conv)"
            )
        # Identity when off: no parameters, so checkpoints without it load unchanged
        self.transformer = SpatialTransformer(self.data_shape[0]) if stn else nn.Identity()
        # gankit explore and the report then suggest the picture only where it draws
        self.views = type(self).views if stn else ()
        self.domain_weight, self.gamma, self.schedule, self.lr = domain_weight, gamma, schedule, lr
        self.features = feature_trunk(
            self.data_shape,
            arch=self.arch,
            width=channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            norm=norm,
            leaky_slope=0.0,
        )
        width = self.features.out_features
        self.classifier = mlp(width, hidden_dim, 1, num_classes)
        self.domain_classifier = mlp(width, hidden_dim, 1, 1)

    def reversal_weight(self, step: int) -> float:
        """λ_p at ``step``: ``2 / (1 + exp(−γ p)) − 1`` times ``domain_weight``."""
        if self.schedule == "constant":
            return self.domain_weight
        progress = self.progress(step)
        return self.domain_weight * (2.0 / (1.0 + math.exp(-self.gamma * progress)) - 1.0)

    # ------------------------------------------------------------------ training
    def training_data(self, bundle) -> dict:
        """Labelled source batches ``x``, ``y`` and unlabelled target batches ``x_b``."""
        return two_domains(self, bundle)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"DANN": torch.optim.Adam(self.parameters(), lr=self.lr)}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        source, labels, target = batch["x"], batch["y"], batch["x_b"]
        eps, norm, attack_steps = self.adversarial_training
        if eps > 0:
            source = madry_examples(
                self, self.class_logits, source, labels, eps, norm, attack_steps,
                bounds_of(self.data_shape),
            )  # fmt: skip
        optimizer = self.optimizers["DANN"]
        optimizer.zero_grad(set_to_none=True)
        # One pass over both domains: batch-norm statistics then describe their mixture.
        # The source-only baseline never sees the target, not even through batch norm.
        adapting = self.domain_weight > 0
        features = self.embed(torch.cat([source, target]) if adapting else source)
        source_features = features[: len(source)]
        label_loss = F.cross_entropy(self.classifier(source_features), labels)
        weight = self.reversal_weight(step)
        stats = {"loss_label": label_loss.item(), "lambda": weight}
        loss = label_loss
        if adapting:
            domains = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(features)
            domain_logits = self.domain_classifier(grad_reverse(features, weight)).squeeze(1)
            domain_loss = F.binary_cross_entropy_with_logits(domain_logits, domains)
            loss = loss + domain_loss
            stats["loss_domain"] = domain_loss.item()
            # 0.5 means the domain classifier cannot tell the domains apart
            stats["domain_acc"] = ((domain_logits > 0).float() == domains).float().mean().item()
        self.backward(loss)
        self.step(optimizer)
        return stats

    # ------------------------------------------------------------------ task "classify"
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N, F) features G_f(x), through the spatial transformer if any."""
        return self.features(self.transformer(x))

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N, K) label logits G_y(G_f(x)), with gradients."""
        return self.classifier(self.embed(x))

    def feature_maps(self) -> dict[str, torch.nn.Module]:
        """The conv trunk's activations, ``block1`` (largest maps) to ``blockK``."""
        if self.arch != "conv":
            return {}
        kinds = (torch.nn.ReLU, torch.nn.LeakyReLU)
        found = [m for m in self.features.layers if isinstance(m, kinds)]
        return {f"block{i + 1}": module for i, module in enumerate(found)}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N,) predicted labels, in eval mode."""
        with eval_mode(self):
            logits = [self.classifier(self.embed(c.to(self.device))) for c in x.split(500)]
            return torch.cat(logits).argmax(dim=1).cpu()

    def spatial_transformer(self) -> SpatialTransformer | None:
        """The spatial transformer in front of the feature extractor; None without one."""
        return self.transformer if isinstance(self.transformer, SpatialTransformer) else None

    def predictor(self) -> nn.Module:
        """(N, ...) -> (N, num_classes) label logits: the feature trunk, then the label
        classifier (the domain classifier is training's business only)."""
        if self.spatial_transformer() is not None:
            return nn.Sequential(self.transformer, self.features, self.classifier)
        return nn.Sequential(self.features, self.classifier)


# --------------------------------------------------------------------------- variants
register_model(
    "dann",
    DANN,
    "DANN: features, label classifier, domain classifier behind gradient reversal (Ganin 2015)",
)
register_model(
    "source_only",
    DANN,
    "DANN's architecture without the domain classifier: the source-only baseline",
    domain_weight=0.0,
)
