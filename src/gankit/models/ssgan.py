r"""The semi-supervised GAN (Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen 2016,
"Improved Techniques for Training GANs", section 5).

A classifier learns from a few labelled items and many unlabelled ones. Its
discriminator D is a (K+1)-way classifier: the K classes of the data, plus "generated".
With logits ``l_1..l_K`` (the fake class's logit fixed at 0, which loses nothing: a
softmax is unchanged by a shift of all logits), ``Z(x) = Σ_k exp(l_k(x))`` and
``D(x) = Z(x) / (Z(x) + 1)`` the probability that x is real. D minimises

``L = L_supervised + w L_unsupervised``, with

- ``L_supervised = −E_{(x,y) labelled}[log p(y | x, y < K+1)]``, the cross-entropy of the
  K logits on the labelled items;
- ``L_unsupervised = −E_{x unlabelled}[log D(x)] − E_z[log(1 − D(G(z)))]``, computed stably
  as ``log D(x) = LSE(l) − softplus(LSE(l))`` and ``log(1 − D(x)) = −softplus(LSE(l))``.

G does not try to fool D's output but matches the statistics of its features
(feature matching): ``||E_x f(x) − E_z f(G(z))||²`` with f D's trunk, the layer below
the logits. The paper found this gives the best classifier, though not the best
samples. ``unsupervised_weight=0`` is the baseline: the same network on the labelled
items alone, at the same budget, with no G.

The labelled subset is ``labels_per_class`` items of each class of the training split,
drawn with ``label_seed``; every training item, labelled or not, also enters the
unlabelled stream, which carries no label (``NO_LABEL``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from gankit.conventions import MAX_SEED, NO_LABEL
from gankit.errors import GankitError, check_finite, check_int
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_WIDTH,
    Model,
    check_optimizer,
    check_sizes,
    check_weights,
)
from gankit.nn import eval_mode, feature_trunk, generator_net, resolve_arch
from gankit.registry import register_model

#: The most labels per class: beyond this the data is simply labelled.
MAX_LABELS_PER_CLASS = 100_000


def labelled_subset(
    labels: torch.Tensor, num_classes: int, per_class: int, seed: int
) -> torch.Tensor:
    """(K * per_class,) sorted indices: ``per_class`` items of each class 0..K-1 of
    ``labels`` (N,), the first ones of a permutation drawn from ``seed``.

    Raises:
        GankitError: a class has fewer than ``per_class`` items.
    """
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = []
    for k in range(num_classes):
        of_class = order[labels[order] == k]
        if len(of_class) < per_class:
            raise GankitError(
                f"model: labels_per_class {per_class}: class {k} has only {len(of_class)} "
                f"training items; use at most {len(of_class)}"
            )
        chosen.append(of_class[:per_class])
    return torch.cat(chosen).sort().values


class SemiSupervisedGAN(Model):
    """A (K+1)-way discriminator that is the classifier, and a feature-matching G.

    Args:
        data_shape: (C, H, W) images or (D,) points; set from the data.
        num_classes: K, the data's classes; set from the data.
        labels_per_class: the labelled items of each class (the paper: 10 on MNIST, 100
            labels in all); at least 1, so that every class is seen labelled.
        label_seed: draws which items are labelled.
        latent_dim: the size of G's noise z ~ N(0, I).
        channels: the width of D's first conv layer and of G's last (images).
        hidden_dim: the width of D's and G's MLPs (points).
        dropout: D's dropout on its trunk (the paper uses dropout in D).
        input_noise: the std of Gaussian noise added to every input of D while it trains
            (the paper: 0.3 on MNIST); 0 adds none.
        unsupervised_weight: w; 0 trains the labelled-only baseline (no G).
        lr: Adam's learning rate for G and D (the paper: 3e-4).
        betas: Adam's (β1, β2) (the paper: β1 = 0.5).
    """

    task = "classify"
    generator_name = "G"
    baseline_overrides: ClassVar[dict[str, str | float]] = {
        "name": "ssgan_labelled_only",
        "unsupervised_weight": 0.0,
    }

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        labels_per_class: int = 10,
        label_seed: int = 0,
        latent_dim: int = 64,
        channels: int = 32,
        hidden_dim: int = 128,
        dropout: float = 0.2,
        input_noise: float = 0.0,
        unsupervised_weight: float = 1.0,
        lr: float = 3e-4,
        betas: tuple[float, float] = (0.5, 0.999),
    ) -> None:
        super().__init__(data_shape, num_classes)
        if not num_classes or num_classes < 2:
            raise GankitError(
                f"model: the semi-supervised GAN classifies the data's labels; the data has "
                f"num_classes={num_classes} (choose a labelled source such as digits)"
            )
        if labels_per_class < 1:  # fewer labels than classes: a class never seen labelled
            raise GankitError(
                f"model: labels_per_class must be at least 1 (one label of each of the "
                f"{num_classes} classes), got {labels_per_class}"
            )
        check_int("model: labels_per_class", labels_per_class, 1, MAX_LABELS_PER_CLASS)
        check_int("model: label_seed", label_seed, 0, MAX_SEED)
        check_sizes(MAX_CHANNELS, channels=channels)
        check_sizes(MAX_WIDTH, latent_dim=latent_dim, hidden_dim=hidden_dim)
        check_optimizer(betas, lr=lr)
        check_weights(unsupervised_weight=unsupervised_weight)
        if not 0.0 <= dropout < 1.0:
            raise GankitError(f"model: dropout must be in [0, 1), got {dropout}")
        check_finite("model: input_noise", input_noise, 0.0)
        self.labels_per_class, self.label_seed = labels_per_class, label_seed
        self.input_noise = input_noise
        self.latent_dim, self.unsupervised_weight = latent_dim, unsupervised_weight
        self.lr, self.betas = lr, tuple(betas)
        # Layer norm, not batch norm: real and generated batches must not share statistics.
        # conv for (C, H, W) images, an MLP for points (two moons, ...)
        arch = resolve_arch("auto", self.data_shape)
        self.features = feature_trunk(
            self.data_shape, arch=arch, width=channels, hidden_dim=hidden_dim, norm="layer",
            dropout=dropout,
        )  # fmt: skip
        self.classifier = nn.Linear(self.features.out_features, num_classes)
        self.G = (
            generator_net(
                latent_dim, self.data_shape, arch=arch, width=channels, hidden_dim=hidden_dim
            )
            if unsupervised_weight
            else None
        )

    # ------------------------------------------------------------------ training
    def training_data(self, bundle) -> dict:
        """Labelled batches ``x``, ``y`` (``labels_per_class`` of each class) and unlabelled
        batches ``x_b`` of the whole training split, whose ``y_b`` is ``NO_LABEL``.

        Raises:
            GankitError: the data is not labelled images held in memory, or a class has
                fewer items than ``labels_per_class``.
        """
        if not isinstance(bundle.train, TensorDataset) or bundle.num_classes is None:
            raise GankitError(
                f"model '{self.model_name}' picks labelled items from a labelled source held "
                f"in memory (digits, fashion-mnist, mnist); data '{bundle.name}' is not one"
            )
        x, y = bundle.train.tensors[:2]
        chosen = labelled_subset(y, self.num_classes, self.labels_per_class, self.label_seed)
        labelled = TensorDataset(x[chosen], y[chosen])
        if not self.unsupervised_weight:
            return {"": labelled}
        # the unlabelled stream: every item, its label dropped here, before training
        return {"": labelled, "_b": TensorDataset(x, torch.full_like(y, NO_LABEL))}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = [*self.features.parameters(), *self.classifier.parameters()]
        optimizers = {"D": torch.optim.Adam(params, lr=self.lr, betas=self.betas)}
        if self.G is not None:
            optimizers["G"] = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)
        return optimizers

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``{"z": (n, latent_dim)}`` from N(0, I)."""
        return {"z": torch.randn(n, self.latent_dim, generator=generator).to(self.device)}

    def generate(
        self, latent: dict[str, torch.Tensor], net: nn.Module | None = None
    ) -> torch.Tensor:
        """(N, ...) G(z)."""
        return (net or self.G)(latent["z"])

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        x_labelled, labels = batch["x"], batch["y"]
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        loss_sup = F.cross_entropy(self.class_logits(x_labelled), labels)
        stats = {"loss_supervised": loss_sup.item()}
        if self.G is None:
            self.backward(loss_sup)
            self.step(opt_d)
            return stats

        # ---- D: classes on the labelled items, real against generated on the rest
        x_unlabelled = batch["x_b"]  # batch["y_b"] is NO_LABEL and never read
        z = self.sample_latent(len(x_unlabelled))["z"]
        fake = self.G(z)
        lse_real = torch.logsumexp(self.class_logits(x_unlabelled), dim=1)
        lse_fake = torch.logsumexp(self.class_logits(fake.detach()), dim=1)  # D's step only
        loss_unsup = -(lse_real - F.softplus(lse_real)).mean() + F.softplus(lse_fake).mean()
        self.backward(loss_sup + self.unsupervised_weight * loss_unsup)
        self.step(opt_d)

        # ---- G: feature matching on D's trunk
        opt_g = self.optimizers["G"]
        opt_g.zero_grad(set_to_none=True)
        with torch.no_grad():
            real_features = self.noisy_features(x_unlabelled).mean(dim=0)
        fake_features = self.noisy_features(self.G(z)).mean(dim=0)
        loss_g = (real_features - fake_features).pow(2).mean()
        self.backward(loss_g)
        self.step(opt_g)
        # D's gradients from G's step are left behind: D zeroes its own before its step
        stats.update(
            loss_unsupervised=loss_unsup.item(),
            loss_g=loss_g.item(),
            d_real=torch.sigmoid(lse_real).mean().item(),
            d_fake=torch.sigmoid(lse_fake).mean().item(),
        )
        return stats

    # ------------------------------------------------------------------ task "classify"
    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N, K) the K real classes' logits (the fake class's is 0)."""
        return self.classifier(self.noisy_features(x))

    def noisy_features(self, x: torch.Tensor) -> torch.Tensor:
        """D's trunk, with ``input_noise`` added to x in training mode only."""
        if self.training and self.input_noise:
            x = x + self.input_noise * torch.randn_like(x)
        return self.features(x)

    def feature_maps(self) -> dict[str, nn.Module]:
        """The conv trunk's activations, ``block1`` (largest maps) to ``blockK``."""
        found = [m for m in self.features.modules() if isinstance(m, nn.LeakyReLU)]
        return {f"block{i + 1}": module for i, module in enumerate(found)}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N,) the most likely real class, in eval mode."""
        with eval_mode(self):
            logits = [self.class_logits(c.to(self.device)) for c in x.split(500)]
            return torch.cat(logits).argmax(dim=1).cpu()

    def predictor(self) -> nn.Module:
        """(N, ...) -> (N, K) class logits: D's trunk and its class head."""
        return nn.Sequential(self.features, self.classifier)


# --------------------------------------------------------------------------- variants
register_model(
    "ssgan",
    SemiSupervisedGAN,
    "semi-supervised GAN: (K+1)-way D as the classifier, feature-matching G (Salimans 2016)",
)
register_model(
    "ssgan_labelled_only",
    SemiSupervisedGAN,
    "the semi-supervised GAN's classifier on its labelled items alone: its baseline",
    unsupervised_weight=0.0,
)
