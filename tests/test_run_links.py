"""A run folder someone hands you cannot reach outside itself.

A link is planted at every path a run folder holds, pointing at a file or a folder
outside the run; then every command that reads or writes runs is run on it. Nothing
outside may be written, deleted or read into what the command prints or writes: each
command either works without the link or stops with one line. docs/trust.md lists
these promises.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest
import yaml

import gankit
from conftest import cli, tiny_config

SECRET = b"SECRET-7f3a9c not for any page"
RUN = "handed"

#: Every path a run folder holds (a toy run: its previews, snapshots and pictures too).
FILES = [
    "train.lock",
    "config.yaml",
    "metrics.jsonl",
    "fixed_noise.pt",
    "loss_curves.png",
    "eval.json",
    "checkpoints/step_00000020.pt",
    "samples/step_00000020.png",
    "snapshots/step_00000020.pt",
    "explore/grid_seed0.png",
    "export/step_00000020.safetensors",
]
FOLDERS = ["checkpoints", "samples", "snapshots", "explore", "export", "tensorboard"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A finished toy run with every file a run can hold, made once."""
    runs = tmp_path_factory.mktemp("pristine") / "runs"
    gankit.train(tiny_config(), name=RUN, runs_dir=runs)
    run = runs / RUN
    assert cli("explore", RUN, "--what", "grid", "--runs-dir", runs).exit_code == 0
    assert cli("export", RUN, "--format", "safetensors", "--runs-dir", runs).exit_code == 0
    (run / "eval.json").write_text('{"step": 20, "scores": {"kl": 1.0}}\n')
    (run / "tensorboard").mkdir()
    (run / "train.lock").write_text("")
    return runs


def outside_state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def plant(tmp_path: Path, pristine: Path, entry: str, copy: bool = False) -> tuple[Path, Path]:
    """A copy of the pristine run whose ``entry`` is a link to something outside it:
    a file holding :data:`SECRET` (or, with ``copy``, the very bytes the run held, so
    that a writer that appends or skips an unchanged file is caught too), or a folder
    holding another run's files of that kind and the secret. Returns (runs folder, the
    outside folder)."""
    runs = tmp_path / "runs"
    shutil.copytree(pristine, runs)
    outside = tmp_path / "outside"
    outside.mkdir()
    planted = runs / RUN / entry
    if planted.is_dir():
        target = outside / "victim-folder"
        shutil.copytree(planted, target)
        (target / "secret.txt").write_bytes(SECRET)
        shutil.rmtree(planted)
    else:
        target = outside / "victim-file"
        target.write_bytes(planted.read_bytes() if copy and planted.exists() else SECRET)
        planted.unlink(missing_ok=True)
    planted.symlink_to(target)
    return runs, outside


def commands(runs: Path, tmp_path: Path) -> list[list[str]]:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    where = ["--runs-dir", str(runs)]
    return [
        ["info", RUN, *where],
        ["runs", str(runs)],
        ["report", RUN, "--out", str(tmp_path / "page.html"), *where],
        ["sample", RUN, "--n", "4", *where],
        ["explore", RUN, "--what", "grid", "--seed", "1", *where],
        ["explore", RUN, "--what", "toy", "--animate", *where],
        ["export", RUN, "--format", "safetensors", "--overwrite", *where],
        ["eval", RUN, "--n", "128", "--overwrite", *where],
        ["train", "--resume", "--name", RUN, "--set", "train.steps=30", "--no-progress", *where],
        ["train", str(config), "--name", RUN, "--overwrite", "--no-progress", *where],
    ]


def assert_worked_or_one_line(result, command) -> None:
    assert "Traceback" not in result.output, (command, result.output)
    if result.exit_code != 0:
        lines = result.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("gankit: error: ")]
        assert result.exit_code == 2 and len(errors) == 1, (command, result.output)


def assert_not_leaked(text: str, command) -> None:
    for form in (SECRET.decode(), base64.b64encode(SECRET).decode()):
        assert form not in text, command


@pytest.mark.parametrize(
    ("entry", "copy"), [(e, False) for e in FILES + FOLDERS] + [(e, True) for e in FILES]
)
def test_no_command_reaches_outside_the_run_through_a_link(tmp_path, pristine, entry, copy):
    runs, outside = plant(tmp_path, pristine, entry, copy)
    before = outside_state(outside)
    for command in commands(runs, tmp_path):
        result = cli(*command)
        assert_worked_or_one_line(result, command)
        assert_not_leaked(result.output, command)
        assert outside_state(outside) == before, (entry, command)
    page = tmp_path / "page.html"
    if page.exists():
        assert_not_leaked(page.read_text(), "report")
    for path in (runs / RUN).rglob("*"):  # nothing read through a link was copied in
        if path.is_file() and not path.is_symlink():
            assert SECRET not in path.read_bytes(), path


def test_a_link_in_a_run_is_named_in_one_line(tmp_path, pristine):
    runs, _ = plant(tmp_path, pristine, "checkpoints")
    result = cli("train", "--resume", "--name", RUN, "--set", "train.steps=30", "--runs-dir", runs)
    assert result.exit_code == 2
    assert "is a link" in result.stderr and "checkpoints" in result.stderr


def test_the_run_folder_itself_may_be_a_link(tmp_path, pristine):
    """A user may keep runs on another disk: only what lies below the run is checked."""
    elsewhere = tmp_path / "disk" / RUN
    shutil.copytree(pristine / RUN, elsewhere)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / RUN).symlink_to(elsewhere)
    result = cli("train", "--resume", "--name", RUN, "--set", "train.steps=30",
                 "--no-progress", "--runs-dir", runs)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (elsewhere / "checkpoints" / "step_00000030.pt").is_file()
    assert os.path.islink(runs / RUN)


@pytest.mark.parametrize(
    "mine", ["checkpoints/best.pt", "samples/notes.txt", "explore/keep.png", "export/mine.onnx"]
)
def test_overwrite_checks_every_level_and_deletes_nothing_of_the_users(tmp_path, pristine, mine):
    runs = tmp_path / "runs"
    shutil.copytree(pristine, runs)
    (runs / RUN / mine).write_bytes(b"the user's own")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    result = cli("train", config, "--name", RUN, "--overwrite", "--runs-dir", runs)
    assert result.exit_code == 2 and mine in result.stderr, result.output
    assert (runs / RUN / mine).read_bytes() == b"the user's own"


def test_deleting_a_run_leaves_what_gankit_did_not_write(tmp_path, pristine):
    """The one deleter of runs deletes by name, so even a wrong check before it loses
    nothing of the user's."""
    from gankit.runs.folder import delete_run

    run = tmp_path / RUN
    shutil.copytree(pristine / RUN, run)
    (run / "explore" / "keep.png").write_bytes(b"mine")
    (run / "checkpoints" / "best.pt").write_bytes(b"mine")
    assert delete_run(run) == ["checkpoints/best.pt", "explore/keep.png"]
    left = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert left == ["checkpoints/best.pt", "explore/keep.png"]


def test_explore_pictures_are_listed_as_gankits(tmp_path, pristine):
    """What gankit explore drew is gankit's, so --overwrite may replace the run."""
    runs = tmp_path / "runs"
    shutil.copytree(pristine, runs)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    result = cli("train", config, "--name", RUN, "--overwrite", "--no-progress", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert not (runs / RUN / "explore").exists()


def test_translate_never_replaces_its_own_inputs(tmp_path):
    """``translate --input D --out D --overwrite`` used to replace the inputs with their
    translations; an output that is one of the inputs is refused before any is written."""
    from PIL import Image

    from gankit.explore.translate import save_planned

    folder = tmp_path / "pictures"
    folder.mkdir()
    inputs = []
    for index in range(2):
        path = folder / f"{index}.png"
        Image.new("L", (8, 8), color=index * 100).save(path)
        inputs.append(path)
    before = [p.read_bytes() for p in inputs]
    planned = {
        folder / "0.png": Image.new("L", (8, 8)),
        tmp_path / "new.png": Image.new("L", (8, 8)),
    }
    with pytest.raises(gankit.GankitError, match="is the input"):
        save_planned(planned, overwrite=True, inputs=inputs)
    assert [p.read_bytes() for p in inputs] == before
    assert not (tmp_path / "new.png").exists()
