r"""Class-conditional GANs: cGAN (concatenation or projection) and ACGAN.

Both generators take a class label y with the noise, ``x̃ = G(z, y)``, through a learned
label embedding concatenated to z. The discriminators differ in how they use y.

- cGAN (Mirza & Osindero 2014): D judges (x, y) pairs,
  ``min_G max_D E_{x,y}[log D(x, y)] + E_{z,y}[log(1 - D(G(z, y), y))]``.
  ``d_conditioning="concat"`` feeds y to D as one-hot input channels (one constant map
  per class for images); ``"projection"`` (Miyato & Koyama 2018) adds the inner product
  of a class embedding with D's features to its output,
  ``D(x, y) = ψ(φ(x)) + e_yᵀ φ(x)``, which is the form the optimal D takes for
  log-linear class posteriors.
- ACGAN (Odena et al. 2017): D is unconditional but has an auxiliary classifier head
  ``C(c | x)``. With ``L_S`` the usual source (real/fake) loss and
  ``L_C = E[-log C(c = y | x)] + E[-log C(c = y | G(z, y))]``:
  D minimises ``L_S + λ_aux L_C``; G minimises its own adversarial loss
  ``+ λ_aux E[-log C(c = y | G(z, y))]``, i.e. G is trained to make D recognise the
  class it was asked for. With ``aux_on_fake=False`` D's class head learns from real
  images only, ``L_C = E[-log C(c = y | x)]``, while G keeps its term.

Any adversarial loss pair of :mod:`gankit.losses` fits in ``L_S``.

- Conditional R3GAN (``r3gan_cond``; Huang et al. 2024, whose conditional CIFAR-10 D is
  a projection D): R3GAN's networks (``arch="r3gan"``: no normalisation, grouped inverted
  bottlenecks, fix-up initialisation, bilinear resampling) with the label joined to z in
  G and projected in D, trained with the relativistic pairing loss and both zero-centred
  penalties. With ``D(x, y) = ψ(φ(x)) + e_yᵀ φ(x)`` and ``f = softplus``, each real
  pair (x, y) matched with one generated pair (G(z, y'), y'):
  ``L_D = E[f(D(G(z, y'), y') - D(x, y))] + γ/2 E[||∇_x D(x, y)||^2]
  + γ/2 E[||∇_x̃ D(x̃, y')||^2 at x̃ = G(z, y')]`` and
  ``L_G = E[f(D(x, y) - D(G(z, y'), y'))]``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.losses import ADVERSARIAL_LOSSES, PairedLossName, lazy_r1, lazy_r2
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_WIDTH,
    Model,
    ScoreContext,
    check_d_regularisers,
    check_leaky_slope,
    check_optimizer,
    check_sizes,
    check_weights,
)
from gankit.nn import (
    Norm,
    apply_spectral_norm,
    critic_net,
    diff_augment,
    feature_trunk,
    frozen,
    generator_net,
    init_dcgan_weights,
    resolve_arch,
)
from gankit.registry import register_model

#: The conditional family's networks: DCGAN's (conv), MLPs (points) or R3GAN's.
ConditionalArch = Literal["auto", "mlp", "conv", "r3gan"]
# The bounds of gankit.models.gan, which the copy of its R3GAN check below reads.
#: R3GAN's CIFAR-10 network is 768 wide in every stage; room for a third more.
MAX_R3GAN_CHANNELS = 1024
#: R3GAN's CIFAR-10 network has 2 blocks per stage; 8 is four times as deep.
MAX_R3GAN_BLOCKS = 8


class ConditionalGAN(Model):
    """G(z, y) and a discriminator that uses the label y by concatenation, projection,
    or an auxiliary classifier (ACGAN).

    Args:
        data_shape: (C, H, W) images or (D,) points; set from the data.
        num_classes: the number of labels K; set from the data, which must be labelled.
        arch: ``conv``, ``mlp``, ``r3gan`` (R3GAN's G and D, see
            :class:`~gankit.nn.R3Generator`; the label embedding joins z at G's input and
            D's trunk is R3GAN's up to its basis, so ``φ(x)`` has ``d_channels``
            features; no norm, so ``g_norm`` and ``d_norm`` must be ``none``), or
            ``auto`` (conv for images).
        latent_dim: size of the noise z.
        embed_dim: size of G's label embedding, concatenated to z.
        loss: the adversarial loss pair (see :mod:`gankit.models.gan`); ``rpgan``
            pairs each real (x, y) with one generated (G(z, y'), y'), in G's step too.
        d_conditioning: how D sees y: ``projection``, ``concat`` (one-hot input
            channels or features), or ``none`` (ACGAN: D sees y only through its
            auxiliary classifier's loss).
        aux_weight: λ_aux of the auxiliary classifier loss; > 0 adds ACGAN's class head.
        aux_on_fake: whether D's class head also learns to classify generated samples
            (``L_C`` above, Odena et al.'s form). ``False`` trains it on real images only,
            so G and the head cannot agree on class cues that real images lack.
        hidden_dim, n_layers: MLP width and depth (points).
        g_channels, d_channels, kernel_size, g_norm, d_norm, leaky_slope: as in DCGAN.
        spectral_norm: spectral normalisation on every layer of D.
        lr_g, lr_d, betas: Adam's settings for G and D.
        r1_gamma, r1_interval: R1 on real (x, y) pairs, ``γ/2 E[||∇_x D(x, y)||^2]``,
            applied on one step in ``r1_interval`` (see :mod:`gankit.models.gan`).
        diffaugment: DiffAugment's policies for the images D judges, real and
            generated, in both losses (see :mod:`gankit.models.gan`); images only.
        r2_gamma: γ of R2, ``γ/2 E[||∇ D(G(z, y), y)||^2]`` on the generated pairs D
            judges, lazy as R1 (on the same D steps); 0 disables it.
        blocks_per_stage, group_width: R3GAN's blocks per resolution and channels per
            group of its grouped 3x3 convolutions (``arch="r3gan"`` only).
    """

    task = "sample"
    generator_name = "G"
    #: ``gankit explore --what classes``: one row per label (uses :meth:`with_labels`).
    views = ("classes",)
    gaussian_latents = ("z",)

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        arch: ConditionalArch = "auto",
        latent_dim: int = 64,
        embed_dim: int = 16,
        loss: PairedLossName = "non_saturating",
        d_conditioning: Literal["projection", "concat", "none"] = "projection",
        aux_weight: float = 0.0,
        aux_on_fake: bool = True,
        hidden_dim: int = 256,
        n_layers: int = 3,
        g_channels: int = 64,
        d_channels: int = 64,
        kernel_size: Literal[3, 4, 5] = 4,
        g_norm: Norm = "batch",
        d_norm: Norm = "batch",
        leaky_slope: float = 0.2,
        spectral_norm: bool = False,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        r1_gamma: float = 0.0,
        r1_interval: int = 1,
        diffaugment: str = "",
        r2_gamma: float = 0.0,
        blocks_per_stage: int = 2,
        group_width: int = 16,
    ) -> None:
        super().__init__(data_shape, num_classes)
        if not num_classes or num_classes < 2:
            raise GankitError(
                "model: a conditional model needs labelled data with at least 2 classes; "
                f"the data has num_classes={num_classes} (choose a labelled dataset such as "
                "digits, fashion-mnist, ring or grid)"
            )
        if d_conditioning == "none" and aux_weight <= 0:
            raise GankitError(
                "model: d_conditioning 'none' needs aux_weight > 0 (ACGAN), or D never sees "
                "the label; use d_conditioning 'projection' or 'concat' for a cGAN"
            )
        check_weights(aux_weight=aux_weight)
        check_sizes(MAX_WIDTH, latent_dim=latent_dim, embed_dim=embed_dim, hidden_dim=hidden_dim)
        max_channels = MAX_R3GAN_CHANNELS if arch == "r3gan" else MAX_CHANNELS
        check_sizes(max_channels, g_channels=g_channels, d_channels=d_channels)
        check_sizes(MAX_DEPTH, n_layers=n_layers)
        check_optimizer(betas, lr_g=lr_g, lr_d=lr_d)
        check_leaky_slope(leaky_slope)
        self.augmentations = check_d_regularisers(
            self.data_shape, d_norm, r1_gamma, r1_interval, diffaugment
        )
        check_weights(r2_gamma=r2_gamma)
        self.r1_gamma, self.r1_interval, self.r2_gamma = r1_gamma, r1_interval, r2_gamma
        self.last_r1: float | None = None
        self.last_r2: float | None = None
        self.arch = resolve_arch(arch, self.data_shape)
        if self.arch == "r3gan":
            self._check_r3gan(g_channels, d_channels, blocks_per_stage, group_width, g_norm, d_norm)
        self.latent_dim = latent_dim
        self.adversarial = ADVERSARIAL_LOSSES[loss]
        self.d_conditioning = d_conditioning
        self.aux_weight = aux_weight
        self.aux_on_fake = aux_on_fake
        self.lr_g, self.lr_d, self.betas = lr_g, lr_d, tuple(betas)
        is_image = self.arch == "conv"

        # G is the pair (label embedding, body), one module: what EMA averages.
        body = generator_net(
            latent_dim + embed_dim,
            self.data_shape,
            arch=self.arch,
            width=g_channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            kernel_size=kernel_size,
            norm=g_norm,
            output="tanh" if self.arch != "mlp" else "none",
            blocks_per_stage=blocks_per_stage,
            group_width=group_width,
        )
        self.G = _LabelledGenerator(nn.Embedding(num_classes, embed_dim), body)

        extra_channels = num_classes if d_conditioning == "concat" else 0
        if self.arch == "r3gan":
            # φ is R3GAN's D without its head: (N, C + extra, R, R) -> (N, d_channels).
            shape = (self.data_shape[0] + extra_channels, *self.data_shape[1:])
            critic = critic_net(
                shape,
                arch="r3gan",
                width=d_channels,
                blocks_per_stage=blocks_per_stage,
                group_width=group_width,
            )
            trunk, features = critic.blocks, d_channels
        else:
            trunk = feature_trunk(
                self.data_shape,
                arch=self.arch,
                extra_channels=extra_channels,
                width=d_channels,
                hidden_dim=hidden_dim,
                n_layers=n_layers,
                kernel_size=kernel_size,
                norm=d_norm,
                leaky_slope=leaky_slope,
            )
            features = trunk.out_features
        self.D = _LabelledCritic(trunk, features, num_classes, d_conditioning, aux_weight > 0)
        if self.arch == "r3gan":
            self.D.scale_heads_to_unit_variance()
        elif is_image:
            init_dcgan_weights(self)
        if spectral_norm:
            apply_spectral_norm(self.D)

    # Copied from gankit.models.gan.GAN._check_r3gan
    @staticmethod
    def _check_r3gan(g_channels, d_channels, blocks_per_stage, group_width, g_norm, d_norm):
        check_sizes(MAX_R3GAN_BLOCKS, blocks_per_stage=blocks_per_stage)
        check_sizes(MAX_R3GAN_CHANNELS, group_width=group_width)
        for name, width in (("g_channels", g_channels), ("d_channels", d_channels)):
            if (2 * width) % group_width:
                raise GankitError(
                    f"model: arch 'r3gan' needs 2 * {name} ({2 * width}) to be a multiple "
                    f"of group_width ({group_width})"
                )
        if g_norm != "none" or d_norm != "none":
            raise GankitError(
                f"model: arch 'r3gan' has no normalisation layers; set g_norm and d_norm "
                f"to 'none' (got '{g_norm}' and '{d_norm}')"
            )

    # ------------------------------------------------------------------ networks
    def discriminate(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, ...) samples and (N,) labels -> ((N, 1) source logits, (N, K) class logits
        or None without an auxiliary head)."""
        return self.D(x, y)

    def judge(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`discriminate` as training sees it: on DiffAugment's ``T(x)`` when on."""
        return self.discriminate(diff_augment(x, self.augmentations), y)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "G": torch.optim.Adam(self.G.parameters(), lr=self.lr_g, betas=self.betas),
            "D": torch.optim.Adam(self.D.parameters(), lr=self.lr_d, betas=self.betas),
        }

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        real, y_real = batch["x"], batch["y"]
        if (y_real < 0).any():
            raise GankitError("model: a conditional model met unlabelled items in the batch")
        n = real.shape[0]
        y_fake = torch.randint(self.num_classes, (n,), device=real.device)
        fake = self.G(self.sample_z(n), y_fake)

        # D step: fakes detached, so this step neither updates nor backprops into G.
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        d_real, c_real = self.judge(real, y_real)
        d_fake, c_fake = self.judge(fake.detach(), y_fake)
        loss_d = self.adversarial.d(d_real, d_fake)
        stats = {"d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}
        # One D update per step: D's update count is the step.
        r1 = lazy_r1(
            lambda x: self.judge(x, y_real)[0], real, self.r1_gamma, self.r1_interval, step
        )
        if r1 is not None:
            term, self.last_r1 = r1
            loss_d = loss_d + term
        if self.last_r1 is not None:  # every step logs R1, lazy or not: its latest value
            stats["r1"] = self.last_r1
        r2 = lazy_r2(
            lambda x: self.judge(x, y_fake)[0], fake.detach(), self.r2_gamma, self.r1_interval, step
        )
        if r2 is not None:
            term, self.last_r2 = r2
            loss_d = loss_d + term
        if self.last_r2 is not None:
            stats["r2"] = self.last_r2
        if c_real is not None:
            aux_d = F.cross_entropy(c_real, y_real)
            if self.aux_on_fake:
                aux_d = aux_d + F.cross_entropy(c_fake, y_fake)
            loss_d = loss_d + self.aux_weight * aux_d
            stats["aux_d"] = aux_d.item()
            stats["acc_real"] = (c_real.argmax(1) == y_real).float().mean().item()
        self.backward(loss_d)
        self.step(opt_d)
        stats["loss_d"] = loss_d.item()

        # G step: through D (frozen: its parameter gradients are not needed).
        opt_g = self.optimizers["G"]
        opt_g.zero_grad(set_to_none=True)
        with frozen(self.D):
            d_fake, c_fake = self.judge(fake, y_fake)
            if self.adversarial.relativistic:  # each fake against its paired real
                loss_g = self.adversarial.g(d_fake, self.judge(real, y_real)[0])
            else:
                loss_g = self.adversarial.g(d_fake)
            if c_fake is not None:
                aux_g = F.cross_entropy(c_fake, y_fake)
                loss_g = loss_g + self.aux_weight * aux_g
                stats["aux_g"] = aux_g.item()
        self.backward(loss_g)
        self.step(opt_g)
        stats["loss_g"] = loss_g.item()
        return stats

    # ------------------------------------------------------------------ sampling
    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def sample_latent(self, n: int, generator: torch.Generator | None = None):
        """Noise, and labels cycling 0, 1, ..., K-1, 0, ...: balanced classes, and a
        preview grid with one class per column when its width is a multiple of K."""
        labels = torch.arange(n) % self.num_classes
        return {"z": self.sample_z(n, generator).cpu(), "y": labels}

    def generate(self, latent, net=None) -> torch.Tensor:
        net = net if net is not None else self.G
        return net(latent["z"].to(self.device), latent["y"].to(self.device))

    def with_labels(self, latent, labels):
        return {**latent, "y": self.requested_labels(labels, len(latent["z"]))}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def family_scores(self, context: ScoreContext) -> tuple[dict[str, float], dict[str, float]]:
        """``cond_acc``: the evaluator's accuracy on samples against the labels they were
        drawn for (balanced over classes). A G that ignores its label scores about 1/K;
        the floor is the evaluator's accuracy on real test images."""
        evaluator = context.evaluator
        if evaluator is None:
            return {}, {}
        if evaluator.num_classes != self.num_classes:
            raise GankitError(
                f"the evaluator predicts {evaluator.num_classes} classes, the model has "
                f"{self.num_classes}: both must describe the same dataset"
            )
        latent = self.sample_latent(context.n, torch.Generator().manual_seed(context.seed))
        samples = self.render(latent, net=context.net).cpu()
        predicted = evaluator.logits(samples).argmax(dim=1)
        accuracy = float((predicted == latent["y"]).float().mean())
        return {"cond_acc": accuracy}, {"cond_acc": evaluator.test_accuracy}


class _LabelledCritic(nn.Module):
    """D(x, y): a feature trunk φ, a source output ψ, and the label's way in."""

    def __init__(
        self, trunk: nn.Module, features: int, num_classes: int, conditioning: str, aux: bool
    ) -> None:
        super().__init__()
        self.num_classes, self.conditioning = num_classes, conditioning
        self.trunk, self.source = trunk, nn.Linear(features, 1)
        self.projection = (
            nn.Embedding(num_classes, features) if conditioning == "projection" else None
        )
        self.classes = nn.Linear(features, num_classes) if aux else None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.conditioning == "concat":
            one_hot = F.one_hot(y, self.num_classes).to(x.dtype)
            if x.dim() == 4:  # one constant map per class, stacked along channels
                one_hot = one_hot[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, one_hot], dim=1)
        features = self.trunk(x)
        source = self.source(features)
        if self.projection is not None:  # + e_yᵀ φ(x)
            source = source + (self.projection(y) * features).sum(dim=1, keepdim=True)
        classes = self.classes(features) if self.classes is not None else None
        return source, classes

    @torch.no_grad()
    def scale_heads_to_unit_variance(self) -> None:
        """ψ, e_y and the class head drawn from N(0, 1 / F) for F features (biases 0):
        with unit-variance features each output starts with unit variance, as R3GAN's
        fix-up start keeps every layer's (an N(0, 1) e_y would give e_yᵀ φ a variance
        of F)."""
        for head in (self.source, self.projection, self.classes):
            if head is not None:
                nn.init.normal_(head.weight, 0.0, head.weight.shape[1] ** -0.5)
                if getattr(head, "bias", None) is not None:
                    nn.init.zeros_(head.bias)


class _LabelledGenerator(nn.Module):
    """G(z, y) = body([z, embed(y)])."""

    def __init__(self, embedding: nn.Embedding, body: nn.Module) -> None:
        super().__init__()
        self.embedding, self.body = embedding, body

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, self.embedding(y)], dim=1))


# --------------------------------------------------------------------------- variants
register_model(
    "cgan",
    ConditionalGAN,
    "conditional GAN: G(z, y), D(x, y) with a projection (or concat) of the label",
    d_conditioning="projection",
)
register_model(
    "acgan",
    ConditionalGAN,
    "ACGAN: G(z, y); D with an auxiliary classifier that G must convince (Odena 2017)",
    d_conditioning="none",
    aux_weight=1.0,
)
register_model(
    "r3gan_cond",
    ConditionalGAN,
    "conditional R3GAN: G(z, y), projection D(x, y) on R3GAN's networks, RpGAN + R1 + R2",
    arch="r3gan",
    loss="rpgan",
    d_conditioning="projection",
    g_norm="none",
    d_norm="none",
    r1_gamma=0.05,
    r2_gamma=0.05,
    betas=(0.0, 0.9),
)
