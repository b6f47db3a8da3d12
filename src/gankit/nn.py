"""Shared network blocks: MLPs, DCGAN up/down stacks, SNGAN's residual G and D, norms,
spectral norm, freezing, gradient reversal, the spatial transformer and DiffAugment.

Model files import their building blocks from here so that every family builds its
networks the same way, and a family file reads as its algorithm rather than its
plumbing.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

from gankit.errors import GankitError

Norm = Literal["batch", "instance", "layer", "none"]


def norm_layer(kind: Norm, channels: int, conv: bool) -> nn.Module:
    """A normalisation layer for ``channels`` features (conv maps when ``conv``)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels) if conv else nn.BatchNorm1d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True) if conv else nn.Identity()
    if kind == "layer":
        # GroupNorm with one group normalises over (C, H, W): layer norm for conv maps.
        return nn.GroupNorm(1, channels) if conv else nn.LayerNorm(channels)
    return nn.Identity()


def activation(leaky_slope: float) -> nn.Module:
    """LeakyReLU with ``leaky_slope``, or ReLU when the slope is 0."""
    return nn.LeakyReLU(leaky_slope) if leaky_slope > 0 else nn.ReLU()


def mlp(
    in_features: int,
    hidden: int,
    n_layers: int,
    out_features: int,
    *,
    leaky_slope: float = 0.0,
    norm: Norm = "none",
    dropout: float = 0.0,
) -> nn.Sequential:
    """``n_layers`` hidden layers of width ``hidden``: (N, in) -> (N, out)."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), norm_layer(norm, hidden, conv=False)]
        layers.append(activation(leaky_slope))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def base_size(resolution: int) -> int:
    """The smallest feature map of a conv stack: 7 for 28 px (MNIST-like), else 4."""
    return 7 if resolution % 7 == 0 else 4


def n_resamplings(resolution: int) -> int:
    """How many factor-2 up- or down-samplings connect ``base_size`` and ``resolution``."""
    steps = math.log2(resolution / base_size(resolution))
    if steps < 1 or steps != int(steps):
        raise ValueError(f"resolution {resolution} is not base_size * 2^k with k >= 1")
    return int(steps)


def _same_padding(kernel_size: int) -> tuple[int, int]:
    """(padding, output_padding) so that a stride-2 (transposed) conv exactly halves
    (doubles) the size for kernel sizes 3, 4 and 5."""
    return {3: (1, 1), 4: (1, 0), 5: (2, 1)}[kernel_size]


def up_block(
    in_ch: int, out_ch: int, kernel_size: int, strided: bool, bias: bool = True
) -> nn.Module:
    """Double the spatial size: a stride-2 transposed conv, or nearest upsampling + conv."""
    if strided:
        padding, output_padding = _same_padding(kernel_size)
        return nn.ConvTranspose2d(
            in_ch, out_ch, kernel_size, 2, padding, output_padding=output_padding, bias=bias
        )
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_ch, out_ch, kernel_size, 1, padding="same", bias=bias),
    )


def down_block(
    in_ch: int, out_ch: int, kernel_size: int, strided: bool, bias: bool = True
) -> nn.Module:
    """Halve the spatial size: a stride-2 conv, or a conv + 2x2 average pooling."""
    if strided:
        return nn.Conv2d(in_ch, out_ch, kernel_size, 2, _same_padding(kernel_size)[0], bias=bias)
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, 1, padding="same", bias=bias), nn.AvgPool2d(2)
    )


class ConvDecoder(nn.Module):
    """DCGAN generator body: (N, in_features) -> (N, C, R, R).

    A linear layer projects the input to ``(width * 2^(k-1), b, b)`` with ``b`` the
    base size (4, or 7 for 28 px); ``k`` up-blocks then double the size and halve
    the width, the last one mapping to ``channels``.
    """

    def __init__(
        self,
        in_features: int,
        channels: int,
        resolution: int,
        width: int = 64,
        *,
        kernel_size: int = 4,
        strided: bool = True,
        norm: Norm = "batch",
        leaky_slope: float = 0.0,
        output: Literal["tanh", "sigmoid", "none"] = "tanh",
    ) -> None:
        super().__init__()
        n_up = n_resamplings(resolution)
        size = base_size(resolution)
        widths = [width * 2 ** (n_up - 1 - i) for i in range(n_up)] + [channels]
        self.project = nn.Sequential(
            nn.Linear(in_features, widths[0] * size * size),
            nn.Unflatten(1, (widths[0], size, size)),
            norm_layer(norm, widths[0], conv=True),
            activation(leaky_slope),
        )
        blocks: list[nn.Module] = []
        for i in range(n_up):
            last = i == n_up - 1
            blocks.append(up_block(widths[i], widths[i + 1], kernel_size, strided))
            if not last:
                blocks += [norm_layer(norm, widths[i + 1], conv=True), activation(leaky_slope)]
        out = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[output]
        self.blocks = nn.Sequential(*blocks, out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(z))


class ConvEncoder(nn.Module):
    """DCGAN discriminator trunk: (N, C, R, R) -> (N, out_features) flat features.

    ``k`` down-blocks halve the size and double the width down to the base size; the
    first block has no normalisation (as in DCGAN). Heads (a logit, class logits,
    InfoGAN's Q, a VAE's mean and log-variance) go on top of ``out_features``.
    ``minibatch_std`` > 0 adds a :class:`MinibatchStd` map over groups of that size.
    """

    def __init__(
        self,
        channels: int,
        resolution: int,
        width: int = 64,
        *,
        kernel_size: int = 4,
        strided: bool = True,
        norm: Norm = "batch",
        leaky_slope: float = 0.2,
        dropout: float = 0.0,
        minibatch_std: int = 0,
    ) -> None:
        super().__init__()
        n_down = n_resamplings(resolution)
        widths = [channels] + [width * 2**i for i in range(n_down)]
        layers: list[nn.Module] = []
        for i in range(n_down):
            layers.append(down_block(widths[i], widths[i + 1], kernel_size, strided))
            if i > 0:
                layers.append(norm_layer(norm, widths[i + 1], conv=True))
            layers.append(activation(leaky_slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))
        layers.append(nn.Flatten())
        self.layers = nn.Sequential(*layers)
        self.out_features = (widths[-1] + bool(minibatch_std)) * base_size(resolution) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN): (N, C, H, W) ->
    (N, C + 1, H, W), the extra map holding, for each group of ``group_size`` samples,
    the standard deviation across the group averaged over channels and positions.

    D then sees how varied the samples it judges are, so a generator that makes too
    few kinds of sample is told apart from the data. Groups have g = gcd(N,
    ``group_size``) samples, sample i in group ``i mod (N / g)`` (a lone sample's map
    is 0). Written here because torch has no such layer.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        g = math.gcd(n, self.group_size)
        groups = x.reshape(g, n // g, *x.shape[1:])
        spread = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
        per_sample = spread.repeat(g).reshape(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, per_sample.to(x.dtype)], dim=1)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap every Linear and Conv weight in ``module`` with spectral normalisation.

    Spectral norm (Miyato et al. 2018) divides each weight by its largest singular
    value, estimated by one power iteration per forward pass, which bounds each
    layer's Lipschitz constant by 1.
    """
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            apply_spectral_norm(child)
    return module


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode for the block, then restore each one's own mode.

    Pictures, metrics and previews run networks this way: batch norm must use its
    running statistics and must not update them, and dropout must be off, or looking at
    a model would change it.
    """
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Within the block, ``module`` computes no parameter gradients.

    Used in the generator step: gradients flow *through* D to G, but D's own
    parameters need none, which saves the work of computing them. Under DDP it also
    enters D's ``no_sync()``: D's reducer must not wait for gradients that this
    backward will never produce.
    """
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    no_sync = module.no_sync() if hasattr(module, "no_sync") else contextlib.nullcontext()
    try:
        with no_sync:
            yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, NORM_TYPES) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# ----------------------------------------------------------------- generic G and D bodies
# The GAN, conditional, InfoGAN and VAE families build "a generator for this data", "a
# feature trunk for this data" and "a critic for this data" the same way: conv stacks
# for images, MLPs for points (and, for the GAN family, SNGAN's ResNets).

Arch = Literal["auto", "mlp", "conv"]
#: The GAN family's architectures: :data:`Arch`, SNGAN's ResNets and R3GAN's.
GanArch = Literal["auto", "mlp", "conv", "resnet", "r3gan"]
BuiltArch = Literal["mlp", "conv", "resnet", "r3gan"]


def resolve_arch(arch: GanArch, data_shape: tuple[int, ...]) -> BuiltArch:
    """``auto`` -> conv for (C, H, W) images, mlp for points; an image arch (conv,
    resnet, r3gan) on points is an error, and so is r3gan at a size it cannot build."""
    is_image = len(data_shape) == 3
    if arch == "auto":
        return "conv" if is_image else "mlp"
    if arch == "r3gan" and is_image:
        r3gan_stages(data_shape)
    if arch != "mlp" and not is_image:
        raise GankitError(
            f"model: arch '{arch}' needs (C, H, W) images, data is {tuple(data_shape)}"
        )
    return arch


def generator_net(
    in_features: int,
    data_shape: tuple[int, ...],
    *,
    arch: BuiltArch,
    width: int = 64,
    hidden_dim: int = 256,
    n_layers: int = 3,
    kernel_size: int = 4,
    strided: bool = True,
    norm: Norm = "batch",
    leaky_slope: float = 0.0,
    output: Literal["tanh", "sigmoid", "none"] = "tanh",
    blocks_per_stage: int = 2,
    group_width: int = 16,
) -> nn.Module:
    """(N, in_features) -> (N, *data_shape): a DCGAN decoder, SNGAN's ResNet generator
    (``width`` channels in every block; ``kernel_size`` and ``strided`` are for conv),
    R3GAN's generator (``width``, ``blocks_per_stage``, ``group_width``; no norm), or an
    MLP for points. ``leaky_slope`` > 0 puts LeakyReLU in conv and mlp generators."""
    if arch == "r3gan":
        return R3Generator(
            in_features, data_shape, width, blocks_per_stage, group_width, output=output
        )
    if arch == "resnet":
        channels, resolution = data_shape[0], data_shape[-1]
        return ResNetGenerator(in_features, channels, resolution, width, norm=norm, output=output)
    if arch == "conv":
        channels, resolution = data_shape[0], data_shape[-1]
        return ConvDecoder(
            in_features,
            channels,
            resolution,
            width,
            kernel_size=kernel_size,
            strided=strided,
            norm=norm,
            leaky_slope=leaky_slope,
            output=output,
        )
    out = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[output]
    body = mlp(
        in_features, hidden_dim, n_layers, math.prod(data_shape), norm=norm, leaky_slope=leaky_slope
    )
    return nn.Sequential(body, out, nn.Unflatten(1, tuple(data_shape)))


class MLPTrunk(nn.Module):
    """(N, ...) -> (N, hidden) features: ``n_layers`` hidden layers on the flattened input."""

    def __init__(
        self,
        in_features: int,
        hidden: int,
        n_layers: int,
        *,
        leaky_slope: float = 0.2,
        norm: Norm = "none",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), norm_layer(norm, hidden, conv=False)]
            layers.append(activation(leaky_slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.layers = nn.Sequential(*layers)
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def feature_trunk(
    data_shape: tuple[int, ...],
    *,
    arch: Literal["mlp", "conv"],
    extra_channels: int = 0,
    width: int = 64,
    hidden_dim: int = 256,
    n_layers: int = 3,
    kernel_size: int = 4,
    strided: bool = True,
    norm: Norm = "batch",
    leaky_slope: float = 0.2,
    dropout: float = 0.0,
    minibatch_std: int = 0,
) -> ConvEncoder | MLPTrunk:
    """A discriminator or encoder trunk with ``.out_features``; heads go on top.

    ``extra_channels`` widens the input: label maps concatenated to images (channels),
    or one-hot labels concatenated to points (features). ``minibatch_std`` (images only)
    adds a :class:`MinibatchStd` map at the end.
    """
    if arch == "conv":
        return ConvEncoder(
            data_shape[0] + extra_channels,
            data_shape[-1],
            width,
            kernel_size=kernel_size,
            strided=strided,
            norm=norm,
            leaky_slope=leaky_slope,
            dropout=dropout,
            minibatch_std=minibatch_std,
        )
    if minibatch_std:
        raise GankitError("model: minibatch_std needs images (arch conv); set it to 0 for points")
    return MLPTrunk(
        math.prod(data_shape) + extra_channels,
        hidden_dim,
        n_layers,
        leaky_slope=leaky_slope,
        norm=norm,
        dropout=dropout,
    )


def critic_net(
    data_shape: tuple[int, ...],
    *,
    arch: BuiltArch,
    width: int = 64,
    hidden_dim: int = 256,
    n_layers: int = 3,
    kernel_size: int = 4,
    strided: bool = True,
    norm: Norm = "batch",
    leaky_slope: float = 0.2,
    dropout: float = 0.0,
    blocks_per_stage: int = 2,
    group_width: int = 16,
) -> nn.Module:
    """(N, *data_shape) -> (N, 1) scores: a DCGAN trunk with a linear head, SNGAN's
    ResNet discriminator (``width`` channels in every block; no ``kernel_size``,
    ``strided``, ``leaky_slope`` or ``dropout``), R3GAN's discriminator (as its
    generator), or an MLP on the flattened input."""
    if arch == "r3gan":
        return R3Discriminator(data_shape, width, blocks_per_stage, group_width)
    if arch == "resnet":
        return ResNetDiscriminator(data_shape[0], data_shape[-1], width, norm=norm)
    if arch == "conv":
        trunk = feature_trunk(
            data_shape,
            arch="conv",
            width=width,
            kernel_size=kernel_size,
            strided=strided,
            norm=norm,
            leaky_slope=leaky_slope,
            dropout=dropout,
        )
        return nn.Sequential(trunk, nn.Linear(trunk.out_features, 1))
    # One mlp whose last layer is the head, not MLPTrunk + head: the parameter names
    # (``1.0.weight``, ...) are those that GAN checkpoints have always carried.
    body = mlp(
        math.prod(data_shape),
        hidden_dim,
        n_layers,
        1,
        leaky_slope=leaky_slope,
        norm=norm,
        dropout=dropout,
    )
    return nn.Sequential(nn.Flatten(), body)


# ----------------------------------------------------------------- gradient reversal
class _GradientReversal(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``-weight``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def grad_reverse(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """The gradient reversal layer of DANN (Ganin & Lempitsky 2015): ``R(x) = x`` going
    forward, ``dR/dx = −λ I`` going back. Whatever minimises a loss after it, the layers
    before it are pushed to maximise: one backward pass trains the domain classifier to
    tell the domains apart and the features to make that impossible."""
    return _GradientReversal.apply(x, weight)


# ----------------------------------------------------------------- spatial transformer
#: θ of the identity map, row by row: ``[[1, 0, 0], [0, 1, 0]]``.
IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class SpatialTransformer(nn.Module):
    r"""(N, C, H, W) -> (N, C, H, W): the image resampled through a predicted affine map
    (Jaderberg et al. 2015).

    A small localisation network reads the image and gives θ = f_loc(x) ∈ R^{2×3}; each
    target pixel (x_t, y_t), in coordinates normalised to [-1, 1], reads the input at
    ``(x_s, y_s)ᵀ = θ (x_t, y_t, 1)ᵀ`` by bilinear sampling,
    ``V(x_t, y_t) = Σ_{n,m} U_{nm} max(0, 1 − |x_s − m|) max(0, 1 − |y_s − n|)``
    (``F.affine_grid`` then ``F.grid_sample``). Everything is differentiable, so θ is
    learned from the loss of whatever follows (a classifier's cross-entropy).

    θ starts at the identity (the last layer's weights are zero, its bias the identity),
    so an untrained transformer passes the image through exactly.

    Args:
        channels: C of the images.
        width: channels of the localisation network's first conv layer (the second has
            twice as many).
        hidden: width of its fully connected layer.
        padding: what is sampled outside the image: ``border`` repeats the edge (a
            digit's background), ``zeros`` reads 0.
    """

    def __init__(
        self, channels: int, *, width: int = 8, hidden: int = 32, padding: str = "border"
    ) -> None:
        super().__init__()
        self.padding = padding
        self.localisation = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(8 * width, hidden), nn.ReLU(),
        )  # fmt: skip
        self.theta = nn.Linear(hidden, 6)
        # start at the identity: what follows first sees the image as it is
        nn.init.zeros_(self.theta.weight)
        with torch.no_grad():
            self.theta.bias.copy_(torch.tensor(IDENTITY_THETA))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> θ (N, 2, 3), mapping output coordinates to input ones."""
        return self.theta(self.localisation(x)).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resample(x, self.transform(x), self.padding)


def resample(x: torch.Tensor, theta: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """(N, C, H, W) images read through θ (N, 2, 3) (output coordinates -> input ones,
    normalised to [-1, 1]) by bilinear sampling; ``padding`` is what lies outside."""
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, padding_mode=padding, align_corners=False)


# ----------------------------------------------------------------- DiffAugment
# Differentiable Augmentation (Zhao et al. 2020): D sees every image, real or generated,
# through the same random transformations T, in D's loss and in G's, so D cannot
# memorise a small training set and G's gradient passes back through T. Each transform
# is a differentiable function of the image: arithmetic on pixel values, indexing, or a
# multiplication by a mask. Each image draws its own parameters from torch's random
# generator, so a seeded run draws the same augmentations again.


def _per_sample(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(N, 1, 1, 1) values drawn uniformly from [low, high), one per image of ``x``."""
    draw = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)
    return low + (high - low) * draw


def augment_color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (add U[-0.5, 0.5)), saturation (scale each pixel's distance to
    its channel mean by U[0, 2)) and contrast (scale each value's distance to the image
    mean by U[0.5, 1.5)), each drawn per image. (N, C, H, W) -> (N, C, H, W)."""
    x = x + _per_sample(x, -0.5, 0.5)
    channel_mean = x.mean(dim=1, keepdim=True)
    x = (x - channel_mean) * _per_sample(x, 0.0, 2.0) + channel_mean
    image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - image_mean) * _per_sample(x, 0.5, 1.5) + image_mean


def augment_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its size in each direction,
    filling the uncovered border with zeros. (N, C, H, W) -> (N, C, H, W)."""
    n, _, height, width = x.shape
    max_dy, max_dx = round(height * ratio), round(width * ratio)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
    # Output pixel (i, j) reads input pixel (i - dy, j - dx) of the zero-padded image:
    # indexing keeps the gradient to every pixel that stays in view.
    padded = nn.functional.pad(x, (max_dx, max_dx, max_dy, max_dy))
    rows = torch.arange(height, device=x.device).view(1, height, 1) - dy + max_dy
    cols = torch.arange(width, device=x.device).view(1, 1, width) - dx + max_dx
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def augment_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` times the image's size at a random place in each image
    (its centre anywhere in the image, so it may be cut by the border).
    (N, C, H, W) -> (N, C, H, W)."""
    n, _, height, width = x.shape
    size_y, size_x = round(height * ratio), round(width * ratio)
    top = torch.randint(0, height, (n, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, width, (n, 1, 1), device=x.device) - size_x // 2
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


#: DiffAugment's policies by name, applied in the order a policy string lists them.
DIFFAUGMENT_POLICIES = {
    "color": augment_color,
    "translation": augment_translation,
    "cutout": augment_cutout,
}


def parse_diffaugment(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; ``""`` -> ``()`` (off).

    Raises:
        ValueError: naming an unknown policy and the valid ones.
    """
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    for name in names:
        if name not in DIFFAUGMENT_POLICIES:
            raise ValueError(
                f"unknown DiffAugment policy '{name}'; valid: {', '.join(DIFFAUGMENT_POLICIES)}"
            )
    return names


def diff_augment(x: torch.Tensor, policies: tuple[str, ...]) -> torch.Tensor:
    """DiffAugment T(x): the ``policies`` applied in order to (N, C, H, W) images, with
    fresh random parameters per image on every call; ``()`` returns ``x`` itself."""
    for name in policies:
        x = DIFFAUGMENT_POLICIES[name](x)
    return x


# ----------------------------------------------------------------- SNGAN ResNets
# The residual generator and discriminator of SNGAN's CIFAR-10 experiments (Miyato et
# al. 2018, appendix B), after the ResNets of WGAN-GP (Gulrajani et al. 2017).


def _xavier(module: nn.Conv2d | nn.Linear, gain: float = 1.0) -> nn.Module:
    """Glorot-uniform weights and zero biases, as in the SNGAN ResNets: gain sqrt(2) on
    the convolutions inside a residual branch (each is followed by a ReLU), 1 elsewhere."""
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


class ResBlock(nn.Module):
    """A residual block, ``y = shortcut(x) + branch(x)``: (N, in_ch, H, W) -> (N, out_ch, H', W').

    The branch is ``norm -> ReLU -> [up] -> conv3x3 -> norm -> ReLU -> conv3x3 -> [down]``,
    with 2x nearest-neighbour upsampling (``resample="up"``, G's blocks) or 2x2 average
    pooling (``"down"``, D's blocks). The shortcut is the identity when the block keeps
    the shape, else a 1x1 conv with the same resampling. ``first=True`` makes SNGAN's
    "optimized" first block of D: no norm and ReLU before the first conv (the input is
    an image, not features), and the shortcut pools before its 1x1 conv.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        resample: Literal["up", "down", "none"] = "none",
        *,
        norm: Norm = "none",
        first: bool = False,
    ) -> None:
        super().__init__()
        gain = math.sqrt(2.0)
        branch: list[nn.Module] = [] if first else [norm_layer(norm, in_ch, True), nn.ReLU()]
        if resample == "up":
            branch.append(nn.Upsample(scale_factor=2, mode="nearest"))
        branch += [
            _xavier(nn.Conv2d(in_ch, out_ch, 3, padding=1), gain),
            norm_layer(norm, out_ch, True),
            nn.ReLU(),
            _xavier(nn.Conv2d(out_ch, out_ch, 3, padding=1), gain),
        ]
        if resample == "down":
            branch.append(nn.AvgPool2d(2))
        self.branch = nn.Sequential(*branch)
        shortcut: list[nn.Module] = []
        if in_ch != out_ch or resample != "none":
            conv = _xavier(nn.Conv2d(in_ch, out_ch, 1))
            if resample == "up":
                shortcut = [nn.Upsample(scale_factor=2, mode="nearest"), conv]
            elif resample == "down":
                # Pooling first costs 4x less, and equals conv-then-pool (both linear).
                shortcut = [nn.AvgPool2d(2), conv]
            else:
                shortcut = [conv]
        self.shortcut = nn.Sequential(*shortcut)  # empty Sequential: the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)


class ResNetGenerator(nn.Module):
    """SNGAN's ResNet generator: (N, in_features) -> (N, C, R, R).

    ``z -> linear -> (width, b, b) -> k x ResBlock(up) -> norm -> ReLU -> conv3x3 -> tanh``,
    with ``b`` the base size (4, or 7 for 28 px) and ``k = log2(R / b)`` blocks of
    ``width`` channels: 3 blocks of 256 for CIFAR-10's 32 px, 4 for 64 px, 5 for 128 px.
    """

    def __init__(
        self,
        in_features: int,
        channels: int,
        resolution: int,
        width: int = 256,
        *,
        norm: Norm = "batch",
        output: Literal["tanh", "sigmoid", "none"] = "tanh",
    ) -> None:
        super().__init__()
        size = base_size(resolution)
        self.project = nn.Sequential(
            _xavier(nn.Linear(in_features, width * size * size)),
            nn.Unflatten(1, (width, size, size)),
        )
        blocks = [ResBlock(width, width, "up", norm=norm) for _ in range(n_resamplings(resolution))]
        out = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[output]
        self.blocks = nn.Sequential(
            *blocks,
            norm_layer(norm, width, conv=True),
            nn.ReLU(),
            _xavier(nn.Conv2d(width, channels, 3, padding=1)),
            out,
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(z))


class ResNetDiscriminator(nn.Module):
    """SNGAN's ResNet discriminator: (N, C, R, R) -> (N, 1) scores.

    ``x -> ResBlock(down, first) -> (k - 1) x ResBlock(down) -> 2 x ResBlock -> ReLU ->
    sum over H, W -> linear``, all blocks ``width`` channels wide, with ``k`` down-blocks
    taking R to twice the base size (at least one): for CIFAR-10's 32 px, two down-blocks
    to 8x8 then two that keep 8x8, as in the paper's appendix; one more down-block per
    doubling of R. Global *sum* pooling (not mean) follows the paper: D's score grows
    with the amount of evidence in the image.
    """

    def __init__(
        self, channels: int, resolution: int, width: int = 128, *, norm: Norm = "none"
    ) -> None:
        super().__init__()
        n_down = max(1, n_resamplings(resolution) - 1)
        blocks = [ResBlock(channels, width, "down", norm=norm, first=True)]
        blocks += [ResBlock(width, width, "down", norm=norm) for _ in range(n_down - 1)]
        blocks += [ResBlock(width, width, norm=norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks, nn.ReLU())
        self.head = _xavier(nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x).sum(dim=(2, 3)))


# ----------------------------------------------------------------- R3GAN
# The modern baseline of Huang et al. 2024 ("The GAN is dead; long live the GAN!"): a
# ResNet with no normalisation at all, whose blocks are inverted bottlenecks with a
# grouped 3x3 convolution (after ConvNeXt/ResNeXt), each residual branch initialised to
# output zero (fix-up), and up/down-sampling by a fixed bilinear filter instead of
# transposed or strided convolutions.

#: R3GAN's blocks widen to this many times their width inside the bottleneck.
R3GAN_EXPANSION = 2
#: LeakyReLU's slope in R3GAN, and the gain that keeps its output's variance that of its
#: input under He initialisation: sqrt(2 / (1 + slope^2)).
R3GAN_SLOPE = 0.2
R3GAN_GAIN = math.sqrt(2.0 / (1.0 + R3GAN_SLOPE**2))


def r3gan_stages(data_shape: tuple[int, ...]) -> int:
    """How many stages an R3GAN network has at ``data_shape`` (C, R, R): R = b * 2^(k-1)
    for the base size b (4, or 7 for 28-px-like sizes) gives k stages.

    Raises:
        GankitError: a non-square image, or a size that is not 4 * 2^j or 7 * 2^j.
    """
    height, width = data_shape[-2:]
    size = base_size(height)
    steps = math.log2(height / size) if height >= size else -1.0
    if height != width or steps < 0 or steps != int(steps):
        raise GankitError(
            f"model: arch 'r3gan' builds square images of 4 * 2^k or 7 * 2^k pixels "
            f"(4, 7, 8, 14, 16, 28, 32, 64, ...); the data is {height}x{width}"
        )
    return int(steps) + 1


def _he_init(layer: nn.Conv2d | nn.Linear, gain: float) -> nn.Module:
    """Weights ~ N(0, gain^2 / fan_in), zero biases; a gain of 0 zeroes the weights."""
    fan_in = layer.weight[0].numel()
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class BilinearResample(nn.Module):
    """Double (``"up"``) or halve (``"down"``) (N, C, H, W) maps with the bilinear filter
    ``[1, 3, 3, 1] / 8`` in each direction, as one depthwise (transposed) convolution.

    A fixed low-pass filter resamples without the aliasing of nearest-neighbour upsampling
    or strided convolutions. It is linear, so R1/R2's double backward goes through it.
    """

    def __init__(self, direction: Literal["up", "down"]) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8.0
        # Upsampling spreads each input over 4 outputs, so its filter sums to 4, not 1.
        scale = 4.0 if direction == "up" else 1.0
        self.register_buffer("kernel", scale * torch.outer(taps, taps)[None, None], False)
        self.direction = direction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel.to(x.dtype).expand(x.shape[1], 1, 4, 4)
        if self.direction == "up":
            return nn.functional.conv_transpose2d(x, kernel, stride=2, padding=1, groups=x.shape[1])
        return nn.functional.conv2d(x, kernel, stride=2, padding=1, groups=x.shape[1])


class R3Block(nn.Module):
    """An inverted bottleneck, ``y = x + W3 a(W2 a(W1 x))``: (N, C, H, W) -> same shape.

    ``W1`` widens 1x1 to ``2C``, ``W2`` is a grouped 3x3 conv (groups of ``group_width``
    channels), ``W3`` narrows 1x1 back to C; ``a`` is LeakyReLU(0.2) after a bias.
    Fix-up initialisation (Zhang et al. 2019, as R3GAN does it): ``W3`` starts at zero,
    so every block starts as the identity, and ``W1``, ``W2`` are He-initialised scaled
    by ``L^(-1/4)`` for L blocks in the network (``L^(-1/(2m-2))`` with m = 3 layers per
    branch), so the sum of L branches keeps its variance bounded once ``W3`` grows.
    """

    def __init__(self, channels: int, group_width: int, n_blocks: int) -> None:
        super().__init__()
        wide = channels * R3GAN_EXPANSION
        gain = R3GAN_GAIN * n_blocks ** (-1 / 4)
        self.branch = nn.Sequential(
            _he_init(nn.Conv2d(channels, wide, 1), gain),
            nn.LeakyReLU(R3GAN_SLOPE),
            _he_init(nn.Conv2d(wide, wide, 3, padding=1, groups=wide // group_width), gain),
            nn.LeakyReLU(R3GAN_SLOPE),
            _he_init(nn.Conv2d(wide, channels, 1, bias=False), 0.0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def _r3_stage(width: int, blocks: int, group_width: int, n_blocks: int) -> list[nn.Module]:
    return [R3Block(width, group_width, n_blocks) for _ in range(blocks)]


class R3Generator(nn.Module):
    """R3GAN's generator: (N, in_features) -> (N, C, R, R).

    ``z -> linear -> (width,) * learned (width, b, b) basis -> blocks -> k - 1 times
    [bilinear up x2 -> blocks] -> 1x1 conv -> output``, ``blocks_per_stage`` blocks of
    ``width`` channels per stage (:func:`r3gan_stages` stages). No normalisation layer
    anywhere: the fix-up initialisation keeps the signal's scale instead.
    """

    def __init__(
        self,
        in_features: int,
        data_shape: tuple[int, ...],
        width: int,
        blocks_per_stage: int,
        group_width: int,
        *,
        output: Literal["tanh", "sigmoid", "none"] = "tanh",
    ) -> None:
        super().__init__()
        n_stages, size = r3gan_stages(data_shape), base_size(data_shape[-1])
        n_blocks = n_stages * blocks_per_stage
        self.project = _he_init(nn.Linear(in_features, width, bias=False), 1.0)
        self.basis = nn.Parameter(torch.randn(width, size, size))
        layers = _r3_stage(width, blocks_per_stage, group_width, n_blocks)
        for _ in range(n_stages - 1):
            layers.append(BilinearResample("up"))
            layers += _r3_stage(width, blocks_per_stage, group_width, n_blocks)
        out = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[output]
        to_image = _he_init(nn.Conv2d(width, data_shape[0], 1), 1.0)
        self.blocks = nn.Sequential(*layers, to_image, out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.basis * self.project(z)[:, :, None, None])


class R3Discriminator(nn.Module):
    """R3GAN's discriminator: (N, C, R, R) -> (N, 1) scores, the generator mirrored.

    ``x -> 1x1 conv -> k - 1 times [blocks -> bilinear down x2] -> blocks -> depthwise
    b x b conv (a learned basis per channel) -> linear``.
    """

    def __init__(
        self, data_shape: tuple[int, ...], width: int, blocks_per_stage: int, group_width: int
    ) -> None:
        super().__init__()
        n_stages, size = r3gan_stages(data_shape), base_size(data_shape[-1])
        n_blocks = n_stages * blocks_per_stage
        layers: list[nn.Module] = [_he_init(nn.Conv2d(data_shape[0], width, 1), 1.0)]
        for _ in range(n_stages - 1):
            layers += _r3_stage(width, blocks_per_stage, group_width, n_blocks)
            layers.append(BilinearResample("down"))
        layers += _r3_stage(width, blocks_per_stage, group_width, n_blocks)
        basis = nn.Conv2d(width, width, size, groups=width, bias=False)
        self.blocks = nn.Sequential(*layers, _he_init(basis, 1.0), nn.Flatten())
        self.head = _he_init(nn.Linear(width, 1, bias=False), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


# --------------------------------------------------------------------------- threads
@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (None: unchanged), then restore
    the caller's count: a library call leaves it as it found it."""
    caller = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(caller)
