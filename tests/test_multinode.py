"""Multi-node torchrun on one machine: two launchers as two "nodes" (``--nnodes 2
--nproc-per-node 1``) meeting at a c10d rendezvous on 127.0.0.1, as two machines would.

Every test starts torch processes several times, so all are marked slow.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import gankit
from conftest import tiny_config
from test_distributed import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, c10d rendezvous"),
]

#: Seconds a node may take to stop after the other is killed: more is a hang.
STOP_WITHIN = 120

#: What each node runs: gankit.train (the code path of ``-m gankit train``), then every
#: rank saves the weights it holds, to compare them across nodes.
TRAIN_AND_SAVE = """
import os, sys, torch, yaml, gankit
config = yaml.safe_load(open(sys.argv[1]))
result = gankit.train(config, runs_dir=sys.argv[2], overwrite=True)
torch.save(result.model.state_dict(), os.path.join(sys.argv[3], f"rank{os.environ['RANK']}.pt"))
"""


def _node(
    rank: int, port: int, program: list[str], nproc_per_node: int = 1, **popen
) -> subprocess.Popen:
    """One node's launcher: torchrun with a c10d rendezvous on 127.0.0.1:port."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
        str(nproc_per_node), "--node-rank", str(rank), "--rdzv-backend", "c10d", "--rdzv-endpoint",
        f"127.0.0.1:{port}", "--rdzv-id", "gankit-test", "--max-restarts", "0", *program,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True, **popen)  # fmt: skip


def _two_nodes(program: list[str], timeout: float = 300, nproc_per_node: int = 1) -> list[str]:
    port = free_port()
    nodes = [_node(rank, port, program, nproc_per_node) for rank in (0, 1)]
    errors = []
    for node in nodes:
        _, err = node.communicate(timeout=timeout)
        assert node.returncode == 0, err[-3000:]
        errors.append(err)
    return errors


def test_two_nodes_step_in_agreement_and_rank_0_alone_writes(tmp_path):
    config = tiny_config("dcgan", "digits", steps=4, threads=1, ckpt_every=2)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "train.py").write_text(TRAIN_AND_SAVE)
    out = tmp_path / "states"
    out.mkdir()
    runs = tmp_path / "runs"
    _two_nodes([str(tmp_path / "train.py"), str(tmp_path / "tiny.yaml"), str(runs), str(out)])
    states = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    parameters = [k for k in states[0] if "running_" not in k and "num_batches" not in k]
    assert len(parameters) >= 10
    assert all(torch.equal(states[0][k], states[1][k]) for k in parameters)
    run = runs / config["name"]
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step_00000002.pt", "step_00000004.pt"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # the last step only
    assert torch.load(run / "checkpoints" / names[-1], weights_only=True)["world_size"] == 2


def test_two_nodes_of_two_ranks_step_in_agreement_and_share_the_evaluation(
    tmp_path, evaluator_cache
):
    """2 x 2 ranks, one thread each: the four hold the same weights after training, rank
    0 alone wrote the run, and the evaluation the four shared (``eval_every``) logged the
    scores one process computes on the checkpoint of that step."""
    from gankit.config import TrainConfig
    from gankit.data import load_data
    from gankit.tasks import get_task

    config = tiny_config(
        "dcgan", "digits", steps=4, threads=1, ckpt_every=2, eval_every=4, eval_n=99,
        eval_metrics="fd",
    )  # fmt: skip
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "train.py").write_text(TRAIN_AND_SAVE)
    out = tmp_path / "states"
    out.mkdir()
    runs = tmp_path / "runs"
    program = [str(tmp_path / "train.py"), str(tmp_path / "tiny.yaml"), str(runs), str(out)]
    _two_nodes(program, nproc_per_node=2)
    states = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(4)]
    parameters = [k for k in states[0] if "running_" not in k and "num_batches" not in k]
    assert len(parameters) >= 10
    for state in states[1:]:
        assert all(torch.equal(states[0][k], state[k]) for k in parameters)
    run = runs / config["name"]
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["checkpoints", "config.yaml", "fixed_noise.pt", "loss_curves.png", "metrics.jsonl",
         "samples", "train.lock"]
    )  # fmt: skip
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step_00000002.pt", "step_00000004.pt"]
    lines = [yaml.safe_load(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and [line["step"] for line in lines] == [4, 4]  # losses, scores
    assert torch.load(run / "checkpoints" / names[-1], weights_only=True)["world_size"] == 4
    loaded = gankit.load_run(run)
    evaluate = get_task(loaded.model).scores(
        loaded.model, load_data(loaded.config["data"]), TrainConfig(**loaded.config["train"])
    )
    logged = next(line for line in lines if "eval_fd" in line)
    assert logged["eval_fd"] == pytest.approx(evaluate(4, loaded.sampler_net)["fd"], rel=1e-5)


def _wait_for_checkpoint(run: Path, nodes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 180
    while not list((run / "checkpoints").glob("step_*.pt")):
        for node in nodes:
            assert node.poll() is None, node.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 180 s"
        time.sleep(0.3)


def _kill_node(node: subprocess.Popen) -> None:
    """SIGKILL a node: its launcher and its worker, which torchrun starts in a session
    of its own (killing the launcher's group alone leaves the worker training)."""
    if node.poll() is not None:
        return
    workers = subprocess.run(["pgrep", "-P", str(node.pid)], capture_output=True, text=True)
    with contextlib.suppress(ProcessLookupError):  # it may have just ended on its own
        os.killpg(node.pid, signal.SIGKILL)
    for pid in workers.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    node.wait(timeout=30)


def test_a_killed_node_stops_the_job_and_the_run_resumes_on_another_world_size(tmp_path, capfd):
    config = tiny_config("gan", "ring", steps=1_000_000, threads=1, ckpt_every=20,
                         log_every=20, sample_every=1_000_000)  # fmt: skip
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(config))
    runs = tmp_path / "runs"
    program = ["-m", "gankit", "train", str(path), "--runs-dir", str(runs), "--no-progress"]
    port = free_port()
    nodes = [_node(rank, port, program) for rank in (0, 1)]
    run = runs / config["name"]
    _wait_for_checkpoint(run, nodes)
    try:
        _kill_node(nodes[1])  # the whole second machine goes away
        started = time.monotonic()
        _, err = nodes[0].communicate(timeout=STOP_WITHIN)  # a hang fails here
    finally:
        for node in nodes:
            _kill_node(node)
    assert nodes[0].returncode != 0, err[-3000:]
    assert time.monotonic() - started < STOP_WITHIN

    # 2 -> 1: the run resumes from its newest checkpoint on one process, and says so
    saved = max(int(p.stem[5:]) for p in (run / "checkpoints").glob("step_*.pt"))
    capfd.readouterr()
    result = gankit.train(config["name"], [f"train.steps={saved + 5}"], runs_dir=runs,
                          resume=True)  # fmt: skip
    assert result.step == saved + 5
    said = capfd.readouterr().err
    assert f"resuming step {saved} with 1 process(es); the run was trained with 2" in said
    assert "from 2 x 16 = 32 to 1 x 16 = 16" in said

    # 1 -> 2: and on two nodes again
    resume = ["-m", "gankit", "train", "--resume", "--name", config["name"], "--runs-dir",
              str(runs), "--no-progress", "--set", f"train.steps={saved + 10}"]  # fmt: skip
    errors = _two_nodes(resume)
    assert f"resuming step {saved + 5} with 2 process(es); the run was trained with 1" in (
        errors[0] + errors[1]
    )
    last = max(int(p.stem[5:]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert last == saved + 10
