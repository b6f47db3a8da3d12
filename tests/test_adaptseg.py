"""AdaptSeg: the IoU metric against hand-computed confusion matrices, the two output
levels, the source-only switch, and ``gankit adapt`` / ``explore --what segment``."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

import gankit
from gankit.cli import app
from gankit.data.base import NO_LABEL
from gankit.errors import GankitError
from gankit.metrics.segmentation import confusion_matrix, iou_per_class, segmentation_scores
from gankit.registry import create_model

SHAPE = (3, 16, 16)


# --------------------------------------------------------------------------- IoU
def test_confusion_matrix_and_iou_by_hand():
    truth = torch.tensor([[0, 0, 1, 1, 2, NO_LABEL]])
    prediction = torch.tensor([[0, 1, 1, 1, 0, 2]])  # the last pixel is ignored
    confusion = confusion_matrix(prediction, truth, num_classes=4)
    # rows: truth, columns: prediction; class 3 is absent from both
    expected = torch.tensor([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(confusion, expected)
    iou = iou_per_class(confusion)
    # 0: 1 / (2 + 2 - 1); 1: 2 / (2 + 3 - 2); 2: 0 / (1 + 0 - 0); 3: absent -> NaN
    assert iou[:3].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert math.isnan(iou[3])
    scores = segmentation_scores(prediction, truth, num_classes=4)
    assert scores["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0.0) / 3)  # NaN left out
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert math.isnan(scores["iou_3"]) and scores["iou_1"] == pytest.approx(2 / 3)


def test_a_class_only_predicted_counts_as_zero_and_perfect_is_one():
    truth = torch.tensor([[[0, 0], [1, 1]]])
    prediction = torch.tensor([[[0, 2], [1, 1]]])  # class 2 predicted, never true
    scores = segmentation_scores(prediction, truth, num_classes=3)
    # 0: 1 / (2 + 1 - 1); 1: 2 / 2; 2: 0 / (0 + 1 - 0)
    assert [scores[f"iou_{c}"] for c in range(3)] == pytest.approx([0.5, 1.0, 0.0])
    assert scores["miou"] == pytest.approx(0.5)
    assert segmentation_scores(truth, truth, num_classes=3)["miou"] == 1.0


# --------------------------------------------------------------------------- model
def build(name: str, **kwargs):
    model = create_model(name, data_shape=SHAPE, num_classes=5, channels=4, d_channels=4, **kwargs)
    model.setup_optimizers()
    return model


def batch(n: int = 4, with_target: bool = True) -> dict[str, torch.Tensor]:
    out = {"x": torch.rand(n, *SHAPE) * 2 - 1, "y": torch.randint(0, 5, (n, *SHAPE[1:]))}
    if with_target:
        out.update(x_b=torch.rand(n, *SHAPE), y_b=torch.randint(0, 5, (n, *SHAPE[1:])))
    return out


def test_both_output_levels_have_the_input_size():
    model = build("adaptseg")
    logits = model.segmenter(torch.randn(2, *SHAPE))
    assert set(logits) == {"aux", "main"}
    assert all(v.shape == (2, 5, 16, 16) for v in logits.values())
    # one patch map per level from each discriminator
    assert set(model.discriminators) == {"aux", "main"}
    d_out = model.discriminators["main"](logits["main"].softmax(1))
    assert d_out.shape[:2] == (2, 1) and d_out.shape[-1] >= 1
    assert model.predict(torch.randn(3, *SHAPE)).shape == (3, 16, 16)


def test_single_level_has_no_auxiliary_output_or_discriminator():
    model = build("adaptseg_single")
    assert model.segmenter.aux_classifier is None
    assert set(model.segmenter(torch.randn(2, *SHAPE))) == {"main"}
    assert set(model.discriminators) == {"main"}
    stats = model.train_step(batch(), step=0)
    assert "loss_seg_aux" not in stats and "loss_adv_aux" not in stats
    assert "loss_adv_main" in stats and "loss_d_main" in stats


def test_source_only_leaves_the_discriminators_and_the_target_out():
    model = build("adaptseg", adv_weight_main=0.0, adv_weight_aux=0.0)
    assert len(model.discriminators) == 0 and set(model.optimizers) == {"segmenter"}
    assert [name for name, _ in model.named_children()] == ["segmenter"]
    # no target in the batch: the baseline never reads it
    stats = model.train_step(batch(with_target=False), step=0)
    assert set(stats) == {"loss_seg_main", "loss_seg_aux"}


def _segmenter_grads_at_its_step(model, data) -> list[torch.Tensor]:
    """Run a train_step; return the segmenter's gradients and D's at the segmenter's step."""
    seen = {}
    seg_step = model.optimizers["segmenter"].step

    def record_then_step(*args, **kwargs):
        seen["seg"] = [p.grad.clone() for p in model.segmenter.parameters()]
        seen["d"] = [
            None if p.grad is None else p.grad.clone()
            for d in model.discriminators.values()
            for p in d.parameters()
        ]
        return seg_step(*args, **kwargs)

    model.optimizers["segmenter"].step = record_then_step
    model.train_step(data, step=1)
    return seen


def test_the_segmentation_update_goes_through_frozen_discriminators():
    torch.manual_seed(0)
    model = build("adaptseg")
    model.train_step(batch(), step=0)  # leaves D's gradients of its own step
    d_grads = [p.grad.clone() for d in model.discriminators.values() for p in d.parameters()]
    weights = {k: v.clone() for k, v in model.segmenter.state_dict().items()}
    data = batch()
    seen = _segmenter_grads_at_its_step(model, data)
    # the segmentation backward added nothing to D's gradients...
    assert all(torch.equal(a, b) for a, b in zip(seen["d"], d_grads))
    assert all(
        p.requires_grad for d in model.discriminators.values() for p in d.parameters()
    )  # flags restored
    # ...but the adversarial loss reached the segmenter: same weights without it differ
    torch.manual_seed(0)
    baseline = build("adaptseg", adv_weight_main=0.0, adv_weight_aux=0.0)
    baseline.segmenter.load_state_dict(weights)
    plain = _segmenter_grads_at_its_step(baseline, data)
    assert any(not torch.allclose(a, b) for a, b in zip(seen["seg"], plain["seg"]))


def test_bad_options_and_data_are_one_line_errors():
    with pytest.raises(GankitError, match="'levels' must be 'multi'"):
        create_model("adaptseg", data_shape=SHAPE, num_classes=5, levels="three")
    with pytest.raises(GankitError, match="adv_weight_main must be a finite number >= 0"):
        create_model("adaptseg", data_shape=SHAPE, num_classes=5, adv_weight_main=-1.0)
    with pytest.raises(GankitError, match=r"segments \(C, H, W\) images"):
        create_model("adaptseg", data_shape=(2,), num_classes=2)
    model = build("adaptseg")
    wrong = batch()
    wrong["y"] = torch.randint(0, 5, (4,))
    with pytest.raises(GankitError, match="trains on \\(H, W\\) label maps"):
        model.train_step(wrong, step=0)


# --------------------------------------------------------------------------- CLI
TINY = [
    "--set", "train.steps=4", "--set", "train.batch_size=4", "--set", "train.threads=1",
    "--set", "train.progress=false", "--set", "data.resolution=16", "--set", "data.n_train=16",
    "--set", "data.n_test=8", "--set", "model.channels=4", "--set", "model.d_channels=4",
]  # fmt: skip


def test_adapt_prints_adaptseg_next_to_its_source_only_baseline(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["adapt", "adaptseg-segshift", *TINY, "--runs-dir", tmp_path])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `adaptseg`")]
    assert len(rows) == 2 and rows[1].startswith("| `adaptseg` (source-only)")
    assert "segshift (target) mIoU" in result.stdout and "sky IoU" in result.stdout
    baseline = gankit.load_run(tmp_path / "adaptseg-segshift-source-only")
    assert baseline.model.adv_weights == {} and baseline.model.levels == "multi"
    scores = json.loads((tmp_path / "adaptseg-segshift" / "eval.json").read_text())["scores"]
    assert {"source_miou", "target_miou", "target_iou_sky", "target_iou_object"} <= set(scores)

    # the picture of segmentation before and after adaptation, from the same two runs
    out = tmp_path / "pictures"
    result = runner.invoke(
        app,
        ["explore", str(tmp_path / "adaptseg-segshift"), "--what", "segment", "--n", "3",
         "--compare", str(tmp_path / "adaptseg-segshift-source-only"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "segment_seed0.png").stat().st_size > 1000
    result = runner.invoke(app, ["adapt", "gan-ring", "--runs-dir", tmp_path])
    assert result.exit_code == 2 and "DANN, pixel-level or AdaptSeg preset" in result.output


def test_segment_pictures_refuse_runs_that_do_not_segment(tmp_path):
    from types import SimpleNamespace

    from gankit.explore.segment import colour_labels, segment_scenes

    dann = create_model("dann", data_shape=(2,), num_classes=2, hidden_dim=8)
    run = SimpleNamespace(model=dann, path=tmp_path / "dann-moons")
    with pytest.raises(GankitError, match="needs segmentation runs .* 'dann-moons' is a 'dann'"):
        segment_scenes([run])
    colours = colour_labels(torch.tensor([[0, 4, NO_LABEL]]))
    assert colours.shape == (1, 3, 3) and torch.equal(colours[0, 2], torch.zeros(3))
