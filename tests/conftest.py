"""Shared fixtures: tiny configs that train in well under a second per step."""

from __future__ import annotations

import inspect

import pytest
import torch

from gankit.registry import get_spec

#: Small sizes for every model family; each model takes the ones its constructor has.
TINY = {
    "latent_dim": 4,
    "hidden_dim": 16,
    "n_layers": 2,
    "g_channels": 8,
    "d_channels": 8,
    "channels": 8,
    "noise_dim": 4,
    "embed_dim": 4,
    "q_hidden": 8,
    "n_blocks": 1,
    # pixel-level adaptation: one translator step, then the classifier's
    "translator_steps": 1,
    "translator_channels": 4,
    "translator_d_channels": 4,
    "translator_n_blocks": 1,
}


def tiny_kwargs(name: str) -> dict:
    params = inspect.signature(get_spec(name).cls).parameters
    return {k: v for k, v in TINY.items() if k in params}


def tiny_config(model: str = "gan", data: str = "ring", steps: int = 20, **train) -> dict:
    data_section = {"name": data}
    if data in ("ring", "grid", "moons", "spiral"):
        data_section.update(n_train=512, n_test=128)
    if data == "digits":
        data_section["resolution"] = 8
    return {
        "name": f"tiny-{model}",
        "model": {"name": model, **tiny_kwargs(model)},
        "data": data_section,
        "train": {
            "steps": steps,
            "batch_size": 16,
            "log_every": 5,
            "sample_every": 10,
            "ckpt_every": 10,
            "progress": False,
            **train,
        },
    }


@pytest.fixture(scope="session")
def evaluator_cache_dir(tmp_path_factory):
    """A cache holding the digits evaluator, trained once for the whole test session."""
    from gankit.metrics.features import load_evaluator

    cache = tmp_path_factory.mktemp("gankit-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANKIT_CACHE", str(cache))
        load_evaluator("digits", train_if_missing=True, progress=False)
    return cache


@pytest.fixture
def evaluator_cache(evaluator_cache_dir, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(evaluator_cache_dir))
    return evaluator_cache_dir


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield


def cli(*args):
    """``gankit ARGS`` in this process, through typer's runner."""
    from typer.testing import CliRunner

    from gankit.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *words: str, code: int = 2) -> str:
    """The result is ``gankit: error: ...`` on one line, with each of ``words``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("gankit: error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], lines
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]
