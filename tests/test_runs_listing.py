"""``gankit runs``: every run of a folder at a glance, with its state."""

from __future__ import annotations

import math

import pytest
import yaml

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit.errors import DivergenceError
from gankit.models.gan import GAN
from gankit.runs.lock import run_lock
from gankit.runs.summary import summarize_runs


@pytest.fixture
def runs(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    done = gankit.train(tiny_config(steps=10), name="done", runs_dir=folder).run_dir
    assert cli("eval", done, "--n", 100).exit_code == 0
    scored = tiny_config(steps=10, eval_every=10, eval_n=200)
    gankit.train(scored, name="scored", runs_dir=folder)
    stopped = gankit.train(tiny_config(steps=10), name="stopped", runs_dir=folder).run_dir
    config = yaml.safe_load((stopped / "config.yaml").read_text())
    config["train"]["steps"] = 30  # asked for more than its newest checkpoint has
    (stopped / "config.yaml").write_text(yaml.safe_dump(config))
    gankit.train(tiny_config(steps=10), name="training", runs_dir=folder)

    def nan_step(self, batch, step):
        return {"loss_d": math.nan if step >= 12 else 1.0, "loss_g": 1.0}

    with monkeypatch.context() as patch:
        patch.setattr(GAN, "train_step", nan_step)
        with pytest.raises(DivergenceError):
            gankit.train(tiny_config(steps=20), name="diverged", runs_dir=folder)
    return folder


def test_each_state_is_told_apart(runs):
    with run_lock(runs / "training"):  # as a training process holds it
        rows = {row.path.name: row for row in summarize_runs(runs)}
        assert rows["training"].state == "training"
    assert summarize_runs(runs)[-1].state == "done"  # "training", once released
    assert {name: row.state for name, row in rows.items()} == {
        "done": "done",
        "scored": "done",
        "stopped": "stopped",
        "training": "training",
        "diverged": "diverged",
    }
    assert rows["stopped"].steps_done == 10 and rows["stopped"].steps == 30
    assert rows["diverged"].steps_done == 10 and rows["diverged"].losses == {
        "loss_d": 1.0,
        "loss_g": 1.0,
    }
    assert rows["done"].model == "gan" and rows["done"].data == "ring"
    assert rows["done"].headline.startswith("modes ") and "(eval, step 10)" in rows["done"].headline
    assert rows["scored"].headline.startswith("modes ") and "(step 10)" in rows["scored"].headline
    assert rows["stopped"].headline is None


def test_the_command_prints_one_row_per_run(runs):
    result = cli("runs", runs)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "run",
        "model",
        "data",
        "steps",
        "state",
        "latest",
        "losses",
        "latest",
        "eval",
    ]
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert set(by_name) == {"done", "scored", "stopped", "training", "diverged"}
    assert "10/30" in by_name["stopped"] and " stopped " in by_name["stopped"]
    assert " diverged " in by_name["diverged"] and "loss_d 1" in by_name["diverged"]


def test_not_a_folder_is_one_line(tmp_path):
    one_line_error(cli("runs", tmp_path / "nowhere"), "is not a folder of runs")
    (tmp_path / "empty").mkdir()
    assert "no runs in" in cli("runs", tmp_path / "empty").output
