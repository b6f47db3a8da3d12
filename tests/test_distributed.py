"""DDP on CPU with gloo: two processes, as torchrun would start them.

The workers get torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) and call ``gankit.train``, which is the code path of
``torchrun -m gankit train``; one test goes through ``gankit train --nproc 2`` itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

import gankit
from conftest import tiny_config

WORLD = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, port: int, config: dict, runs_dir: str, out_dir: str, patch: bool) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    if patch:
        _deterministic_noise()
    result = gankit.train(config, runs_dir=runs_dir, overwrite=True)
    # every rank saves the weights it trained, to compare them across ranks
    torch.save(result.model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))


def _deterministic_noise(patch=setattr) -> None:
    """Make G's training noise a function of (step, global row): rank r of W draws rows
    [r·B, (r+1)·B) of the global batch that one process with batch W·B draws whole."""
    from gankit.models.gan import GAN

    original_step, original_z = GAN.train_step, GAN.sample_z

    def train_step(self, batch, step):
        self._test_step = step
        return original_step(self, batch, step)

    def sample_z(self, n, generator=None):
        if generator is not None:  # previews and fixed noise: unchanged
            return original_z(self, n, generator)
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        seeded = torch.Generator().manual_seed(1000 + self._test_step)
        full = torch.randn(n * world, self.latent_dim, generator=seeded)
        return full[rank * n : (rank + 1) * n].to(self.device)

    patch(GAN, "train_step", train_step)
    patch(GAN, "sample_z", sample_z)


def run_two(config: dict, tmp_path, patch: bool = False) -> list[dict]:
    out = tmp_path / "states"
    out.mkdir(parents=True, exist_ok=True)
    mp.spawn(
        _worker,
        args=(free_port(), config, str(tmp_path / "runs"), str(out), patch),
        nprocs=WORLD,
        join=True,
    )
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_two_processes_keep_identical_parameters(tmp_path):
    config = tiny_config("dcgan", "digits", steps=6, threads=1, ckpt_every=3)
    states = run_two(config, tmp_path)
    assert states[0].keys() == states[1].keys()
    # Parameters are identical. Batch-norm running statistics are each rank's own until
    # DDP broadcasts rank 0's at the next forward; checkpoints hold rank 0's.
    parameters = [k for k in states[0] if "running_" not in k and "num_batches" not in k]
    assert len(parameters) >= 10
    assert all(torch.equal(states[0][k], states[1][k]) for k in parameters)
    # only rank 0 wrote the run
    run_dir = tmp_path / "runs" / config["name"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "step_00000003.pt",
        "step_00000006.pt",
    ]
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # log_every 5, and the last step; not once per rank


@pytest.mark.slow  # over 5 s: the default suite keeps under its 10-minute budget
def test_two_processes_with_batch_b_match_one_with_batch_2b(tmp_path, monkeypatch):
    """DDP averages the ranks' gradients and each rank takes its slice of the global
    batch, so with G's noise made a function of the global row, 2 x B and 1 x 2B take
    the same steps. Tolerance 1e-5: float32 sums in another order, through Adam."""
    model = {"name": "gan", "latent_dim": 4, "hidden_dim": 16, "n_layers": 2}
    config = tiny_config("gan", "ring", steps=5, threads=1, batch_size=16)
    config["model"] = model
    two = run_two(config, tmp_path / "two", patch=True)[0]
    _deterministic_noise(monkeypatch.setattr)
    single = {**config, "train": {**config["train"], "batch_size": 32}}
    one = gankit.train(single, runs_dir=tmp_path / "one").model.state_dict()
    assert two.keys() == one.keys()
    for key in one:
        assert torch.allclose(two[key], one[key], atol=1e-5), key
    # and they did move: the comparison is not between two untrained models
    start = gankit.create_model(
        "gan", data_shape=(2,), **{k: v for k, v in model.items() if k != "name"}
    )
    assert not torch.allclose(start.state_dict()["G.0.0.weight"], one["G.0.0.weight"])


@pytest.mark.slow  # over 5 s: the default suite keeps under its 10-minute budget
def test_resume_a_two_process_checkpoint_on_one_process(tmp_path):
    config = tiny_config("gan", "ring", steps=4, threads=1)
    run_two(config, tmp_path)
    result = gankit.train(
        config["name"], ["train.steps=7"], runs_dir=tmp_path / "runs", resume=True
    )
    assert result.step == 7


@pytest.mark.slow  # over 5 s: the default suite keeps under its 10-minute budget
@pytest.mark.skipif(sys.platform == "win32", reason="torchrun's standalone rendezvous")
def test_gankit_train_nproc_launches_torchrun(tmp_path):
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config("gan", "ring", steps=4, threads=1)))
    command = [
        sys.executable,
        "-m",
        "gankit",
        "train",
        str(path),
        "--nproc",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-progress",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "runs" / "tiny-gan" / "checkpoints" / "step_00000004.pt").exists()


def test_nproc_beyond_the_cores_is_one_line():
    from typer.testing import CliRunner

    from gankit.cli import app

    result = CliRunner().invoke(app, ["train", "--nproc", "4096"])
    assert result.exit_code == 2
    assert "--nproc 4096 is more than this machine's" in result.output
    assert "use at most" in result.output
