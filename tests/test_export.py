"""``gankit export``: the exported network reproduces ``gankit sample`` at the same noise."""

from __future__ import annotations

import json

import pytest
import torch

import gankit
from conftest import cli, one_line_error, tiny_config

N, SEED = 6, 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny DCGAN with an EMA generator (the network gankit sample draws from)."""
    runs = tmp_path_factory.mktemp("runs")
    config = tiny_config("dcgan", "digits", steps=10, ema_decay=0.9)
    return gankit.train(config, runs_dir=runs).run_dir


@pytest.fixture(scope="module")
def sampled(run, tmp_path_factory):
    """What ``gankit sample --n 6 --seed 3`` writes."""
    out = tmp_path_factory.mktemp("samples") / "s.pt"
    result = cli("sample", run, "--n", N, "--seed", SEED, "--out", out)
    assert result.exit_code == 0, result.output
    return torch.load(out)


def export(run, fmt, tmp_path, *args):
    out = tmp_path / f"g.{fmt}"
    result = cli("export", run, "--format", fmt, "--out", out, *args)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / f"g.{fmt}.json").read_text())
    return out, meta


def latent_of(meta):
    """The latent gankit sample draws for seed SEED, from the JSON's model and hparams."""
    model = gankit.create_model(meta["model_name"], **meta["hparams"])
    return model, model.sample_latent(N, torch.Generator().manual_seed(SEED))


def test_safetensors_reproduces_gankit_sample(run, sampled, tmp_path):
    from safetensors.torch import load_file

    path, meta = export(run, "safetensors", tmp_path)
    assert meta["task"] == "sample" and meta["network"] == "G" and meta["step"] == 10
    assert meta["inputs"] == {"z": {"shape": ["N", 4], "dtype": "float32"}}
    assert meta["outputs"] == {"samples": {"shape": ["N", 1, 8, 8], "dtype": "float32"}}
    model, latent = latent_of(meta)
    untrained = model.render(latent)
    getattr(model, meta["network"]).load_state_dict(load_file(path))
    model.eval()
    assert torch.equal(model.render(latent), sampled)
    assert not torch.allclose(untrained, sampled)  # the weights made the difference


def test_torchscript_reproduces_gankit_sample_without_gankit(run, sampled, tmp_path):
    path, meta = export(run, "torchscript", tmp_path)
    _, latent = latent_of(meta)
    net = torch.jit.load(str(path))
    assert torch.allclose(net(*latent.values()), sampled, atol=1e-6)
    # the batch size is not fixed at the example's
    more = torch.randn(11, 4)
    assert net(more).shape == (11, 1, 8, 8)


def test_onnx_reproduces_gankit_sample(run, sampled, tmp_path):
    from onnx.reference import ReferenceEvaluator

    path, meta = export(run, "onnx", tmp_path)
    _, latent = latent_of(meta)
    session = ReferenceEvaluator(str(path))
    (out,) = session.run(None, {name: t.numpy() for name, t in latent.items()})
    assert torch.allclose(torch.from_numpy(out), sampled, atol=1e-5)


def test_export_at_a_step_and_refusals(run, tmp_path):
    result = cli("export", run, "--format", "torchscript", "--step", 10)
    assert result.exit_code == 0, result.output
    default = run / "export" / "step_00000010.pt"
    assert default.is_file() and (run / "export" / "step_00000010.pt.json").is_file()
    before = default.read_bytes()
    one_line_error(cli("export", run, "--format", "torchscript"), "already exists", "--overwrite")
    assert default.read_bytes() == before
    one_line_error(cli("export", run, "--format", "tflite"), "unknown --format 'tflite'")
    one_line_error(cli("export", run, "--step", 5), "kept steps: 10")


def test_a_translator_exports_one_direction(tmp_path):
    from test_cyclegan import translation_config

    result = gankit.train(translation_config(steps=2), runs_dir=tmp_path / "runs")
    loaded = gankit.load_run(result.run_dir)
    for direction, channels in (("AtoB", 1), ("BtoA", 3)):
        inputs = torch.rand(3, channels, 8, 8) * 2 - 1
        path, meta = export(result.run_dir, "torchscript", tmp_path, "--direction", direction)
        path.rename(tmp_path / f"{direction}.pt")
        (tmp_path / "g.torchscript.json").unlink()
        assert meta["direction"] == direction
        translated = torch.jit.load(str(tmp_path / f"{direction}.pt"))(inputs)
        expected = loaded.model.translate(inputs, direction, loaded.sampler_net)
        assert torch.allclose(translated, expected, atol=1e-6)
    one_line_error(
        cli("export", result.run_dir, "--format", "torchscript", "--direction", "up"),
        "--direction must be one of AtoB, BtoA",
    )


def test_a_classifier_exports_the_logits_predict_reads(tmp_path):
    from safetensors.torch import load_file

    config = {
        "name": "dann-moons",
        "model": {"name": "dann", "hidden_dim": 16, "n_layers": 1, "norm": "none"},
        "data": {"name": "moons", "n_train": 256, "n_test": 64, "target": "moons"},
        "train": {"steps": 5, "batch_size": 32, "threads": 1, "progress": False},
    }
    run_dir = gankit.train(config, runs_dir=tmp_path / "runs").run_dir
    loaded = gankit.load_run(run_dir)
    points = torch.randn(700, 2)  # more than predict's chunks of 500
    path, meta = export(run_dir, "torchscript", tmp_path)
    assert meta["task"] == "classify" and meta["outputs"]["logits"]["shape"] == ["N", 2]
    logits = torch.jit.load(str(path))(points)
    assert torch.equal(logits.argmax(1), loaded.model.predict(points))
    path, meta = export(run_dir, "safetensors", tmp_path)
    model = gankit.create_model(meta["model_name"], **meta["hparams"])
    model.predictor().load_state_dict(load_file(path))
    assert torch.equal(model.predict(points), loaded.model.predict(points))


def test_a_segmenter_exports_its_main_output(tmp_path):
    args = ["--set=train.steps=2", "--set=train.batch_size=4", "--set=train.threads=1"]
    args += ["--set=data.resolution=16", "--set=data.n_train=16", "--set=data.n_test=8"]
    args += ["--set=model.channels=4", "--set=model.d_channels=4", "--no-progress"]
    result = cli("train", "adaptseg-segshift", *args, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "adaptseg-segshift"
    loaded = gankit.load_run(run_dir)
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    path, meta = export(run_dir, "torchscript", tmp_path)
    assert meta["task"] == "segment" and meta["outputs"]["logits"]["shape"][2:] == [16, 16]
    maps = torch.jit.load(str(path))(images).argmax(1)
    assert torch.equal(maps, loaded.model.predict(images))
