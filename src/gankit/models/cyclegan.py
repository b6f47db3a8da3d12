r"""CycleGAN: unpaired image-to-image translation (Zhu, Park, Isola & Efros 2017,
"Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks").

Two domains A and B with no paired examples (digits and digits on photo backgrounds,
horses and zebras). Two generators translate between them, G = G_AB: A -> B and
F = G_BA: B -> A, and two discriminators judge each domain, D_B real b against G(a)
and D_A real a against F(b). Adversarial losses alone would let G map every a to any
convincing b; the cycle losses ask that translating there and back returns the input,
so G must keep what identifies a (here: the digit).

The full objective, minimised over G, F and maximised over D_A, D_B:

``L = L_GAN(G, D_B) + L_GAN(F, D_A) + λ_cyc (||F(G(a)) − a||_1 + ||G(F(b)) − b||_1)
      + λ_id (||G(b) − b||_1 + ||F(a) − a||_1)``

with the least-squares GAN losses (Mao et al. 2017) the paper uses:

- generators: ``L_GAN(G, D_B) = E_a[(D_B(G(a)) − 1)^2]`` (and likewise F with D_A);
- discriminators, halved "to slow down the rate at which D learns relative to G":
  ``L_D_B = ½ (E_b[(D_B(b) − 1)^2] + E_a[D_B(G(a))^2])`` (and likewise D_A).

λ_cyc = 10 and λ_id = 0.5·λ_cyc. ||·||_1 is the mean absolute error per pixel. The
identity term asks a generator to leave images of its own target domain alone, which
keeps colours stable; G(b) only exists when A and B have the same channel count, so
with a grey domain A and an RGB domain B the identity weight must be 0.

D learns from a history of 50 generated images rather than only the newest batch
(Shrivastava et al. 2017), see :class:`ImagePool`. Adam with lr 2e-4, β = (0.5, 0.999),
constant for the first half of training and then linearly decayed to zero.

Networks, scaled down by ``channels``, ``n_blocks`` and the image size:

- G: the ResNet generator of Johnson et al. (2016): c7s1-k, d2k, d4k, n residual blocks
  R4k, u2k, uk, c7s1-C (tanh), with instance norm and reflection padding; the paper's
  k = 64 and 9 blocks at 256 px, 6 at 128 px.
- D: the 70x70 PatchGAN of pix2pix: C64-C128-C256-C512 (4x4 convs, stride 2 but the
  last, instance norm but the first, LeakyReLU 0.2) and a 1-channel conv. It scores
  each overlapping patch, so its output is a (N, 1, h, w) map of real/fake scores.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.losses import least_squares_d_loss, least_squares_g_loss
from gankit.models.base import (
    MAX_CHANNELS,
    MAX_DEPTH,
    Model,
    check_fractions,
    check_optimizer,
    check_sizes,
    check_weights,
    linear_decay,
    set_learning_rate,
    two_domains,
)
from gankit.nn import eval_mode, frozen, init_dcgan_weights, norm_layer
from gankit.registry import register_model

DIRECTIONS = ("AtoB", "BtoA")
#: The paper's pool holds 50 fakes; each one is a (C, H, W) image kept in memory.
MAX_POOL = 1000


# --------------------------------------------------------------------------- networks
def _conv_norm_relu(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    # Reflection padding instead of zeros: zero borders give the generator a frame it
    # learns to draw, reflection keeps image statistics at the edges.
    pad = (kernel_size - 1) // 2
    return [
        nn.ReflectionPad2d(pad) if stride == 1 else nn.Identity(),
        nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=0 if stride == 1 else pad),
        norm_layer("instance", out_ch, conv=True),
        nn.ReLU(),
    ]


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 reflection-padded convs and instance norm:
    (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        layers = _conv_norm_relu(channels, channels, 3)
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer("instance", channels, conv=True),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].

    c7s1-k, d2k, d4k (two stride-2 downsamplings), ``n_blocks`` residual blocks at
    4k channels and H/4, u2k, uk (two stride-2 transposed convs), c7s1-out, tanh.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, n_blocks: int) -> None:
        super().__init__()
        layers = _conv_norm_relu(in_channels, width, 7)
        layers += _conv_norm_relu(width, 2 * width, 3, stride=2)
        layers += _conv_norm_relu(2 * width, 4 * width, 3, stride=2)
        layers += [ResidualBlock(4 * width) for _ in range(n_blocks)]
        for in_ch, out_ch in ((4 * width, 2 * width), (2 * width, width)):
            layers += [
                nn.ConvTranspose2d(in_ch, out_ch, 3, 2, padding=1, output_padding=1),
                norm_layer("instance", out_ch, conv=True),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: (N, C, H, W) -> (N, 1, h, w), one least-squares score per patch.

    ``n_strided`` 4x4 stride-2 convs widen ``width`` -> ``width * 2^(n-1)`` (no norm on
    the first), one stride-1 conv doubles once more (capped at 8x), then a 1-channel
    4x4 conv. With width 64 and three strided layers this is pix2pix's 70x70 PatchGAN.
    """

    def __init__(self, channels: int, width: int, n_strided: int) -> None:
        super().__init__()
        widths = [channels] + [width * min(2**i, 8) for i in range(n_strided + 1)]
        layers: list[nn.Module] = []
        for i in range(n_strided + 1):
            stride = 2 if i < n_strided else 1
            layers.append(nn.Conv2d(widths[i], widths[i + 1], 4, stride, padding=1))
            if i > 0:
                layers.append(norm_layer("instance", widths[i + 1], conv=True))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def patch_layers(resolution: int) -> int:
    """Strided layers of a PatchGAN for ``resolution`` px: 3 (the 70x70 PatchGAN) from
    32 px up, fewer below, so the stride-1 layers still see a map of at least 3x3."""
    return max(1, min(3, int(math.log2(resolution)) - 2))


# --------------------------------------------------------------------------- image pool
class ImagePool(nn.Module):
    """A history of generated images for the discriminator (Shrivastava et al. 2017).

    D trained only on the newest fakes chases G's latest move and can make G oscillate;
    showing it older fakes too keeps it honest about everything G has produced. For
    each image of a batch: while the pool holds fewer than ``size`` images, the image
    is stored and returned; after that, with probability 0.5 a random stored image is
    returned and the new one takes its place, else the new image is returned.

    The pool lives in buffers, so checkpoints carry it and a resumed run continues with
    the same history.

    Args:
        size: capacity; 0 disables the pool (every query returns its input).
        shape: (C, H, W) of one image.
    """

    def __init__(self, size: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) newest fakes -> (N, C, H, W) fakes for D, each a new or a stored one."""
        if self.size == 0:
            return images
        images = images.detach().to(self.images.dtype)
        out = []
        for image in images:
            filled = int(self.count)
            if filled < self.size:
                self.images[filled] = image
                self.count += 1
                out.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(self.size, ()))
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.stack(out)


# --------------------------------------------------------------------------- the family
class CycleGAN(Model):
    """Two ResNet generators and two PatchGAN discriminators with cycle consistency.

    Domain A is the data's first domain (``data.name``), B its second (``data.target``,
    or trainB of ``unpaired:PATH``). Batches carry ``x`` (A) and ``x_b`` (B); labels are
    never read.

    Args:
        data_shape: (C_A, H, W) of domain A; set from the data.
        num_classes: unused.
        data_shape_b: (C_B, H, W) of domain B; set from the data. C_B may differ from C_A
            (digits -> digits-m is 1 -> 3 channels); None means the same as A.
        channels: k, the width of the generators' first layer (the paper: 64).
        n_blocks: residual blocks in each generator (the paper: 9 at 256 px, 6 at 128).
        d_channels: width of the discriminators' first layer (the paper: 64).
        d_layers: strided layers of the PatchGAN; None picks 3 from 32 px up and fewer
            for smaller images (see :func:`patch_layers`).
        cycle_weight: λ_cyc.
        identity_weight: λ_id as a fraction of λ_cyc (the paper: 0.5). Must be 0 when A
            and B have different channel counts, where G(b) is undefined.
        pool_size: generated images remembered for D (0: no history).
        lr: Adam's learning rate for all four networks.
        betas: Adam's (β1, β2).
        decay_start: the fraction of the run after which the learning rate decays
            linearly to zero (the paper: 100 of 200 epochs).
    """

    task = "translate"
    generator_name = "G_AB"
    #: The translate task's directions: G_AB maps A to B, G_BA maps B to A.
    directions = DIRECTIONS

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        data_shape_b: tuple[int, ...] | None = None,
        *,
        channels: int = 64,
        n_blocks: int = 9,
        d_channels: int = 64,
        d_layers: int | None = None,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        pool_size: int = 50,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        decay_start: float = 0.5,
    ) -> None:
        super().__init__(data_shape, num_classes)
        self.data_shape_b = tuple(data_shape_b) if data_shape_b is not None else self.data_shape
        check_weights(cycle_weight=cycle_weight, identity_weight=identity_weight)
        self._check(channels, d_channels, n_blocks, d_layers, pool_size, identity_weight)
        check_optimizer(betas, lr=lr)
        check_fractions(decay_start=decay_start)
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        self.lr, self.betas, self.decay_start = lr, tuple(betas), decay_start
        c_a, c_b, resolution = self.data_shape[0], self.data_shape_b[0], self.data_shape[-1]
        n_strided = d_layers if d_layers is not None else patch_layers(resolution)
        self.G_AB = ResnetGenerator(c_a, c_b, channels, n_blocks)
        self.G_BA = ResnetGenerator(c_b, c_a, channels, n_blocks)
        self.D_A = PatchDiscriminator(c_a, d_channels, n_strided)
        self.D_B = PatchDiscriminator(c_b, d_channels, n_strided)
        init_dcgan_weights(self)  # the paper's N(0, 0.02) initialisation
        self.pool_a = ImagePool(pool_size, self.data_shape)
        self.pool_b = ImagePool(pool_size, self.data_shape_b)

    def _check(self, channels, d_channels, n_blocks, d_layers, pool_size, identity_weight):
        a, b = self.data_shape, self.data_shape_b
        if len(a) != 3 or len(b) != 3 or a[1:] != b[1:]:
            raise GankitError(
                f"model: cyclegan translates (C, H, W) images of one size; domain A gives {a}, "
                f"domain B {b}"
            )
        if a[-1] % 4 or a[-1] < 8:
            raise GankitError(
                f"model: cyclegan downsamples twice by 2: the image size must be a multiple "
                f"of 4 and at least 8, got {a[-1]}"
            )
        check_sizes(MAX_CHANNELS, channels=channels, d_channels=d_channels)
        check_sizes(MAX_DEPTH, 0, n_blocks=n_blocks)
        if d_layers is not None:
            check_sizes(MAX_DEPTH, d_layers=d_layers)
        check_sizes(MAX_POOL, 0, pool_size=pool_size)
        if d_layers is not None and a[-1] // 2**d_layers < 3:
            raise GankitError(
                f"model: d_layers {d_layers} shrinks {a[-1]} px images below 3x3; use at most "
                f"{patch_layers(a[-1])} (or null)"
            )
        if identity_weight > 0 and a[0] != b[0]:
            raise GankitError(
                f"model: identity_weight {identity_weight} needs domains with equal channel "
                f"counts (the identity loss feeds B images to G_AB); A has {a[0]}, B {b[0]}: "
                "set model.identity_weight=0, or give both domains the same channels"
            )

    # ------------------------------------------------------------------ training
    def training_data(self, bundle) -> dict:
        """Unpaired batches: ``x`` from A and ``x_b`` from B; their channels may differ."""
        return two_domains(self, bundle, same_shape=False)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        generators = [*self.G_AB.parameters(), *self.G_BA.parameters()]
        discriminators = [*self.D_A.parameters(), *self.D_B.parameters()]
        return {
            "G": torch.optim.Adam(generators, lr=self.lr, betas=self.betas),
            "D": torch.optim.Adam(discriminators, lr=self.lr, betas=self.betas),
        }

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        real_a, real_b = batch["x"], batch["x_b"]
        lr = self.lr * linear_decay(self.progress(step), self.decay_start)
        for optimizer in self.optimizers.values():
            set_learning_rate(optimizer, lr)

        # ---- generators: fool both discriminators, and come back where they started
        opt_g = self.optimizers["G"]
        opt_g.zero_grad(set_to_none=True)
        fake_b, fake_a = self.G_AB(real_a), self.G_BA(real_b)
        with frozen(self.D_A), frozen(self.D_B):  # gradients pass through D to G only
            # least_squares_g_loss is LSGAN's ½ E[(D − 1)^2]; the paper's G loss has no ½,
            # and λ_cyc = 10 is weighed against that, hence the 2.
            loss_gan_ab = 2.0 * least_squares_g_loss(self.D_B(fake_b))
            loss_gan_ba = 2.0 * least_squares_g_loss(self.D_A(fake_a))
        loss_cycle_a = (self.G_BA(fake_b) - real_a).abs().mean()
        loss_cycle_b = (self.G_AB(fake_a) - real_b).abs().mean()
        loss_g = loss_gan_ab + loss_gan_ba + self.cycle_weight * (loss_cycle_a + loss_cycle_b)
        stats = {"loss_gan_ab": loss_gan_ab.item(), "loss_gan_ba": loss_gan_ba.item()}
        if self.identity_weight > 0:
            loss_idt = (self.G_AB(real_b) - real_b).abs().mean()
            loss_idt = loss_idt + (self.G_BA(real_a) - real_a).abs().mean()
            loss_g = loss_g + self.identity_weight * self.cycle_weight * loss_idt
            stats["loss_identity"] = loss_idt.item()
        self.backward(loss_g)
        self.step(opt_g)

        # ---- discriminators: real against a history of fakes, loss halved (the paper)
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        # query() detaches: the D step must not reach back into the generators
        pooled_b, pooled_a = self.pool_b.query(fake_b), self.pool_a.query(fake_a)
        # least_squares_d_loss = ½ E[(D(real) − 1)^2] + ½ E[D(fake)^2]: already halved
        loss_d_b = least_squares_d_loss(self.D_B(real_b), self.D_B(pooled_b))
        loss_d_a = least_squares_d_loss(self.D_A(real_a), self.D_A(pooled_a))
        self.backward(loss_d_a + loss_d_b)
        self.step(opt_d)

        stats.update(
            loss_g=loss_g.item(),
            loss_cycle_a=loss_cycle_a.item(),
            loss_cycle_b=loss_cycle_b.item(),
            loss_d_a=loss_d_a.item(),
            loss_d_b=loss_d_b.item(),
            lr=lr,
        )
        return stats

    # ------------------------------------------------------------------ translation
    def translator(self, direction: str, net: nn.Module | None = None) -> nn.Module:
        """G_AB for ``AtoB`` (``net`` replaces it, e.g. its EMA), G_BA for ``BtoA``."""
        if direction not in DIRECTIONS:
            raise GankitError(
                f"direction must be one of {', '.join(DIRECTIONS)}, got '{direction}'"
            )
        if direction == "AtoB":
            return net if net is not None else self.G_AB
        return self.G_BA

    def input_shape(self, direction: str) -> tuple[int, ...]:
        """The (C, H, W) a translation in ``direction`` reads."""
        return self.data_shape if direction == "AtoB" else self.data_shape_b

    @torch.no_grad()
    def translate(
        self,
        images: torch.Tensor,
        direction: str = "AtoB",
        net: nn.Module | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Translate (N, C_in, H, W) images in [-1, 1] -> (N, C_out, H, W), in eval mode.

        ``AtoB`` applies G_AB (or ``net``), ``BtoA`` applies G_BA. Returns CPU tensors.
        """
        generator = self.translator(direction, net)
        with eval_mode(generator):
            chunks = images.split(batch_size)
            return torch.cat([generator(c.to(self.device)).cpu() for c in chunks])

    def round_trip(
        self, images: torch.Tensor, direction: str = "AtoB", net: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(translated, reconstructed): G(x) and F(G(x)) for ``AtoB``, F(x), G(F(x)) for
        ``BtoA``; each (N, C, H, W) on the CPU."""
        back = "BtoA" if direction == "AtoB" else "AtoB"
        translated = self.translate(images, direction, net)
        return translated, self.translate(translated, back, net)

    # ------------------------------------------------------------------ sampling
    def sample_latent(
        self, n: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """A translator draws nothing from noise: its inputs are images."""
        raise GankitError(
            f"model '{self.model_name}' translates images and draws no samples from noise; "
            "use: gankit translate RUN --direction AtoB --input DIR --out DIR"
        )


# --------------------------------------------------------------------------- variants
register_model(
    "cyclegan",
    CycleGAN,
    "CycleGAN: ResNet generators, PatchGANs, LSGAN + cycle λ=10 + identity (Zhu 2017)",
)
register_model(
    "cyclegan_small",
    CycleGAN,
    "CycleGAN for 16-32 px images on a CPU: width 32, 3 residual blocks",
    channels=32,
    n_blocks=3,
    d_channels=32,
)
