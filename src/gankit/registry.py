"""The model registry: ``register_model`` / ``create_model`` / ``list_models``.

A registered name is a model class plus the defaults that make the variant, e.g.
``wgan_gp`` is :class:`~gankit.models.gan.GAN` with ``loss="wasserstein"`` and
``gp_weight=10``. The registry is one dict; registering a name twice is an error.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError, choices
from gankit.validation import validate_kwargs

if TYPE_CHECKING:
    from gankit.models.base import Model

#: Constructor arguments that come from the data, not from the user's config.
#: ``data_shape_b`` (the second domain's item shape) and ``class_names`` (a name per label:
#: a language model's vocabulary) reach only models that take them.
DATA_ARGS = ("data_shape", "num_classes", "data_shape_b", "class_names")

#: Modules whose import registers model families (one file per family).
FAMILY_MODULES = (
    "gankit.models.gan",
    "gankit.models.conditional",
    "gankit.models.infogan",
    "gankit.models.vae",
    "gankit.models.dann",
    "gankit.models.cyclegan",
    "gankit.models.adaptseg",
    "gankit.models.text",
    "gankit.models.change",
)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, cls: type, description: str, **defaults: Any) -> None:
    """Register ``cls`` with ``defaults`` as the variant ``name``."""
    if name in MODELS:
        raise ValueError(f"model '{name}' is already registered (by {MODELS[name].cls.__name__})")
    if not isinstance(getattr(cls, "task", None), str):  # Model declares it unset
        raise ValueError(
            f"model '{name}': {cls.__name__} declares no task (task = \"sample\", ...)"
        )
    params = inspect.signature(cls).parameters
    unknown = set(defaults) - set(params)
    if unknown:
        raise ValueError(f"model '{name}': {cls.__name__} has no argument {sorted(unknown)}")
    MODELS[name] = ModelSpec(name, cls, dict(defaults), description)


def _load_families() -> None:
    for module in FAMILY_MODULES:
        importlib.import_module(module)


def list_models() -> list[str]:
    _load_families()
    return sorted(MODELS)


def get_spec(name: str) -> ModelSpec:
    _load_families()
    if not isinstance(name, str) or name not in MODELS:
        raise GankitError(f"unknown model '{name}'; valid: {choices(MODELS)}")
    return MODELS[name]


def model_defaults(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """All user-settable constructor arguments of ``name``, with ``overrides`` applied.

    Raises:
        GankitError: an override is not an argument of the model, or has the wrong type.
    """
    spec = get_spec(name)
    overrides = dict(overrides or {})
    validate_kwargs(spec.cls, overrides, where=f"model ({name})", exclude=set(DATA_ARGS))
    resolved = {
        key: p.default
        for key, p in inspect.signature(spec.cls).parameters.items()
        if key not in DATA_ARGS and p.default is not inspect.Parameter.empty
    }
    resolved.update(spec.defaults)
    resolved.update(overrides)
    # YAML has no tuples: store sequences as lists so the config round-trips.
    return {k: list(v) if isinstance(v, tuple) else v for k, v in resolved.items()}


def create_model(
    name: str,
    *,
    data_shape: tuple[int, ...],
    num_classes: int | None = None,
    data_shape_b: tuple[int, ...] | None = None,
    class_names: list[str] | None = None,
    **kwargs: Any,
) -> Model:
    """Build the registered model ``name`` for data of shape ``data_shape``.

    Example:
        >>> model = create_model("wgan_gp", data_shape=(2,), latent_dim=2)
        >>> model.sample(5).shape
        torch.Size([5, 2])
    """
    spec = get_spec(name)
    args = model_defaults(name, kwargs)
    data_args: dict[str, Any] = {"data_shape": list(data_shape), "num_classes": num_classes}
    if "data_shape_b" in inspect.signature(spec.cls).parameters:
        data_args["data_shape_b"] = list(data_shape_b) if data_shape_b is not None else None
    if "class_names" in inspect.signature(spec.cls).parameters:
        data_args["class_names"] = list(class_names) if class_names is not None else None
    model = spec.cls(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in data_args.items()}, **args
    )
    model.model_name = name
    model.hparams = {**data_args, **args}
    return model
