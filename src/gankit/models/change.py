r"""Controllable change: turn an earlier sample into a later one, by an amount c in [0, 1].

The data has an earlier domain (x) and a later one (y), unpaired: every later sample was
made from some earlier one by a change of unknown size. A generator G(x, c) takes an
earlier sample and a code ``c ~ U(0, 1)``; a discriminator D tells real later samples
from G(x, c); a head Q reads c back from the pair (x, G(x, c)), InfoGAN's
mutual-information term (Chen et al. 2016), so that c must leave a trace in the
change. Two more terms make that trace mean *how much*: c = 0 changes nothing, and a
larger c never changes less.

Objective, minimised over G and Q and maximised over D:

``L = E_y[log D(y)] + E_{x,c}[log(1 − D(G(x, c)))]``
``    + λ_I E_{x,c} ||Q(x, G(x, c)) − c||²``                (mutual information)
``    + λ_id E_x ||G(x, 0) − x||_1``                          (identity at c = 0)
``    + λ_mono E_{x, c1 < c2} max(0, d(x, c1) − d(x, c2))``   (monotone in c)
``    + λ_T E_{x,c} d(x, c)``                                  (least change; λ_T = 0 default)

with ``d(x, c) = ||G(x, c) − x||_1`` (mean absolute change per value). The last term is
a transport cost: many maps send the earlier items to the later collection, and the GAN
term cannot tell them apart; with λ_T > 0 G prefers the one that moves each item least,
which is each item's own change where the real change is the smallest that makes an item
look later. Too large a λ_T makes G change less than the data does. The squared
error is ``−log Q(c | x, G(x, c))`` of a Gaussian with fixed variance, up to a
constant, so minimising it maximises the variational lower bound
``E[log Q(c | x, G)] + H(c) ≤ I(c; G(x, c) | x)``. G plays the non-saturating game,
``−E log σ(D(G(x, c)))``. Q is always trained on detached outputs, so it reads c even
where λ_I = 0 (the ``change_noq`` baseline, in which G never hears from Q); G gets Q's
gradient only when λ_I > 0.

**Which discriminator** (``discriminator``, the notes' question of what D judges):

- ``later`` (the default): D tells real later items from G's output, as above;
- ``periods``: D learns the two periods on real items only, earlier against later, and
  G's output must be judged later (the notes' "the discriminator judges earlier or
  later"): ``max_D E_y[log D(y)] + E_x[log(1 − D(x))]``, G minimises
  ``−E log σ(D(G(x, c)))``. D never sees G's output, so G is not chased: it moves
  until a fixed judge of periods says "later";
- ``three``: D names one of three classes, earlier, later or made by G (a softmax over
  three logits): ``max_D E_x[log D_e(x)] + E_y[log D_l(y)] + E[log D_g(G(x, c))]``, and
  G minimises ``−E log D_l(G(x, c))``: its output must pass for a real later item and
  not for an earlier one.

G is residual, ``G(x, c) = x + Δ(x, c)``: an MLP on ``[x, c]`` for (L,) series, a
stack of 3x3 convolutions on x with c as an extra constant channel for (C, H, W)
images, keeping the resolution. With ``code_scaled``, ``G(x, c) = x + c·Δ(x, c)``:
c = 0 changes nothing by construction, and the change grows with c from the start.
D and Q are MLPs for series and strided conv encoders
(DCGAN's trunk, no normalisation) for images; Q reads x and G(x, c) side by side.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError, choices
from gankit.losses import bce_d_loss, non_saturating_g_loss
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_WIDTH,
    Model,
    ScoreContext,
    check_optimizer,
    check_sizes,
    check_weights,
    two_domains,
)
from gankit.nn import (
    IDENTITY_THETA,
    ConvEncoder,
    SpatialTransformer,
    eval_mode,
    frozen,
    mlp,
    resample,
)
from gankit.registry import register_model


# --------------------------------------------------------------------------- networks
class GlobalMix(nn.Module):
    """(N, C, H, W) features plus a learned map of their spatial mean, the same at every
    pixel: ``h + W·mean_{ij} h``. A stack of 3x3 convolutions sees a few pixels; with this
    each pixel also hears the whole item (its ink, say), which sets some changes."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mix = nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.mix(h.mean(dim=(2, 3)))[:, :, None, None]


class ChangeGenerator(nn.Module):
    """``G(x, c) = x + Δ(x, c)``, or ``x + c·Δ(x, c)`` when ``code_scaled``: (N, ...) items
    and (N,) codes -> (N, ...) items. ``codes``: the inputs Δ takes beside x (a
    subclass with more codes than c feeds its own through :meth:`changed`).

    Images only: ``global_path`` adds a :class:`GlobalMix` after Δ's first layer;
    ``warp`` first resamples x through an affine map, ``G(x, c) = T_{θ_c}(x) + Δ``, with
    ``θ_c = I + c·(θ(x, codes) − I)`` from a spatial transformer's localisation network
    (:class:`gankit.nn.SpatialTransformer`) and Δ's last layer starting at zero: G
    starts as the identity, and the warp does nothing at c = 0 (nor Δ, with
    ``code_scaled``)."""

    def __init__(
        self,
        data_shape: tuple[int, ...],
        width: int,
        n_layers: int,
        code_scaled: bool = False,
        codes: int = 1,
        global_path: bool = False,
        warp: bool = False,
    ) -> None:
        super().__init__()
        self.code_scaled = code_scaled
        self.images = len(data_shape) == 3
        self.warp = None
        if self.images:
            channels = data_shape[0]
            layers: list[nn.Module] = []
            widths = [channels + codes] + [width] * n_layers
            for w_in, w_out in itertools.pairwise(widths):
                layers += [nn.Conv2d(w_in, w_out, 3, padding=1), nn.LeakyReLU(0.2)]
            if global_path:  # n_layers >= 1: the model refuses 0
                layers.insert(2, GlobalMix(width))
            layers.append(nn.Conv2d(widths[-1], channels, 3, padding=1))
            self.delta = nn.Sequential(*layers)
            if warp:
                self.warp = SpatialTransformer(channels + codes)
                nn.init.zeros_(layers[-1].weight)
                nn.init.zeros_(layers[-1].bias)
        else:
            self.delta = mlp(data_shape[0] + codes, width, n_layers, data_shape[0], leaky_slope=0.2)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.changed(x, c, c.view(-1, 1))

    def changed(self, x: torch.Tensor, c: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """G on (N, ...) items, their (N,) amounts c and Δ's (N, codes) inputs."""
        scale = c.view(-1, *[1] * (x.dim() - 1))
        if self.images:
            inputs = torch.cat([x, codes[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        else:
            inputs = torch.cat([x, codes], dim=1)
        start = x
        if self.warp is not None:
            identity = x.new_tensor(IDENTITY_THETA).view(1, 2, 3)
            theta = identity + scale.view(-1, 1, 1) * (self.warp.transform(inputs) - identity)
            start = resample(x, theta)
        delta = self.delta(inputs)
        return start + scale * delta if self.code_scaled else start + delta


def critic(
    data_shape: tuple[int, ...], inputs: int, width: int, n_layers: int, outputs: int = 1
) -> nn.Module:
    """(N, inputs * C, H, W) or (N, inputs * L) -> (N, outputs): D (one input) or Q (two)."""
    if len(data_shape) == 3:
        channels, resolution = data_shape[0] * inputs, data_shape[-1]
        trunk = ConvEncoder(channels, resolution, width, norm="none")
        return nn.Sequential(trunk, nn.Linear(trunk.out_features, outputs))
    return mlp(data_shape[0] * inputs, width, n_layers, outputs, leaky_slope=0.2)


# --------------------------------------------------------------------------- what D judges
#: ``three``'s classes, in the order of D's logits.
EARLIER, LATER, MADE = 0, 1, 2


def later_d_loss(D: nn.Module, earlier, later, fake) -> torch.Tensor:
    """``later``: ``−E log σ(D(y)) − E log(1 − σ(D(G(x, c))))``."""
    return bce_d_loss(D(later), D(fake))


def periods_d_loss(D: nn.Module, earlier, later, fake) -> torch.Tensor:
    """``periods``: ``−E log σ(D(y)) − E log(1 − σ(D(x)))``, real items only."""
    return bce_d_loss(D(later), D(earlier))


def three_d_loss(D: nn.Module, earlier, later, fake) -> torch.Tensor:
    """``three``: cross-entropy of D's three logits on earlier, later and G's items."""
    items = (earlier, later, fake)
    targets = torch.cat([torch.full((len(t),), k, device=t.device) for k, t in enumerate(items)])
    return F.cross_entropy(D(torch.cat(items)), targets)


def three_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """``three``: ``−E log softmax(D(G(x, c)))_later``."""
    return F.cross_entropy(d_fake, torch.full((len(d_fake),), LATER, device=d_fake.device))


#: What D judges, by name: (D's logits, D's loss, G's adversarial loss on D(G(x, c))).
DISCRIMINATORS = {
    "later": (1, later_d_loss, non_saturating_g_loss),
    "periods": (1, periods_d_loss, non_saturating_g_loss),
    "three": (3, three_d_loss, three_g_loss),
}


# --------------------------------------------------------------------------- the family
class ChangeGAN(Model):
    """G(x, c), D and Q for controllable change (objective in the module docstring).

    Batches carry ``x`` (earlier) and ``x_b`` (later), unpaired; labels are never read.

    Args:
        data_shape: (L,) series or (C, H, W) images; set from the data.
        num_classes: unused.
        width: hidden width of the MLPs (series) or channels of the convs (images).
        n_layers: hidden layers of G's MLP or conv stack, and of D's and Q's MLPs.
        info_weight: λ_I, the mutual-information term's weight for G (0: Q is only a
            probe, the ``change_noq`` baseline).
        identity_weight: λ_id, weight of ``||G(x, 0) − x||_1``.
        monotone_weight: λ_mono, weight of the hinge that asks for more change at a
            larger c.
        lr: Adam's learning rate for G, D and Q.
        betas: Adam's (β1, β2).
        discriminator: what D judges: ``later`` (real later items against G's output),
            ``periods`` (earlier against later, real items only) or ``three`` (earlier,
            later or G's); see the module docstring.
        code_scaled: ``G(x, c) = x + c·Δ(x, c)`` instead of ``x + Δ(x, c)``.
        transport_weight: λ_T, weight of the least-change term ``E_{x,c} d(x, c)``: among
            the maps that make G's outputs pass for later items, prefer the one that
            moves each item least (see the module docstring).
        global_path: images only: every pixel of Δ also hears the item's mean features
            (:class:`GlobalMix`).
        warp: images only: G first resamples x through an affine map that grows with c
            (a spatial transformer), then adds Δ: for geometric changes such as a turn.
    """

    task = "change"
    generator_name = "G"

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        width: int = 64,
        n_layers: int = 3,
        info_weight: float = 1.0,
        identity_weight: float = 1.0,
        monotone_weight: float = 1.0,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        discriminator: str = "later",
        code_scaled: bool = False,
        transport_weight: float = 0.0,
        global_path: bool = False,
        warp: bool = False,
    ) -> None:
        super().__init__(data_shape, num_classes)
        if discriminator not in DISCRIMINATORS:
            raise GankitError(
                f"model: unknown discriminator '{discriminator}'; valid: {choices(DISCRIMINATORS)}"
            )
        if len(self.data_shape) not in (1, 3):
            raise GankitError(
                f"model: the change family reads (L,) series or (C, H, W) images, got items "
                f"of shape {self.data_shape}"
            )
        check_sizes(MAX_CHANNELS if len(self.data_shape) == 3 else MAX_WIDTH, width=width)
        check_sizes(MAX_DEPTH, n_layers=n_layers)
        check_weights(
            info_weight=info_weight, identity_weight=identity_weight,
            monotone_weight=monotone_weight, transport_weight=transport_weight,
        )  # fmt: skip
        check_optimizer(betas, lr=lr)
        for option, value in (("global_path", global_path), ("warp", warp)):
            if value and len(self.data_shape) != 3:
                raise GankitError(
                    f"model: {option} is for (C, H, W) images; series items of shape "
                    f"{self.data_shape} go through an MLP that already sees every value: "
                    f"set model.{option}=false"
                )
        self.info_weight, self.identity_weight = info_weight, identity_weight
        self.monotone_weight, self.lr, self.betas = monotone_weight, lr, tuple(betas)
        self.transport_weight = transport_weight
        self.discriminator, self.code_scaled = discriminator, code_scaled
        d_outputs, self.d_loss, self.g_adversarial_loss = DISCRIMINATORS[discriminator]
        self.generator_options = {"code_scaled": code_scaled, "global_path": global_path,
                                  "warp": warp}  # fmt: skip
        self.G = ChangeGenerator(self.data_shape, width, n_layers, **self.generator_options)
        self.D = critic(self.data_shape, 1, width, n_layers, d_outputs)
        self.Q = critic(self.data_shape, 2, width, n_layers)

    # ------------------------------------------------------------------ training
    def training_data(self, bundle) -> dict:
        """Unpaired batches: ``x`` earlier, ``x_b`` later, of one shape."""
        return two_domains(self, bundle)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            name: torch.optim.Adam(getattr(self, name).parameters(), lr=self.lr, betas=self.betas)
            for name in ("G", "D", "Q")
        }

    def read_amount(self, x: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        """Q's reading of c from (N, ...) earlier items and their changed versions: (N,)."""
        return self.Q(torch.cat([x, changed], dim=1)).squeeze(1)

    # ------------------------------------------------------------------ the codes (hooks)
    def draw_codes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """A batch's codes: here ``c ~ U(0, 1)`` (N,); a family with more codes adds its own."""
        return {"c": torch.rand(len(x), device=x.device)}

    def generate(self, x: torch.Tensor, codes: dict, c: torch.Tensor | None = None):
        """G on x with the batch's ``codes``, and ``c`` in place of ``codes["c"]`` if given."""
        return self.G(x, codes["c"] if c is None else c)

    def info_losses(self, x: torch.Tensor, changed: torch.Tensor, codes: dict) -> dict:
        """Q's losses on the pair (x, G(x, codes)), by name, unweighted: here the squared
        error of its reading of c."""
        return {"info": F.mse_loss(self.read_amount(x, changed), codes["c"])}

    def info_weights(self) -> dict[str, float]:
        """G's weight on each of :meth:`info_losses`, by name."""
        return {"info": self.info_weight}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        x, later = batch["x"], batch["x_b"]
        codes = self.draw_codes(x)
        fake = self.generate(x, codes)

        # ---- D: what it judges is the variant's (real later items against G(x, c) by default)
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        loss_d = self.d_loss(self.D, x, later, fake.detach())  # detach: D must not move G
        self.backward(loss_d)
        self.step(opt_d)

        # ---- Q: read the codes back from (x, G(x, c)); detached, so Q learns in every variant
        opt_q = self.optimizers["Q"]
        opt_q.zero_grad(set_to_none=True)
        q_losses = self.info_losses(x, fake.detach(), codes)
        self.backward(sum(q_losses.values()))
        self.step(opt_q)

        # ---- G: fool D, let Q read the codes, change nothing at c = 0, more at a larger c,
        # and (λ_T) no more than it must
        opt_g = self.optimizers["G"]
        opt_g.zero_grad(set_to_none=True)
        with frozen(self.D), frozen(self.Q):  # gradients pass through D and Q to G only
            loss_g = loss_gan = self.g_adversarial_loss(self.D(fake))
            terms = self.info_losses(x, fake, codes)
        for name, weight in self.info_weights().items():
            loss_g = loss_g + weight * terms[name]
        c = codes["c"]
        loss_identity = (self.generate(x, codes, torch.zeros_like(c)) - x).abs().mean()
        # a second code for each x: the change must grow from the smaller to the larger
        other = torch.rand(len(x), device=x.device)
        change = (fake - x).abs().flatten(1).mean(dim=1)
        other_change = (self.generate(x, codes, other) - x).abs().flatten(1).mean(dim=1)
        sign = torch.sign(c - other)  # +1 where c is the larger code
        loss_monotone = F.relu(sign * (other_change - change)).mean()
        loss_g = loss_g + self.identity_weight * loss_identity
        loss_g = loss_g + self.monotone_weight * loss_monotone
        if self.transport_weight:
            loss_g = loss_g + self.transport_weight * change.mean()
        self.backward(loss_g)
        self.step(opt_g)
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "loss_gan": loss_gan.item(),
            **{name: loss.item() for name, loss in q_losses.items()},
            "identity": loss_identity.item(),
            "monotone": loss_monotone.item(),
            "transport": change.mean().item(),
        }

    # ------------------------------------------------------------------ the task "change"
    @torch.no_grad()
    def change(
        self, x: torch.Tensor, amount: float | torch.Tensor, net: nn.Module | None = None
    ) -> torch.Tensor:
        """G(x, c) in eval mode: (N, ...) earlier items and a code (a number or (N,)) ->
        (N, ...) changed items on the CPU. ``net`` replaces G (e.g. its EMA)."""
        generator = net if net is not None else self.G
        x = x.to(self.device)
        c = torch.as_tensor(amount, dtype=x.dtype, device=x.device).expand(len(x))
        with eval_mode(generator):
            return generator(x, c).cpu()

    @torch.no_grad()
    def predict_amount(self, x: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        """Q's reading of c, in eval mode: (N,) on the CPU."""
        with eval_mode(self.Q):
            return self.read_amount(x.to(self.device), changed.to(self.device)).cpu()

    def family_scores(self, context: ScoreContext) -> tuple[dict[str, float], dict[str, float]]:
        """``code_error``: Q's mean absolute error reading c ~ U(0, 1) on held-out x."""
        generator = torch.Generator().manual_seed(context.seed)
        c = torch.rand(len(context.x), generator=generator)
        changed = self.change(context.x, c, context.net)
        error = (self.predict_amount(context.x, changed) - c).abs().mean()
        return {"code_error": float(error)}, {}

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The change family draws nothing from noise: its inputs are earlier items."""
        raise GankitError(
            f"model '{self.model_name}' changes earlier items and draws no samples from noise; "
            "use: gankit translate RUN --amount C --input DIR --out DIR"
        )


# --------------------------------------------------------------------------- variants
register_model(
    "change",
    ChangeGAN,
    "controllable change G(x, c), c ~ U(0, 1): GAN + InfoGAN Q on (x, G) + identity + monotone",
)
register_model(
    "change_noq",
    ChangeGAN,
    "the change family without the mutual-information term (Q only probes)",
    info_weight=0.0,
)
