"""The metric registry: one dict from a metric's name to its function and what it needs.

A metric is one function and one registration line (stylegan2-ada's ``register_metric``)::

    @register_metric("w1", kind="toy", scores={"w1": LOWER},
                     description="exact Wasserstein-1 between the sample sets (POT)")
    def w1(inputs: MetricInput) -> dict[str, float]:
        return {"w1": wasserstein(inputs.samples, inputs.reference)}

Scoring (:class:`gankit.metrics.evaluate.Scorer`), ``--metrics`` (its names, defaults
and help), the better way of each score (:func:`gankit.metrics.evaluate.score_direction`)
and :func:`gankit.api.fid` all read :data:`METRICS`; nothing else lists metrics.

This module imports no torch: ``gankit --help`` reads it. The built-in metrics
(:mod:`gankit.metrics.builtin`) register on the first read (:func:`registered`) or the
first registration, so they always come first.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError, choices

if TYPE_CHECKING:
    import torch

    from gankit.data import DataBundle

LOWER, HIGHER = "lower", "higher"
DIRECTIONS = (LOWER, HIGHER, None)

#: What a metric may need beyond the raw sample sets, and what the scorer does for it.
NEEDS = {
    "features": "the feature extractor's features of both sets (images: --features)",
    "probs": "the extractor's class probabilities of both sets (the evaluator has them, "
    "InceptionV3 has not)",
    "modes": "a mixture with known modes (the data's modes and mode_std: ring, grid)",
}

#: How ``--metrics`` help names a kind of data; a kind not here is named as it is.
KIND_LABELS = {"image": "images"}

#: Metric and score names: typed in ``--metrics`` (comma-separated) and kept as JSON keys.
NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class MetricInput:
    """What the scorer hands a metric function: one set scored against the reference.

    Attributes:
        samples: (n, ...) the scored set: generated samples, or real items of the other
            split for the floor. None where only features exist (:func:`gankit.api.fid`).
        reference: (n, ...) items of the reference split (None as for ``samples``).
        features: the scored set's ``{"features": (n, d), "probs": (n, K)}`` when a
            metric needs them (``probs`` only where one needs it), else None.
        reference_features: the same for the reference.
        bundle: the data (its ``modes``, ``mode_std``, ``class_names``, ...), or None.
        seed: seeds any subset a metric draws (KID's).
    """

    samples: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    features: dict[str, torch.Tensor] | None = None
    reference_features: dict[str, torch.Tensor] | None = None
    bundle: DataBundle | None = None
    seed: int = 0


MetricFunction = Callable[[MetricInput], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    Attributes:
        name: what ``--metrics`` calls it (lower-case letters, digits and ``_``).
        function: ``function(MetricInput) -> {score name: float}``, flat, in the order of
            ``scores``.
        kind: the kind of data it applies to (``DataBundle.kind``: "toy", "image", ...).
        scores: ``(score name, better way)`` pairs, the way ``"lower"``, ``"higher"`` or
            None (a spread or a reference, no goal), in the order the function writes them.
        description: one line, for listings.
        task: the task whose evaluation runs it ("sample": samplers' ``gankit eval``).
        needs: what it reads beyond the raw sets, from :data:`NEEDS`.
        default: whether it runs when ``--metrics`` is not given.
    """

    name: str
    function: MetricFunction
    kind: str
    scores: tuple[tuple[str, str | None], ...]
    description: str
    task: str = "sample"
    needs: frozenset[str] = frozenset()
    default: bool = True

    def __post_init__(self) -> None:
        for field_name in ("name", "kind", "task"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not NAME.fullmatch(value):
                raise GankitError(
                    f"metric {self.name!r}: {field_name} {value!r} must be lower-case "
                    "letters, digits and _, starting with a letter"
                )
        if not callable(self.function):
            raise GankitError(f"metric '{self.name}': function must be callable")
        if not self.scores:
            raise GankitError(f"metric '{self.name}' declares no scores")
        for score, way in self.scores:
            if not isinstance(score, str) or not NAME.fullmatch(score):
                raise GankitError(
                    f"metric '{self.name}': score name {score!r} must be lower-case "
                    "letters, digits and _, starting with a letter"
                )
            if way not in DIRECTIONS:
                raise GankitError(
                    f"metric '{self.name}': score '{score}' is better {way!r}; valid: "
                    "'lower', 'higher' or None"
                )
        unknown = sorted(set(self.needs) - set(NEEDS))
        if unknown:
            raise GankitError(
                f"metric '{self.name}' needs '{unknown[0]}', which the scorer does not "
                f"provide; valid needs: {choices(NEEDS)}"
            )
        if not isinstance(self.description, str) or not self.description.strip():
            raise GankitError(f"metric '{self.name}' needs a one-line description")
        if "\n" in self.description:
            raise GankitError(f"metric '{self.name}': the description must be one line")

    @property
    def directions(self) -> dict[str, str | None]:
        """``{score name: better way}``."""
        return dict(self.scores)


#: Every metric, by name, in the order registered: the defaults run in this order and
#: their scores appear in it (``eval.json``, the table). Read it through
#: :func:`registered`, which registers the built-ins first.
METRICS: dict[str, Metric] = {}

#: The module whose import registers the built-in metrics. It is loaded by name, as
#: the built-in tasks and families are: it imports this module to register, so a static
#: import back would close a circle.
BUILTIN_MODULE = "gankit.metrics.builtin"


def registered() -> dict[str, Metric]:
    """:data:`METRICS`, with the built-ins registered first (on the first call)."""
    importlib.import_module(BUILTIN_MODULE)
    return METRICS


def register_metric(
    name: str,
    function: MetricFunction | None = None,
    *,
    kind: str,
    scores: Mapping[str, str | None],
    description: str,
    task: str = "sample",
    needs: str | Iterable[str] = (),
    default: bool = True,
    replace: bool = False,
) -> Any:
    """Register a metric; as a decorator (``@register_metric("w1", kind="toy", ...)``)
    or called with the function. Returns the function.

    Raises:
        GankitError: ``name`` is taken (unless ``replace``, which keeps its place in the
            order), or a field is not valid (see :class:`Metric`).
    """

    def register(metric_function: MetricFunction) -> MetricFunction:
        registered()  # the built-ins keep the first places, whoever registers first
        metric = Metric(
            name, metric_function, kind, tuple(scores.items()), description, task,
            frozenset([needs] if isinstance(needs, str) else needs), default,
        )  # fmt: skip
        if name in METRICS and not replace:
            raise GankitError(
                f"metric '{name}' is already registered; pick another name, or pass "
                "replace=True to replace it"
            )
        METRICS[name] = metric
        return metric_function

    return register if function is None else register(function)


def unregister_metric(name: str) -> Metric:
    """Remove the metric ``name`` (a test's or a plugin's); returns it."""
    if name not in registered():
        raise GankitError(f"no metric '{name}' is registered; registered: {choices(METRICS)}")
    return METRICS.pop(name)


def metrics_for(task: str = "sample", kind: str | None = None) -> tuple[Metric, ...]:
    """The metrics of ``task`` that apply to data of ``kind`` (None: every kind), in
    registration order."""
    return tuple(
        m for m in registered().values() if m.task == task and (kind is None or m.kind == kind)
    )


def default_metrics(kind: str, task: str = "sample") -> tuple[str, ...]:
    """The names that run on data of ``kind`` when ``--metrics`` is not given."""
    return tuple(m.name for m in metrics_for(task, kind) if m.default)


def metrics_help(task: str = "sample") -> str:
    """The help of ``gankit eval --metrics``: each kind's metrics, in registration order.
    For the built-ins: ``Comma-separated: modes,w1,som_toy (toy) or fd,kid,is,pr,dc,som
    (images).``"""
    by_kind: dict[str, list[str]] = {}
    for metric in metrics_for(task):
        by_kind.setdefault(metric.kind, []).append(metric.name)
    parts = [f"{','.join(names)} ({KIND_LABELS.get(k, k)})" for k, names in by_kind.items()]
    listed = " or ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 2 else parts)
    return f"Comma-separated: {listed}."


def metric_directions() -> tuple[tuple[str, str | None], ...]:
    """Every registered metric's ``(score name, better way)`` pairs, in order."""
    return tuple(pair for metric in registered().values() for pair in metric.scores)
