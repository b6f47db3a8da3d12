"""gankit: adversarial generative deep learning on PyTorch.

Train the GAN family, evaluate it honestly, and look at what it learned::

    import gankit

    result = gankit.train("gan-ring", ["train.steps=2000"], name="my-ring")
    run = gankit.load_run(result.run_dir)
    points = run.sample(2500, seed=0)        # (2500, 2)

Public API: :func:`train`, :func:`load_run`, :func:`evaluate_run`, :func:`explore`,
:func:`create_model`, :func:`list_models`, :func:`register_model`, :func:`register_task`,
:func:`load_dataset`, :func:`list_datasets`, :func:`list_presets`, :func:`resolve_config`;
the classes :class:`Model` (a family's base) and :class:`Task`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# Before anything imports torch (its OpenMP runtime reads this once, when it loads):
# threads waiting for work sleep instead of spinning. With spinning, two threads on a
# 2-core machine that something else is also using wait on each other at every
# operation: dcgan-digits ran 8x slower on 2 threads than on 1 under load, and as fast
# with this setting (benchmarks/threads_under_load.py, docs/performance.md). A value
# the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from gankit.version import __version__ as __version__  # re-exported: gankit.__version__

# Imported on first use: ``import gankit`` stays fast (torch loads only when needed).
_LAZY = {
    "train": "gankit.api",
    "evaluate_run": "gankit.api",
    "explore": "gankit.api",
    "TrainResult": "gankit.training.trainer",
    "load_run": "gankit.runs.load",
    "Run": "gankit.runs.load",
    "create_model": "gankit.registry",
    "list_models": "gankit.registry",
    "register_model": "gankit.registry",
    "register_task": "gankit.tasks",
    "Task": "gankit.tasks",
    "Model": "gankit.models.base",
    "load_dataset": "gankit.data",
    "list_datasets": "gankit.data",
    "list_presets": "gankit.config",
    "resolve_config": "gankit.config",
    "GankitError": "gankit.errors",
    "DivergenceError": "gankit.errors",
}

if TYPE_CHECKING:
    from gankit.api import evaluate_run, explore, train
    from gankit.config import list_presets, resolve_config
    from gankit.data import list_datasets, load_dataset
    from gankit.errors import DivergenceError, GankitError
    from gankit.models.base import Model
    from gankit.registry import create_model, list_models, register_model
    from gankit.runs.load import Run, load_run
    from gankit.tasks import Task, register_task
    from gankit.training.trainer import TrainResult


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gankit' has no attribute '{name}'")


__all__ = [
    "DivergenceError",
    "GankitError",
    "Model",
    "Run",
    "Task",
    "TrainResult",
    "__version__",
    "create_model",
    "evaluate_run",
    "explore",
    "list_datasets",
    "list_models",
    "list_presets",
    "load_dataset",
    "load_run",
    "register_model",
    "register_task",
    "resolve_config",
    "train",
]
