r"""The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016,
"Adversarial Autoencoders").

An autoencoder whose code is shaped by a GAN. The encoder q(z | x) (here deterministic,
the paper's first variant: z = E(x)) and the decoder p(x | z) minimise the
reconstruction error; a discriminator D on codes tells samples of a chosen prior p(z)
from the encoded data, and the encoder, acting as D's generator, learns to make the
aggregated posterior ``q(z) = ∫ q(z | x) p_data(x) dx`` indistinguishable from p(z).
Each step has two phases, as in the paper:

- reconstruction: ``min_{E, Dec} E_x[||x − Dec(E(x))||²]`` (per pixel, in [-1, 1] units);
- regularisation: ``min_E max_D E_{z~p(z)}[log D(z)] + E_x[log(1 − D(E(x)))]``, D first,
  then E with the non-saturating ``−log D(E(x))``, weighted by ``adversarial_weight``.

Once q(z) matches p(z), decoding prior draws gives data: the decoder is a generator.
Unlike the VAE's KL term, the adversarial term needs only samples of p(z), so the prior
can be anything that can be sampled:

- ``gaussian``: N(0, I);
- ``mixture``: 10 Gaussians of std ``mixture_std`` whose means sit evenly on a circle of
  radius ``mixture_radius`` in the first two latent dimensions (the paper's figure 4),
  0 in the others.

``adversarial_weight=0`` is the plain autoencoder (no D), the baseline for how well
q(z) matches the prior (``prior_sw1``, the sliced Wasserstein-1 distance).

**Label information** (the paper's section 2.3, ``labels=True``, mixture prior only): the
mixture component of each prior draw follows the class of the item it is matched with,
and D also reads a one-hot of that class, with one extra slot for unlabelled items (whose
draw comes from any component):

``min_E max_D E_{x,y}[log D(z_y, h(y)) + log(1 − D(E(x), h(y)))]``, ``z_y ~ N(μ_y, σ²I)``

with h(y) the one-hot (the last slot when y is unknown). D can then tell a code that sits
in the wrong class's component, so E learns to put class k into component k: the code
carries the class in its position, which ``component_accuracy`` measures.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError, check_finite
from gankit.losses import bce_d_loss, non_saturating_g_loss
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_WIDTH,
    Model,
    ScoreContext,
    check_optimizer,
    check_sizes,
    check_weights,
)
from gankit.nn import eval_mode, feature_trunk, frozen, generator_net, mlp, resolve_arch
from gankit.registry import register_model

PRIORS = ("gaussian", "mixture")
#: Components of the ``mixture`` prior (the paper's 10, one per digit class).
MIXTURE_COMPONENTS = 10
#: Random directions of the sliced Wasserstein distance.
SLICES = 128


def sliced_w1(a: torch.Tensor, b: torch.Tensor, seed: int = 0) -> float:
    """The sliced Wasserstein-1 distance of two (N, D) samples of one size: the mean,
    over ``SLICES`` random unit directions θ, of ``W1(θ·a, θ·b)``, which in 1-D is the
    mean absolute difference of the sorted projections."""
    generator = torch.Generator().manual_seed(seed)
    directions = F.normalize(torch.randn(a.shape[1], SLICES, generator=generator), dim=0)
    projected_a = (a.float().cpu() @ directions).sort(dim=0).values
    projected_b = (b.float().cpu() @ directions).sort(dim=0).values
    return float((projected_a - projected_b).abs().mean())


class AdversarialAutoencoder(Model):
    """A deterministic encoder, a decoder and a discriminator on codes.

    Args:
        data_shape: (C, H, W) images in [-1, 1] or (D,) points; set from the data.
        num_classes: unused.
        latent_dim: the size of z (the paper: 2 for its pictures, 8 for its likelihoods).
        prior: ``gaussian`` or ``mixture`` (see the module docstring).
        mixture_radius: the circle the mixture's means sit on.
        mixture_std: the std of each mixture component.
        channels: width of the encoder's first and the decoder's last conv layer (images).
        hidden_dim: width of D's MLP (and of the encoder's and decoder's, for points).
        adversarial_weight: the weight of E's adversarial loss; 0 is the plain autoencoder.
        labels: the mixture component follows the class (see the module docstring); needs
            the mixture prior, labelled data with at most 10 classes and a D.
        lr: Adam's learning rate for all three networks.
    """

    task = "sample"
    generator_name = "decoder"
    #: ``gankit explore --what manifold``: the decoded latent plane and reconstructions;
    #: ``--what codes``: held-out codes by class over prior draws (reads :meth:`encode`).
    views = ("manifold", "codes")

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        latent_dim: int = 8,
        prior: str = "gaussian",
        mixture_radius: float = 4.0,
        mixture_std: float = 0.5,
        channels: int = 32,
        hidden_dim: int = 256,
        adversarial_weight: float = 1.0,
        labels: bool = False,
        lr: float = 1e-3,
    ) -> None:
        super().__init__(data_shape, num_classes)
        if prior not in PRIORS:
            raise GankitError(f"model: prior must be one of {', '.join(PRIORS)}, got '{prior}'")
        if prior == "mixture" and latent_dim < 2:
            raise GankitError("model: the mixture prior lies on a circle: latent_dim must be >= 2")
        if labels:
            check_label_prior(prior, self.num_classes, adversarial_weight)
        check_sizes(MAX_WIDTH, latent_dim=latent_dim, hidden_dim=hidden_dim)
        check_sizes(MAX_CHANNELS, channels=channels)
        check_optimizer(lr=lr)
        check_weights(adversarial_weight=adversarial_weight)
        check_finite("model: mixture_radius", mixture_radius, 0.0)
        check_finite("model: mixture_std", mixture_std, 0.0, above=True)
        self.latent_dim, self.prior, self.lr = latent_dim, prior, lr
        self.mixture_radius, self.mixture_std = mixture_radius, mixture_std
        self.adversarial_weight, self.labels = adversarial_weight, bool(labels)
        arch = resolve_arch("auto", self.data_shape)
        trunk = feature_trunk(self.data_shape, arch=arch, width=channels, hidden_dim=hidden_dim)
        self.encoder = nn.Sequential(trunk, nn.Linear(trunk.out_features, latent_dim))
        self.decoder = generator_net(
            latent_dim,
            self.data_shape,
            arch=arch,
            width=channels,
            hidden_dim=hidden_dim,
            output="tanh" if arch == "conv" else "none",
        )
        # with labels, D also reads the one-hot class: 10 slots and one for "unlabelled"
        d_inputs = latent_dim + (MIXTURE_COMPONENTS + 1 if self.labels else 0)
        self.D = mlp(d_inputs, hidden_dim, 2, 1, leaky_slope=0.2) if adversarial_weight else None

    # ------------------------------------------------------------------ the prior
    def mixture_means(self) -> torch.Tensor:
        """(10, latent_dim): the components' means, evenly on the circle in dims 0 and 1."""
        angles = torch.arange(MIXTURE_COMPONENTS) * (2 * math.pi / MIXTURE_COMPONENTS)
        means = torch.zeros(MIXTURE_COMPONENTS, self.latent_dim)
        means[:, 0], means[:, 1] = angles.cos(), angles.sin()
        return means * self.mixture_radius

    def sample_prior(
        self,
        n: int,
        generator: torch.Generator | None = None,
        classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(n, latent_dim) draws of p(z), on the CPU. With ``classes`` (n,) (mixture prior
        only), draw i comes from component ``classes[i]``, or any component where it is -1."""
        noise = torch.randn(n, self.latent_dim, generator=generator)
        if self.prior == "gaussian":
            return noise
        component = torch.randint(MIXTURE_COMPONENTS, (n,), generator=generator)
        if classes is not None:
            classes = classes.cpu()
            component = torch.where(classes >= 0, classes, component)
        return self.mixture_means()[component] + self.mixture_std * noise

    def judged(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """D's logits for codes (N, latent_dim), with the one-hot of y (N,) beside them
        when the prior follows labels (the last slot for y = -1)."""
        if not self.labels:
            return self.D(z)
        slot = torch.where(y >= 0, y, torch.full_like(y, MIXTURE_COMPONENTS))
        return self.D(torch.cat([z, F.one_hot(slot, MIXTURE_COMPONENTS + 1).to(z.dtype)], 1))

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        autoencoder = [*self.encoder.parameters(), *self.decoder.parameters()]
        optimizers = {"AE": torch.optim.Adam(autoencoder, lr=self.lr, betas=(0.5, 0.999))}
        if self.D is not None:
            optimizers["D"] = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=(0.5, 0.999))
            optimizers["E"] = torch.optim.Adam(
                self.encoder.parameters(), lr=self.lr, betas=(0.5, 0.999)
            )
        return optimizers

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        x = batch["x"]
        # ---- reconstruction phase: encoder and decoder
        opt_ae = self.optimizers["AE"]
        opt_ae.zero_grad(set_to_none=True)
        loss_recon = (self.decoder(self.encoder(x)) - x).pow(2).mean()
        self.backward(loss_recon)
        self.step(opt_ae)
        stats = {"loss_recon": loss_recon.item()}
        if self.D is None:
            return stats

        # ---- regularisation phase: D tells prior draws from codes, then E fools it
        opt_d, opt_e = self.optimizers["D"], self.optimizers["E"]
        opt_d.zero_grad(set_to_none=True)
        y = batch["y"] if self.labels else torch.full((len(x),), -1, device=x.device)
        prior = self.sample_prior(len(x), classes=y if self.labels else None).to(x.device)
        codes = self.encoder(x)
        # detach: D's step only
        loss_d = bce_d_loss(self.judged(prior, y), self.judged(codes.detach(), y))
        self.backward(loss_d)
        self.step(opt_d)
        opt_e.zero_grad(set_to_none=True)
        with frozen(self.D):  # gradients pass through D to E only
            loss_e = self.adversarial_weight * non_saturating_g_loss(self.judged(codes, y))
        self.backward(loss_e)
        self.step(opt_e)
        stats.update(loss_d=loss_d.item(), loss_e=loss_e.item())
        return stats

    # ------------------------------------------------------------------ scores
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N, latent_dim) codes E(x), in eval mode, on the CPU."""
        with eval_mode(self):
            return torch.cat([self.encoder(c.to(self.device)).cpu() for c in x.split(500)])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N, ...) Dec(E(x)), in eval mode."""
        with eval_mode(self):
            return self.decoder(self.encoder(x.to(self.device)))

    def family_scores(self, context: ScoreContext) -> tuple[dict[str, float], dict[str, float]]:
        """On the held-out items: ``recon_mse``, the per-pixel squared error of Dec(E(x));
        ``prior_sw1``, the sliced W1 between their codes and as many prior draws (how far
        q(z) is from p(z)), with its floor: two samples of the prior itself."""
        codes = self.encode(context.x)
        error = (self.reconstruct(context.x).cpu() - context.x.cpu()).pow(2).mean()
        generator = torch.Generator().manual_seed(context.seed)
        prior, other = (
            self.sample_prior(len(codes), generator),
            self.sample_prior(len(codes), generator),
        )
        scores = {"recon_mse": float(error), "prior_sw1": sliced_w1(codes, prior, context.seed)}
        labelled = context.y >= 0
        if self.prior == "mixture" and context.num_classes and bool(labelled.any()):
            scores["component_accuracy"] = component_accuracy(
                self.nearest_component(codes[labelled]), context.y[labelled], self.labels
            )
        return scores, {"prior_sw1": sliced_w1(other, prior, context.seed)}

    def nearest_component(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) codes -> (N,) index of the nearest mixture mean."""
        return torch.cdist(codes.float(), self.mixture_means()).argmin(dim=1)

    # ------------------------------------------------------------------ sampling
    def sample_latent(self, n: int, generator: torch.Generator | None = None):
        """``{"z": (n, latent_dim)}`` drawn from the prior."""
        return {"z": self.sample_prior(n, generator)}

    def generate(self, latent, net=None) -> torch.Tensor:
        """(N, ...) Dec(z)."""
        net = net if net is not None else self.decoder
        return net(latent["z"].to(self.device))


def check_label_prior(prior: str, num_classes: int | None, adversarial_weight: float) -> None:
    """The label-following prior needs the mixture, a D and labelled data of <= 10 classes."""
    if prior != "mixture":
        raise GankitError(
            "model: labels=true needs prior: mixture (the component follows the class)"
        )
    if not adversarial_weight:
        raise GankitError("model: labels=true needs a discriminator: adversarial_weight > 0")
    if not num_classes or num_classes > MIXTURE_COMPONENTS:
        raise GankitError(
            f"model: labels=true needs labelled data of at most {MIXTURE_COMPONENTS} classes "
            f"(one mixture component each), got {num_classes or 'no labels'}"
        )


def component_accuracy(components: torch.Tensor, classes: torch.Tensor, direct: bool) -> float:
    """The share of items whose nearest mixture component is their class's.

    ``direct``: class k owns component k (the label-following prior). Otherwise the
    components are matched to classes one-to-one to maximise agreement (Hungarian
    matching on the confusion matrix), so that an autoencoder trained without labels is
    scored on whether its clusters are the classes at all.
    """
    from scipy.optimize import linear_sum_assignment

    if direct:
        return float((components == classes).float().mean())
    confusion = torch.zeros(MIXTURE_COMPONENTS, MIXTURE_COMPONENTS, dtype=torch.long)
    confusion.index_put_((components, classes.long()), torch.ones_like(components), accumulate=True)
    rows, cols = linear_sum_assignment(confusion.numpy(), maximize=True)
    return float(confusion[rows, cols].sum()) / len(classes)


# --------------------------------------------------------------------------- variants
register_model(
    "aae",
    AdversarialAutoencoder,
    "adversarial autoencoder: a GAN on the code matches q(z) to a prior (Makhzani 2016)",
)
register_model(
    "aae_mixture",
    AdversarialAutoencoder,
    "adversarial autoencoder with a 10-component mixture prior on a circle, 2-D codes",
    prior="mixture",
    latent_dim=2,
)
register_model(
    "aae_labels",
    AdversarialAutoencoder,
    "adversarial autoencoder whose mixture component follows the class (Makhzani 2016, 2.3)",
    prior="mixture",
    latent_dim=2,
    labels=True,
)
register_model(
    "aae_plain",
    AdversarialAutoencoder,
    "the adversarial autoencoder's networks without D: a plain autoencoder, its baseline",
    adversarial_weight=0.0,
)
