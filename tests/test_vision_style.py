"""Style transfer: the style loss falls while the content stays closer than the style
picture's; the Gram matrix and TV loss by hand; bad input fails in one line."""

from __future__ import annotations

import pytest
import torch

from conftest import cli, one_line_error
from gankit.backbones import inception_v3
from gankit.vision.common import read_picture
from gankit.vision.style import gram, total_variation, transfer


def test_gram_matrix_by_hand():
    features = torch.tensor([[1.0, 2.0], [0.0, 3.0]]).reshape(1, 2, 1, 2)
    # F F^T = [[5, 6], [6, 9]], divided by C H W = 4
    assert torch.allclose(gram(features)[0], torch.tensor([[1.25, 1.5], [1.5, 2.25]]))


def test_total_variation_by_hand():
    image = torch.tensor([[0.0, 1.0], [0.0, 3.0]]).reshape(1, 1, 2, 2)
    # down: |0-0|, |3-1| -> mean 1; right: |1-0|, |3-0| -> mean 2
    assert float(total_variation(image)) == pytest.approx(3.0)
    assert float(total_variation(torch.ones(1, 3, 5, 5))) == 0


def _pictures(size):
    return read_picture("sample:china.jpg", size), read_picture("sample:flower.jpg", size)


def test_style_loss_falls_and_content_stays_closer_than_the_style_picture():
    content, style = _pictures(114)  # 76 x 114 px: just above the network's 75 px
    result = transfer(inception_v3(), content, style, steps=20)
    assert result.start.content == 0  # it starts as the content picture
    assert result.end.style < result.start.style / 3, (result.start, result.end)
    # at this tiny size the content drifts more than at 256 px (the slow test's bound)
    assert result.end.content < result.style_picture_content
    assert not torch.equal(result.image, content)


@pytest.mark.slow
def test_style_loss_falls_tenfold_within_the_content_bound():
    content, style = _pictures(256)  # the command's defaults
    result = transfer(inception_v3(), content, style, steps=150)
    assert result.end.style < result.start.style / 10, (result.start, result.end)
    assert result.end.content < 0.5 * result.style_picture_content


def test_style_command_prints_the_losses_and_writes_the_figure(tmp_path):
    out, figure = tmp_path / "r.png", tmp_path / "f.png"
    args = ["style", "--size", "114", "--steps", "2", "--out", out, "--figure", figure]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "style loss" in result.stdout and "content loss" in result.stdout
    assert out.is_file() and figure.is_file()
    one_line_error(cli(*args), "exists", "--overwrite")


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--content-layer", "nope"], ["nope", "valid", "mixed_5"]),
        (["--style-layers", "conv,bad"], ["bad", "valid"]),
        (["--style-layers", ","], ["--style-layers"]),
        (["--steps", "0"], ["--steps"]),
        (["--style-weight", "0"], ["--style-weight"]),
        (["--tv-weight", "-1"], ["--tv-weight"]),
        (["--lr", "nan"], ["--lr"]),
        (["--optimizer", "sgd"], ["--optimizer", "adam"]),
        (["--size", "60"], ["75 px"]),
    ],
)
def test_style_refuses_bad_settings_in_one_line(tmp_path, extra, words):
    one_line_error(cli("style", "--size", "114", "--out", tmp_path / "o.png", *extra), *words)
    assert not (tmp_path / "o.png").exists()


def test_style_refuses_missing_pictures(tmp_path):
    one_line_error(cli("style", tmp_path / "c.png", "--out", tmp_path / "o.png"), "c.png")
    one_line_error(
        cli("style", "sample:china.jpg", "sample:nope.jpg", "--out", tmp_path / "o.png"),
        "nope.jpg",
        "flower.jpg",
    )
