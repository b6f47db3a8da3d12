"""``train.tensorboard``: scalars, preview pictures, eval scores and hyper-parameters."""

from __future__ import annotations

import gankit
from conftest import tiny_config


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_gets_scalars_previews_scores_and_hparams(tmp_path):
    config = tiny_config(steps=20, tensorboard=True, sample_every=10, eval_every=10, eval_n=200)
    result = gankit.train(config, runs_dir=tmp_path)
    board = events(result.run_dir / "tensorboard")
    tags = board.Tags()
    assert {"loss_d", "loss_g", "eval_modes", "eval_w1"} <= set(tags["scalars"])
    assert [e.step for e in board.Scalars("eval_modes")] == [10, 20]
    assert [e.step for e in board.Images("previews")] == [10, 20]
    image = board.Images("previews")[-1]
    assert image.width > 100 and image.height > 100  # the labelled picture of samples/
    # hparams: the settings and the last numbers, for the HPARAMS tab
    hparams = board.PluginTagToContent("hparams")
    assert hparams, tags
    session = b"".join(hparams.values())
    for setting in (b"model.latent_dim", b"train.batch_size", b"data.name"):
        assert setting in session
    final = [e.value for e in board.Scalars("hparam/loss_d")]
    assert len(final) == 1


def test_hparams_are_flat_plain_values():
    from gankit.training.tensorboard import hparams

    flat = hparams(
        {"name": "x", "model": {"betas": [0.5, 0.9], "lr": 1e-3}, "train": {"ema_decay": None}}
    )
    assert flat == {"model.betas": "[0.5, 0.9]", "model.lr": 1e-3, "train.ema_decay": "None"}
