"""``gankit train --nproc 2``: a signal stops the launcher and every worker after rank 0
saves, and a user error is one line with exit code 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gankit

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _start(runs: Path, *extra: str, new_group: bool = False) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gankit", "train", "gan-ring", "--nproc", "2",
        "--runs-dir", str(runs), "--no-progress",
        "--set", "train.steps=1000000", "--set", "train.log_every=5",
        "--set", "train.ckpt_every=1000000", "--set", "train.sample_every=1000000", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=new_group,
    )  # fmt: skip


def _wait_for_training(runs: Path, launcher: subprocess.Popen) -> list[int]:
    """Wait until rank 0 has logged a few steps; returns the workers' process ids."""
    metrics = runs / "gan-ring" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert launcher.poll() is None, launcher.communicate()
        assert time.monotonic() < deadline, "training did not start within 120 s"
        time.sleep(0.2)
    children = subprocess.run(
        ["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True
    ).stdout.split()
    return [int(pid) for pid in children]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow  # over 5 s: the default suite keeps under its 10-minute budget
@pytest.mark.parametrize(
    ("signum", "code", "group"),
    [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)],
    ids=["SIGTERM to the launcher", "Ctrl-C to the process group"],
)
def test_a_signal_stops_every_worker_after_rank_0_saves(tmp_path, signum, code, group):
    runs = tmp_path / "runs"
    launcher = _start(runs, new_group=group)
    workers = _wait_for_training(runs, launcher)
    assert len(workers) == 2, workers
    if group:  # a terminal's Ctrl-C reaches the launcher and the workers alike
        os.killpg(launcher.pid, signum)
    else:
        launcher.send_signal(signum)
    _, stderr = launcher.communicate(timeout=60)
    assert launcher.returncode == code, stderr
    assert not [pid for pid in workers if _alive(pid)], "workers outlived the launcher"
    # one line from rank 0, naming the step it saved
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"stopped by {signum.name} at step "), stderr
    step = int(lines[0].split(" at step ")[1].split(";")[0])
    checkpoints = sorted(p.name for p in (runs / "gan-ring" / "checkpoints").iterdir())
    assert checkpoints == [f"step_{step:08d}.pt"]
    resumed = gankit.train(
        "gan-ring", [f"train.steps={step + 3}", "train.progress=false"], runs_dir=runs, resume=True
    )
    assert resumed.step == step + 3


def test_a_user_error_under_nproc_is_one_line(tmp_path):
    runs = tmp_path / "runs"
    (runs / "gan-ring").mkdir(parents=True)
    (runs / "gan-ring" / "notes.txt").write_text("a run folder already in use")
    done = subprocess.run(
        [sys.executable, "-m", "gankit", "train", "gan-ring", "--nproc", "2",
         "--runs-dir", str(runs), "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert (
        done.stderr.startswith("gankit: error: run directory ") and "already exists" in done.stderr
    )


def test_an_error_of_another_rank_alone_is_named_with_its_rank(monkeypatch, capsys):
    # rank 0 did not meet it (the launcher would have ended this rank first), so after
    # the wait this rank says it, with its rank; rank 0's own line has no rank
    import typer

    from gankit import cli_options, errors

    monkeypatch.setattr(errors, "OTHER_RANK_GRACE_S", 0.0)
    for rank, expected in [
        ("1", "gankit: error: rank 1: bad thing\n"),
        ("0", "gankit: error: bad thing\n"),
    ]:
        monkeypatch.setenv("RANK", rank)
        with pytest.raises(typer.Exit) as exit_info:
            cli_options._fail("bad thing", 2)
        assert exit_info.value.exit_code == 2
        assert capsys.readouterr().err == expected
