"""Data sources: ``load_dataset(name, **options) -> DataBundle``.

Sources are registered by name and imported lazily, so ``import gankit`` stays fast
and a source's heavy dependencies load only when it is used. ``folder:PATH`` is a
source whose name carries its argument.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from gankit.data.base import NO_LABEL, DataBundle, tensor_split
from gankit.errors import GankitError, choices, did_you_mean
from gankit.validation import validate_kwargs

#: name -> "module:function". Each function takes keyword options and returns a DataBundle.
DATASETS: dict[str, str] = {
    "ring": "gankit.data.toy:ring",
    "grid": "gankit.data.toy:grid",
    "spiral": "gankit.data.toy:spiral",
    "swissroll": "gankit.data.toy:spiral",
    "moons": "gankit.data.toy:moons",
    "points": "gankit.data.toy:points",
    "digits": "gankit.data.digits:digits",
    "fashion-mnist": "gankit.data.idx:fashion_mnist",
    "mnist": "gankit.data.idx:mnist",
    "cifar10": "gankit.data.cifar:cifar10",
    "digits-m": "gankit.data.mnist_m:digits_m",
    "digits-distorted": "gankit.data.distorted:digits_distorted",
    "fashion-m": "gankit.data.mnist_m:fashion_m",
    "segshift": "gankit.data.segshift:segshift",
    "series-change": "gankit.data.change:series_change",
    "digits-change": "gankit.data.change:digits_change",
    "fashion-change": "gankit.data.change:fashion_change",
    "devils-dictionary": "gankit.data.text:devils_dictionary",
    "edges2digits": "gankit.data.paired:edges2digits",
    "edges2fashion": "gankit.data.paired:edges2fashion",
    "digits-change-mixed": "gankit.data.change_mixed:digits_change_mixed",
}

#: Sources whose name is ``prefix:ARGUMENT``; the argument is passed as ``path``.
PREFIXED: dict[str, str] = {
    "folder": "gankit.data.folders:folder",
    "unpaired": "gankit.data.unpaired:unpaired",
    "segfolder": "gankit.data.segfolder:segfolder",
    "text": "gankit.data.text:text",
    "paired": "gankit.data.paired:paired",
    "series": "gankit.data.periods:series",
    "periods": "gankit.data.periods:periods",
}

TOY_DATASETS = ("ring", "grid", "spiral", "swissroll", "moons")

#: Sources read from files that gankit does not ship: name -> "module:function", the
#: function taking ``data_dir`` and returning the folder that holds the files, or None.
#: Every other named source is built in (embedded, or drawn from a seed).
DATA_FILES: dict[str, str] = {
    "fashion-mnist": "gankit.data.idx:fashion_mnist_files",
    "mnist": "gankit.data.idx:mnist_files",
    "fashion-m": "gankit.data.idx:fashion_mnist_files",
    "cifar10": "gankit.data.cifar:cifar10_files",
    "edges2fashion": "gankit.data.idx:fashion_mnist_files",
}


def list_datasets() -> list[str]:
    return sorted(DATASETS) + [f"{p}:PATH" for p in sorted(PREFIXED)]


def describe_datasets(data_dir: str | None = None) -> list[tuple[str, str, str]]:
    """(name, what it is, where its files are) for every source, as ``gankit datasets``
    shows them. Nothing is downloaded: a source whose files are missing says so."""
    rows = []
    for name, spec in sorted(DATASETS.items()):
        if name in DATA_FILES:
            found = _resolve(DATA_FILES[name])(data_dir)
            files = f"found in {found}" if found else "missing (downloaded on first use)"
        else:
            files = "built in"
        rows.append((name, _summary(_resolve(spec)), files))
    for prefix, spec in sorted(PREFIXED.items()):
        rows.append((f"{prefix}:PATH", _summary(_resolve(spec)), "your files at PATH"))
    return rows


def _summary(loader: Callable) -> str:
    """The first paragraph of a loader's docstring, on one line."""
    return " ".join((loader.__doc__ or "").strip().split("\n\n")[0].split())


def _resolve(spec: str) -> str:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def dataset_loader(name: str) -> tuple[Callable[..., DataBundle], dict]:
    """The loader function for ``name`` and the arguments implied by the name itself."""
    if not isinstance(name, str) or not name:
        raise GankitError(f"data.name must be a dataset name; valid: {choices(list_datasets())}")
    if name in DATASETS:
        fixed = {"variant": "swissroll"} if name == "swissroll" else {}
        return _resolve(DATASETS[name]), fixed
    prefix, sep, argument = name.partition(":")
    if sep and prefix in PREFIXED:
        if not argument:
            raise GankitError(f"data.name '{name}' needs a path after '{prefix}:'")
        return _resolve(PREFIXED[prefix]), {"path": argument}
    known = list_datasets()
    raise GankitError(
        f"unknown dataset '{name}'{did_you_mean(name, known)}; valid: {choices(known)}"
    )


def load_dataset(name: str, **options) -> DataBundle:
    """Load a data source by name, validating its options against the loader's signature.

    Example:
        >>> bundle = load_dataset("ring", n_train=1000)
        >>> bundle.shape
        (2,)
    """
    loader, fixed = dataset_loader(name)
    validate_kwargs(loader, options, where=f"data ({name})", exclude=set(fixed))
    bundle = loader(**fixed, **options)
    bundle.name = name
    return bundle


#: Keys of a config's data section that describe a second domain, not the source's options.
PAIR_KEYS = ("target", "target_options")


def runtime_options(name: str, data_dir: str | None) -> dict:
    """Options that are not part of a run's config: ``--data-dir`` reaches loaders that
    take one."""
    import inspect

    loader, _ = dataset_loader(name)
    if data_dir is not None and "data_dir" in inspect.signature(loader).parameters:
        return {"data_dir": data_dir}
    return {}


def check_data_config(data: dict) -> None:
    """Validate a config's data section: the source's options, and a target domain's."""
    options = {k: v for k, v in data.items() if k != "name" and k not in PAIR_KEYS}
    loader, fixed = dataset_loader(data["name"])
    validate_kwargs(loader, options, where=f"data ({data['name']})", exclude=set(fixed))
    target = data.get("target")
    target_options = data.get("target_options") or {}
    if target is None:
        if target_options:
            raise GankitError("data.target_options is set but data.target is not")
        return
    if not isinstance(target_options, dict):
        raise GankitError("data.target_options must be a mapping of the target's options")
    target_loader, target_fixed = dataset_loader(target)
    validate_kwargs(
        target_loader, target_options, where=f"data.target ({target})", exclude=set(target_fixed)
    )


def load_data(data: dict, data_dir: str | None = None) -> DataBundle:
    """The bundle a config's data section describes.

    ``data.target`` (with ``data.target_options``) names a second domain, loaded as the
    bundle's ``domain_b`` (unlabelled-target adaptation, translation). Both domains must
    give items of the same shape, except that image domains may differ in channels (a
    translator maps grey ``digits`` to RGB ``digits-m``); models that need one shape
    (DANN: ``digits`` with ``channels: 3`` for ``digits-m``) say so when they are built.
    """
    options = {k: v for k, v in data.items() if k != "name" and k not in PAIR_KEYS}
    bundle = load_dataset(data["name"], **options, **runtime_options(data["name"], data_dir))
    target = data.get("target")
    if target is not None:
        target_options = dict(data.get("target_options") or {})
        domain_b = load_dataset(target, **target_options, **runtime_options(target, data_dir))
        other_channels = len(bundle.shape) == len(domain_b.shape) == 3 and (
            bundle.shape[1:] == domain_b.shape[1:]
        )
        if domain_b.shape != bundle.shape and not other_channels:
            raise GankitError(
                f"data: source '{data['name']}' gives items of shape {bundle.shape}, target "
                f"'{target}' {domain_b.shape}; they must match (set the source's channels "
                "or resolution, or the target's in data.target_options)"
            )
        bundle.domain_b = domain_b
    return bundle


__all__ = [
    "DATASETS",
    "NO_LABEL",
    "TOY_DATASETS",
    "DataBundle",
    "describe_datasets",
    "list_datasets",
    "load_data",
    "load_dataset",
    "tensor_split",
]
