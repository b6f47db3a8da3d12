"""DeepDream: the objective grows, the files are written safely, bad input fails in one line."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from conftest import cli, one_line_error
from gankit.backbones import inception_v3
from gankit.vision.common import read_picture
from gankit.vision.dream import dream, layer_objective


@pytest.fixture(scope="module")
def net():
    return inception_v3()


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    pixels = (torch.rand(3, 96, 96) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path)
    return path


def test_dream_raises_the_objective_far_above_its_start(net):
    image = read_picture(None, 120)
    result = dream(net, image, ["mixed_3"], octaves=1, steps=6, step_size=0.02)
    ((first, last),) = result.objective_per_octave
    assert last > 2 * first, (first, last)
    assert result.image.shape == image.shape
    assert result.image.abs().max() <= 1
    # the dream differs from the photo, and more than noise of the same size would help
    change = result.image - image
    noisy = (image + change[:, :, torch.randperm(image.shape[2])]).clamp(-1, 1)
    from gankit.vision.common import network_input

    with torch.no_grad():
        noise_value = layer_objective(
            net.activations(network_input(noisy), ["mixed_3"]), "mean_square"
        )
    assert last > 1.5 * float(noise_value)


def test_octaves_run_smallest_first_and_reinject_detail(net):
    image = read_picture(None, 150)
    result = dream(net, image, ["mixed"], octaves=2, octave_scale=1.3, steps=1, step_size=1e-6)
    assert result.shapes == [(77, 115), (100, 150)]
    # with a negligible step the re-injected detail gives back the photo itself
    assert torch.allclose(result.image, image.clamp(-1, 1), atol=1e-3)


def test_dream_command_writes_png_and_figure_and_never_overwrites(photo, tmp_path):
    out, figure = tmp_path / "dream.png", tmp_path / "side.png"
    args = ["dream", photo, "--layers", "mixed", "--octaves", "1", "--steps", "2", "--size", "80"]
    result = cli(*args, "--out", out, "--figure", figure)
    assert result.exit_code == 0, result.output
    assert "objective" in result.stdout
    with Image.open(out) as written:
        assert written.size == (80, 80)
    assert figure.is_file()
    one_line_error(cli(*args, "--out", out), "exists", "--overwrite")
    assert cli(*args, "--out", out, "--overwrite").exit_code == 0


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--layers", "mixed_99"], ["mixed_99", "valid", "mixed_10"]),
        (["--steps", "0"], ["--steps"]),
        (["--step-size", "-1"], ["--step-size"]),
        (["--octave-scale", "0"], ["--octave-scale"]),
        (["--size", "0"], ["--size"]),
        (["--size", "5000"], ["--size", "1024"]),
        (["--octaves", "3", "--size", "80"], ["75 px"]),
        (["--objective", "max"], ["--objective", "mean_square"]),
    ],
)
def test_dream_refuses_bad_settings_in_one_line(photo, tmp_path, extra, words):
    one_line_error(cli("dream", photo, "--out", tmp_path / "o.png", *extra), *words)
    assert not (tmp_path / "o.png").exists()


def test_dream_refuses_a_missing_or_unreadable_image(tmp_path):
    one_line_error(cli("dream", tmp_path / "nope.jpg", "--out", tmp_path / "o.png"), "nope.jpg")
    (tmp_path / "text.png").write_text("not a picture")
    one_line_error(cli("dream", tmp_path / "text.png", "--out", tmp_path / "o.png"), "text.png")
    one_line_error(cli("dream", tmp_path, "--out", tmp_path / "o.png"), "cannot read image")
