r"""The GAN family: GAN, DCGAN, WGAN, WGAN-GP, LSGAN and hinge/SNGAN.

One generator G and one discriminator (critic) D play a two-player game; the
variants differ only in D's and G's losses, in how D is kept well-behaved, and in
how often each network steps. All of that is decided in :meth:`GAN.train_step`.

Objectives (D maximises / G minimises unless noted):

- GAN (Goodfellow et al. 2014):
  ``min_G max_D E_x[log D(x)] + E_z[log(1 - D(G(z)))]``.
  ``minimax`` trains G on ``E[log(1 - D(G(z)))]``; ``non_saturating`` on
  ``-E[log D(G(z))]``, which keeps G's gradient alive while D wins.
- WGAN (Arjovsky et al. 2017):
  ``min_G max_{||D||_L<=1} E_x[D(x)] - E_z[D(G(z))]``; the Lipschitz bound is
  enforced by clipping D's weights to ``[-c, c]``, with ``n_critic`` D steps per
  G step and RMSprop.
- WGAN-GP (Gulrajani et al. 2017): the same objective, the bound enforced softly by
  ``+ λ E[(||∇D(x̂)||_2 - 1)^2]`` on interpolates ``x̂``, and Adam with β=(0.5, 0.9).
- LSGAN (Mao et al. 2017):
  ``min_D 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]``, ``min_G 1/2 E[(D(G(z)) - 1)^2]``.
- Hinge / SNGAN (Miyato et al. 2018):
  ``min_D E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``, ``min_G -E[D(G(z))]``,
  with spectral normalisation on every layer of D.
- RpGAN (Jolicoeur-Martineau 2019), with R1 and R2 the objective of R3GAN (Huang et
  al. 2024): ``min_D E_{x,z}[f(D(G(z)) - D(x))]``, ``min_G E_{x,z}[f(D(x) - D(G(z)))]``,
  ``f = softplus``, each real paired with one fake; G's step reads D's real scores too.

Options for every variant on images:

- R1 (Mescheder et al. 2018): D's loss adds ``γ/2 E_x[||∇_x D(x)||^2]``, a penalty on
  D's slope at the real data only (``r1_gamma``); R2 adds ``γ/2 E_z[||∇ D(G(z))||^2]``
  at the generated data (``r2_gamma``). ``gamma_schedule="cosine"`` moves both γ along
  half a cosine to ``gamma_end_scale`` times their value by the end of the run.
- DiffAugment (Zhao et al. 2020): D judges ``T(x)`` and ``T(G(z))`` instead of ``x`` and
  ``G(z)``, in both networks' losses, with T a random differentiable transformation
  (colour, translation, cutout): ``min_D L_D(D∘T(x), D∘T(G(z)))``,
  ``min_G L_G(D∘T(G(z)))`` (``diffaugment``). Each image goes through T with
  probability ``aug_p``, which ``aug_schedule="cosine"`` raises from 0 over the run.
- ``arch="resnet"``: the residual G and D of SNGAN's CIFAR-10 experiments (Miyato et
  al. 2018), registered with that paper's recipe as ``sngan``.
- ``arch="r3gan"``: R3GAN's G and D (no normalisation, grouped inverted bottlenecks,
  fix-up initialisation, bilinear resampling), registered with RpGAN, R1 and R2 as
  ``r3gan``.

The loss functions themselves live in :mod:`gankit.losses`.
"""

from __future__ import annotations

from typing import Literal

import torch

from gankit.errors import GankitError, check_finite
from gankit.losses import (
    ADVERSARIAL_LOSSES,
    PairedLossName,
    cosine_schedule,
    gradient_penalty,
    lazy_r1,
    lazy_r2,
)
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_WIDTH,
    Model,
    check_d_regularisers,
    check_fractions,
    check_leaky_slope,
    check_optimizer,
    check_sizes,
    check_weights,
)
from gankit.nn import (
    GanArch,
    Norm,
    apply_spectral_norm,
    critic_net,
    diff_augment,
    eval_mode,
    frozen,
    generator_net,
    init_dcgan_weights,
    resolve_arch,
)
from gankit.registry import register_model

#: WGAN's early critic ran 100 steps per G step (Arjovsky et al. 2017); PacGAN packs 2-4.
MAX_N_CRITIC, MAX_PACK = 100, 8
#: The ResNets keep one width in every block (SNGAN: 256 in G, 128 in D) where DCGAN
#: doubles its base width per layer, so they take wider widths than MAX_CHANNELS: up to
#: twice SNGAN's G (at 128 px, 512 wide: 26 million parameters each in G and D).
MAX_RESNET_CHANNELS = 512
#: R3GAN's CIFAR-10 network is 768 wide in every stage; room for a third more.
MAX_R3GAN_CHANNELS = 1024
#: R3GAN's CIFAR-10 network has 2 blocks per stage; 8 is four times as deep.
MAX_R3GAN_BLOCKS = 8
Schedule = Literal["constant", "cosine"]


class GAN(Model):
    """A generator and a discriminator trained with a chosen adversarial loss.

    Every DCGAN "trick" is an argument (Radford et al. 2016; Salimans et al. 2016;
    Odena et al. 2016, "Deconvolution and checkerboard artifacts"):

    Args:
        data_shape: (C, H, W) for images, (D,) for points; set from the data.
        num_classes: unused by this family (the data's labels are ignored).
        arch: ``mlp`` (fully connected; toy data and flattened images), ``conv``
            (DCGAN), ``resnet`` (SNGAN's residual G and D, see
            :class:`~gankit.nn.ResNetGenerator` and :class:`~gankit.nn.ResNetDiscriminator`;
            they use 3x3 convs, ReLU, pooling and upsampling of their own, so
            ``kernel_size``, ``strided`` and ``leaky_slope`` are for conv only),
            ``r3gan`` (R3GAN's G and D, see :class:`~gankit.nn.R3Generator`; no norm,
            so ``g_norm`` and ``d_norm`` must be ``none``; square images of 4 * 2^k or
            7 * 2^k pixels), or ``auto``: conv for images, mlp for points.
        latent_dim: size of the noise vector z.
        latent_dist: *Gaussian latent* trick: ``normal`` draws z ~ N(0, I), which
            makes interpolation and truncation natural; ``uniform`` draws
            z ~ U(-1, 1)^d as in the original GAN.
        loss: the adversarial loss pair, see the module docstring.
        hidden_dim: width of each hidden layer (mlp).
        n_layers: number of hidden layers in G and D (mlp).
        g_channels: width of G's last conv layer; earlier layers double it (conv).
            With ``resnet``, the width of every G block (256 in SNGAN).
        d_channels: width of D's first conv layer; later layers double it (conv).
            With ``resnet``, the width of every D block (128 in SNGAN). With ``r3gan``
            both are the width of every stage (768 in R3GAN's CIFAR-10 network).
        blocks_per_stage: R3GAN's residual blocks per resolution (2 on CIFAR-10).
        group_width: channels per group of R3GAN's grouped 3x3 convolutions (16 on
            CIFAR-10: 96 groups of the bottleneck's 1536 channels); twice the width must
            be a multiple of it.
        kernel_size: *kernel divisible by stride* trick: with stride 2, a kernel of 4
            covers every output pixel equally often; 3 or 5 make the overlaps uneven,
            which shows as checkerboard artifacts in transposed convolutions.
        strided: *strided convolutions instead of pooling* trick: True lets the
            networks learn their own up/down-sampling (DCGAN); False uses average
            pooling in D and nearest-neighbour upsampling + conv in G.
        g_norm: normalisation in G (``batch`` in DCGAN).
        d_norm: normalisation in D. ``batch`` for DCGAN; a gradient penalty needs a
            per-sample norm (``layer`` or ``none``), since batch norm couples samples.
        leaky_slope: *LeakyReLU* trick: the negative slope of D's activations
            (0.2 in DCGAN); 0 gives plain ReLU.
        g_leaky_slope: *LeakyReLU in G too*: the negative slope of G's activations
            (conv and mlp); 0, DCGAN's choice, gives plain ReLU.
        d_dropout: *dropout in D* trick: dropout probability after each D layer,
            a cheap way to keep D from memorising the training set.
        tanh_output: *tanh output* trick: G ends in tanh, matching images scaled to
            [-1, 1]. None means: tanh for images, linear for toy points (whose range
            is not bounded by 1).
        label_smoothing: *smoothed labels* trick (one-sided, Salimans et al. 2016):
            D's target for real data is ``1 - label_smoothing`` instead of 1. Only
            for losses with targets (minimax, non_saturating, least_squares).
        label_noise: *noisy labels* trick: each of D's targets is flipped (real <->
            fake) with this probability.
        label_jitter: *noise on the labels* trick: each of D's targets moves towards
            the other class by ``label_jitter * u``, ``u ~ U[0, 1)`` drawn per target
            (real targets in ``(1 - j, 1]``, fake ones in ``[0, j)``), after any flip.
        spectral_norm: wrap every layer of D in spectral normalisation (SNGAN).
        n_critic: D updates per G update, each on a fresh real batch (at most 100).
        clip_value: WGAN's weight clipping: after each D step, clamp every D
            parameter to ``[-clip_value, clip_value]``. None disables it.
        gp_weight: λ of WGAN-GP's gradient penalty; 0 disables it.
        optimizer: ``adam`` or ``rmsprop`` (WGAN: momentum-based optimizers were
            unstable with weight clipping).
        lr_g: G's learning rate. With ``lr_d`` it gives TTUR (Heusel et al. 2017):
            two time-scales, usually a faster D.
        lr_d: D's learning rate.
        betas: Adam's (β1, β2); DCGAN uses β1=0.5 instead of 0.9 for stability.
        pack: PacGAN's packing (Lin et al. 2018): D judges groups of ``pack`` samples,
            all real or all fake, concatenated; 1 is an ordinary D. Penalises mode
            collapse; the batch size must be a multiple of it. At most 8.
        lr_schedule: ``constant``, or ``linear``: constant until ``decay_start`` of the
            run's steps, then linearly to zero for both networks. Annealing lets G
            settle onto the modes instead of jittering around them.
        decay_start: the fraction of the run after which the linear decay starts.
        r1_gamma: γ of R1 regularisation, ``γ/2 E_x[||∇_x D(x)||^2]`` added to D's loss
            (Mescheder et al. 2018; 10 in StyleGAN on FFHQ); 0 disables it.
        r2_gamma: γ of R2, ``γ/2 E_z[||∇ D(G(z))||^2]`` on the generated samples D
            judges (R3GAN uses R1's γ for it); 0 disables it. Lazy as R1.
        gamma_schedule: ``constant``, or ``cosine``: both γ move from their set values
            to ``gamma_end_scale`` times them along half a cosine over the run.
        gamma_end_scale: where the cosine γ schedule ends, as a share of γ (0.1 in
            R3GAN: 0.05 -> 0.005 on CIFAR-10).
        r1_interval: lazy R1 (Karras et al. 2020): apply it on one D step in this many,
            with γ multiplied by the interval so its average weight stays the same.
        diffaugment: DiffAugment's policies, comma-separated, from ``color``,
            ``translation`` and ``cutout`` (Zhao et al. 2020 use all three for
            unconditional CIFAR-10 and few-shot data); empty for none. Images only.
        aug_p: the probability that an image goes through DiffAugment's T (each image
            draws its own); 1 augments every image.
        aug_schedule: ``constant``, or ``cosine``: the probability rises from 0 to
            ``aug_p`` along half a cosine over the run (R3GAN: 0 -> 0.55 on CIFAR-10).
        fused_adam: Adam's fused kernel (``torch.optim.Adam(fused=True)``): one pass per
            parameter instead of a dozen small operations and their scalar bookkeeping,
            which a profile of the toy MLPs shows as 4-12 % of a step
            (``docs/performance.md``). Not bitwise equal to the default update, so off
            unless asked (``--set model.fused_adam=true``).
    """

    task = "sample"
    generator_name = "G"

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        arch: GanArch = "auto",
        latent_dim: int = 64,
        latent_dist: Literal["normal", "uniform"] = "normal",
        loss: PairedLossName = "non_saturating",
        hidden_dim: int = 256,
        n_layers: int = 3,
        g_channels: int = 64,
        d_channels: int = 64,
        kernel_size: Literal[3, 4, 5] = 4,
        strided: bool = True,
        g_norm: Norm = "batch",
        d_norm: Norm = "batch",
        leaky_slope: float = 0.2,
        d_dropout: float = 0.0,
        tanh_output: bool | None = None,
        label_smoothing: float = 0.0,
        label_noise: float = 0.0,
        spectral_norm: bool = False,
        n_critic: int = 1,
        clip_value: float | None = None,
        gp_weight: float = 0.0,
        optimizer: Literal["adam", "rmsprop"] = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        pack: int = 1,
        lr_schedule: Literal["constant", "linear"] = "constant",
        decay_start: float = 0.5,
        r1_gamma: float = 0.0,
        r1_interval: int = 1,
        diffaugment: str = "",
        g_leaky_slope: float = 0.0,
        label_jitter: float = 0.0,
        r2_gamma: float = 0.0,
        gamma_schedule: Schedule = "constant",
        gamma_end_scale: float = 0.1,
        aug_p: float = 1.0,
        aug_schedule: Schedule = "constant",
        blocks_per_stage: int = 2,
        group_width: int = 16,
        fused_adam: bool = False,
    ) -> None:
        super().__init__(data_shape, num_classes)
        check_sizes(MAX_WIDTH, latent_dim=latent_dim, hidden_dim=hidden_dim)
        max_channels = {"resnet": MAX_RESNET_CHANNELS, "r3gan": MAX_R3GAN_CHANNELS}.get(
            arch, MAX_CHANNELS
        )
        check_sizes(max_channels, g_channels=g_channels, d_channels=d_channels)
        check_sizes(MAX_DEPTH, n_layers=n_layers)
        check_sizes(MAX_N_CRITIC, n_critic=n_critic)
        check_sizes(MAX_PACK, pack=pack)
        check_optimizer(betas, lr_g=lr_g, lr_d=lr_d)
        check_weights(gp_weight=gp_weight)
        self._check(loss, label_smoothing, label_noise, gp_weight, d_norm, d_dropout)
        self._check_labels(loss, label_jitter)
        check_leaky_slope(leaky_slope)
        check_leaky_slope(g_leaky_slope)
        if clip_value is not None:
            check_finite("model: clip_value", clip_value, 0.0, above=True)
        is_image = len(self.data_shape) == 3
        arch = resolve_arch(arch, self.data_shape)
        if arch in ("resnet", "r3gan") and d_dropout:
            raise GankitError(
                f"model: d_dropout is for the conv and mlp critics; the {arch} critic has "
                "no dropout (use 0, or arch 'conv')"
            )
        if arch == "r3gan":
            self._check_r3gan(g_channels, d_channels, blocks_per_stage, group_width, g_norm, d_norm)
        self.augmentations = check_d_regularisers(
            self.data_shape, d_norm, r1_gamma, r1_interval, diffaugment
        )
        check_weights(r2_gamma=r2_gamma)
        if r2_gamma > 0 and d_norm == "batch":
            raise GankitError(
                "model: r2_gamma > 0 with d_norm 'batch' is invalid (R2 is a per-sample "
                "penalty, batch norm mixes samples); use d_norm 'layer' or 'none'"
            )
        self._check_schedules(gamma_end_scale, aug_p, aug_schedule)
        if tanh_output is None:
            tanh_output = is_image
        self.arch = arch
        self.latent_dim = latent_dim
        self.latent_dist = latent_dist
        self.gaussian_latents = ("z",) if latent_dist == "normal" else ()
        self.adversarial = ADVERSARIAL_LOSSES[loss]
        self.label_smoothing = label_smoothing
        self.label_noise = label_noise
        self.n_critic = n_critic
        self.clip_value = clip_value
        self.gp_weight = gp_weight
        self.optimizer_name = optimizer
        self.lr_g, self.lr_d, self.betas = lr_g, lr_d, tuple(betas)
        self.fused_adam = fused_adam
        self.lr_schedule, self.decay_start = lr_schedule, decay_start
        self.pack = pack
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.r2_gamma, self.label_jitter = r2_gamma, label_jitter
        self.gamma_schedule, self.gamma_end_scale = gamma_schedule, gamma_end_scale
        self.aug_p, self.aug_schedule = aug_p, aug_schedule
        self.gamma_scale, self.aug_p_now = 1.0, aug_p  # the schedules' values this step
        self.last_r1: float | None = None
        self.last_r2: float | None = None
        check_fractions(decay_start=decay_start)

        self.G = generator_net(
            latent_dim,
            self.data_shape,
            arch=arch,
            width=g_channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            kernel_size=kernel_size,
            strided=strided,
            norm=g_norm,
            leaky_slope=g_leaky_slope,
            output="tanh" if tanh_output else "none",
            blocks_per_stage=blocks_per_stage,
            group_width=group_width,
        )
        # PacGAN: D judges ``pack`` samples stacked along channels (features for points).
        packed_shape = (self.data_shape[0] * pack, *self.data_shape[1:])
        self.D = critic_net(
            packed_shape,
            arch=arch,
            width=d_channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            kernel_size=kernel_size,
            strided=strided,
            norm=d_norm,
            leaky_slope=leaky_slope,
            dropout=d_dropout,
            blocks_per_stage=blocks_per_stage,
            group_width=group_width,
        )
        if arch == "conv":
            init_dcgan_weights(self)
        if spectral_norm:
            apply_spectral_norm(self.D)

    @staticmethod
    def _check(loss, label_smoothing, label_noise, gp_weight, d_norm, d_dropout) -> None:
        if not ADVERSARIAL_LOSSES[loss].uses_targets and (label_smoothing or label_noise):
            raise GankitError(
                f"model: label_smoothing/label_noise need a loss with targets (minimax, "
                f"non_saturating, least_squares); loss '{loss}' has none"
            )
        if not 0.0 <= label_smoothing < 1.0 or not 0.0 <= label_noise < 0.5:
            raise GankitError(
                "model: label_smoothing must be in [0, 1) and label_noise in [0, 0.5)"
            )
        if gp_weight > 0 and d_norm == "batch":
            raise GankitError(
                "model: gp_weight > 0 with d_norm 'batch' is invalid (the gradient penalty is "
                "per sample, batch norm mixes samples); use d_norm 'layer' or 'none'"
            )
        if not 0.0 <= d_dropout < 1.0:
            raise GankitError(f"model: d_dropout must be in [0, 1), got {d_dropout}")

    @staticmethod
    def _check_labels(loss, label_jitter) -> None:
        if not 0.0 <= label_jitter < 0.5:  # NaN fails this too
            raise GankitError(f"model: label_jitter must be in [0, 0.5), got {label_jitter}")
        if label_jitter and not ADVERSARIAL_LOSSES[loss].uses_targets:
            raise GankitError(
                f"model: label_jitter needs a loss with targets (minimax, non_saturating, "
                f"least_squares); loss '{loss}' has none"
            )

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

    def _check_schedules(self, gamma_end_scale, aug_p, aug_schedule) -> None:
        check_fractions(gamma_end_scale=gamma_end_scale, aug_p=aug_p)
        if (aug_p < 1.0 or aug_schedule != "constant") and not self.augmentations:
            raise GankitError(
                "model: aug_p and aug_schedule set how often DiffAugment applies; they need "
                "diffaugment policies (e.g. diffaugment: color,translation,cutout)"
            )

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        if self.optimizer_name == "rmsprop":
            return {
                "G": torch.optim.RMSprop(self.G.parameters(), lr=self.lr_g),
                "D": torch.optim.RMSprop(self.D.parameters(), lr=self.lr_d),
            }
        # None, not False: the default's param_groups (and checkpoints) stay as they were
        fused = self.fused_adam or None
        return {
            "G": torch.optim.Adam(self.G.parameters(), lr=self.lr_g, betas=self.betas, fused=fused),
            "D": torch.optim.Adam(self.D.parameters(), lr=self.lr_d, betas=self.betas, fused=fused),
        }

    @property
    def real_batches_per_step(self) -> int:
        return self.n_critic

    def _d_targets(self, d_out: torch.Tensor, real: bool) -> torch.Tensor | float:
        target = (1.0 - self.label_smoothing) if real else 0.0
        if not self.label_noise and not self.label_jitter:
            return target
        targets = torch.full_like(d_out, target)
        if self.label_noise:
            flip = torch.rand(d_out.shape, device=d_out.device) < self.label_noise
            targets = torch.where(flip, 1.0 - target, targets)
        if self.label_jitter:
            # Towards the other class: down from a real target, up from a fake one.
            shift = self.label_jitter * torch.rand(d_out.shape, device=d_out.device)
            targets = torch.where(targets > 0.5, targets - shift, targets + shift)
        return targets

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """D's output on (N, ...) samples: (N / pack, 1), one score per packed group.

        PacGAN: ``pack`` consecutive samples are concatenated (along features, or along
        channels for images) and judged together, so D sees whether a *set* of samples
        is diverse: a collapsed G makes packs of near-copies that real data never shows.
        """
        if self.pack > 1:
            x = x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])
        return self.D(x)

    def judge(self, x: torch.Tensor) -> torch.Tensor:
        """D's output on (N, ...) samples as training sees them: through DiffAugment's
        random transformations T when they are on, ``D(T(x))``, each image with
        probability ``aug_p`` (as scheduled); else ``D(x)``."""
        if not self.augmentations:
            return self.critic(x)
        augmented = diff_augment(x, self.augmentations)
        if self.aug_p_now < 1.0:
            keep = torch.rand(x.shape[0], device=x.device) >= self.aug_p_now
            augmented = torch.where(keep.view(-1, *(1,) * (x.dim() - 1)), x, augmented)
        return self.critic(augmented)

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.pack:
            raise GankitError(
                f"train.batch_size {batch_size} must be a multiple of model.pack {self.pack}"
            )

    def discriminator_step(
        self, real: torch.Tensor, fake: torch.Tensor | None = None, d_step: int = 0
    ) -> dict[str, float]:
        """One update of D on ``real`` and ``fake`` (drawn here when not given);
        ``d_step`` counts D's updates over the run, which lazy R1 reads."""
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        if fake is None:
            with torch.no_grad():  # the critic step must not update (or backprop into) G
                fake = self.G(self.sample_z(real.shape[0]))
        d_real, d_fake = self.judge(real), self.judge(fake)
        if self.adversarial.uses_targets:
            loss = self.adversarial.d(
                d_real, d_fake, self._d_targets(d_real, True), self._d_targets(d_fake, False)
            )
        else:
            loss = self.adversarial.d(d_real, d_fake)
        stats = {"d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}
        if self.gp_weight > 0:
            penalty = gradient_penalty(self.judge, real, fake)
            loss = loss + self.gp_weight * penalty
            stats["gp"] = penalty.item()
        r1 = lazy_r1(self.judge, real, self.r1_gamma * self.gamma_scale, self.r1_interval, d_step)
        if r1 is not None:
            term, self.last_r1 = r1
            loss = loss + term
        if self.last_r1 is not None:  # every step logs R1, lazy or not: its latest value
            stats["r1"] = self.last_r1
        r2 = lazy_r2(self.judge, fake, self.r2_gamma * self.gamma_scale, self.r1_interval, d_step)
        if r2 is not None:
            term, self.last_r2 = r2
            loss = loss + term
        if self.last_r2 is not None:
            stats["r2"] = self.last_r2
        self.backward(loss)
        self.step(opt_d)
        if self.clip_value is not None:
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.clip_value, self.clip_value)
        stats["loss_d"] = loss.item()
        return stats

    def generator_step(
        self, fake: torch.Tensor, real: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One update of G through D on ``fake = G(z)`` (with its graph to G); a
        relativistic loss pairs each fake with a sample of ``real``."""
        opt_g = self.optimizers["G"]
        opt_g.zero_grad(set_to_none=True)
        with frozen(self.D):  # gradients pass through D to G; D's own are not needed
            if self.adversarial.relativistic:
                loss = self.adversarial.g(self.judge(fake), self.judge(real))
            else:
                loss = self.adversarial.g(self.judge(fake))
        self.backward(loss)
        self.step(opt_g)
        return {"loss_g": loss.item()}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        if self.lr_schedule == "linear":
            self.decay_learning_rates(step, self.decay_start, G=self.lr_g, D=self.lr_d)
        if self.gamma_schedule == "cosine":
            self.gamma_scale = cosine_schedule(1.0, self.gamma_end_scale, self.progress(step))
        if self.aug_schedule == "cosine":
            self.aug_p_now = cosine_schedule(0.0, self.aug_p, self.progress(step))
        reals = batch["x"].chunk(self.n_critic)
        batch_size = reals[0].shape[0]
        if self.n_critic == 1:
            # One G forward serves both steps (as in the PyTorch DCGAN example): D sees the
            # fakes detached, then G's step backpropagates through the same graph.
            fake = self.G(self.sample_z(batch_size))
            stats = self.discriminator_step(reals[0], fake.detach(), d_step=step)
            stats.update(self.generator_step(fake, reals[0]))
            return stats
        for i, real in enumerate(reals):  # n_critic D steps, each on its own real batch
            self.check_interrupt()  # a caller's stop need not wait for all n_critic
            stats = self.discriminator_step(real, d_step=step * self.n_critic + i)
        self.check_interrupt()
        stats.update(self.generator_step(self.G(self.sample_z(batch_size)), reals[-1]))
        return stats

    def critic_scores(self, x: torch.Tensor) -> torch.Tensor:
        """D's output on (N, ...) points: (N,), in eval mode. With packing, each point is
        judged as a pack of ``pack`` copies of itself."""
        if self.pack > 1:
            x = x.repeat_interleave(self.pack, dim=0)
        with eval_mode(self.D):
            return self.critic(x).squeeze(1)

    # ------------------------------------------------------------------ sampling
    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, latent_dim) noise from the latent distribution, on the model's device."""
        device = self.device if generator is None else "cpu"
        if self.latent_dist == "uniform":
            z = torch.rand(n, self.latent_dim, generator=generator, device=device) * 2 - 1
        else:
            z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return z.to(self.device)

    def sample_latent(self, n: int, generator: torch.Generator | None = None):
        return {"z": self.sample_z(n, generator).cpu()}

    def generate(self, latent, net=None) -> torch.Tensor:
        net = net if net is not None else self.G
        return net(latent["z"].to(self.device))


# --------------------------------------------------------------------------- variants
register_model(
    "gan",
    GAN,
    "MLP GAN for toy data and flat images (loss: non_saturating or minimax)",
    arch="mlp",
    g_norm="none",
    d_norm="none",
    latent_dim=16,
    lr_g=1e-4,
    lr_d=1e-4,
)
register_model(
    "dcgan",
    GAN,
    "DCGAN: conv G/D with batch norm, LeakyReLU, Adam β1=0.5 (Radford 2016)",
    arch="conv",
)
register_model(
    "wgan",
    GAN,
    "WGAN: critic with weight clipping, n_critic=5, RMSprop (Arjovsky 2017)",
    loss="wasserstein",
    clip_value=0.01,
    n_critic=5,
    optimizer="rmsprop",
    lr_g=5e-5,
    lr_d=5e-5,
    d_norm="none",
)
register_model(
    "wgan_gp",
    GAN,
    "WGAN-GP: gradient penalty λ=10, n_critic=5, Adam β=(0.5, 0.9)",
    loss="wasserstein",
    gp_weight=10.0,
    n_critic=5,
    lr_g=1e-4,
    lr_d=1e-4,
    betas=(0.5, 0.9),
    d_norm="layer",
)
register_model(
    "lsgan",
    GAN,
    "LSGAN: least-squares losses with a=0, b=c=1 (Mao 2017)",
    loss="least_squares",
)
register_model(
    "hinge",
    GAN,
    "SNGAN: hinge loss with spectral norm on every D layer (Miyato 2018)",
    loss="hinge",
    spectral_norm=True,
    d_norm="none",
)
register_model(
    "sngan",
    GAN,
    "SNGAN ResNet: residual G/D, hinge loss, spectral norm, n_critic=5, Adam β=(0, 0.9)",
    arch="resnet",
    loss="hinge",
    spectral_norm=True,
    d_norm="none",
    latent_dim=128,
    g_channels=256,
    d_channels=128,
    n_critic=5,
    betas=(0.0, 0.9),
    lr_schedule="linear",
    decay_start=0.0,
)
register_model(
    "r3gan",
    GAN,
    "R3GAN: RpGAN loss + R1 + R2, no-norm grouped-bottleneck ResNets, Adam β=(0, 0.9) (Huang 2024)",
    arch="r3gan",
    loss="rpgan",
    g_norm="none",
    d_norm="none",
    r1_gamma=0.05,
    r2_gamma=0.05,
    gamma_schedule="cosine",
    gamma_end_scale=0.1,
    betas=(0.0, 0.9),
)
