"""Check keyword arguments against a function's signature and type annotations.

The run config is validated against constructors (see STYLE.md: "the constructor is
the config"): the model's class, each data source's loader, and ``TrainConfig``. This
leaf module holds that check so that config, data and the model registry can all use
it without importing each other.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

from gankit.errors import GankitError, choices, did_you_mean


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if origin is tuple:
        return "list of " + _type_name(typing.get_args(annotation)[0])
    return getattr(annotation, "__name__", str(annotation))


def type_matches(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a constructor annotation, without converting it.

    Written here rather than with a validation library because the rules are few
    and deliberate: an int is accepted where a float is expected (``lr: 1`` is a
    number), a list where a tuple is expected (YAML has no tuples), and nothing else
    is coerced: ``"0.5"`` is not a float.
    """
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return any(type_matches(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(type_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(type_matches(v, a) for v, a in zip(value, args))
    if origin is list:
        (arg,) = typing.get_args(annotation)
        return isinstance(value, list) and all(type_matches(v, arg) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _resolved_hints(fn: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to no type checks
        return {}


def _named(fn: Callable) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """``fn``'s keyword parameters, their resolved annotations, and whether it takes
    ``**kwargs``."""
    parameters = inspect.signature(fn).parameters
    named = {
        name: p
        for name, p in parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "self"
    }
    takes_more = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    return named, _resolved_hints(fn), takes_more


def keyword_parameters(fn: Callable) -> dict[str, tuple[inspect.Parameter, Any]]:
    """``name -> (parameter, annotation)`` of every keyword ``fn`` accepts.

    A class whose ``__init__`` takes ``**kwargs`` also accepts the keywords of its
    parent's ``__init__`` (which ``super().__init__(**kwargs)`` hands them to), and so on
    up the classes while each takes ``**kwargs``. So a family that adds one option to
    :class:`~gankit.models.gan.GAN` declares that option alone, and the config still
    checks every GAN option by name and type. The child's own declaration of a name
    wins over its parent's.
    """
    if not inspect.isclass(fn):
        named, hints, _ = _named(fn)
        return {name: (p, hints.get(name, p.annotation)) for name, p in named.items()}
    found: dict[str, tuple[inspect.Parameter, Any]] = {}
    for klass in fn.__mro__:
        if "__init__" not in vars(klass):
            continue
        named, hints, takes_more = _named(vars(klass)["__init__"])
        for name, p in named.items():
            found.setdefault(name, (p, hints.get(name, p.annotation)))
        if not takes_more:
            break
    return found


def validate_kwargs(
    fn: Callable, kwargs: dict[str, Any], where: str, exclude: set[str] = frozenset()
) -> None:
    """Check ``kwargs`` against ``fn``'s keyword parameters and their annotations
    (a class's: its ``__init__``'s, with its parents' where it takes ``**kwargs``; see
    :func:`keyword_parameters`).

    Raises:
        GankitError: naming the unknown key (with the valid keys) or the mistyped value.
    """
    params = {k: v for k, v in keyword_parameters(fn).items() if k not in exclude}
    for key, value in kwargs.items():
        if key not in params:
            raise GankitError(
                f"unknown key '{key}' in {where}{did_you_mean(key, params)}; "
                f"valid: {choices(params)}"
            )
        annotation = params[key][1]
        if not type_matches(value, annotation):
            raise GankitError(f"{where}: '{key}' must be {_type_name(annotation)}, got {value!r}")
        problem = _unrepresentable(value)
        if problem:
            raise GankitError(f"{where}: '{key}' {problem}, got {value!r}")


def _unrepresentable(value: Any) -> str | None:
    """What is wrong with a number (or a list of numbers) that no setting means: YAML
    reads ``.nan`` and ``.inf`` as floats and integers of any size, and torch holds no
    integer beyond 64 bits. None when nothing is."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be finite (no .nan or .inf)"
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return "must be within 64 bits, in [-2**63, 2**63 - 1]"
    if isinstance(value, (list, tuple)):
        return next(filter(None, map(_unrepresentable, value)), None)
    return None
