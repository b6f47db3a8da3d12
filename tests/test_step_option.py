"""``--step N``: sample, eval and explore any checkpoint a run keeps."""

from __future__ import annotations

import json

import pytest
import torch

import gankit
from conftest import cli, one_line_error, tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    config = tiny_config(steps=30, keep_checkpoints=2)
    return gankit.train(config, runs_dir=runs).run_dir  # keeps steps 20 and 30


def test_sample_at_a_kept_step_is_that_checkpoints_generator(run, tmp_path):
    old, new = tmp_path / "old.pt", tmp_path / "new.pt"
    assert cli("sample", run, "--n", 8, "--step", 20, "--out", old).exit_code == 0
    assert cli("sample", run, "--n", 8, "--out", new).exit_code == 0
    at_20 = gankit.load_run(run, step=20)
    assert at_20.step == 20 and at_20.checkpoint.name == "step_00000020.pt"
    assert torch.equal(torch.load(old), at_20.sample(8, seed=0))
    assert torch.equal(torch.load(new), gankit.load_run(run).sample(8, seed=0))
    assert not torch.equal(torch.load(old), torch.load(new))


@pytest.mark.parametrize("command", ["sample", "eval", "explore"])
def test_a_step_the_run_does_not_keep_lists_the_kept_ones(run, command):
    result = cli(command, run, "--step", 10)
    one_line_error(result, "keeps no checkpoint of step 10", "kept steps: 20, 30")


def test_eval_and_explore_at_a_kept_step(run):
    result = cli("eval", run, "--step", 20, "--n", 100, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "at step 20" in result.output
    assert json.loads((run / "eval.json").read_text())["step"] == 20
    result = cli("explore", run, "--what", "toy", "--step", 20)
    assert result.exit_code == 0, result.output
    assert list((run / "explore" / "step_00000020").iterdir())
