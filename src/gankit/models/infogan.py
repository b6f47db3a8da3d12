r"""InfoGAN (Chen et al. 2016): a GAN whose latent codes come to mean something.

G takes noise z and a structured code c: a categorical code ``c_cat`` with K values and
continuous codes ``c_con ~ U(-1, 1)``. A head Q on D's trunk predicts c back from
G(z, c). Maximising the mutual information I(c; G(z, c)) forces G to use c in a way
that can be read off its samples: on digits, ``c_cat`` tends to pick the digit and
``c_con`` the slant or the stroke width, without any labels.

Objective, with V(D, G) the GAN game:

``min_{G,Q} max_D V(D, G) − λ L_I(G, Q)``, where
``L_I = E_{c, x~G(z,c)}[log Q(c | x)] + H(c) ≤ I(c; G(z, c))``

is the variational lower bound of the mutual information. In practice both G and Q
minimise the info loss

``λ_cat · CE(Q_cat(x), c_cat) + λ_con · ℓ(Q_con(x), c_con)``

with ℓ the squared error (a Gaussian of fixed variance) or the Gaussian negative
log-likelihood with a predicted log-variance. Q shares every layer of D but its head,
so the information term costs one small extra layer.

Semi-supervised option: on a fraction of the steps, Q's categorical head is also trained
to predict the real labels of real images, which ties ``c_cat = k`` to class k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.losses import ADVERSARIAL_LOSSES, LossName
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_WIDTH,
    Model,
    ScoreContext,
    check_fractions,
    check_leaky_slope,
    check_optimizer,
    check_sizes,
    check_weights,
)
from gankit.nn import (
    Arch,
    Norm,
    activation,
    eval_mode,
    feature_trunk,
    frozen,
    generator_net,
    init_dcgan_weights,
    norm_layer,
    resolve_arch,
)
from gankit.registry import register_model


class InfoGAN(Model):
    """G(z, c_cat, c_con), D with a Q head that predicts the codes.

    Args:
        data_shape: (C, H, W) images or (D,) points; set from the data.
        num_classes: the data's label count; only used by ``supervised_fraction``.
        arch: ``conv``, ``mlp`` or ``auto`` (conv for images).
        noise_dim: size of the incompressible noise z (62 in the paper's MNIST model).
        n_categories: K, the values of the categorical code (10 for digits).
        n_continuous: how many continuous codes ``c_con ~ U(-1, 1)``.
        lambda_cat: λ_cat, weight of the categorical info loss (1 in the paper).
        lambda_con: λ_con, weight of the continuous info loss.
        con_loss: ``mse`` (Q predicts the mean) or ``gaussian`` (Q predicts mean and
            log-variance; the loss is the Gaussian negative log-likelihood).
        supervised_fraction: the share of steps on which Q_cat is also trained on the
            real batch's labels (0: unsupervised).
        loss: the adversarial loss pair.
        hidden_dim, n_layers: MLP width and depth (points).
        g_channels, d_channels, kernel_size, g_norm, d_norm, leaky_slope: as in DCGAN.
        q_hidden: width of Q's hidden layer.
        minibatch_std: group size of a minibatch standard-deviation map at the end of
            D's trunk (ProGAN's, :class:`gankit.nn.MinibatchStd`), so D sees how varied
            a batch is; 0 leaves it out. Images only.
        lr_g, lr_d, betas: Adam's settings; the paper trains G (1e-3) faster than D (2e-4).
        lr_schedule: ``constant``, or ``linear``: constant until ``decay_start`` of the
            run, then linearly to zero for G and D (with ``train.time_limit``, of the
            run's steps or of its time, whichever is further along).
        decay_start: the fraction of the run after which the linear decay starts.
    """

    task = "sample"
    generator_name = "G"
    #: ``gankit explore --what traverse``: the codes swept one at a time (reads
    #: ``n_categories``, ``n_continuous`` and ``noise_dim``).
    views = ("traverse",)
    gaussian_latents = ("z",)

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        arch: Arch = "auto",
        noise_dim: int = 62,
        n_categories: int = 10,
        n_continuous: int = 2,
        lambda_cat: float = 1.0,
        lambda_con: float = 0.5,
        con_loss: Literal["mse", "gaussian"] = "mse",
        supervised_fraction: float = 0.0,
        loss: LossName = "non_saturating",
        hidden_dim: int = 256,
        n_layers: int = 3,
        g_channels: int = 64,
        d_channels: int = 64,
        kernel_size: Literal[3, 4, 5] = 4,
        g_norm: Norm = "batch",
        d_norm: Norm = "batch",
        leaky_slope: float = 0.2,
        q_hidden: int = 128,
        minibatch_std: int = 0,
        lr_g: float = 1e-3,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lr_schedule: Literal["constant", "linear"] = "constant",
        decay_start: float = 0.5,
    ) -> None:
        super().__init__(data_shape, num_classes)
        check_sizes(MAX_WIDTH, 2, n_categories=n_categories)
        check_sizes(MAX_WIDTH, 0, n_continuous=n_continuous, noise_dim=noise_dim)
        check_sizes(MAX_WIDTH, hidden_dim=hidden_dim, q_hidden=q_hidden)
        check_sizes(64, 0, minibatch_std=minibatch_std)
        check_sizes(MAX_CHANNELS, g_channels=g_channels, d_channels=d_channels)
        check_sizes(MAX_DEPTH, n_layers=n_layers)
        check_optimizer(betas, lr_g=lr_g, lr_d=lr_d)
        check_weights(lambda_cat=lambda_cat, lambda_con=lambda_con)
        check_fractions(decay_start=decay_start, supervised_fraction=supervised_fraction)
        check_leaky_slope(leaky_slope)
        if supervised_fraction > 0 and num_classes != n_categories:
            raise GankitError(
                f"model: supervised_fraction > 0 ties c_cat to the labels, so n_categories "
                f"({n_categories}) must equal the data's num_classes ({num_classes})"
            )
        self.arch = resolve_arch(arch, self.data_shape)
        self.noise_dim, self.n_categories, self.n_continuous = noise_dim, n_categories, n_continuous
        self.lambda_cat, self.lambda_con, self.con_loss = lambda_cat, lambda_con, con_loss
        self.supervised_fraction = supervised_fraction
        self.adversarial = ADVERSARIAL_LOSSES[loss]
        self.lr_g, self.lr_d, self.betas = lr_g, lr_d, tuple(betas)
        self.lr_schedule, self.decay_start = lr_schedule, decay_start
        is_image = self.arch == "conv"

        self.G = generator_net(
            noise_dim + n_categories + n_continuous,
            self.data_shape,
            arch=self.arch,
            width=g_channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            kernel_size=kernel_size,
            norm=g_norm,
            output="tanh" if is_image else "none",
        )
        trunk = feature_trunk(
            self.data_shape,
            arch=self.arch,
            width=d_channels,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            kernel_size=kernel_size,
            norm=d_norm,
            leaky_slope=leaky_slope,
            minibatch_std=minibatch_std,
        )
        q_outputs = n_categories + n_continuous * (2 if con_loss == "gaussian" else 1)
        # Q: one hidden layer of its own on D's features (as in the paper).
        q_head = nn.Sequential(
            nn.Linear(trunk.out_features, q_hidden),
            norm_layer(d_norm, q_hidden, conv=False),
            activation(leaky_slope),
            nn.Linear(q_hidden, q_outputs),
        )
        self.D = _CriticWithQ(trunk, q_head)
        if is_image:
            init_dcgan_weights(self)

    # ------------------------------------------------------------------ networks
    def discriminate(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(N, ...) -> ((N, 1) source logits, Q's predictions: ``cat`` (N, K) logits,
        ``con`` (N, n_continuous) means, and ``con_logvar`` for the Gaussian loss)."""
        source, q = self.D(x)
        k, m = self.n_categories, self.n_continuous
        out = {"cat": q[:, :k], "con": q[:, k : k + m]}
        if self.con_loss == "gaussian":
            out["con_logvar"] = q[:, k + m :].clamp(-8.0, 8.0)
        return source, out

    def critic_scores(self, x: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.D):
            return self.discriminate(x)[0].squeeze(1)

    @torch.no_grad()
    def predict_codes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Q's reading of (N, ...) samples, in eval mode: ``cat`` logits and ``con`` means."""
        with eval_mode(self.D):
            return self.discriminate(x.to(self.device))[1]

    def info_loss(
        self, q: dict[str, torch.Tensor], c_cat: torch.Tensor, c_con: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``λ_cat CE(Q_cat, c_cat) + λ_con ℓ(Q_con, c_con)``, and its parts."""
        ce = F.cross_entropy(q["cat"], c_cat)
        loss = self.lambda_cat * ce
        stats = {"info_cat": ce.item(), "mi_cat": math.log(self.n_categories) - ce.item()}
        if self.n_continuous:
            if self.con_loss == "gaussian":
                # -log N(c; μ, σ²) up to a constant, per code, averaged
                con = F.gaussian_nll_loss(q["con"], c_con, q["con_logvar"].exp())
            else:
                con = F.mse_loss(q["con"], c_con)
            loss = loss + self.lambda_con * con
            stats["info_con"] = con.item()
        return loss, stats

    # ------------------------------------------------------------------ training
    # Copied from gankit.models.conditional.ConditionalGAN.configure_optimizers
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "G": torch.optim.Adam(self.G.parameters(), lr=self.lr_g, betas=self.betas),
            # D's optimizer holds the trunk, the source head and Q: D and Q both
            # minimise the info loss, D's trunk being shared.
            "D": torch.optim.Adam(self.D.parameters(), lr=self.lr_d, betas=self.betas),
        }

    def _supervised_step(self, step: int) -> bool:
        f = self.supervised_fraction
        return f > 0 and math.floor((step + 1) * f) > math.floor(step * f)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        if self.lr_schedule == "linear":
            self.decay_learning_rates(step, self.decay_start, G=self.lr_g, D=self.lr_d)
        real = batch["x"]
        n = real.shape[0]
        codes = self.sample_codes(n)
        fake = self.G(self.latent_input(codes))

        # D and Q step on detached fakes: G is neither updated nor backpropagated into.
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        d_real, q_real = self.discriminate(real)
        d_fake, q_fake = self.discriminate(fake.detach())
        info, stats = self.info_loss(q_fake, codes["c_cat"], codes["c_con"])
        loss_d = self.adversarial.d(d_real, d_fake) + info
        if self._supervised_step(step):
            labelled = batch["y"] >= 0
            if labelled.any():
                supervised = F.cross_entropy(q_real["cat"][labelled], batch["y"][labelled])
                loss_d = loss_d + self.lambda_cat * supervised
                stats["supervised_ce"] = supervised.item()
        self.backward(loss_d)
        self.step(opt_d)
        stats.update(d_real=d_real.mean().item(), d_fake=d_fake.mean().item())
        stats["loss_d"] = loss_d.item()

        # G step: fool D and make the codes readable by Q (D and Q frozen).
        opt_g = self.optimizers["G"]
        opt_g.zero_grad(set_to_none=True)
        with frozen(self.D):
            d_fake, q_fake = self.discriminate(fake)
            info_g, _ = self.info_loss(q_fake, codes["c_cat"], codes["c_con"])
            loss_g = self.adversarial.g(d_fake) + info_g
        self.backward(loss_g)
        self.step(opt_g)
        stats["loss_g"] = loss_g.item()
        return stats

    # ------------------------------------------------------------------ sampling
    def sample_codes(
        self, n: int, generator: torch.Generator | None = None, cycle: bool = False
    ) -> dict[str, torch.Tensor]:
        """``z`` (n, noise_dim) ~ N(0, I), ``c_cat`` (n,) uniform (or cycling 0..K-1),
        ``c_con`` (n, n_continuous) ~ U(-1, 1); on the model's device."""
        device = "cpu" if generator is not None else self.device
        z = torch.randn(n, self.noise_dim, generator=generator, device=device)
        if cycle:
            c_cat = torch.arange(n, device=device) % self.n_categories
        else:
            c_cat = torch.randint(self.n_categories, (n,), generator=generator, device=device)
        c_con = torch.rand(n, self.n_continuous, generator=generator, device=device) * 2 - 1
        return {k: v.to(self.device) for k, v in {"z": z, "c_cat": c_cat, "c_con": c_con}.items()}

    def latent_input(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """The generator's input ``[z, one_hot(c_cat), c_con]``: (n, noise + K + n_con)."""
        one_hot = F.one_hot(codes["c_cat"], self.n_categories).to(codes["z"].dtype)
        return torch.cat([codes["z"], one_hot, codes["c_con"].to(codes["z"].dtype)], dim=1)

    def sample_latent(self, n: int, generator: torch.Generator | None = None):
        """Codes with ``c_cat`` cycling 0..K-1, so previews show one value per column."""
        return {k: v.cpu() for k, v in self.sample_codes(n, generator, cycle=True).items()}

    def with_labels(self, latent, labels):
        """With ``supervised_fraction`` > 0, code value k was trained to mean class k, so
        ``gankit sample RUN --labels K`` sets ``c_cat``. An unsupervised code's values are
        not classes (which value draws which class is learned, in no fixed order)."""
        if self.supervised_fraction == 0:
            raise GankitError(
                "this InfoGAN learned its categorical code without labels, so its values "
                "are not classes; train with model.supervised_fraction > 0 to choose "
                "classes, or see each value with gankit explore RUN --what traverse"
            )
        return {**latent, "c_cat": self.requested_labels(labels, len(latent["z"]))}

    def generate(self, latent, net=None) -> torch.Tensor:
        net = net if net is not None else self.G
        codes = {k: v.to(self.device) for k, v in latent.items()}
        return net(self.latent_input(codes))

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def code_class_matching(
        self,
        evaluator,
        real: tuple[torch.Tensor, torch.Tensor] | None = None,
        n: int = 2000,
        seed: int = 0,
        net: nn.Module | None = None,
    ) -> CodeMatching:
        """Hungarian matching of the categorical code's values to the evaluator's classes
        (after Chen et al. 2016, §7.1).

        Samples are drawn for each code value (balanced), labelled by the evaluator, and
        code values are mapped to classes one-to-one to maximise agreement on that
        confusion matrix. The error is the share of samples whose class differs from
        their code's mapped class. Q's accuracy on real test images under the same map
        is the paper's "5 % error on MNIST": a classifier learned without labels.

        Args:
            evaluator: the dataset's evaluator classifier (same classes as the data).
            real: (images, labels) of real test data, to score Q's own classification.
            n: generated samples, balanced over code values.
            seed: seeds the samples.
            net: the generator to sample from (its EMA), default G.
        """
        from scipy.optimize import linear_sum_assignment

        k, classes = self.n_categories, evaluator.num_classes
        if k > classes:
            raise GankitError(
                f"cannot match {k} code values one-to-one to {classes} classes; use "
                f"n_categories <= {classes}"
            )
        latent = self.sample_latent(n, torch.Generator().manual_seed(seed))  # c_cat cycles
        predicted = evaluator.logits(self.render(latent, net=net).cpu()).argmax(dim=1)
        confusion = torch.zeros(k, classes, dtype=torch.long)
        confusion.index_put_(
            (latent["c_cat"], predicted), torch.ones_like(predicted), accumulate=True
        )
        rows, cols = linear_sum_assignment(confusion.numpy(), maximize=True)
        code_to_class = [0] * k
        for row, col in zip(rows, cols):
            code_to_class[int(row)] = int(col)
        matched = sum(int(confusion[r, c]) for r, c in zip(rows, cols))
        q_accuracy = None
        if real is not None:
            images, labels = real
            codes = [
                self.predict_codes(chunk)["cat"].argmax(dim=1).cpu() for chunk in images.split(500)
            ]
            q_accuracy = float(
                (torch.tensor(code_to_class)[torch.cat(codes)] == labels).float().mean()
            )
        return CodeMatching(code_to_class, 1.0 - matched / n, q_accuracy, confusion)

    def family_scores(self, context: ScoreContext) -> tuple[dict[str, float], dict[str, float]]:
        """On labelled data with an evaluator: ``code_error`` (the code-class matching's
        error, floor: the evaluator's error on real test images) and ``q_accuracy`` (Q
        classifying real held-out images through the matching, floor: the evaluator's
        accuracy)."""
        evaluator = context.evaluator
        if evaluator is None or not context.num_classes or self.n_categories > context.num_classes:
            return {}, {}
        matching = self.code_class_matching(
            evaluator, (context.x, context.y), context.n, context.seed, context.net
        )
        scores = {"code_error": matching.error, "q_accuracy": matching.q_accuracy}
        floor = {"code_error": 1.0 - evaluator.test_accuracy, "q_accuracy": evaluator.test_accuracy}
        return scores, floor


@dataclass
class CodeMatching:
    """InfoGAN's categorical code against the classes.

    Attributes:
        code_to_class: ``code_to_class[c]`` is the class matched to code value c.
        error: share of generated samples whose evaluator class is not their code's class.
        q_accuracy: Q's accuracy on real test images under the same map (None without them).
        confusion: (K, C) counts of evaluator classes per code value.
    """

    code_to_class: list[int]
    error: float
    q_accuracy: float | None
    confusion: torch.Tensor


class _CriticWithQ(nn.Module):
    """D's trunk with two heads: the source logit and Q's raw code predictions."""

    def __init__(self, trunk: nn.Module, q_head: nn.Module) -> None:
        super().__init__()
        self.trunk, self.source, self.q = trunk, nn.Linear(trunk.out_features, 1), q_head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        return self.source(features), self.q(features)


# --------------------------------------------------------------------------- variants
register_model(
    "infogan",
    InfoGAN,
    "InfoGAN: codes c_cat, c_con that a Q head on D must read back (Chen 2016)",
)
