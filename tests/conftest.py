"""Shared fixtures: tiny configs that train in well under a second per step.

Also what every test sees of the machine: what a new user's machine has.

- No internet. pytest-socket (pyproject's addopts) refuses this process a connection to
  anything but loopback; child processes (``python -m gankit``, torchrun's workers)
  inherit a proxy setting that sends every urllib download to a closed loopback port.
- No real data sets. A test reads only files it writes, unless it is marked
  ``@pytest.mark.needs_data("fashion-mnist")``: only such a test sees Debian's
  ``/usr/share/datasets``, ``$GANKIT_DATA`` and the user cache, and it skips, naming
  the package to install, where the data set is in none of them.
"""

from __future__ import annotations

import gzip
import inspect
import os
import shutil
import struct
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.data import download
from gankit.data.idx import fashion_mnist_files
from gankit.registry import get_spec

#: Where a download goes instead of the internet: loopback port 9 (discard), where
#: nothing listens, so it fails at once in any process.
NO_NETWORK_PROXY = "http://127.0.0.1:9"
#: The hosts a test may still reach (the lab's and the browser tests' local servers).
LOOPBACK = "localhost,127.0.0.1,::1"

#: The real data sets a test can ask for with ``needs_data(NAME)``: how to find the files
#: (None where absent; nothing is fetched), and the Debian package that installs them.
REAL_DATA: dict[str, tuple[Callable[[], Path | None], str]] = {
    "fashion-mnist": (fashion_mnist_files, "dataset-fashion-mnist"),
}

_ISOLATION = pytest.StashKey[pytest.MonkeyPatch]()
_EMPTY_CACHE = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ[name] = NO_NETWORK_PROXY
    for name in ("no_proxy", "NO_PROXY"):
        os.environ[name] = LOOPBACK
    # This process's urllib skips that proxy, so a download meets pytest-socket, whose
    # error names the host the test tried to reach.
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.ProxyHandler({})))
    config.stash[_EMPTY_CACHE] = Path(tempfile.mkdtemp(prefix="gankit-test-cache-"))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _EMPTY_CACHE in config.stash:
        shutil.rmtree(config.stash[_EMPTY_CACHE], ignore_errors=True)


def missing_data(names: tuple[str, ...]) -> str | None:
    """Why a ``needs_data(*names)`` test cannot run here, or None where it can."""
    for name in names:
        find, package = REAL_DATA[name]
        if find() is None:
            return f"needs the real {name}: apt-get install {package} (.ci/run installs it)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture (a module-scoped one may load data), undone after the last one.
    isolation = item.stash[_ISOLATION] = pytest.MonkeyPatch()
    marker = item.get_closest_marker("needs_data")
    if marker is not None:
        reason = missing_data(marker.args)
        if reason is not None:
            pytest.skip(reason)
        return
    # The session's own cache, empty at its start: what a machine that never ran gankit
    # has, and nothing written to the user's.
    isolation.setenv("GANKIT_CACHE", str(item.config.stash[_EMPTY_CACHE]))
    isolation.delenv("GANKIT_DATA", raising=False)
    isolation.setattr(download, "DEBIAN_DATASETS", item.config.stash[_EMPTY_CACHE] / "no-debian")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    try:
        return (yield)
    finally:
        if _ISOLATION in item.stash:
            item.stash[_ISOLATION].undo()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """The IDX encoding, written independently of the reader under test."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def write_mnist_like(directory: Path, n_train: int = 5, n_test: int = 3, gz: bool = True) -> dict:
    """Four IDX files (MNIST's and Fashion-MNIST's names) with distinct, checkable pixels;
    returns the arrays written."""
    rng = np.random.default_rng(n_train)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / name, array, gz=gz)
    return arrays


#: Small sizes of the R3GAN networks, unconditional and conditional.
TINY_R3 = {
    "g_channels": 8,
    "d_channels": 8,
    "latent_dim": 8,
    "blocks_per_stage": 1,
    "group_width": 4,
}

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
