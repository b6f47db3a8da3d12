"""Seeing inside a convnet (Chollet, *Deep Learning with Python*, 5.4): intermediate
activations, filter patterns, and class activation maps (Grad-CAM).

- **Activations:** the feature maps A^l_k(x) of layer l for one image, one tile per
  channel k.
- **Filter patterns:** the image that one filter responds to most, by gradient ascent
  from noise: ``x <- x + eta g / (||g||_2 + eps)``, ``g = d mean_{i,j} A^l_{k,i,j}(x) / dx``.
- **Grad-CAM** (Selvaraju et al. 2017), computed by Captum's ``LayerGradCam``: for the
  logit y^c of class c and the feature maps A_k of a conv layer,
  ``alpha_k = mean_{i,j} dy^c / dA_{k,i,j}`` and ``CAM = ReLU(sum_k alpha_k A_k)``,
  upsampled to the image and laid over it.

Networks: ``inception`` (the offline FID InceptionV3 of :mod:`gankit.backbones`: no
classifier head, so activations and filters only) and ``evaluator:DATASET`` (gankit's
evaluator classifiers of :mod:`gankit.metrics.features`: all three).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gankit.errors import GankitError, check_int, choices
from gankit.metrics.progress import QUIET, Progress
from gankit.nn import torch_threads
from gankit.vision.common import (
    check_inception_size,
    check_output,
    network_input,
    pyplot,
    read_picture,
    save_figure,
    show,
)

WHATS = ("activations", "filters", "gradcam")
#: The evaluator's trunk, by the index of each conv block's ReLU (see EvaluatorCNN).
EVALUATOR_LAYERS = {"conv1": 2, "conv2": 6, "conv3": 10}
#: The InceptionV3 layers shown when none is named (a classifier shows all of its own).
DEFAULT_INCEPTION_LAYERS = ("conv_1", "conv_4", "mixed", "mixed_3")
# Grad-CAM's layer when none is named is the last conv layer, as in the paper. On 16 px
# digits its maps (4x4) put more CAM on the ink than on the background for 50 of the
# first 50 test images; on 8 px digits (2x2 maps) only for 29: too coarse to tell.
MAX_TILES = 64


@dataclass
class Probe:
    """A network seen from outside: named layers, their activations, and (for a
    classifier) its logits.

    Attributes:
        name: what the user named (``inception``, ``evaluator:digits``).
        layer_names: the layers that can be inspected, in order.
        classifier: (N, C, H, W) -> (N, K) logits, or None for a network with no head.
    """

    name: str
    layer_names: list[str]
    modules: dict[str, nn.Module]
    network: nn.Module
    classifier: nn.Module | None
    class_names: list[str] | None = None
    #: (C, H, W) of the images it reads; None: any size of RGB (the InceptionV3)
    input_shape: tuple[int, int, int] | None = None

    @property
    def in_channels(self) -> int:
        return 3 if self.input_shape is None else self.input_shape[0]

    def check_layers(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self.layer_names]
        if unknown:
            raise GankitError(
                f"unknown layer '{unknown[0]}' of {self.name}; valid: {', '.join(self.layer_names)}"
            )

    def activations(self, images: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        """(N, C, H, W) in [-1, 1] -> {name: (N, C_l, H_l, W_l)}, with gradients."""
        self.check_layers(names)
        if self.name == "inception":
            return self.network.activations(network_input(images), names)
        outputs: dict[str, torch.Tensor] = {}
        hooks = [
            self.modules[n].register_forward_hook(
                lambda _m, _i, out, n=n: outputs.__setitem__(n, out)
            )
            for n in names
        ]
        try:
            self.classifier(images)
        finally:
            for hook in hooks:
                hook.remove()
        return outputs


class _Logits(nn.Module):
    """A classify-task model's ``class_logits`` as a module, for Captum."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.class_logits(x)


def open_probe(
    target: str,
    resolution: int | None = None,
    runs_dir: str | Path = "runs",
    progress: Progress = QUIET,
) -> Probe:
    """``inception``, ``evaluator:DATASET``, or a classify-task run -> a :class:`Probe`.

    ``resolution`` picks the evaluator trained at that size; by default the one trained
    on this machine (:func:`gankit.metrics.features.trained_evaluator`), which
    ``progress`` names.

    Raises:
        GankitError: an unknown target, or an evaluator that is not trained yet (the
            message gives the command that trains it).
    """
    if target == "inception":
        from gankit.backbones import inception_v3

        net = inception_v3()
        names = [n for n in net.layer_names if n != "pool2"]
        return Probe("inception", names, dict(net.blocks.items()), net, None)
    if target.startswith("evaluator:"):
        from gankit.metrics.features import load_evaluator, trained_evaluator

        dataset = target.split(":", 1)[1]
        if resolution is None:
            resolution, trained = trained_evaluator(dataset)
            progress.say(
                f"the {dataset} evaluator of {resolution} px images (trained here: "
                f"{', '.join(f'{r} px' for r in trained)}; --resolution picks one)"
            )
        evaluator = load_evaluator(dataset, resolution=resolution)
        trunk = evaluator.net.trunk
        modules = {n: trunk[i] for n, i in EVALUATOR_LAYERS.items()}
        classes = evaluator.meta.get("class_names")
        shape = tuple(evaluator.input_shape)
        return Probe(target, list(modules), modules, evaluator, evaluator.net, classes, shape)
    if not Path(runs_dir, target).is_dir() and not Path(target).is_dir():
        raise GankitError(
            f"unknown network '{target}'; valid: inception, evaluator:DATASET "
            "(e.g. evaluator:digits), or a classify-task run directory"
        )
    from gankit.runs.load import load_run

    model = load_run(target, runs_dir).model.eval()
    if model.task != "classify":
        raise GankitError(
            f"run '{target}' has task {model.task}; gankit inspect reads classify-task runs"
        )
    modules = model.feature_maps()
    if not modules or len(model.data_shape) != 3:
        raise GankitError(f"run '{target}' has no conv feature maps to inspect (an MLP)")
    shape = tuple(model.data_shape)
    return Probe(target, list(modules), modules, model, _Logits(model), None, shape)


def probe_images(probe: Probe, image: str | None, index: int | None, n: int, size: int):
    """The images to inspect, (N, C, H, W) in [-1, 1], and their labels (or None).

    An evaluator reads ``n`` test images from ``index`` on (default 0), or one image
    file resized to its resolution; the InceptionV3 one picture (default: a sample photo)
    with its longer side ``size``.
    """
    if probe.name == "inception":
        if index is not None:
            raise GankitError("--index picks a dataset image; the InceptionV3 reads --image")
        picture = read_picture(image, size)
        check_inception_size("the picture", *picture.shape[-2:])
        return picture, None
    channels, resolution, _ = probe.input_shape
    if image is not None:
        if index is not None:
            raise GankitError("give --image or --index, not both")
        from gankit.vision.common import resize

        picture = resize(read_picture(image, resolution), (resolution, resolution))
        if channels == 1:
            picture = picture.mean(dim=1, keepdim=True)
        return picture, None
    if not probe.name.startswith("evaluator:"):
        raise GankitError(f"give --image for run '{probe.name}' (--index reads evaluator data)")
    evaluator = probe.network
    from gankit.data import load_dataset

    x_test, y_test = load_dataset(evaluator.dataset, resolution=resolution).test.tensors
    index = 0 if index is None else index
    check_int("--index", index, 0, len(x_test) - 1)
    return x_test[index : index + n], y_test[index : index + n]


def grad_cam(probe: Probe, images: torch.Tensor, layer: str, target=None):
    """Grad-CAM maps (N, H, W) in [0, 1] per image, for the predicted class (or
    ``target``), upsampled to the image; and the classes (N,) they explain."""
    from captum.attr import LayerAttribution, LayerGradCam

    if probe.classifier is None:
        raise GankitError(
            f"{probe.name} has no classifier head (the FID InceptionV3 ends at pool3), so no "
            "Grad-CAM; use --what activations or filters, or an evaluator:DATASET"
        )
    probe.check_layers([layer])
    with torch.no_grad():
        predicted = probe.classifier(images).argmax(dim=1)
    target = predicted if target is None else target
    cam = LayerGradCam(probe.classifier, probe.modules[layer])
    inputs = images.clone().requires_grad_(True)
    maps = cam.attribute(inputs, target=target, relu_attributions=True)
    maps = LayerAttribution.interpolate(maps, tuple(images.shape[-2:]), "bilinear")[:, 0]
    peak = maps.flatten(1).amax(dim=1).clamp_min(1e-12)
    return (maps / peak[:, None, None]).detach(), target


def filter_patterns(
    probe: Probe,
    layer: str,
    channels: list[int],
    size: int,
    steps: int,
    step_size: float,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """(K, C, size, size) images in [-1, 1] that excite each channel of ``layer`` most,
    by normalised gradient ascent from small noise; ``progress`` is called with 1 after
    each step."""
    probe.check_layers([layer])
    in_channels = probe.in_channels
    generator = torch.Generator().manual_seed(0)
    images = 0.5 * torch.randn(len(channels), in_channels, size, size, generator=generator)
    index = torch.tensor(channels)
    for _ in range(steps):
        images.requires_grad_(True)
        activation = probe.activations(images, [layer])[layer]
        chosen = activation[torch.arange(len(channels)), index]
        (grad,) = torch.autograd.grad(chosen.mean(dim=(1, 2)).sum(), images)
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-8)[:, None, None, None]
        with torch.no_grad():
            images = (images + step_size * grad / norm * math.sqrt(grad[0].numel())).clamp(-1, 1)
        if progress is not None:
            progress(1)
    return images.detach()


def _grid(n: int) -> tuple[int, int]:
    columns = math.ceil(math.sqrt(n))
    return math.ceil(n / columns), columns


def _save_maps(out: Path, maps: torch.Tensor, title: str) -> None:
    """(K, H, W) feature maps, each on its own colour scale, tile k labelled k."""
    plt = pyplot()
    rows, columns = _grid(len(maps))
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.5), dpi=100)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < len(maps):
            ax.imshow(maps[k].numpy(), cmap="viridis")
            ax.set_title(f"ch {k}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)


def _save_images(out: Path, images: torch.Tensor, labels: list[str], title: str) -> None:
    plt = pyplot()
    rows, columns = _grid(len(images))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * rows + 0.5), dpi=100)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < len(images):
            show(ax, images[k], labels[k])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)


def _save_cams(out: Path, images, maps, classes, labels, class_names, title: str) -> None:
    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.4), dpi=100, squeeze=False)
    for k in range(n):
        name = class_names[classes[k]] if class_names else str(int(classes[k]))
        truth = "" if labels is None else f" (true {int(labels[k])})"
        show(axes[0, k], images[k], f"image{truth}")
        show(axes[1, k], images[k], f"CAM: {name}")
        axes[1, k].imshow(maps[k].numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)


def inspect_network(
    target: str,
    what: str,
    out_dir: Path,
    *,
    layers: str | list[str] | None = None,
    image: str | None = None,
    index: int | None = None,
    n: int = 8,
    size: int = 224,
    filters: int = 16,
    steps: int = 30,
    step_size: float = 0.05,
    resolution: int | None = None,
    runs_dir: str | Path = "runs",
    overwrite: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Write the pictures of ``gankit inspect`` into ``out_dir``; returns their paths.

    ``activations-LAYER.png`` (one per layer), ``filters-LAYER.png`` or ``gradcam-LAYER.png``.
    ``progress`` says on stderr which network is used and shows a bar over the filter
    patterns' gradient-ascent steps (minutes on the InceptionV3). ``layers``: a list,
    or comma-separated names.
    """
    from gankit.explore.pictures import writing
    from gankit.vision.common import check_positive, parse_layers

    if layers is not None:
        layers = parse_layers(layers, "--layer")
    if what not in WHATS:
        raise GankitError(f"unknown --what '{what}'; valid: {choices(WHATS)}")
    check_int("--n", n, 1, MAX_TILES)
    check_int("--size", size, 1)
    check_int("--filters", filters, 1, MAX_TILES)
    check_int("--steps", steps, 1)
    check_positive("--step-size", step_size)
    shown = Progress(progress)
    shown.say(f"loading {target}...")
    probe = open_probe(target, resolution, runs_dir, shown)
    kind = "inception" if probe.name == "inception" else "classifier"
    if layers is None and what == "gradcam":
        layers = [probe.layer_names[-1]]  # the last conv layer, as in the paper
    elif layers is None:
        layers = list(DEFAULT_INCEPTION_LAYERS) if kind == "inception" else probe.layer_names
    probe.check_layers(layers)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise GankitError(f"--out '{out_dir}' is not a folder")
    paths = [check_output(out_dir / f"{what}-{layer}.png", overwrite) for layer in layers]
    written = []
    with torch_threads(1):  # see gankit.vision.dream: one thread is far faster here
        if what == "filters":
            side = size if kind == "inception" else probe.input_shape[1] * 4
            if kind == "inception":
                check_inception_size("--size", side, side)
            shown.say(
                f"filter patterns of {len(layers)} layer(s) of {probe.name}: {steps} steps of "
                f"gradient ascent on {side}x{side} images each..."
            )
            with shown.bar(len(layers) * steps, "filter patterns", "step") as bar:
                for layer, path in zip(layers, paths):
                    blank = torch.zeros(1, probe.in_channels, side, side)
                    with torch.no_grad():
                        width = probe.activations(blank, [layer])[layer].shape[1]
                    channels = list(range(min(filters, width)))
                    patterns = filter_patterns(
                        probe, layer, channels, side, steps, step_size, bar.update
                    )
                    title = (
                        f"{probe.name} {layer}: filter patterns, {steps} steps of gradient ascent"
                    )
                    with writing(path):
                        _save_images(path, patterns, [f"filter {c}" for c in channels], title)
                    written.append(path)
            return written
        images, labels = probe_images(probe, image, index, n, size)
        for layer, path in zip(layers, paths):
            if what == "activations":
                with torch.no_grad():
                    maps = probe.activations(images[:1], [layer])[layer][0][:MAX_TILES]
                title = f"{probe.name} {layer}: {len(maps)} channels for one image"
                with writing(path):
                    _save_maps(path, maps, title)
            else:
                cams, classes = grad_cam(probe, images, layer)
                title = f"{probe.name}: Grad-CAM at {layer} for the predicted class (Captum)"
                with writing(path):
                    _save_cams(path, images, cams, classes, labels, probe.class_names, title)
            written.append(path)
    return written
