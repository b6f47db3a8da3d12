r"""The variational autoencoder (Kingma & Welling 2014), the GAN's likelihood-based sibling.

An encoder q_φ(z | x) = N(μ_φ(x), diag σ²_φ(x)) and a decoder p_θ(x | z) are trained
together to maximise the evidence lower bound (ELBO) on log p(x):

``log p(x) ≥ ELBO = E_{q_φ(z|x)}[log p_θ(x | z)] − KL(q_φ(z | x) ‖ N(0, I))``

with the KL term in closed form,
``KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1)``,
and the expectation estimated with one sample through the reparameterization
``z = μ + exp(½ log σ²) ⊙ ε, ε ~ N(0, I)``, which lets gradients reach φ.

The loss minimised is ``−E[log p_θ(x | z)] + β KL`` (β = 1 is the ELBO; β > 1 is the
β-VAE of Higgins et al. 2017, trading reconstructions for a smoother latent space).
Reconstruction terms:

- ``bce``: a Bernoulli decoder on pixels rescaled to [0, 1],
  ``−log p(x | z) = Σ_pixels BCE(logits, x)`` (the usual choice for MNIST-like data);
- ``mse``: a Gaussian decoder of fixed std σ_x,
  ``−log p(x | z) = Σ (x − x̂)² / (2σ_x²) + D/2 log(2π σ_x²)``.

New samples are decoded from z ~ N(0, I).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError, check_finite
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_WIDTH,
    Model,
    ScoreContext,
    check_optimizer,
    check_sizes,
    check_weights,
)
from gankit.nn import Arch, Norm, eval_mode, feature_trunk, generator_net, resolve_arch
from gankit.registry import register_model


class VAE(Model):
    """A convolutional (or MLP) VAE with a Gaussian encoder.

    Args:
        data_shape: (C, H, W) images in [-1, 1], or (D,) points; set from the data.
        num_classes: unused.
        arch: ``conv``, ``mlp`` or ``auto`` (conv for images).
        latent_dim: size of z; 2 allows ``gankit explore --what manifold``.
        recon: ``bce`` (Bernoulli, images only), ``mse`` (Gaussian), or ``auto``: bce
            for images, mse for points.
        obs_std: σ_x of the Gaussian decoder (``mse``).
        beta: weight of the KL term (1: the ELBO).
        channels: width of the first encoder / last decoder conv layer (conv).
        hidden_dim, n_layers: MLP width and depth (points).
        norm: normalisation in encoder and decoder.
        lr: Adam's learning rate.
    """

    task = "sample"
    generator_name = "decoder"
    #: ``gankit explore --what manifold``: the decoded latent plane and reconstructions
    #: (reads ``latent_dim``, uses :meth:`reconstruct`).
    views = ("manifold",)
    gaussian_latents = ("z",)

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        arch: Arch = "auto",
        latent_dim: int = 16,
        recon: Literal["auto", "bce", "mse"] = "auto",
        obs_std: float = 0.1,
        beta: float = 1.0,
        channels: int = 32,
        hidden_dim: int = 256,
        n_layers: int = 2,
        norm: Norm = "batch",
        lr: float = 1e-3,
    ) -> None:
        super().__init__(data_shape, num_classes)
        self.arch = resolve_arch(arch, self.data_shape)
        is_image = self.arch == "conv" or len(self.data_shape) == 3
        if recon == "auto":
            recon = "bce" if is_image else "mse"
        if recon == "bce" and not is_image:
            raise GankitError("model: recon 'bce' needs images in [-1, 1]; use 'mse' for points")
        check_sizes(MAX_WIDTH, latent_dim=latent_dim, hidden_dim=hidden_dim)
        check_sizes(MAX_CHANNELS, channels=channels)
        check_sizes(MAX_DEPTH, n_layers=n_layers)
        check_optimizer(lr=lr)
        check_weights(beta=beta)
        check_finite("model: obs_std", obs_std, 0.0, above=True)
        self.latent_dim, self.recon, self.obs_std, self.beta, self.lr = (
            latent_dim,
            recon,
            obs_std,
            beta,
            lr,
        )
        trunk = feature_trunk(
            self.data_shape,
            arch=self.arch,
            width=channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            norm=norm,
            leaky_slope=0.2,
        )
        # (N, ...) -> (N, 2 * latent_dim): μ and log σ² side by side
        self.encoder = nn.Sequential(trunk, nn.Linear(trunk.out_features, 2 * latent_dim))
        # Decoder output: Bernoulli logits (bce) or the Gaussian mean (mse; tanh for images).
        output = "none" if recon == "bce" or not is_image else "tanh"
        self.decoder = generator_net(
            latent_dim,
            self.data_shape,
            arch=self.arch,
            width=channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            norm=norm,
            output=output,
        )

    # ------------------------------------------------------------------ the model
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, ...) -> μ, log σ²: each (N, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """``z = μ + exp(½ log σ²) ⊙ ε`` with ε ~ N(0, I): a sample that gradients pass."""
        return mu + (0.5 * logvar).exp() * torch.randn_like(mu)

    def to_data(self, decoded: torch.Tensor) -> torch.Tensor:
        """Decoder output -> data space: the Bernoulli mean mapped to [-1, 1] for bce."""
        return decoded.sigmoid() * 2 - 1 if self.recon == "bce" else decoded

    def negative_log_likelihood(self, decoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``−log p(x | z)`` per sample: (N,)."""
        if self.recon == "bce":
            target = (x + 1) / 2  # [-1, 1] -> [0, 1]
            nll = F.binary_cross_entropy_with_logits(decoded, target, reduction="none")
            return nll.flatten(1).sum(dim=1)
        squared = (x - decoded).pow(2).flatten(1)
        constant = 0.5 * squared.shape[1] * math.log(2 * math.pi * self.obs_std**2)
        return squared.sum(dim=1) / (2 * self.obs_std**2) + constant

    @staticmethod
    def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """``KL(N(μ, σ²) ‖ N(0, I))`` per sample, in closed form: (N,)."""
        return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample ``nll`` and ``kl`` (N,) for one reparameterized sample of z."""
        mu, logvar = self.encode(x)
        decoded = self.decoder(self.reparameterize(mu, logvar))
        return {
            "nll": self.negative_log_likelihood(decoded, x),
            "kl": self.kl_divergence(mu, logvar),
        }

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"VAE": torch.optim.Adam(self.parameters(), lr=self.lr)}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        optimizer = self.optimizers["VAE"]
        optimizer.zero_grad(set_to_none=True)
        parts = self.losses(batch["x"])
        nll, kl = parts["nll"].mean(), parts["kl"].mean()
        loss = nll + self.beta * kl
        self.backward(loss)
        self.step(optimizer)
        return {"loss": loss.item(), "nll": nll.item(), "kl": kl.item(), "elbo": -(nll + kl).item()}

    @torch.no_grad()
    def data_metrics(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, float]:
        """On held-out data, in eval mode: the mean ELBO (nats per sample, one z sample
        each), its two terms, and the per-pixel squared error of the reconstruction
        from the posterior mean (in the data's [-1, 1] units)."""
        with eval_mode(self):
            elbo, nll, kl, error, n = 0.0, 0.0, 0.0, 0.0, 0
            for chunk in x.to(self.device).split(500):
                parts = self.losses(chunk)
                nll += parts["nll"].sum().item()
                kl += parts["kl"].sum().item()
                error += (self.reconstruct(chunk) - chunk).pow(2).flatten(1).mean(1).sum().item()
                n += len(chunk)
            elbo = -(nll + kl)
            return {"elbo": elbo / n, "nll": nll / n, "kl": kl / n, "recon_mse": error / n}

    def family_scores(self, context: ScoreContext) -> tuple[dict[str, float], dict[str, float]]:
        """:meth:`data_metrics` on the held-out items: the ELBO and its terms."""
        return self.data_metrics(context.x, context.y), {}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean μ(x): (N, ...) -> (N, ...) in data space."""
        mu, _ = self.encode(x.to(self.device))
        return self.to_data(self.decoder(mu))

    # ------------------------------------------------------------------ sampling
    def sample_latent(self, n: int, generator: torch.Generator | None = None):
        return {"z": torch.randn(n, self.latent_dim, generator=generator)}

    def generate(self, latent, net=None) -> torch.Tensor:
        net = net if net is not None else self.decoder
        return self.to_data(net(latent["z"].to(self.device)))


# --------------------------------------------------------------------------- variants
register_model(
    "vae",
    VAE,
    "VAE: Gaussian encoder, Bernoulli/Gaussian decoder, loss = reconstruction + β·KL",
)
