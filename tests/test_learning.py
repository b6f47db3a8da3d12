"""Learning happened: a GAN trained for seconds covers the ring's modes.

Mode coverage uses the nearest-centre rule of PacGAN against the toy's known
centres (std 0.01, a sample counts when within 3 std of its nearest centre).
"""

from __future__ import annotations

import math

import pytest

import gankit
from gankit.data import load_dataset
from gankit.metrics import mode_coverage


# about 40 s: the preset trains for real
@pytest.mark.slow
def test_gan_ring_preset_captures_the_modes(tmp_path):
    ring = load_dataset("ring")
    result = gankit.train(
        "gan-ring",
        ["train.steps=1500", "train.sample_every=1500", "train.ckpt_every=1500"],
        runs_dir=tmp_path,
        progress=False,
    )
    run = gankit.load_run(result.run_dir)

    untrained = gankit.create_model(
        "gan",
        data_shape=(2,),
        **{k: v for k, v in run.model.hparams.items() if k not in ("data_shape", "num_classes")},
    )
    before = mode_coverage(untrained.sample(2500), ring.modes, ring.mode_std)
    after = mode_coverage(run.sample(2500, seed=1), ring.modes, ring.mode_std)

    assert before.modes_captured < 7  # the test can fail: an untrained G does not pass
    assert after.modes_captured >= 7, after
    assert after.high_quality > 0.5, after


def test_mode_coverage_counts_by_the_nearest_centre_rule():
    import torch

    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    samples = torch.tensor([[0.01, 0.0], [1.02, 0.0], [1.0, 0.5], [0.0, 0.029]])
    cover = mode_coverage(samples, centres, std=0.01)
    # 1 and 2 std from modes 0 and 1; (1.0, 0.5) is 50 std from any mode;
    # (0, 0.029) is 2.9 std from mode 0; nothing lands near mode 2.
    assert cover.modes_captured == 2 and cover.counts.tolist() == [2, 1, 0]
    assert cover.high_quality == 0.75
    # histogram (2/3, 1/3, 0) against uniform over 3 modes
    expected = 2 / 3 * math.log(3 * 2 / 3) + 1 / 3 * math.log(3 * 1 / 3)
    assert cover.reverse_kl == pytest.approx(expected)


def test_reverse_kl_bounds():
    import torch

    from gankit.metrics.toy import reverse_kl_to_uniform

    assert reverse_kl_to_uniform(torch.tensor([5, 5, 5, 5])) == 0.0
    assert reverse_kl_to_uniform(torch.tensor([9, 0, 0, 0])) == pytest.approx(math.log(4))
    assert reverse_kl_to_uniform(torch.tensor([0, 0])) == float("inf")
