"""The ``gankit`` command end to end: train, sample, info, presets, and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from conftest import tiny_config
from gankit.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config("dcgan", "digits", steps=10)))
    return path


def test_train_sample_info_end_to_end(tmp_path, tiny_yaml):
    runs = tmp_path / "runs"
    result = invoke(
        "train",
        tiny_yaml,
        "--set",
        "train.steps=6",
        "--name",
        "cli",
        "--runs-dir",
        runs,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    for word in ("samples:", "loss curves:", "checkpoint:", "step_00000006.pt"):
        assert word in result.output
    run = runs / "cli"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["steps"] == 6 and saved["model"]["name"] == "dcgan"

    png = tmp_path / "grid.png"
    result = invoke("sample", "cli", "--runs-dir", runs, "--n", 9, "--out", png)
    assert result.exit_code == 0, result.output
    assert Image.open(png).size[0] > 8 * 3
    npy, pt = tmp_path / "s.npy", tmp_path / "s.pt"
    assert invoke("sample", run, "--n", 5, "--out", npy, "--seed", 4).exit_code == 0
    assert invoke("sample", run, "--n", 5, "--out", pt, "--seed", 4).exit_code == 0
    assert np.load(npy).shape == (5, 1, 8, 8)
    assert torch.equal(torch.from_numpy(np.load(npy)), torch.load(pt))

    result = invoke("info", run)
    assert result.exit_code == 0
    assert "steps done:  6 of 6" in result.output and "loss_g" in result.output


def test_presets_lists_every_preset_with_the_default_marked():
    result = invoke("presets")
    assert result.exit_code == 0
    for name in (
        "gan-ring",
        "gan-grid",
        "wgan-gp-grid",
        "dcgan-fashion",
        "wgan-digits",
        "wgan-gp-fashion",
        "lsgan-digits",
        "sngan-fashion",
    ):
        assert name in result.output
    assert "dcgan-digits (default)" in result.output


def test_models_and_datasets_commands():
    assert "wgan_gp" in invoke("models").output
    assert "folder:PATH" in invoke("datasets").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "no-such-preset"],
            "unknown preset 'no-such-preset'; valid: aae-digits, aae-labels-digits, "
            "aae-mixture-digits",
        ),
        (
            ["train", "gan-ring", "--set", "train.stepz=5"],
            "unknown key 'stepz' in train (did you mean 'steps'?); valid:",
        ),
        (["train", "gan-ring", "--set", "train.steps=many"], "'steps' must be int, got 'many'"),
        (["train", "gan-ring", "--set", "model.name=biggan"], "unknown model 'biggan'; valid:"),
        (
            ["train", "gan-ring", "--set", "data.name=imagenet"],
            "unknown dataset 'imagenet'; valid:",
        ),
        (["train", "gan-ring", "--set", "steps"], "--set expects key=value"),
        (["train", "gan-ring", "--set", "optim.lr=1"], "must start with a section; valid:"),
        (["train", "missing.yaml"], "config file 'missing.yaml' does not exist"),
        (["sample", "no-run"], "run 'no-run' not found"),
        (["info", "no-run"], "run 'no-run' not found"),
        (
            ["train", "gan-ring", "--set", "train.device=cuda"]
            if not torch.cuda.is_available()
            else ["train", "x"],
            "not available" if not torch.cuda.is_available() else "unknown preset",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path):
    result = invoke(*args, "--runs-dir", tmp_path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("gankit: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_sample_refuses_to_overwrite_and_unknown_formats(tmp_path, tiny_yaml):
    runs = tmp_path / "runs"
    invoke("train", tiny_yaml, "--runs-dir", runs, "--no-progress")
    out = tmp_path / "a.png"
    assert invoke("sample", "tiny-dcgan", "--runs-dir", runs, "--out", out).exit_code == 0
    again = invoke("sample", "tiny-dcgan", "--runs-dir", runs, "--out", out)
    assert again.exit_code == 2 and "already exists" in again.stderr
    bad = invoke("sample", "tiny-dcgan", "--runs-dir", runs, "--out", tmp_path / "a.gif")
    assert bad.exit_code == 2 and "valid: .png, .npy, .pt" in bad.stderr


def test_existing_run_needs_resume_or_overwrite(tmp_path, tiny_yaml):
    runs = tmp_path / "runs"
    assert invoke("train", tiny_yaml, "--runs-dir", runs, "--no-progress").exit_code == 0
    again = invoke("train", tiny_yaml, "--runs-dir", runs, "--no-progress")
    assert again.exit_code == 2 and "already exists; pass --resume" in again.stderr


def test_real_process_exit_code_and_no_traceback(tmp_path):
    """The installed entry point, as a user runs it."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gankit",
            "train",
            "gan-ring",
            "--set",
            "model.lr_g=fast",
            "--runs-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "gankit: error: model (gan): 'lr_g' must be float, got 'fast'"
    assert not (tmp_path / "gan-ring").exists()


def test_sigterm_saves_a_checkpoint_and_resume_finishes(tmp_path):
    import signal
    import time

    config = tiny_config(steps=100000, ckpt_every=100000, sample_every=100000, log_every=1)
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gankit",
            "train",
            str(path),
            "--runs-dir",
            str(tmp_path),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = tmp_path / "tiny-gan" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr and "--resume" in stderr
    checkpoints = list((tmp_path / "tiny-gan" / "checkpoints").glob("step_*.pt"))
    assert len(checkpoints) == 1


def test_preset_descriptions_are_whole_first_sentences():
    from gankit.config import list_presets

    descriptions = list_presets()
    # a sentence that runs over several comment lines is kept whole, and "et al." does
    # not end it
    assert descriptions["acgan-digits"] == (
        "ACGAN on digits at 16 px (Odena et al. 2017): D has a class head next to its "
        "real/fake output; G is trained to make that head recognise the class it was asked for."
    )
    assert all(text.endswith(".") for text in descriptions.values())
