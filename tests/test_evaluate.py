"""``gankit eval`` and ``train.eval_every``: scores next to the real floor."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

import gankit
from conftest import tiny_config
from gankit.cli import app
from gankit.errors import GankitError
from gankit.metrics.evaluate import Scorer, parse_metrics
from gankit.runs.checkpoint import list_checkpoints, load_checkpoint

runner = CliRunner()


def test_eval_toy_run_prints_scores_and_floor(tmp_path):
    gankit.train(tiny_config(), runs_dir=tmp_path)
    result = runner.invoke(app, ["eval", "tiny-gan", "--runs-dir", str(tmp_path), "--n", "200"])
    assert result.exit_code == 0, result.output
    assert "real floor" in result.output and "modes" in result.output
    report = json.loads((tmp_path / "tiny-gan" / "eval.json").read_text())
    assert report["step"] == 20 and report["n"] == 200
    assert set(report["scores"]) == {"modes", "high_quality", "reverse_kl", "w1"}
    # real data covers all 8 modes with ~99 % of samples within 3 std; 20 steps do not
    assert report["floor"]["modes"] == 8 and report["floor"]["high_quality"] > 0.95
    assert report["scores"]["w1"] > report["floor"]["w1"]
    assert report["seconds"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--metrics", "fid"],
            "unknown metric 'fid'; valid: dc, fd, fd_inf, is, kid, modes, pr, som, som_toy, w1",
        ),
        (
            ["--metrics", "fd"],
            "metric 'fd' does not apply to toy data; valid here: modes, som_toy, w1",
        ),
        (["--split", "val"], "--split must be train or test"),
    ],
)
def test_eval_bad_input(tmp_path, args, message):
    gankit.train(tiny_config(), runs_dir=tmp_path)
    result = runner.invoke(app, ["eval", "tiny-gan", "--runs-dir", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_eval_without_checkpoints_says_so(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    result = runner.invoke(app, ["eval", str(run)])
    assert result.exit_code == 2 and "has no checkpoint yet" in result.stderr


def test_eval_every_logs_scores_without_changing_training(tmp_path):
    plain = gankit.train(tiny_config(), name="plain", runs_dir=tmp_path)
    scored = gankit.train(tiny_config(eval_every=10, eval_n=300), name="scored", runs_dir=tmp_path)
    rows = [json.loads(r) for r in (scored.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval_modes" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert {"eval_w1", "eval_high_quality", "eval_seconds"} <= set(evals[0])
    a = load_checkpoint(list_checkpoints(plain.run_dir / "checkpoints")[-1][1])["model"]
    b = load_checkpoint(list_checkpoints(scored.run_dir / "checkpoints")[-1][1])["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_parse_metrics_defaults_and_dedup():
    assert parse_metrics(None, "toy") == ("modes", "w1")
    assert parse_metrics("fd, kid,fd", "image") == ("fd", "kid")
    with pytest.raises(GankitError, match="is empty"):
        parse_metrics(",", "image")


def test_image_eval_scores_real_data_at_the_floor(evaluator_cache):
    """On digits: the floor is small, and noise makes every distance worse."""
    bundle = gankit.load_dataset("digits")
    scorer = Scorer(bundle, "fd,kid,pr,dc,is", n=300, train_evaluator=True)
    floor = scorer.floor()
    real = bundle.train.tensors[0][:300]
    noisy = scorer.score((real + 0.8 * torch.randn_like(real)).clamp(-1, 1))
    assert noisy["fd"] > 5 * max(floor["fd"], 1e-3)
    assert noisy["kid"] > floor["kid"]
    assert noisy["precision"] < floor["precision"]
    assert 5 < floor["is"] <= 10  # ten well-separated classes
