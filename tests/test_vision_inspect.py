"""gankit inspect: Grad-CAM falls on the digit's ink (and an untrained network's does
not), the pictures are written, bad input fails in one line."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import cli, one_line_error
from gankit.metrics.features import EvaluatorCNN, train_evaluator
from gankit.vision.inspect import (
    EVALUATOR_LAYERS,
    filter_patterns,
    grad_cam,
    open_probe,
    probe_images,
)


@pytest.fixture(scope="module")
def digits16(tmp_path_factory):
    """A digits evaluator at 16 px (4x4 maps at its last conv layer), briefly trained."""
    cache = tmp_path_factory.mktemp("gankit-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANKIT_CACHE", str(cache))
        train_evaluator("digits", resolution=16, epochs=6, progress=False)
        yield open_probe("evaluator:digits", 16), cache


def _share_with_more_cam_on_ink(probe, images, layer="conv3"):
    cams, _ = grad_cam(probe, images, layer)
    ink = images[:, 0] > -0.5  # the background is -1
    on_ink = (cams * ink).sum((1, 2)) / ink.sum((1, 2))
    off_ink = (cams * ~ink).sum((1, 2)) / (~ink).sum((1, 2))
    return float((on_ink > off_ink).float().mean())


def test_grad_cam_falls_on_the_ink_and_an_untrained_network_does_worse(digits16):
    probe, _ = digits16
    images, _ = probe_images(probe, None, 0, 50, 0)
    trained = _share_with_more_cam_on_ink(probe, images)
    torch.manual_seed(0)
    net = EvaluatorCNN(1, 10).eval().requires_grad_(False)
    modules = {name: net.trunk[i] for name, i in EVALUATOR_LAYERS.items()}
    untrained = _share_with_more_cam_on_ink(
        dataclasses.replace(probe, classifier=net, modules=modules), images
    )
    assert trained > 0.7, trained
    assert trained > untrained + 0.2, (trained, untrained)


def test_filter_patterns_excite_their_filter_more_than_noise(digits16):
    probe, _ = digits16
    patterns = filter_patterns(probe, "conv2", [0, 1, 2], 32, steps=10, step_size=0.05)
    noise = 0.5 * torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = probe.activations(patterns, ["conv2"])["conv2"]
        before = probe.activations(noise, ["conv2"])["conv2"]
    for k in range(3):
        assert after[k, k].mean() > before[k, k].mean() + 0.1


def test_inspect_command_writes_each_picture(digits16, tmp_path, monkeypatch):
    _, cache = digits16
    monkeypatch.setenv("GANKIT_CACHE", str(cache))
    base = ["inspect", "evaluator:digits", "--resolution", "16", "--out", tmp_path]
    for what, files in [
        (
            "activations",
            ["activations-conv1.png", "activations-conv2.png", "activations-conv3.png"],
        ),
        ("gradcam", ["gradcam-conv3.png"]),
    ]:
        result = cli(*base, "--what", what, "--n", "4")
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in tmp_path.glob(f"{what}-*.png")) == files
    result = cli(*base, "--what", "filters", "--layer", "conv1", "--filters", "4", "--steps", "2")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "filters-conv1.png").is_file()
    one_line_error(cli(*base, "--what", "gradcam"), "exists", "--overwrite")


def test_inspect_shows_the_inception_activations(tmp_path):
    args = ["inspect", "inception", "--layer", "conv,mixed", "--size", "114"]
    result = cli(*args, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "activations-mixed.png").is_file()


@pytest.mark.parametrize(
    "args, words",
    [
        (["inception", "--layer", "mixed_42"], ["mixed_42", "valid", "mixed_10"]),
        (["inception", "--what", "gradcam"], ["classifier", "evaluator"]),
        (["inception", "--what", "look"], ["--what", "gradcam"]),
        (["inception", "--image", "missing.png"], ["missing.png"]),
        (["inception", "--size", "50"], ["75 px"]),
        (["inception", "--steps", "0", "--what", "filters"], ["--steps"]),
        (["resnet"], ["resnet", "evaluator:"]),
    ],
)
def test_inspect_refuses_bad_input_in_one_line(tmp_path, args, words):
    one_line_error(cli("inspect", *args, "--out", tmp_path / "o"), *words)


def test_inspect_refuses_an_unknown_evaluator_layer(digits16, tmp_path, monkeypatch):
    _, cache = digits16
    monkeypatch.setenv("GANKIT_CACHE", str(cache))
    base = ["inspect", "evaluator:digits", "--resolution", "16", "--out", tmp_path]
    one_line_error(cli(*base, "--layer", "fc"), "fc", "conv1, conv2, conv3")
    one_line_error(cli(*base, "--index", "99999"), "--index")


def test_inspect_reads_a_classify_run_through_its_hooks(tmp_path):
    """A tiny DANN run on 16 px digits: Grad-CAM and activations at its conv blocks."""
    from PIL import Image

    import gankit

    config = {
        "name": "dann-tiny",
        "model": {"name": "dann", "channels": 8, "hidden_dim": 16},
        "data": {
            "name": "digits", "resolution": 16, "channels": 3, "target": "digits-m",
            "target_options": {"resolution": 16},
        },
        "train": {"steps": 3, "batch_size": 16, "progress": False, "ckpt_every": 3},
    }  # fmt: skip
    gankit.train(config, runs_dir=tmp_path / "runs")
    picture = tmp_path / "digit.png"
    Image.fromarray((torch.rand(16, 16, 3) * 255).to(torch.uint8).numpy()).save(picture)
    base = ["inspect", "dann-tiny", "--runs-dir", tmp_path / "runs", "--image", picture]
    result = cli(*base, "--what", "gradcam", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "gradcam-block2.png").is_file()
    result = cli(*base, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "activations-block1.png").is_file()
    one_line_error(cli(*base, "--layer", "conv9", "--out", tmp_path / "o"), "block1, block2")
    one_line_error(cli(*base[:4], "--index", "0", "--out", tmp_path / "o"), "--image")
