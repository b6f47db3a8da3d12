"""Trust: what goes wrong around a run, met the way a user meets it.

Each test drives the ``gankit`` command (typer's runner in this process, or a real
``python -m gankit`` process where a second process or a kill is the point) on tiny
runs, with files the test damages or builds by hand. docs/trust.md lists the promise
each test keeps.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit.errors import GankitError
from gankit.models.gan import GAN
from gankit.runs.checkpoint import list_checkpoints, load_checkpoint

SRC = Path(gankit.__file__).resolve().parents[1]


def write_config(path: Path, **train) -> Path:
    path.write_text(yaml.safe_dump(tiny_config(**train)))
    return path


def trained(runs: Path, name: str = "tiny-gan", **train) -> Path:
    """A finished tiny run (20 steps, checkpoints at 10 and 20)."""
    gankit.train(tiny_config(**train), name=name, runs_dir=runs)
    return runs / name


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path, with its bytes; but the lock files,
    which name the last process that tried the run."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "train.lock"
    }


def final_weights(run: Path) -> dict:
    return load_checkpoint(list_checkpoints(run / "checkpoints")[-1][1])


def assert_same_weights(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["optimizers"].keys() == b["optimizers"].keys()
    for name in a["optimizers"]:
        for index, slot in a["optimizers"][name]["state"].items():
            for key, value in slot.items():
                assert torch.equal(value, b["optimizers"][name]["state"][index][key]), (name, key)


def start_training(config: Path, runs: Path, *args: str) -> subprocess.Popen:
    """``python -m gankit train`` as a user starts it, on this checkout's code."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "gankit", "train", str(config), "--runs-dir", str(runs)]
    return subprocess.Popen(
        [*command, "--no-progress", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


# --- security
class OpensAFile:
    """Unpickled in full, this object calls ``open(marker, "w")``: the file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def booby_trap(checkpoint: Path, marker: Path) -> None:
    """Rewrite a real checkpoint with a payload inside; fully loaded, it still works."""
    state = torch.load(checkpoint, weights_only=True)
    state["payload"] = OpensAFile(marker)
    torch.save(state, checkpoint)


@pytest.fixture(scope="module")
def trapped_run(tmp_path_factory):
    """A run whose newest checkpoint carries a payload (the commands only read it)."""
    folder = tmp_path_factory.mktemp("trapped")
    run = trained(folder / "runs")
    marker = folder / "MARKER"
    booby_trap(list_checkpoints(run / "checkpoints")[-1][1], marker)
    return run, marker


@pytest.mark.parametrize(
    "command",
    [
        ["sample", "tiny-gan"],
        ["eval", "tiny-gan"],
        ["explore", "tiny-gan", "--what", "grid"],
        ["translate", "tiny-gan", "--input", "in.png", "--out", "out"],
        ["train", "--resume", "--name", "tiny-gan", "--set", "train.steps=30"],
    ],
)
def test_a_checkpoint_carrying_code_never_runs_it(trapped_run, command):
    run, marker = trapped_run
    result = cli(*command, "--runs-dir", run.parent)
    one_line_error(result, "step_00000020.pt", "(io.open)", "gankit checkpoint upgrade")
    assert not marker.exists()


def test_load_run_never_runs_a_checkpoints_code(trapped_run):
    run, marker = trapped_run
    with pytest.raises(GankitError, match="holds Python objects"):
        gankit.load_run(run)
    assert not marker.exists()


def test_upgrade_runs_a_file_only_when_trusted(tmp_path):
    run = trained(tmp_path / "runs")
    marker = tmp_path / "MARKER"
    booby_trap(list_checkpoints(run / "checkpoints")[-1][1], marker)
    one_line_error(cli("checkpoint", "upgrade", run), "--trust")
    assert not marker.exists()
    # the payload is live: the one path that trusts the file runs it (and then finds
    # that the object it made has no plain form, and leaves the file as it was)
    newest = list_checkpoints(run / "checkpoints")[-1][1]
    before = newest.read_bytes()
    one_line_error(cli("checkpoint", "upgrade", run, "--trust"), "no plain form")
    assert marker.exists()
    assert newest.read_bytes() == before


def test_every_torch_load_in_the_package_is_weights_only():
    """Read from the source: each torch.load passes weights_only=True, but the one in
    upgrade_checkpoint, behind --trust."""
    unsafe = []
    loads = 0
    for path in sorted((SRC / "gankit").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for call in ast.walk(function):
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "load"
                    and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == "torch"
                ):
                    continue
                loads += 1
                safe = any(
                    k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value
                    for k in call.keywords
                )
                if not safe:
                    unsafe.append((path.name, function.name))
    assert loads >= 5
    assert sorted(set(unsafe)) == [("checkpoint.py", "upgrade_checkpoint")]


def as_format_1(checkpoint: Path) -> None:
    """Rewrite a checkpoint as gankit wrote them before format 2: numpy's and Python's
    random states as their own tuples (numpy arrays inside)."""
    state = torch.load(checkpoint, weights_only=True)
    numpy_state, python_state = state["rng"]["numpy"], state["rng"]["python"]
    state["rng"]["numpy"] = (
        "MT19937",
        numpy_state["keys"].numpy().astype(np.uint32),
        numpy_state["pos"],
        numpy_state["has_gauss"],
        numpy_state["cached_gaussian"],
    )
    state["rng"]["python"] = (
        python_state["version"],
        tuple(python_state["state"].tolist()),
        python_state["gauss_next"],
    )
    state["format"] = 1
    torch.save(state, checkpoint)


def test_old_checkpoints_say_how_to_convert_and_convert_exactly(tmp_path):
    runs = tmp_path / "runs"
    straight = trained(runs, "straight")
    old = trained(runs, "old", steps=10)
    checkpoint = old / "checkpoints" / "step_00000010.pt"
    as_format_1(checkpoint)
    old_bytes = checkpoint.read_bytes()
    one_line_error(cli("sample", old), "numpy", f"gankit checkpoint upgrade {checkpoint} --trust")
    one_line_error(
        cli("train", "--resume", "--name", "old", "--runs-dir", runs, "--set", "train.steps=20"),
        "gankit checkpoint upgrade",
    )

    result = cli("checkpoint", "upgrade", "old", "--runs-dir", runs, "--trust")
    assert result.exit_code == 0, result.output
    assert "upgraded" in result.output
    assert (old / "checkpoints" / "step_00000010.pt.bak").read_bytes() == old_bytes
    assert load_checkpoint(checkpoint)["format"] == 2
    again = cli("checkpoint", "upgrade", checkpoint, "--trust")
    assert again.exit_code == 0 and "already in the current format" in again.output

    # numpy's and Python's random states survived the conversion: resuming gives the
    # weights of the run that was never stopped
    result = cli(
        "train", "--resume", "--name", "old", "--runs-dir", runs, "--set", "train.steps=20"
    )
    assert result.exit_code == 0, result.output
    assert_same_weights(final_weights(straight), final_weights(old))


# --- names
BAD_NAMES = ["..", ".", "/tmp/gankit-absolute", "a/b", "..\\x", "n" * 256]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    runs = tmp_path / "runs" / "inner"
    runs.mkdir(parents=True)
    config = write_config(tmp_path / "tiny.yaml")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        result = cli("train", config, "--name", name, "--runs-dir", runs, *extra)
        one_line_error(result, "is not a folder name", "at most 250 bytes")
    one_line_error(cli("train", "--resume", "--name", name, "--runs-dir", runs), "folder name")
    assert snapshot(tmp_path) == before
    assert not Path("/tmp/gankit-absolute").exists()


def test_resume_never_trains_outside_the_runs_folder(tmp_path):
    outside = trained(tmp_path / "outside", "run")
    before = snapshot(outside)
    (tmp_path / "runs").mkdir()
    result = cli(
        "train",
        "--resume",
        "--name",
        "../outside/run",
        "--runs-dir",
        tmp_path / "runs",
        "--set",
        "train.steps=40",
    )
    one_line_error(result, "'../outside/run' is not a folder name")
    assert snapshot(outside) == before


def test_runs_dir_that_is_a_file_is_one_line(tmp_path):
    config = write_config(tmp_path / "tiny.yaml")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    one_line_error(cli("train", config, "--runs-dir", a_file), "is a file, not a folder")
    one_line_error(
        cli("train", config, "--runs-dir", a_file / "runs"), f"is inside '{a_file}'", "a file"
    )
    assert a_file.read_text() == "mine"


# --- nothing lost
@pytest.mark.parametrize("name", ["..", "."])
def test_overwrite_with_dot_names_deletes_nothing(tmp_path, name, monkeypatch):
    """``--name .. --overwrite`` used to empty the folder above the runs folder, and
    ``--name . --overwrite`` every other run."""
    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True)
    (home / "thesis.tex").write_text("years of work")
    trained(home / "runs", "other")
    monkeypatch.chdir(home)
    before = snapshot(home)
    config = write_config(tmp_path / "tiny.yaml")
    one_line_error(cli("train", config, "--name", name, "--overwrite"), "not a folder name")
    assert snapshot(home) == before


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path):
    """``--runs-dir ~ --name Documents --overwrite`` once deleted a user's documents."""
    home = tmp_path / "home"
    (home / "Documents" / "photos").mkdir(parents=True)
    (home / "Documents" / "letter.txt").write_text("dear")
    (home / "Documents" / "photos" / "cat.png").write_bytes(b"\x89PNG")
    config = write_config(tmp_path / "tiny.yaml")
    before = snapshot(home)
    result = cli("train", config, "--runs-dir", home, "--name", "Documents", "--overwrite")
    one_line_error(result, "replaces only a gankit run", "no config.yaml and no checkpoint")
    assert snapshot(home) == before
    # a run the user put their own file into is not replaced either
    run = trained(home, "mine")
    (run / "notes.md").write_text("lr 2e-4 was better")
    before = snapshot(home)
    result = cli("train", config, "--runs-dir", home, "--name", "mine", "--overwrite")
    one_line_error(result, "holds files gankit did not write (notes.md)")
    assert snapshot(home) == before


def test_overwrite_checks_every_input_before_touching_the_old_run(tmp_path):
    run = trained(tmp_path)
    before = snapshot(run)
    config = write_config(tmp_path / "tiny.yaml")
    result = cli(
        "train",
        config,
        "--runs-dir",
        tmp_path,
        "--overwrite",
        "--set",
        "train.batch_size=50000",  # within the config's bound, larger than the data
    )
    one_line_error(result, "train.batch_size 50000", "larger than the dataset")
    assert snapshot(run) == before


def test_overwrite_deletes_the_old_run_only_after_the_first_checkpoint(tmp_path, monkeypatch):
    run = trained(tmp_path)
    old = run.with_name("tiny-gan~old")
    seen = {}
    original = GAN.train_step

    def watch(self, batch, step):
        seen[step] = old.exists()
        return original(self, batch, step)

    monkeypatch.setattr(GAN, "train_step", watch)
    config = write_config(tmp_path / "tiny.yaml", steps=8, ckpt_every=4)
    result = cli("train", config, "--runs-dir", tmp_path, "--overwrite")
    assert result.exit_code == 0, result.output
    # kept aside through steps 1-4, deleted once step 4's checkpoint was on disk
    assert [seen[s] for s in range(8)] == [True] * 4 + [False] * 4
    assert not old.exists()
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [4, 8]


def test_overwrite_that_fails_before_its_first_checkpoint_puts_the_old_run_back(
    tmp_path, monkeypatch
):
    run = trained(tmp_path)
    before = snapshot(run)
    original = GAN.train_step

    def diverge(self, batch, step):
        stats = original(self, batch, step)
        if step == 2:
            stats["loss_d"] = float("nan")
        return stats

    monkeypatch.setattr(GAN, "train_step", diverge)
    config = write_config(tmp_path / "tiny.yaml")
    result = cli("train", config, "--runs-dir", tmp_path, "--overwrite")
    one_line_error(result, "diverged at step 3", code=1)
    assert snapshot(run) == before
    assert not run.with_name("tiny-gan~old").exists()


def test_overwrite_killed_before_its_first_checkpoint_keeps_the_old_run(tmp_path):
    runs = tmp_path / "runs"
    run = trained(runs)
    before = snapshot(run)
    long = write_config(tmp_path / "long.yaml", steps=10**6, ckpt_every=10**6, log_every=1)
    proc = start_training(long, runs, "--overwrite")
    old = run.with_name("tiny-gan~old")
    wait_for(lambda: old.exists() and (run / "metrics.jsonl").exists(), proc)
    proc.kill()
    proc.wait()
    assert snapshot(old) == before, "the old run is whole, set aside"

    config = write_config(tmp_path / "tiny.yaml")
    one_line_error(cli("train", config, "--runs-dir", runs), "interrupted --overwrite", "~old")
    result = cli("train", config, "--runs-dir", runs, "--overwrite", "--set", "train.steps=10")
    assert result.exit_code == 0, result.output
    assert not old.exists()
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [10]


def test_a_full_disk_at_save_time_is_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    config = write_config(tmp_path / "tiny.yaml")
    real_save = torch.save

    def disk_fills_at_step_20(obj, file, *args, **kwargs):
        if "step_00000020" in str(getattr(file, "name", file)):
            file.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_fills_at_step_20)
    result = cli("train", config, "--runs-dir", tmp_path)
    one_line_error(result, "no space left", "step_00000010.pt (step 10)", "--resume")
    checkpoints = tmp_path / "tiny-gan" / "checkpoints"
    assert [s for s, _ in list_checkpoints(checkpoints)] == [10]
    assert load_checkpoint(checkpoints / "step_00000010.pt")["step"] == 10
    assert not list(tmp_path.rglob("*.tmp"))
    monkeypatch.setattr(torch, "save", real_save)  # space freed
    result = cli("train", "--resume", "--name", "tiny-gan", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.output


# --- one writer
def test_a_second_writer_is_refused_and_a_killed_ones_lock_is_not(tmp_path):
    runs = tmp_path / "runs"
    long = write_config(tmp_path / "long.yaml", steps=10**6, ckpt_every=5, log_every=1)
    proc = start_training(long, runs)
    run = runs / "tiny-gan"
    wait_for(lambda: list_checkpoints(run / "checkpoints"), proc)

    def a_few_more_steps() -> tuple[str, str]:
        """Were the second writer let through, it would stop soon, not train for hours."""
        return ("--set", f"train.steps={list_checkpoints(run / 'checkpoints')[-1][0] + 3}")

    holder = f"process {proc.pid}"
    resume = ("train", "--resume", "--name", "tiny-gan", "--runs-dir", runs)
    one_line_error(cli(*resume, *a_few_more_steps()), holder, "train.lock")
    overwrite = ("train", long, "--runs-dir", runs, "--overwrite", "--set", "train.steps=3")
    one_line_error(cli(*overwrite), holder)
    one_line_error(cli("checkpoint", "upgrade", run, "--trust"), holder)
    assert not run.with_name("tiny-gan~old").exists()
    proc.kill()
    proc.wait()
    assert holder in (run / "train.lock").read_text(), "the lock file stays, the lock does not"
    result = cli(*resume, *a_few_more_steps())
    assert result.exit_code == 0, result.output


# --- damaged run files
def test_a_partial_last_metrics_line_stops_neither_info_nor_resume(tmp_path):
    run = trained(tmp_path)
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 25, "loss_d": 1.3')  # killed mid-line
    result = cli("info", run)
    assert result.exit_code == 0, result.output
    assert "latest log:  step 20" in result.output
    result = cli(
        "train", "--resume", "--name", "tiny-gan", "--runs-dir", tmp_path, "--set", "train.steps=30"
    )
    assert result.exit_code == 0, result.output
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [5, 10, 15, 20, 25, 30]


def test_a_truncated_fixed_noise_file_is_made_again_from_the_seed(tmp_path):
    run = trained(tmp_path)
    path = run / "fixed_noise.pt"
    original = torch.load(path, weights_only=True)
    path.write_bytes(path.read_bytes()[:100])
    result = cli(
        "train", "--resume", "--name", "tiny-gan", "--runs-dir", tmp_path, "--set", "train.steps=30"
    )
    assert result.exit_code == 0, result.output
    assert "fixed_noise.pt' cannot be read" in result.stderr and "from the seed" in result.stderr
    remade = torch.load(path, weights_only=True)
    assert remade.keys() == original.keys()
    assert all(torch.equal(remade[k], original[k]) for k in original)


@pytest.mark.parametrize("damage", ["empty", "missing"])
def test_an_empty_or_missing_config_never_becomes_the_default_preset(tmp_path, damage):
    straight = trained(tmp_path, "straight", steps=30)
    run = trained(tmp_path)
    if damage == "empty":
        (run / "config.yaml").write_text("")
    else:
        (run / "config.yaml").unlink()
    result = cli("info", run)
    assert result.exit_code == 0, result.output
    assert "model:       gan on ring" in result.output
    assert f"config.yaml' is {damage}" in result.stderr and "step_00000020.pt" in result.stderr
    result = cli(
        "train", "--resume", "--name", "tiny-gan", "--runs-dir", tmp_path, "--set", "train.steps=30"
    )
    assert result.exit_code == 0, result.output
    assert_same_weights(final_weights(straight), final_weights(run))
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["name"] == "gan"


def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
    straight = trained(tmp_path, "straight", steps=30)
    run = trained(tmp_path, steps=30)
    newest = run / "checkpoints" / "step_00000030.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    result = cli("sample", run, "--n", 4)
    assert result.exit_code == 0, result.output
    assert "step_00000030.pt' cannot be read" in result.stderr
    assert "using the older 'step_00000020.pt' (step 20)" in result.stderr
    result = cli("train", "--resume", "--name", "tiny-gan", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "step_00000030.pt.damaged").exists()
    assert_same_weights(final_weights(straight), final_weights(run))


def test_orphan_partial_writes_are_cleaned_up_on_resume(tmp_path):
    run = trained(tmp_path)
    orphans = [
        run / "checkpoints" / ".step_00000030.pt.k3j9x_q2.tmp",
        run / ".config.yaml.a8d7s6f5.tmp",
        run / ".metrics.jsonl.zz00zz00.tmp",
    ]
    for orphan in orphans:
        orphan.write_bytes(b"half")
    mine = run / "samples" / "keep.tmp"  # not a name gankit's writes use
    mine.write_text("mine")
    result = cli(
        "train", "--resume", "--name", "tiny-gan", "--runs-dir", tmp_path, "--set", "train.steps=30"
    )
    assert result.exit_code == 0, result.output
    assert not any(orphan.exists() for orphan in orphans)
    assert mine.read_text() == "mine"
    assert not [p for p in run.rglob(".*.tmp")]


def test_random_damage_never_gives_a_traceback(tmp_path):
    """Bytes of the newest checkpoint overwritten at random places: either it still
    loads, or gankit falls back to the older one; never a traceback."""
    run = trained(tmp_path)
    newest = run / "checkpoints" / "step_00000020.pt"
    intact = newest.read_bytes()
    rng = random.Random(0)
    for _ in range(5):
        data = bytearray(intact)
        for _ in range(8):
            data[rng.randrange(len(data))] = rng.randrange(256)
        newest.write_bytes(bytes(data))
        result = cli("sample", run, "--n", 2, "--overwrite")
        assert result.exit_code in (0, 2), result.output
        assert ("Traceback" not in result.output and result.exception is None) or isinstance(
            result.exception, SystemExit
        ), result.exception
