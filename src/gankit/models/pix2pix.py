r"""pix2pix: paired image-to-image translation (Isola, Zhu, Zhou & Efros 2017,
"Image-to-Image Translation with Conditional Adversarial Networks").

Each input x (an edge map, a label map, a blurred photo) comes with its true target y.
A U-Net G maps x to G(x); a conditional PatchGAN D judges pairs, real (x, y) against
fake (x, G(x)). The objective, minimised over G and maximised over D:

``G* = arg min_G max_D L_cGAN(G, D) + λ L_L1(G)``, with

- ``L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_x[log(1 − D(x, G(x)))]``, per patch of D's map;
- ``L_L1(G) = E_{x,y}[||y − G(x)||_1]``, the mean absolute error per pixel;
- λ = 100. G minimises the non-saturating ``−log D(x, G(x))``; D's loss is halved, "which
  slows down the rate at which D learns relative to G" (the paper).

L1 alone gets the low frequencies right and blurs the rest (the median of what could
be there); the adversarial term asks each patch to look real, which brings the edges
back. ``adversarial_weight=0`` turns the family into that L1-only baseline: the same U-Net
at the same budget, with no D.

The noise z of a conditional GAN is dropout in G (p = 0.5 in the first three decoder
layers), as in the paper; ``translate`` runs G in eval mode, so a translation is
deterministic.

Networks, scaled down by ``channels`` and the image size:

- G: the U-Net of the paper: encoder C64-C128-C256-C512-... (4x4 convs, stride 2, batch
  norm but the first and the innermost, LeakyReLU 0.2) down to 1x1; decoder the mirror
  (4x4 transposed convs, batch norm, ReLU), each layer reading the encoder's layer of its
  size concatenated to its input (the skips), tanh out.
- D: the 70x70 PatchGAN of pix2pix on the 2C channels of (x, y) concatenated.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from gankit.errors import GankitError
from gankit.losses import bce_d_loss, non_saturating_g_loss
from gankit.models.base import (
    MAX_CHANNELS,
    Model,
    check_optimizer,
    check_sizes,
    check_weights,
)
from gankit.nn import eval_mode, frozen, init_dcgan_weights, norm_layer
from gankit.registry import register_model

#: Decoder layers (from the innermost) that carry dropout, the noise of pix2pix's G.
DROPOUT_LAYERS = 3


# --------------------------------------------------------------------------- networks
class UNetGenerator(nn.Module):
    """(N, in_channels, R, R) in [-1, 1] -> (N, out_channels, R, R) in [-1, 1].

    ``log2(R)`` encoder layers halve the map down to 1x1 (widths ``width * min(2^i, 8)``);
    decoder layer i reads the previous decoder output concatenated with encoder layer
    ``depth − 1 − i`` (the skip) and doubles the size; the last one gives the image.
    """

    def __init__(
        self, in_channels: int, out_channels: int, width: int, resolution: int, dropout: float
    ) -> None:
        super().__init__()
        depth = int(math.log2(resolution))
        widths = [width * min(2**i, 8) for i in range(depth)]
        self.down = nn.ModuleList()
        previous = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(previous, w, 4, 2, padding=1)]
            if 0 < i < depth - 1:  # no norm on the input layer or the 1x1 bottleneck
                layers.append(norm_layer("batch", w, conv=True))
            layers.append(nn.LeakyReLU(0.2))
            self.down.append(nn.Sequential(*layers))
            previous = w
        self.up = nn.ModuleList()
        for i in range(depth - 1):
            skip = widths[depth - 2 - i]
            in_ch = widths[-1] if i == 0 else 2 * widths[depth - 1 - i]
            layers = [
                nn.ConvTranspose2d(in_ch, skip, 4, 2, padding=1),
                norm_layer("batch", skip, conv=True),
            ]
            if i < DROPOUT_LAYERS and dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.ReLU())
            self.up.append(nn.Sequential(*layers))
        last_in = 2 * widths[0] if depth > 1 else widths[0]
        self.out = nn.Sequential(
            nn.ConvTranspose2d(last_in, out_channels, 4, 2, padding=1), nn.Tanh()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck is the decoder's input, not a skip
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return self.out(x)


# Copied from gankit.models.cyclegan.PatchDiscriminator
class PatchDiscriminator(nn.Module):
    """PatchGAN: (N, C, H, W) -> (N, 1, h, w), one logit per overlapping patch.

    Here C is the input's channels plus the target's: D judges a pair, not an image.
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


# Copied from gankit.models.cyclegan.patch_layers
def patch_layers(resolution: int) -> int:
    """Strided layers of the PatchGAN for ``resolution`` px (3 from 32 px up)."""
    return max(1, min(3, int(math.log2(resolution)) - 2))


class _Pairs(Dataset):
    """Item i of A and item i of B as one item: (C_A + C_B, H, W) and A's label."""

    def __init__(self, inputs: Dataset, targets: Dataset) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.inputs[index]
        return torch.cat([x, self.targets[index][0]]), y


# --------------------------------------------------------------------------- the family
class Pix2Pix(Model):
    """A U-Net G and a conditional PatchGAN D trained on pairs (x, y) with L_cGAN + λ L1.

    Domain A is the inputs (``data.name`` of a paired source: ``edges2digits``,
    ``edges2fashion``, ``paired:PATH``), B the targets; each training item is a pair,
    read as one ``x`` of C_A + C_B channels, split in ``train_step``.

    Args:
        data_shape: (C_A, R, R) of the inputs; set from the data.
        num_classes: unused.
        data_shape_b: (C_B, R, R) of the targets; set from the data.
        channels: width of G's first layer (the paper: 64).
        d_channels: width of D's first layer (the paper: 64).
        d_layers: strided layers of the PatchGAN; None picks 3 from 32 px up.
        l1_weight: λ (the paper: 100).
        adversarial_weight: the weight of L_cGAN in G's loss; 0 gives the L1-only
            baseline (no D is built).
        dropout: G's dropout, the noise (the paper: 0.5).
        lr: Adam's learning rate for G and D (the paper: 2e-4).
        betas: Adam's (β1, β2) (the paper: (0.5, 0.999)).
    """

    task = "translate"
    generator_name = "G"
    #: One way only: G maps inputs to targets; there is no network back.
    directions = ("AtoB",)

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        data_shape_b: tuple[int, ...] | None = None,
        *,
        channels: int = 64,
        d_channels: int = 64,
        d_layers: int | None = None,
        l1_weight: float = 100.0,
        adversarial_weight: float = 1.0,
        dropout: float = 0.5,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
    ) -> None:
        super().__init__(data_shape, num_classes)
        self.data_shape_b = tuple(data_shape_b) if data_shape_b is not None else self.data_shape
        check_weights(l1_weight=l1_weight, adversarial_weight=adversarial_weight)
        check_sizes(MAX_CHANNELS, channels=channels, d_channels=d_channels)
        check_optimizer(betas, lr=lr)
        if not 0.0 <= dropout < 1.0:
            raise GankitError(f"model: dropout must be in [0, 1), got {dropout}")
        a, b = self.data_shape, self.data_shape_b
        resolution = a[-1]
        if len(a) != 3 or len(b) != 3 or a[1:] != b[1:] or a[1] != a[2]:
            raise GankitError(
                f"model: pix2pix maps square (C, R, R) images to targets of the same size; "
                f"the inputs give {a}, the targets {b}"
            )
        if resolution < 4 or resolution & (resolution - 1):
            raise GankitError(
                f"model: pix2pix's U-Net halves the image down to 1x1: the size must be a "
                f"power of 2 of at least 4, got {resolution}"
            )
        n_strided = d_layers if d_layers is not None else patch_layers(resolution)
        check_sizes(max(1, int(math.log2(resolution)) - 2), d_layers=n_strided)
        self.l1_weight, self.adversarial_weight = l1_weight, adversarial_weight
        self.lr, self.betas = lr, tuple(betas)
        self.G = UNetGenerator(a[0], b[0], channels, resolution, dropout)
        # The L1-only baseline has no D at all: nothing to step, save or wrap.
        self.D = (
            PatchDiscriminator(a[0] + b[0], d_channels, n_strided) if adversarial_weight else None
        )
        init_dcgan_weights(self)  # the paper's N(0, 0.02) initialisation

    # ------------------------------------------------------------------ training
    def training_data(self, bundle) -> dict[str, Dataset]:
        """Pairs: item i of the inputs' train split with item i of the targets'.

        Raises:
            GankitError: the data is not paired (one domain, or two unpaired ones).
        """
        if bundle.domain_b is None or not bundle.extra.get("paired"):
            raise GankitError(
                f"model '{self.model_name}' learns from pairs; data '{bundle.name}' is not "
                "paired: use edges2digits, edges2fashion or paired:PATH (for unpaired "
                "domains, use cyclegan)"
            )
        inputs, targets = bundle.train, bundle.domain_b.train
        if isinstance(inputs, TensorDataset) and isinstance(targets, TensorDataset):
            x_a, y = inputs.tensors
            return {"": TensorDataset(torch.cat([x_a, targets.tensors[0]], dim=1), y)}
        return {"": _Pairs(inputs, targets)}

    def pairs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of a batch: ``x`` and ``x_b`` when a caller hands the pair in
        apart, else ``x`` split by channels, as :meth:`training_data` stacks it (one
        stream of data keeps each input with its target)."""
        if "x_b" in batch:
            return batch["x"], batch["x_b"]
        c_a = self.data_shape[0]
        return batch["x"][:, :c_a], batch["x"][:, c_a:]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {"G": torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)}
        if self.D is not None:
            optimizers["D"] = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=self.betas)
        return optimizers

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        x, y = self.pairs(batch)
        fake = self.G(x)
        stats: dict[str, float] = {}

        # ---- D: real pairs (x, y) against fake pairs (x, G(x)), loss halved (the paper)
        if self.D is not None:
            opt_d = self.optimizers["D"]
            opt_d.zero_grad(set_to_none=True)
            d_real = self.D(torch.cat([x, y], dim=1))
            d_fake = self.D(torch.cat([x, fake.detach()], dim=1))  # detach: D's step only
            loss_d = 0.5 * bce_d_loss(d_real, d_fake)
            self.backward(loss_d)
            self.step(opt_d)
            stats["loss_d"] = loss_d.item()

        # ---- G: fool D on every patch, and stay close to the true target in L1
        opt_g = self.optimizers["G"]
        opt_g.zero_grad(set_to_none=True)
        loss_l1 = (fake - y).abs().mean()
        loss_g = self.l1_weight * loss_l1
        if self.D is not None:
            with frozen(self.D):  # gradients pass through D to G only
                loss_gan = non_saturating_g_loss(self.D(torch.cat([x, fake], dim=1)))
            loss_g = loss_g + self.adversarial_weight * loss_gan
            stats["loss_gan"] = loss_gan.item()
        self.backward(loss_g)
        self.step(opt_g)
        stats.update(loss_g=loss_g.item(), loss_l1=loss_l1.item())
        return stats

    # ------------------------------------------------------------------ translation
    def translator(self, direction: str, net: nn.Module | None = None) -> nn.Module:
        """G (or ``net``, e.g. its EMA) for ``AtoB``, the only direction."""
        if direction not in self.directions:
            raise GankitError(
                f"direction must be AtoB (pix2pix translates one way), got '{direction}'"
            )
        return net if net is not None else self.G

    def input_shape(self, direction: str) -> tuple[int, ...]:
        """The (C, H, W) of the inputs."""
        return self.data_shape

    @torch.no_grad()
    def translate(
        self,
        images: torch.Tensor,
        direction: str = "AtoB",
        net: nn.Module | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """(N, C_A, R, R) inputs in [-1, 1] -> (N, C_B, R, R) G(x), in eval mode (no
        dropout: deterministic). Returns CPU tensors."""
        generator = self.translator(direction, net)
        with eval_mode(generator):
            chunks = images.split(batch_size)
            return torch.cat([generator(c.to(self.device)).cpu() for c in chunks])

    def round_trip(
        self, images: torch.Tensor, direction: str = "AtoB", net: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G(x), G(x)): pix2pix has no network back, so the second half of its round
        trip repeats the translation (previews and strips show it twice); scores read
        ``directions`` and compare G(x) with the true target instead of a cycle."""
        translated = self.translate(images, direction, net)
        return translated, translated

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """A translator draws nothing from noise: its inputs are images."""
        raise GankitError(
            f"model '{self.model_name}' translates images and draws no samples from noise; "
            "use: gankit translate RUN --input DIR --out DIR"
        )


# --------------------------------------------------------------------------- variants
register_model(
    "pix2pix",
    Pix2Pix,
    "pix2pix: U-Net G, conditional PatchGAN D on (x, y), L_cGAN + 100 L1 (Isola 2017)",
)
register_model(
    "pix2pix_small",
    Pix2Pix,
    "pix2pix for 16-32 px pairs on a CPU: widths 16",
    channels=16,
    d_channels=16,
)
register_model(
    "pix2pix_l1",
    Pix2Pix,
    "the pix2pix U-Net on L1 alone (adversarial weight 0): pix2pix's blurry baseline",
    channels=16,
    d_channels=16,
    adversarial_weight=0.0,
)
