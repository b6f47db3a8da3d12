"""Devices and distributed backends that the machine lacks: one line, exit 2, what exists;
and the default thread count.

CUDA, MPS and the backends are hidden with monkeypatch, so each test runs (and says
the same thing) on any machine, with or without a GPU.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
from typer.testing import CliRunner

from gankit.cli import app
from gankit.errors import GankitError
from gankit.training.distributed import available_backends, init_from_environment
from gankit.training.runtime import available_devices, default_threads, resolve_device


@pytest.fixture
def cpu_only(monkeypatch):
    """A machine with neither CUDA nor MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def one_line_error(args: list[str], tmp_path) -> str:
    result = CliRunner().invoke(app, [*args, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert not any(tmp_path.iterdir()), "nothing is written before the input is checked"
    return result.output


@pytest.mark.parametrize("device, what", [("cuda", "CUDA"), ("mps", "MPS")])
def test_missing_device_lists_the_available_ones(cpu_only, tmp_path, device, what):
    out = one_line_error(["train", "gan-ring", "--set", f"train.device={device}"], tmp_path)
    assert f"train.device '{device}' was requested but {what} is not available" in out
    assert "available devices: cpu" in out


def test_missing_device_is_checked_before_launching_processes(cpu_only, tmp_path):
    out = one_line_error(
        ["train", "gan-ring", "--nproc", "2", "--set", "train.device=cuda"], tmp_path
    )
    assert "available devices: cpu" in out


def test_auto_falls_back_to_cpu(cpu_only):
    assert resolve_device("auto") == torch.device("cpu")
    assert available_devices() == ["cpu"]


def test_missing_backend_lists_the_available_ones(monkeypatch, tmp_path):
    # torchrun's environment for rank 0 of 2, in a torch build without gloo
    for key, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(dist, "is_gloo_available", lambda: False)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: False)
    monkeypatch.setattr(dist, "is_mpi_available", lambda: True)
    assert available_backends() == ["mpi"]
    out = one_line_error(["train", "gan-ring", "--set", "train.device=cpu"], tmp_path)
    assert "needs the gloo backend for 2 processes" in out
    assert "available backends: mpi" in out


def test_nccl_without_it_suggests_gloo_on_cpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_nccl_available", lambda: False)
    monkeypatch.setattr(dist, "is_gloo_available", lambda: True)
    with pytest.raises(GankitError, match=r"needs the nccl backend.*set train.device=cpu"):
        init_from_environment("cuda")


def test_default_threads_one_for_toy_data_else_cores_per_process():
    cores = os.cpu_count() or 1
    assert default_threads("toy") == 1
    assert default_threads("image") == cores
    assert default_threads("image", local_world_size=2) == max(1, cores // 2)


def test_every_source_of_points_trains_on_one_thread_by_default(tmp_path, monkeypatch):
    """The default reads the data's kind, not its name: the ``points`` source (clicked
    points, as the lab saves them) got every core, as if it were images."""
    import gankit
    from gankit.models.gan import GAN

    seen = []
    original = GAN.train_step

    def record(self, batch, step):
        seen.append(torch.get_num_threads())
        return original(self, batch, step)

    monkeypatch.setattr(GAN, "train_step", record)
    config = {
        "name": "clicked",
        "model": {"name": "gan", "hidden_dim": 8, "latent_dim": 2},
        "data": {"name": "points", "centres": [[0.0, 0.0], [1.0, 1.0]]},
        "train": {"steps": 2, "batch_size": 16, "progress": False},
    }
    gankit.train(config, runs_dir=tmp_path)
    assert seen == [1, 1]


def test_train_leaves_the_callers_thread_count(tmp_path):
    import gankit

    before = torch.get_num_threads()
    overrides = {"train.steps": 2, "model.hidden_dim": 8, "train.batch_size": 16}
    gankit.train("gan-ring", overrides, runs_dir=tmp_path, progress=False)
    assert torch.get_num_threads() == before
