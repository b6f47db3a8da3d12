"""Small things a user meets in the first hour: --version, file modes, strict JSON logs,
eval.json kept, near-miss keys, a recipe's data options kept across data.name, and
``gankit datasets``."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit.config import resolve_config
from gankit.files import atomic_save, atomic_write_text, finite_json


def strict_json(line: str):
    """``json.loads`` that refuses NaN and Infinity, as every JSON parser but Python's does."""

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture
def umask():
    """Set the process umask for a test, and put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def test_version():
    result = cli("--version")
    assert result.exit_code == 0 and result.output.strip() == f"gankit {gankit.__version__}"


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_save({"w": 1}, tmp_path / "b.pt")
    for name in ("a.txt", "b.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_checkpoints_are_readable_by_the_group_under_the_usual_umask(tmp_path, umask):
    umask(0o022)
    result = gankit.train(tiny_config(steps=10), runs_dir=tmp_path)
    for path in [
        result.checkpoint,
        result.run_dir / "config.yaml",
        result.run_dir / "fixed_noise.pt",
    ]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_finite_json_writes_null_and_names_what_was_not_finite():
    row = {"step": 5, "loss": 0.5, "eval_kl": math.inf, "eval_w1": -math.inf, "x": math.nan}
    parsed = strict_json(finite_json(row))
    assert parsed["loss"] == 0.5 and parsed["eval_kl"] is None and parsed["x"] is None
    assert parsed["nonfinite"] == {"eval_kl": "inf", "eval_w1": "-inf", "x": "nan"}
    assert "nonfinite" not in strict_json(finite_json({"step": 1, "loss": 1.0}))


def test_metrics_log_is_strict_json_when_a_score_is_infinite(tmp_path, monkeypatch):
    from gankit.training.trainer import Trainer

    monkeypatch.setattr(Trainer, "_evaluate", lambda self, step: {"eval_kl": math.inf})
    result = gankit.train(tiny_config(steps=10, eval_every=10), runs_dir=tmp_path)
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    rows = [strict_json(line) for line in lines]
    assert {"eval_kl": None, "nonfinite": {"eval_kl": "inf"}}.items() <= rows[-1].items()
    assert result.loss_curves is not None  # the null is left out of the picture
    info = cli("info", result.run_dir)
    assert info.exit_code == 0 and "eval_kl inf" in info.output, info.output


def test_eval_json_is_strict_json_when_a_score_is_not_finite(tmp_path):
    from gankit.metrics.evaluate import EvalReport

    report = EvalReport(
        "r", 1, 2, 2, 2, "test", None, {"iou_sky": math.nan, "miou": 0.5}, {"w1": math.inf}, 1.0
    )
    parsed = strict_json(report.write(tmp_path / "eval.json").read_text())
    assert parsed["scores"] == {"iou_sky": None, "miou": 0.5} and parsed["floor"] == {"w1": None}


def test_resume_rewrites_an_old_log_holding_nan_as_strict_json(tmp_path):
    first = gankit.train(tiny_config(steps=10), runs_dir=tmp_path)
    metrics = first.run_dir / "metrics.jsonl"
    # a line an older gankit wrote with Python's json: NaN is not JSON
    metrics.write_text(metrics.read_text() + '{"step": 10, "loss_d": NaN}\n')
    gankit.train("tiny-gan", {"train.steps": 15}, runs_dir=tmp_path, resume=True)
    rows = [strict_json(line) for line in metrics.read_text().splitlines()]
    assert {"step": 10, "loss_d": None, "nonfinite": {"loss_d": "nan"}} in rows


def test_eval_keeps_eval_json_without_overwrite(tmp_path):
    gankit.train(tiny_config(steps=10), runs_dir=tmp_path)
    path = tmp_path / "tiny-gan" / "eval.json"
    args = ("eval", "tiny-gan", "--runs-dir", tmp_path, "--n", 100)
    assert cli(*args).exit_code == 0
    first = json.loads(path.read_text())
    # other settings: scored again, the first evaluation kept in the history
    assert cli(*args, "--seed", 1).exit_code == 0
    second = json.loads(path.read_text())
    assert second["extra"]["asked"]["seed"] == 1 and second["scores"] != first["scores"]
    assert [entry["scores"] for entry in second["history"]] == [first["scores"]]
    # the same step with the same settings: not scored again, the file untouched
    written = path.read_text()
    again = cli(*args, "--seed", 1)
    assert again.exit_code == 0 and "already holds the scores of step 10" in again.stdout
    assert path.read_text() == written
    # --overwrite scores it again (the same numbers: why it is not needed) and replaces
    # it; the history is kept
    rescored = cli(*args, "--seed", 1, "--overwrite")
    assert rescored.exit_code == 0 and "evaluated in" in rescored.stdout
    replaced = json.loads(path.read_text())
    assert replaced["scores"] == second["scores"] and replaced["history"] == second["history"]


@pytest.mark.parametrize(
    ("key", "near"),
    [
        ("model.lantent_dim=3", "did you mean 'latent_dim'?"),
        ("train.step=3", "did you mean 'steps'?"),
        ("trian.steps=3", "did you mean 'train'?"),
        ("data.resolutoin=16", "did you mean 'resolution'?"),
    ],
)
def test_a_typo_in_a_set_key_names_the_near_match(tmp_path, key, near):
    result = cli("train", "dcgan-digits", "--set", key, "--runs-dir", tmp_path)
    one_line_error(result, near, "valid:")
    assert not (tmp_path / "dcgan-digits").exists()


def test_no_suggestion_when_nothing_is_near(tmp_path):
    result = cli("train", "dcgan-digits", "--set", "model.zzzz=3", "--runs-dir", tmp_path)
    assert "did you mean" not in one_line_error(result, "unknown key 'zzzz'")


def test_changing_data_name_warns_about_the_recipe_resolution(capsys):
    config = resolve_config("dcgan-digits", ["data.name=fashion-mnist"])
    assert config["data"]["resolution"] == 16  # kept, as asked: only a warning
    warning = capsys.readouterr().err
    assert warning.startswith("gankit: warning: data.name is now 'fashion-mnist'")
    assert "data.resolution: 16" in warning and "'digits'" in warning
    resolve_config("dcgan-digits", ["data.name=fashion-mnist", "data.resolution=28"])
    resolve_config("dcgan-digits", ["train.steps=5"])
    assert capsys.readouterr().err == ""


def test_datasets_says_what_each_source_is_and_whether_its_files_are_here(tmp_path, monkeypatch):
    from gankit.data import DATASETS, download, idx

    monkeypatch.setattr(download, "DEBIAN_DATASETS", tmp_path / "debian")
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    mnist = tmp_path / "data" / "mnist"
    mnist.mkdir(parents=True)
    for pair in idx.IDX_FILES.values():
        for name in pair:
            (mnist / f"{name}.gz").write_bytes(b"")
    result = cli("datasets", "--data-dir", tmp_path / "data")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()}
    assert set(DATASETS) <= set(rows)
    assert rows["mnist"].endswith(f"[found in {mnist}]")
    assert "missing (downloaded on first use)" in rows["fashion-mnist"]
    assert "missing" in rows["cifar10"] and "missing" in rows["fashion-m"]
    assert "built in" in rows["digits"] and "Gaussians on a circle" in rows["ring"]
    assert "your files at PATH" in rows["folder:PATH"]
