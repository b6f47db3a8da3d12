"""DeepDream (Mordvintsev, Olah and Tyka 2015; Chollet, *Deep Learning with Python*, 8.2):
gradient ascent on the pixels of an image to make chosen layers of a convnet fire harder.

Objective, for layers l with activations A^l(x) of shape (C_l, H_l, W_l)::

    L(x) = sum_l  mean_{c,i,j} A^l_{c,i,j}(x)^2          (objective "mean_square")
    L(x) = sum_l  ||A^l(x)||_2 / sqrt(C_l H_l W_l)        (objective "l2")

Each step moves the image along its normalised gradient,
``x <- x + step_size * g / mean(|g|)``, ``g = dL/dx``.

Octaves: the image is dreamed at ``octaves`` scales, smallest first, each
``octave_scale`` times the last. Between scales the dream is upscaled, and the detail
that upscaling lost is put back: ``x <- x + (resize(original, s) - resize(resize(original,
s_prev), s))``, so the final picture keeps the photo's sharp edges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gankit.errors import GankitError, check_int, choices
from gankit.nn import torch_threads
from gankit.vision.common import (
    check_inception_size,
    check_positive,
    network_input,
    resize,
)

OBJECTIVES = ("mean_square", "l2")
DEFAULT_LAYERS = ("mixed_3", "mixed_5")


def layer_objective(activations: dict[str, torch.Tensor], objective: str) -> torch.Tensor:
    """The DeepDream objective summed over layers (see the module docstring)."""
    total = 0.0
    for activation in activations.values():
        if objective == "mean_square":
            total = total + activation.pow(2).mean()
        else:
            total = total + activation.norm() / activation.numel() ** 0.5
    return total


@dataclass
class Dream:
    """A finished dream: the image (1, 3, H, W) in [-1, 1] and the objective per octave
    (its value before the first and after the last step at each scale)."""

    image: torch.Tensor
    objective_per_octave: list[tuple[float, float]]
    shapes: list[tuple[int, int]]

    def summary(self) -> list[str]:
        """One line per octave: its size and the objective before and after its steps."""
        return [
            f"octave {shape[1]}x{shape[0]}: objective {first:.4g} -> {last:.4g}"
            for shape, (first, last) in zip(self.shapes, self.objective_per_octave)
        ]


def check_dream(
    layers: list[str], octaves: int, octave_scale: float, steps: int, step_size: float, obj: str
) -> None:
    check_int("--octaves", octaves, 1, 12)
    check_int("--steps", steps, 1)
    check_positive("--step-size", step_size)
    check_positive("--octave-scale", octave_scale)
    if octave_scale < 1:
        raise GankitError(f"--octave-scale must be >= 1, got {octave_scale}")
    if obj not in OBJECTIVES:
        raise GankitError(f"unknown --objective '{obj}'; valid: {choices(OBJECTIVES)}")
    if not layers:
        raise GankitError("--layers is empty; give comma-separated layer names")


def dream(
    net,
    image: torch.Tensor,
    layers: list[str],
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps: int = 20,
    step_size: float = 0.01,
    objective: str = "mean_square",
    max_objective: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> Dream:
    """Dream ``image`` (1, 3, H, W) in [-1, 1] with ``net`` (an InceptionV3).

    Args:
        layers: the named blocks whose activations grow.
        octaves, octave_scale: how many scales, and the ratio between neighbours.
        steps, step_size: gradient-ascent steps per octave and their size (in units of
            the [-1, 1] pixel range, after normalising the gradient by its mean
            magnitude).
        max_objective: stop an octave early once the objective passes it (the course's
            ``max_loss``, which keeps the picture from turning to noise).
        progress: called with 1 after each step.

    Raises:
        GankitError: an unknown layer, a non-positive setting, or a smallest octave
            below the network's 75 px.
    """
    check_dream(layers, octaves, octave_scale, steps, step_size, objective)
    net.check_layers(layers)
    height, width = image.shape[-2:]
    shapes = [
        (round(height / octave_scale**i), round(width / octave_scale**i))
        for i in reversed(range(octaves))
    ]
    check_inception_size("the smallest octave", *shapes[0])
    original = image.detach()
    shrunk_original = resize(original, shapes[0])
    dreamed = shrunk_original.clone()
    history = []
    # one thread: on a shared machine OpenMP threads waiting for each other made each
    # step of this small network tens of times slower
    with torch_threads(1):
        for index, shape in enumerate(shapes):
            if index:
                dreamed = resize(dreamed, shape)
                # detail re-injection: what upscaling the small original lost
                upscaled = resize(shrunk_original, shape)
                dreamed = dreamed + (resize(original, shape) - upscaled)
                shrunk_original = resize(original, shape)
            dreamed, first, last = _ascend(
                net, dreamed, layers, steps, step_size, objective, max_objective, progress
            )
            history.append((first, last))
    return Dream(dreamed.clamp(-1, 1), history, shapes)


def _ascend(net, image, layers, steps, step_size, objective, max_objective, progress):
    """Gradient ascent at one scale; returns the image and the first and last objective."""
    image = image.detach().clone()
    first = last = None
    for _ in range(steps):
        image.requires_grad_(True)
        value = layer_objective(net.activations(network_input(image), layers), objective)
        (grad,) = torch.autograd.grad(value, image)
        value = value.detach()
        last = value.item()
        first = last if first is None else first
        if progress is not None:
            progress(1)
        if max_objective is not None and last > max_objective:
            break
        with torch.no_grad():
            image = (image + step_size * grad / grad.abs().mean().clamp_min(1e-8)).clamp(-1, 1)
    return image.detach(), first, last


def dream_file(
    source: str | None,
    out,
    *,
    layers: str | list[str],
    size: int = 256,
    figure=None,
    overwrite: bool = False,
    progress: bool = True,
    **settings,
) -> Dream:
    """Read a picture (None: scikit-learn's ``china.jpg``), dream it, write ``out`` (a PNG
    of the dream) and, if given, ``figure`` (input and dream side by side, labelled).

    ``layers``: InceptionV3 layer names, as a list or comma-separated. ``settings`` are
    those of :func:`dream`. Nothing existing is replaced without
    ``overwrite``; both files are written atomically.
    """
    from tqdm.auto import tqdm

    from gankit.backbones import inception_v3
    from gankit.explore.pictures import writing
    from gankit.vision.common import (
        check_output,
        parse_layers,
        read_picture,
        save_panels,
        save_png,
    )

    layers = parse_layers(layers)
    check_int("--size", size, 1)
    check_dream(
        layers,
        settings.get("octaves", 3),
        settings.get("octave_scale", 1.4),
        settings.get("steps", 20),
        settings.get("step_size", 0.01),
        settings.get("objective", "mean_square"),
    )
    check_output(out, overwrite, inputs=[source])
    if figure is not None:
        check_output(figure, overwrite, "--figure", inputs=[source])
    image = read_picture(source, size)
    net = inception_v3()
    net.check_layers(layers)
    total = settings.get("octaves", 3) * settings.get("steps", 20)
    with tqdm(total=total, desc="dream", unit="step", disable=not progress) as bar:
        result = dream(net, image, layers, progress=bar.update, **settings)
    with writing(out):
        save_png(out, result.image[0])
    if figure is not None:
        name = source or "sample:china.jpg"
        title = (
            f"DeepDream on {', '.join(layers)}: {len(result.shapes)} octaves x "
            f"{settings.get('steps', 20)} steps ({settings.get('objective', 'mean_square')})"
        )
        with writing(figure, "--figure"):
            save_panels(figure, [(f"input: {name}", image[0]), ("dream", result.image[0])], title)
    return result
