"""The model registry: ``register_model`` / ``create_model`` / ``list_models``.

A registered name is a model class plus the defaults that make the variant, e.g.
``wgan_gp`` is :class:`~gankit.models.gan.GAN` with ``loss="wasserstein"`` and
``gp_weight=10``. The registry is one dict; registering a name twice is an error.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError, choices, did_you_mean, warn
from gankit.validation import keyword_parameters, validate_kwargs

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
    "gankit.models.pixelda",
    "gankit.models.pix2pix",
    "gankit.models.ssgan",
    "gankit.models.aae",
    "gankit.models.change_cat",
)


#: Entry-point group of installed packages that bring model families: each entry names
#: a module that registers them (``mypkg = "mypkg.models"``), imported the first time the
#: registry is used; an entry ``"module:function"`` is called once imported.
ENTRY_POINT_GROUP = "gankit.models"


@dataclass(frozen=True)
class ModelSpec:
    """A registered variant.

    Attributes:
        module: the module that registered it; a run records it when it is not
            gankit's own, so that loading the run imports it again.
    """

    name: str
    cls: type
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    module: str = ""


MODELS: dict[str, ModelSpec] = {}

#: Task name -> the methods its families must have (``Task.model_methods``). The tasks
#: sit above the registry, so :func:`gankit.tasks.register_task` tells it here.
TASK_METHODS: dict[str, tuple[str, ...]] = {}


def _provides(cls: type, method: str) -> bool:
    """Whether ``cls`` defines ``method``, itself or through a parent. The placeholders
    of the contract class ``Model``, the class that declares ``task`` without setting
    it, do not count: they only raise."""
    for owner in cls.__mro__:
        if method in vars(owner):
            return not ("task" in inspect.get_annotations(owner) and "task" not in vars(owner))
    return False


def missing_methods(cls: type) -> list[str]:
    """The methods of ``cls.task``'s ``model_methods`` that ``cls`` lacks; [] when its
    task has registered none, or none is missing."""
    return [m for m in TASK_METHODS.get(cls.task, ()) if not _provides(cls, m)]


def _check_methods(name: str, cls: type) -> None:
    missing = missing_methods(cls)
    if missing:
        raise GankitError(
            f"model '{name}': {cls.__name__} serves task '{cls.task}' but lacks "
            f"{', '.join(missing)}; task '{cls.task}' calls "
            f"{', '.join(TASK_METHODS[cls.task])} on its models"
        )


def require_methods(task: str, methods: tuple[str, ...]) -> None:
    """Record that every family of ``task`` must define ``methods``; the families already
    registered for it are checked now, those registered later by :func:`register_model`.

    Raises:
        GankitError: a registered family of ``task`` lacks one (the task is not recorded).
    """
    previous = TASK_METHODS.get(task)
    TASK_METHODS[task] = tuple(methods)
    try:
        for spec in MODELS.values():
            if spec.cls.task == task:
                _check_methods(spec.name, spec.cls)
    except GankitError:
        if previous is None:
            del TASK_METHODS[task]
        else:
            TASK_METHODS[task] = previous
        raise


def register_model(name: str, cls: type, description: str, **defaults: Any) -> None:
    """Register ``cls`` with ``defaults`` as the variant ``name``.

    ``cls`` may take ``**kwargs`` for its parent's options (see
    :func:`gankit.validation.keyword_parameters`).

    Raises:
        GankitError: ``cls`` lacks a method that its task calls (``Task.model_methods``),
            once that task is registered.
    """
    if name in MODELS:
        raise ValueError(f"model '{name}' is already registered (by {MODELS[name].cls.__name__})")
    if not isinstance(getattr(cls, "task", None), str):  # Model declares it unset
        raise ValueError(
            f"model '{name}': {cls.__name__} declares no task (task = \"sample\", ...)"
        )
    unknown = set(defaults) - set(keyword_parameters(cls))
    if unknown:
        raise ValueError(f"model '{name}': {cls.__name__} has no argument {sorted(unknown)}")
    _check_methods(name, cls)
    caller = inspect.currentframe().f_back
    module = caller.f_globals.get("__name__", "") if caller is not None else ""
    MODELS[name] = ModelSpec(name, cls, dict(defaults), description, module)


_entry_points_loaded = False


def _load_families() -> None:
    global _entry_points_loaded
    for module in FAMILY_MODULES:
        importlib.import_module(module)
    if not _entry_points_loaded:
        _entry_points_loaded = True  # first: a plugin that uses the registry does not recurse
        _load_entry_points()


def _load_entry_points() -> None:
    """Import the modules of the ``gankit.models`` entry points of installed packages. A
    plugin that fails to load is a warning: gankit's own models still work."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            if callable(loaded):
                loaded()
        except Exception as err:
            warn(
                f"entry point '{entry.name} = {entry.value}' ({ENTRY_POINT_GROUP}) failed to "
                f"load ({type(err).__name__}: {err}); its models are not available"
            )


def import_modules(modules: list[str] | tuple[str, ...], why: str = "--import") -> None:
    """Import the user's modules that register models (or tasks), e.g. ``mypkg.models``.

    Modules are looked up on Python's path, then in the current folder (as ``python -m``
    would; the installed ``gankit`` command does not have it on its path otherwise).

    Raises:
        GankitError: a name is not a module name, or no such module can be imported
            from here (the message says how to make it importable).
    """
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    for name in modules:
        if not isinstance(name, str) or not MODULE_NAME.fullmatch(name):
            raise GankitError(
                f"{why}: '{name}' is not a module name; give a dotted name such as mypkg.models"
            )
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not (name + ".").startswith(err.name + "."):
                raise  # the module exists and itself imports something missing
            raise GankitError(
                f"{why}: cannot import '{name}' ({err}); pass --import {name} from the "
                "folder that holds it, put that folder on PYTHONPATH, or pip install its "
                "package"
            ) from None


#: A dotted module name: ``mypkg.models``.
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def user_module(name: str) -> str | None:
    """The module that registered model ``name`` when it is the user's and can be
    imported again by name; None for gankit's own models (and a script's ``__main__``)."""
    module = get_spec(name).module
    if not module or module == "__main__" or module.split(".")[0] == "gankit":
        return None
    return module


def list_models() -> list[str]:
    _load_families()
    return sorted(MODELS)


def get_spec(name: str) -> ModelSpec:
    _load_families()
    if not isinstance(name, str) or name not in MODELS:
        raise GankitError(
            f"unknown model '{name}'{did_you_mean(name, MODELS)}; valid: {choices(MODELS)}"
        )
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
        for key, (p, _) in keyword_parameters(spec.cls).items()
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
    params = keyword_parameters(spec.cls)
    if "data_shape_b" in params:
        data_args["data_shape_b"] = list(data_shape_b) if data_shape_b is not None else None
    if "class_names" in params:
        data_args["class_names"] = list(class_names) if class_names is not None else None
    model = spec.cls(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in data_args.items()}, **args
    )
    model.model_name = name
    model.hparams = {**data_args, **args}
    return model
