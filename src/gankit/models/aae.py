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
        lr: float = 1e-3,
    ) -> None:
        super().__init__(data_shape, num_classes)
        if prior not in PRIORS:
            raise GankitError(f"model: prior must be one of {', '.join(PRIORS)}, got '{prior}'")
        if prior == "mixture" and latent_dim < 2:
            raise GankitError("model: the mixture prior lies on a circle: latent_dim must be >= 2")
        check_sizes(MAX_WIDTH, latent_dim=latent_dim, hidden_dim=hidden_dim)
        check_sizes(MAX_CHANNELS, channels=channels)
        check_optimizer(lr=lr)
        check_weights(adversarial_weight=adversarial_weight)
        check_finite("model: mixture_radius", mixture_radius, 0.0)
        check_finite("model: mixture_std", mixture_std, 0.0, above=True)
        self.latent_dim, self.prior, self.lr = latent_dim, prior, lr
        self.mixture_radius, self.mixture_std = mixture_radius, mixture_std
        self.adversarial_weight = adversarial_weight
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
        self.D = mlp(latent_dim, hidden_dim, 2, 1, leaky_slope=0.2) if adversarial_weight else None

    # ------------------------------------------------------------------ the prior
    def mixture_means(self) -> torch.Tensor:
        """(10, latent_dim): the components' means, evenly on the circle in dims 0 and 1."""
        angles = torch.arange(MIXTURE_COMPONENTS) * (2 * math.pi / MIXTURE_COMPONENTS)
        means = torch.zeros(MIXTURE_COMPONENTS, self.latent_dim)
        means[:, 0], means[:, 1] = angles.cos(), angles.sin()
        return means * self.mixture_radius

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, latent_dim) draws of p(z), on the CPU."""
        noise = torch.randn(n, self.latent_dim, generator=generator)
        if self.prior == "gaussian":
            return noise
        component = torch.randint(MIXTURE_COMPONENTS, (n,), generator=generator)
        return self.mixture_means()[component] + self.mixture_std * noise

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
        prior = self.sample_prior(len(x)).to(x.device)
        codes = self.encoder(x)
        loss_d = bce_d_loss(self.D(prior), self.D(codes.detach()))  # detach: D's step only
        self.backward(loss_d)
        self.step(opt_d)
        opt_e.zero_grad(set_to_none=True)
        with frozen(self.D):  # gradients pass through D to E only
            loss_e = self.adversarial_weight * non_saturating_g_loss(self.D(codes))
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
        return scores, {"prior_sw1": sliced_w1(other, prior, context.seed)}

    # ------------------------------------------------------------------ sampling
    def sample_latent(self, n: int, generator: torch.Generator | None = None):
        """``{"z": (n, latent_dim)}`` drawn from the prior."""
        return {"z": self.sample_prior(n, generator)}

    def generate(self, latent, net=None) -> torch.Tensor:
        """(N, ...) Dec(z)."""
        net = net if net is not None else self.decoder
        return net(latent["z"].to(self.device))


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
    "aae_plain",
    AdversarialAutoencoder,
    "the adversarial autoencoder's networks without D: a plain autoencoder, its baseline",
    adversarial_weight=0.0,
)
