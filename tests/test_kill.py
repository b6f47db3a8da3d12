"""SIGKILL at any moment loses nothing: ``python -m gankit train`` is killed again and
again (at random moments while it trains, and while it writes a checkpoint), resumed
each time, and ends with the weights of a run that was never stopped, bit for bit.

A SIGKILL runs no handler and no ``finally``: what survives it is only what the code
put on disk in a safe order (atomic renames, a lock the OS drops, partial writes that
the next run recognises and deletes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import gankit
from gankit.runs.checkpoint import list_checkpoints, load_checkpoint

SRC = Path(gankit.__file__).resolve().parents[1]

#: How many times the run is killed (3 while it trains, 3 while it saves by default);
#: GANKIT_KILL_ROUNDS=40 for a longer soak.
ROUNDS = int(os.environ.get("GANKIT_KILL_ROUNDS", "6"))

#: A toy MLP on one thread (40-100 steps/s on a busy 2-core machine) with a checkpoint
#: every 2 steps, so that a good share of the time is spent saving.
CONFIG = {
    "name": "killed",
    "model": {"name": "gan", "latent_dim": 4, "hidden_dim": 16, "n_layers": 2},
    "data": {"name": "ring", "n_train": 512, "n_test": 128},
    "train": {
        "steps": 160,
        "batch_size": 16,
        "threads": 1,
        "log_every": 10,
        "sample_every": 1_000_000,
        "ckpt_every": 2,
        "keep_checkpoints": 2,
        "progress": False,
    },
}


def newest_step(run: Path) -> int:
    found = list_checkpoints(run / "checkpoints")
    return found[-1][0] if found else 0


def partial_writes(run: Path) -> list[Path]:
    return [p for p in run.rglob("*.tmp")]


def kill_once(config: Path, runs: Path, rng: random.Random, during_save: bool) -> str:
    """Start (or resume) the run, wait until it has saved a new checkpoint, then SIGKILL
    it: after a random delay, or the moment a checkpoint write is under way. Returns
    what happened: "finished", or "killed" / "killed mid-save"."""
    run = runs / "killed"
    start = newest_step(run)
    what = ["--resume", "--name", "killed"] if start else [str(config)]
    command = [sys.executable, "-m", "gankit", "train", *what, "--runs-dir", str(runs)]
    command.append("--no-progress")
    proc = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while newest_step(run) <= start and proc.poll() is None:
        assert time.time() < deadline, "the run made no progress"
        time.sleep(0.01)
    if during_save:
        while proc.poll() is None and not any((run / "checkpoints").glob(".*.tmp")):
            time.sleep(0.0005)
    else:
        time.sleep(rng.uniform(0.0, 0.4))
    if proc.poll() is not None:
        _, stderr = proc.communicate()
        assert proc.returncode == 0, stderr[-2000:]
        return "finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    mid_save = bool(partial_writes(run))
    return "killed mid-save" if mid_save else "killed"


@pytest.mark.slow  # 6 starts of a torch process: 30-55 s on a shared 2-core machine
def test_sigkill_at_random_moments_then_resume_gives_the_same_weights(tmp_path):
    config = tmp_path / "killed.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    runs = tmp_path / "runs"
    seed = random.randrange(2**32)
    rng = random.Random(seed)

    outcomes = []
    for round_number in range(ROUNDS):
        outcome = kill_once(config, runs, rng, during_save=round_number % 2 == 1)
        outcomes.append(outcome)
        if outcome == "finished":
            break
    if outcomes[-1] != "finished":
        command = [sys.executable, "-m", "gankit", "train", "--resume", "--name", "killed"]
        done = subprocess.run(
            [*command, "--runs-dir", str(runs), "--no-progress"],
            env={**os.environ, "PYTHONPATH": str(SRC)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert outcomes.count("killed") + outcomes.count("killed mid-save") >= ROUNDS // 2, outcomes
    assert "killed mid-save" in outcomes, f"no kill landed inside a save (seed {seed})"

    straight = gankit.train(CONFIG, name="straight", runs_dir=tmp_path / "straight")
    run = runs / "killed"
    killed_state = load_checkpoint(list_checkpoints(run / "checkpoints")[-1][1])
    straight_state = load_checkpoint(straight.checkpoint)
    assert killed_state["step"] == straight_state["step"] == CONFIG["train"]["steps"]
    for key, value in straight_state["model"].items():
        assert torch.equal(value, killed_state["model"][key]), (key, outcomes, seed)
    for name, optimizer in straight_state["optimizers"].items():
        for index, slot in optimizer["state"].items():
            for key, value in slot.items():
                killed_value = killed_state["optimizers"][name]["state"][index][key]
                assert torch.equal(value, killed_value), (name, key, seed)
    assert not partial_writes(run), partial_writes(run)
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").open()]
    assert logged == list(range(10, CONFIG["train"]["steps"] + 1, 10))
