"""Neural style transfer (Gatys, Ecker and Bethge 2016; Chollet, *Deep Learning with
Python*, 8.3): optimise the pixels of an image x so that a convnet sees the content of
one picture c and the style of another, s.

With F^l(x) the activations of layer l, reshaped to (C_l, H_l W_l)::

    G^l(x)     = F^l(x) F^l(x)^T / (C_l H_l W_l)                 (Gram matrix)
    L_content  = mean (F^L(x) - F^L(c))^2                         (one top layer L)
    L_style    = sum_l w_l ||G^l(x) - G^l(s)||_F^2                 (several layers, w_l = 1 / n)
    L_tv       = mean |x_{i+1,j} - x_{i,j}| + mean |x_{i,j+1} - x_{i,j}|
    L          = content_weight L_content + style_weight L_style + tv_weight L_tv

x starts as the content picture and is optimised with L-BFGS (strong-Wolfe line
search) or Adam. The Gram matrix forgets where a feature fires and keeps which features
fire together: that is the "style".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gankit.errors import GankitError, check_int, choices
from gankit.nn import torch_threads
from gankit.vision.common import check_inception_size, check_positive, network_input

DEFAULT_CONTENT_LAYER = "mixed_5"
DEFAULT_STYLE_LAYERS = ("conv_1", "conv_4", "mixed", "mixed_2", "mixed_4")
OPTIMIZERS = ("lbfgs", "adam")


def gram(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices F F^T / (C H W)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of (N, C, H, W)."""
    down = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    right = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    return down + right


@dataclass
class StyleLosses:
    """The three terms of the loss for one image, unweighted."""

    content: float
    style: float
    tv: float


@dataclass
class Stylised:
    """The result (1, 3, H, W) in [-1, 1], its losses at the start and at the end, and the
    content loss of the style picture itself (how far a picture of other content is)."""

    image: torch.Tensor
    start: StyleLosses
    end: StyleLosses
    style_picture_content: float

    def summary(self) -> list[str]:
        """Each loss at the start and at the end; the content loss next to the style
        picture's own, the distance of a picture of other content."""
        start, end, other = self.start, self.end, self.style_picture_content
        return [
            f"style loss   {start.style:.4g} -> {end.style:.4g} "
            f"({start.style / max(end.style, 1e-30):.1f}x lower)",
            f"content loss {start.content:.4g} -> {end.content:.4g} "
            f"(the style picture's own: {other:.4g}; ratio {end.content / other:.2f})",
            f"tv loss      {start.tv:.4g} -> {end.tv:.4g}",
        ]


class StyleLoss:
    """The losses of an image against fixed content and style targets."""

    def __init__(
        self, net, content: torch.Tensor, style: torch.Tensor, content_layer: str, style_layers
    ) -> None:
        self.net, self.content_layer, self.style_layers = net, content_layer, list(style_layers)
        self.names = list(dict.fromkeys([content_layer, *self.style_layers]))
        with torch.no_grad():
            self.content_target = self._features(content)[content_layer]
            style_features = self._features(style)
            self.style_targets = {n: gram(style_features[n]) for n in self.style_layers}

    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net.activations(network_input(image), self.names)

    def terms(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(L_content, L_style, L_tv) of ``image``, with gradients."""
        features = self._features(image)
        content = (features[self.content_layer] - self.content_target).pow(2).mean()
        style = sum(
            (gram(features[n]) - self.style_targets[n]).pow(2).sum() for n in self.style_layers
        ) / len(self.style_layers)
        return content, style, total_variation(image)

    def losses(self, image: torch.Tensor) -> StyleLosses:
        with torch.no_grad():
            return StyleLosses(*(float(t) for t in self.terms(image)))


def check_style(
    steps: int, content_weight: float, style_weight: float, tv_weight: float, optimizer: str
) -> None:
    check_int("--steps", steps, 1)
    check_positive("--content-weight", content_weight)
    check_positive("--style-weight", style_weight)
    if tv_weight != 0:
        check_positive("--tv-weight", tv_weight)
    if optimizer not in OPTIMIZERS:
        raise GankitError(f"unknown --optimizer '{optimizer}'; valid: {choices(OPTIMIZERS)}")


def transfer(
    net,
    content: torch.Tensor,
    style: torch.Tensor,
    content_layer: str = DEFAULT_CONTENT_LAYER,
    style_layers=DEFAULT_STYLE_LAYERS,
    content_weight: float = 1.0,
    style_weight: float = 30.0,
    tv_weight: float = 0.5,
    steps: int = 150,
    optimizer: str = "adam",
    lr: float = 0.1,
    progress: Callable[[int], None] | None = None,
) -> Stylised:
    """Paint ``content`` (1, 3, H, W) in the style of ``style`` (1, 3, H', W'), both in
    [-1, 1] and at least 75 px on each side.

    Args:
        steps: L-BFGS iterations (each with a line search) or Adam steps.
        lr: Adam's learning rate (L-BFGS uses 1 with its line search).

    Raises:
        GankitError: an unknown layer, a non-positive weight or step count, a picture
            smaller than the network reads.
    """
    check_style(steps, content_weight, style_weight, tv_weight, optimizer)
    net.check_layers([content_layer, *style_layers])
    if not style_layers:
        raise GankitError("--style-layers is empty; give comma-separated layer names")
    check_inception_size("the content picture", *content.shape[-2:])
    check_inception_size("the style picture", *style.shape[-2:])
    with torch_threads(1):  # see gankit.vision.dream: one thread is far faster here
        loss = StyleLoss(net, content, style, content_layer, style_layers)
        start = loss.losses(content)
        style_picture_content = loss.losses(resized_like(style, content)).content
        image = content.detach().clone().requires_grad_(True)

        def objective() -> torch.Tensor:
            c, s, tv = loss.terms(image)
            return content_weight * c + style_weight * s + tv_weight * tv

        if optimizer == "lbfgs":
            opt = torch.optim.LBFGS([image], lr=1, max_iter=1, line_search_fn="strong_wolfe")
        else:
            opt = torch.optim.Adam([image], lr=lr)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            value = objective()
            value.backward()
            return value

        for _ in range(steps):
            opt.step(closure)
            with torch.no_grad():
                image.clamp_(-1, 1)
            if progress is not None:
                progress(1)
        result = image.detach()
        end = loss.losses(result)
    return Stylised(result, start, end, style_picture_content)


def resized_like(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    from gankit.vision.common import resize

    return resize(image, tuple(like.shape[-2:]))


def style_file(
    content_source: str | None,
    style_source: str | None,
    out,
    *,
    size: int = 256,
    figure=None,
    overwrite: bool = False,
    progress: bool = True,
    **settings,
) -> Stylised:
    """Read the two pictures (None: scikit-learn's ``china.jpg`` and ``flower.jpg``),
    transfer the style, write ``out`` (a PNG) and, if given, ``figure`` (content | style |
    result, labelled). ``settings`` are those of :func:`transfer` (``style_layers`` as a
    list or comma-separated)."""
    from tqdm.auto import tqdm

    from gankit.backbones import inception_v3
    from gankit.explore.pictures import writing
    from gankit.vision.common import (
        check_output,
        check_positive,
        parse_layers,
        read_picture,
        save_panels,
        save_png,
    )

    if "lr" in settings:
        check_positive("--lr", settings["lr"])
    if "style_layers" in settings:
        settings["style_layers"] = parse_layers(settings["style_layers"], "--style-layers")
    check_int("--size", size, 1)
    steps = settings.get("steps", 150)
    check_style(
        steps,
        settings.get("content_weight", 1.0),
        settings.get("style_weight", 30.0),
        settings.get("tv_weight", 0.5),
        settings.get("optimizer", "adam"),
    )
    sources = [content_source, style_source]
    check_output(out, overwrite, inputs=sources)
    if figure is not None:
        check_output(figure, overwrite, "--figure", inputs=sources)
    content = read_picture(content_source, size, "china.jpg")
    style = read_picture(style_source, size, "flower.jpg")
    net = inception_v3()
    with tqdm(total=steps, desc="style", unit="step", disable=not progress) as bar:
        result = transfer(net, content, style, progress=bar.update, **settings)
    with writing(out):
        save_png(out, result.image[0])
    if figure is not None:
        title = (
            f"style transfer, {steps} {settings.get('optimizer', 'lbfgs')} steps: style loss "
            f"{result.start.style:.3g} -> {result.end.style:.3g}, "
            f"content loss 0 -> {result.end.content:.3g}"
        )
        panels = [
            (f"content: {content_source or 'sample:china.jpg'}", content[0]),
            (f"style: {style_source or 'sample:flower.jpg'}", style[0]),
            ("result", result.image[0]),
        ]
        with writing(figure, "--figure"):
            save_panels(figure, panels, title)
    return result
