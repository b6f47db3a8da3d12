"""Write a run's network in a format other tools read: safetensors, TorchScript, ONNX.

What is exported depends on the run's task (``gankit.tasks``: each task's ``export``
builds an :class:`Exportable`): the generator of a sampler, the translator of a
translation model, the classifier of a classifier. Beside the file, a small JSON names
the model, its settings, the inputs and outputs (with their shapes, ``N`` the batch)
and how to use the file.

- ``safetensors``: the network's weights (``state_dict``), no code. Rebuild the network
  with ``gankit.create_model(model_name, **hparams)`` (both in the JSON) and load them
  into the network the JSON names.
- ``torchscript``: the network traced with ``torch.jit.trace``, loaded by
  ``torch.jit.load`` without gankit (TorchScript is deprecated by PyTorch in favour of
  ``torch.export``, and still loads everywhere).
- ``onnx``: the network exported by ``torch.onnx.export`` (the ``torch.export`` path,
  which needs ``onnxscript``), with a dynamic batch size.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.files import atomic_write, atomic_write_text

FORMATS = {"safetensors": ".safetensors", "torchscript": ".pt", "onnx": ".onnx"}


@dataclass
class Exportable:
    """A network ready to export, as a task describes it.

    Attributes:
        module: ``forward(*inputs) -> output``, in eval mode.
        inputs: example inputs by name, in ``forward``'s order; their first dimension
            is the batch.
        output: the output's name.
        weights: the tensors the safetensors file holds (a ``state_dict``).
        network: which network of the model ``weights`` load into (``"G"``).
        about: one line on what the module computes, for the JSON.
        extra: more JSON fields (a translator's direction, ...).
    """

    module: nn.Module
    inputs: dict[str, torch.Tensor]
    output: str
    weights: dict[str, torch.Tensor]
    network: str
    about: str
    extra: dict[str, Any] = field(default_factory=dict)


class Call(nn.Module):
    """``forward(*inputs) = fn(dict(zip(names, inputs)), net)``: a model's own method
    (``generate``) as a module whose only weights are ``net``'s.

    The model is held outside the module's children, so nothing but ``net`` is exported.
    """

    def __init__(self, fn, net: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.net = net
        self.names = tuple(names)
        self.__dict__["fn"] = fn

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(dict(zip(self.names, inputs)), self.net)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise GankitError(f"unknown --format '{fmt}'; valid: {', '.join(FORMATS)}")
    return fmt


def describe(exportable: Exportable, fmt: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON written beside an exported file."""

    def shape(tensor: torch.Tensor) -> dict[str, Any]:
        return {"shape": ["N", *tensor.shape[1:]], "dtype": str(tensor.dtype).split(".")[-1]}

    output = exportable.module(*exportable.inputs.values())
    return {
        **meta,
        "format": fmt,
        "computes": exportable.about,
        "network": exportable.network,
        "inputs": {name: shape(t) for name, t in exportable.inputs.items()},
        "outputs": {exportable.output: shape(output)},
        **exportable.extra,
    }


def write(exportable: Exportable, fmt: str, path: Path, meta: dict[str, Any]) -> Path:
    """Write ``exportable`` as ``fmt`` to ``path``, and its JSON to ``path`` + ``.json``.

    Raises:
        GankitError: the format's package is missing (``pip install 'gankit[export]'``),
            or the network cannot be exported in that format.
    """
    check_format(fmt)
    exportable.module.eval()
    with torch.no_grad():
        info = describe(exportable, fmt, meta)
        writers = {"safetensors": _safetensors, "torchscript": _torchscript, "onnx": _onnx}
        writers[fmt](exportable, path)
    atomic_write_text(json_path(path), json.dumps(info, indent=2, allow_nan=False) + "\n")
    return path


def json_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _safetensors(exportable: Exportable, path: Path) -> None:
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise _missing("safetensors") from None
    # each tensor its own contiguous copy: safetensors refuses tensors that share memory
    weights = {k: v.detach().clone().contiguous() for k, v in exportable.weights.items()}
    atomic_write(path, lambda tmp: save_file(weights, str(tmp)))


def _torchscript(exportable: Exportable, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, and still loads everywhere
        try:
            traced = torch.jit.trace(exportable.module, tuple(exportable.inputs.values()))
        except Exception as err:
            raise GankitError(f"--format torchscript: tracing failed ({_short(err)})") from None
        atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))


def _onnx(exportable: Exportable, path: Path) -> None:
    for package in ("onnx", "onnxscript"):
        try:
            __import__(package)
        except ImportError:
            raise _missing(package) from None
    batch = torch.export.Dim("N")
    dynamic = (tuple({0: batch} for _ in exportable.inputs),)

    def export(tmp: Path) -> None:
        with _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    exportable.module,
                    tuple(exportable.inputs.values()),
                    str(tmp),
                    input_names=list(exportable.inputs),
                    output_names=[exportable.output],
                    dynamic_shapes=dynamic,
                    dynamo=True,
                    verbose=False,
                    external_data=False,
                )
            except Exception as err:
                raise GankitError(f"--format onnx: export failed ({_short(err)})") from None

    atomic_write(path, export)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The ONNX exporter logs a line per missing optional operator set (torchvision's)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _missing(package: str) -> GankitError:
    return GankitError(
        f"exporting needs the {package} package: pip install 'gankit[export]' "
        "(safetensors, onnx, onnxscript)"
    )


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}"


__all__ = ["FORMATS", "Call", "Exportable", "check_format", "json_path", "write"]
