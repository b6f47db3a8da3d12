"""The change family (task ``change``): data with a known amount of change, training,
evaluation, pictures and files through the shared code, and learning on the 1-D toy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr

import gankit
from conftest import cli, one_line_error
from gankit.data import load_data, load_dataset
from gankit.errors import GankitError
from gankit.metrics.change import change_scores
from gankit.registry import create_model
from gankit.runs.load import load_run


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the networks are tiny, and on a shared CPU more threads wait."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------- data
@pytest.mark.parametrize(
    ("name", "operator", "at_least"),
    [
        ("series-change", "amplitude", 0.999),
        ("series-change", "trend", 0.999),
        ("digits-change", "fade", 0.999),
        ("series-change", "level_trend", 0.999),
        ("digits-change", "ink_fade", 0.999),
        # thickening adds more ink to some digits than to others at the same m
        ("digits-change", "thicken", 0.95),
    ],
)
def test_the_read_back_recovers_the_hidden_magnitude(name, operator, at_least):
    bundle = load_dataset(name, operator=operator)
    later = bundle.domain_b
    for split, earlier_split, later_split in (
        ("train", bundle.train, later.train),
        ("test", bundle.test, later.test),
    ):
        source = earlier_split.tensors[0][later.extra["source_index"][split]]
        measured = bundle.extra["change"].measure(source, later_split.tensors[0])
        rho = spearmanr(later.extra["magnitude"][split], measured).statistic
        assert rho >= at_least, (split, rho)
    # the read-back sees no change between an item and itself
    x = bundle.test.tensors[0][:50]
    assert bundle.extra["change"].measure(x, x).abs().max() < 1e-5


@pytest.mark.parametrize(("name", "operator"), [("series-change", "level_trend"),
                                               ("digits-change", "ink_fade")])  # fmt: skip
def test_an_operator_with_an_individual_side_changes_items_unequally(name, operator):
    """op(x, m) = base(x, m·k(x)): the side k really varies across items, so at one m the
    read-back of the base change differs per item, and only the operator's own read-back
    (which divides by k) recovers m; the average change cannot reproduce each item's."""
    from gankit.metrics.change import (
        AverageChange,
        AverageSideChange,
        OperatorChange,
        individual_scores,
    )

    bundle = load_dataset(name, operator=operator)
    op = bundle.extra["change"]
    x = bundle.test.tensors[0]
    side = op.side(x)
    assert float(side.std()) > 0.25 and float(side.max() - side.min()) >= 1.0
    m = torch.full((len(x),), 0.5)
    changed = op.apply(x, m)
    base_read = op.base.measure(x, changed)  # the change as the base operator reads it
    assert float(base_read.std()) > 0.1
    assert torch.allclose(op.measure(x, changed), m, atol=1e-3)
    later = bundle.domain_b
    earlier = x[later.extra["source_index"]["test"]]
    pairs, magnitude = later.test.tensors[0], later.extra["magnitude"]["test"]
    own = individual_scores(OperatorChange(op), earlier, pairs, magnitude)
    for average in (AverageChange(op, earlier), AverageSideChange(op, earlier)):
        blind = individual_scores(average, earlier, pairs, magnitude)
        assert blind["individual_error"] > own["individual_error"] + 0.25, blind


def test_change_data_is_deterministic_unpaired_and_hides_the_magnitude():
    first, again = load_dataset("series-change"), load_dataset("series-change")
    other = load_dataset("series-change", seed=1)
    assert torch.equal(first.domain_b.train.tensors[0], again.domain_b.train.tensors[0])
    assert torch.equal(first.train.tensors[0], again.train.tensors[0])
    assert not torch.equal(first.domain_b.train.tensors[0], other.domain_b.train.tensors[0])
    # batches carry items and labels only: m is not a label, and the pairing is shuffled
    assert (first.domain_b.train.tensors[1] == -1).all()
    pi = first.domain_b.extra["source_index"]["train"]
    assert not torch.equal(pi, torch.arange(len(pi)))
    digits = load_dataset("digits-change")
    assert digits.shape == digits.domain_b.shape == (1, 8, 8)
    labels = digits.train.tensors[1][digits.domain_b.extra["source_index"]["train"]]
    assert torch.equal(digits.domain_b.train.tensors[1], labels)  # classes kept


def test_bad_data_options_are_one_line_errors(tmp_path):
    with pytest.raises(GankitError, match="unknown operator 'blur'; valid"):
        load_dataset("digits-change", operator="blur")
    with pytest.raises(GankitError, match="length"):
        load_dataset("series-change", length=2)
    config = tmp_path / "one-domain.yaml"
    config.write_text("model: {name: change}\ndata: {name: digits}\ntrain: {steps: 1}\n")
    result = cli("train", config, "--runs-dir", tmp_path, "--no-progress")
    one_line_error(result, "trains on two domains", "data.target")


# --------------------------------------------------------------------------- the family
def test_the_generator_is_residual_and_q_reads_pairs():
    model = create_model("change", data_shape=(1, 8, 8), width=8, n_layers=1)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert model.change(x, 0.5).shape == (4, 1, 8, 8)
    assert model.predict_amount(x, x).shape == (4,)
    with pytest.raises(GankitError, match="series or"):
        create_model("change", data_shape=(2, 3))
    with pytest.raises(GankitError, match="info_weight"):
        create_model("change", data_shape=(8,), info_weight=-1.0)
    assert create_model("change_noq", data_shape=(8,)).info_weight == 0.0
    with pytest.raises(GankitError, match="unknown discriminator 'both'; valid: later, periods"):
        create_model("change", data_shape=(8,), discriminator="both")


@pytest.mark.parametrize("discriminator", ["later", "periods", "three"])
def test_each_discriminator_trains_d_and_g(discriminator):
    """One step of each variant of what D judges moves D and G and stays finite; the
    three-class D has three logits."""
    model = create_model("change", data_shape=(1, 8, 8), width=8, n_layers=1,
                         discriminator=discriminator)  # fmt: skip
    model.optimizers = model.configure_optimizers()
    assert model.D(torch.zeros(2, 1, 8, 8)).shape == (2, 3 if discriminator == "three" else 1)
    before = {name: [p.detach().clone() for p in getattr(model, name).parameters()]
              for name in ("D", "G")}  # fmt: skip
    batch = {"x": torch.rand(4, 1, 8, 8) * 2 - 1, "x_b": torch.rand(4, 1, 8, 8) * 2 - 1}
    logged = model.train_step(batch, 0)
    assert all(np.isfinite(value) for value in logged.values()), logged
    for name, params in before.items():
        assert any(not torch.equal(a, b) for a, b in zip(params, getattr(model, name).parameters(),
                                                          strict=True)), name  # fmt: skip


def test_a_code_scaled_generator_changes_nothing_at_zero():
    """G(x, c) = x + c·Δ(x, c): c = 0 is the identity by construction, untrained or not."""
    model = create_model("change", data_shape=(16,), width=8, n_layers=1, code_scaled=True)
    x = torch.randn(5, 16)
    assert torch.equal(model.change(x, 0.0), x)
    assert not torch.equal(model.change(x, 0.5), x)


def test_a_global_path_lets_every_pixel_hear_the_whole_item():
    """Without it, G's 3x3 stack of two layers sees 7x7 pixels: a far corner's ink cannot
    move the opposite corner; with ``global_path`` it can (the item's mean reaches all)."""
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    far = x.clone()
    far[..., -1, -1] += 1.0  # the bottom-right corner, beyond any 7x7 field of (0, 0)
    for global_path, moves in ((False, False), (True, True)):
        torch.manual_seed(0)
        model = create_model("change", data_shape=(1, 16, 16), width=8, n_layers=2,
                             global_path=global_path)  # fmt: skip
        corner = model.change(x, 0.5)[..., 0, 0], model.change(far, 0.5)[..., 0, 0]
        assert (not torch.equal(*corner)) is moves, global_path


def test_a_warping_generator_starts_as_the_identity_and_moves_after_a_step():
    """``warp``: an untrained G is the identity at every c (θ starts at I, Δ at 0); one
    step moves it; with ``code_scaled`` (θ_c and c·Δ) c = 0 stays the identity after it."""
    model = create_model("change", data_shape=(1, 8, 8), width=8, n_layers=1, warp=True,
                         code_scaled=True)  # fmt: skip
    model.optimizers = model.configure_optimizers()
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    assert torch.allclose(model.change(x, 0.7), x, atol=1e-5)
    model.train_step({"x": x, "x_b": torch.rand(6, 1, 8, 8) * 2 - 1}, 0)
    assert not torch.allclose(model.change(x, 0.7), x, atol=1e-4)
    assert torch.allclose(model.change(x, 0.0), x, atol=1e-5)


def test_image_only_generator_options_are_refused_on_series():
    for option in ("global_path", "warp"):
        with pytest.raises(GankitError, match=f"{option} is for .C, H, W. images.*=false"):
            create_model("change", data_shape=(16,), **{option: True})
    with pytest.raises(GankitError, match="transport_weight"):
        create_model("change", data_shape=(16,), transport_weight=-0.5)


def series_config(steps: int, model: str = "change", **train) -> dict:
    return {
        "name": "series",
        "model": {"name": model, "width": 32, "n_layers": 2, "lr": 1e-3},
        "data": {"name": "series-change", "n_train": 512, "n_test": 128},
        "train": {
            "steps": steps, "batch_size": 32, "log_every": 10, "sample_every": 10,
            "ckpt_every": 10, "progress": False, "threads": 1, **train,
        },
    }  # fmt: skip


def test_resume_continues_bit_for_bit(tmp_path):
    gankit.train(series_config(4, sample_every=100), name="straight", runs_dir=tmp_path)
    gankit.train(series_config(2, sample_every=100), name="resumed", runs_dir=tmp_path)
    gankit.train(None, ["train.steps=4"], name="resumed", runs_dir=tmp_path, resume=True)
    states = [
        torch.load(tmp_path / name / "checkpoints" / "step_00000004.pt", weights_only=True)
        for name in ("straight", "resumed")
    ]
    for key, value in states[0]["model"].items():
        assert torch.equal(value, states[1]["model"][key]), key


def test_trains_evaluates_and_explores_through_the_shared_code(tmp_path):
    run_dir = gankit.train(series_config(20, eval_every=10, eval_n=64), runs_dir=tmp_path).run_dir
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_control" in line for line in lines)
    assert sorted((run_dir / "samples").glob("step_*.png"))

    result = cli("eval", run_dir, "--n", "100")
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "eval.json").read_text())
    for key in ("control", "individual_error", "calibration_error", "fd", "fd_before",
                "identity", "code_error"):  # fmt: skip
        assert key in report["scores"], key
    assert report["floor"]["control"] > 0.99
    one_line_error(
        cli("eval", run_dir, "--features", "inception", "--overwrite"), "drop --features"
    )

    result = cli("explore", run_dir, "--what", "change", "--pairs", "3")
    assert result.exit_code == 0, result.output
    with Image.open(run_dir / "explore" / "change.png") as picture:
        assert picture.size[0] > picture.size[1] / 2
    one_line_error(cli("explore", run_dir, "--what", "grid"), "change")
    # series are no image files
    one_line_error(
        cli("translate", run_dir, "--amount", "0.5", "--input", tmp_path, "--out", tmp_path / "o"),
        "series",
    )


def test_translate_changes_image_files_by_an_amount(tmp_path, evaluator_cache):
    config = {
        "name": "digits",
        "model": {"name": "change", "width": 8, "n_layers": 1},
        "data": {"name": "digits-change", "operator": "fade"},
        "train": {"steps": 2, "batch_size": 8, "sample_every": 2, "ckpt_every": 2,
                  "progress": False, "threads": 1},
    }  # fmt: skip
    run_dir = gankit.train(config, runs_dir=tmp_path).run_dir
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(2):
        pixels = np.zeros((8, 8), dtype=np.uint8)
        pixels[2:6, 3 + i] = 255
        Image.fromarray(pixels).save(inputs / f"d{i}.png")
    out = tmp_path / "out"
    for bad in ("1.5", "-0.1", "nan"):
        one_line_error(
            cli("translate", run_dir, "--amount", bad, "--input", inputs, "--out", out),
            "--amount",
        )
    result = cli("translate", run_dir, "--amount", "0.5", "--input", inputs, "--out", out,
                 "--strips")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "d0.png", "d0_strip.png", "d1.png", "d1_strip.png"
    ]  # fmt: skip
    one_line_error(
        cli("translate", run_dir, "--amount", "0.5", "--input", inputs, "--out", out),
        "already exists",
    )
    result = cli("eval", run_dir, "--n", "50")
    assert result.exit_code == 0, result.output
    scores = json.loads((run_dir / "eval.json").read_text())["scores"]
    assert {"control", "fd", "class_kept", "class_kept_before", "identity"} <= set(scores)


# --------------------------------------------------------------------------- learning
def test_the_toy_learns_that_c_sets_the_amount_of_change(tmp_path):
    """On the amplitude toy, Spearman between c and the read-back amplitude gain of
    G(x, c) climbs far above an untrained model's within a few hundred steps."""
    config = series_config(300)
    config["train"].update(sample_every=1000, ckpt_every=300, log_every=100)
    bundle = load_data(config["data"])
    untrained = create_model("change", data_shape=(32,), width=32, n_layers=2)
    before, _, _ = change_scores(untrained, bundle, 200, 0)
    run = load_run(gankit.train(config, runs_dir=tmp_path).run_dir)
    after, _, _ = change_scores(run.model, bundle, 200, 0)
    assert after["control"] > 0.8, after
    assert after["control"] > abs(before["control"]) + 0.4, (before, after)
    # each individual's own change moves towards the real one (at 300 steps it is still
    # about as far as leaving x alone: docs/change.md)
    assert after["individual_error"] < before["individual_error"] - 0.15, (before, after)
    assert after["calibration_error"] < before["calibration_error"] - 0.1, (before, after)
    assert after["identity"] < 0.1, after


def test_a_blended_translator_is_scored_as_a_change_baseline(tmp_path, evaluator_cache):
    """x + c·(G(x) − x): c = 0 is the input, c = 1 the translation, and change_scores
    scores it on the same held-out items as the family."""
    from gankit.metrics.change import BlendedTranslation

    config = {
        "name": "blend",
        "model": {"name": "cyclegan", "channels": 4, "n_blocks": 1, "d_channels": 4},
        "data": {"name": "digits-change", "operator": "fade"},
        "train": {"steps": 2, "batch_size": 8, "threads": 1, "progress": False},
    }
    run = load_run(gankit.train(config, runs_dir=tmp_path).run_dir)
    blend = BlendedTranslation(run)
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    translated = run.model.translate(x, "AtoB")
    assert torch.equal(blend.change(x, 0.0), x)
    assert torch.allclose(blend.change(x, 1.0), translated)
    halfway = blend.change(x, torch.full((5,), 0.5))
    assert torch.allclose(halfway, (x + translated) / 2, atol=1e-6)
    bundle = load_data(config["data"])
    scores, floor, _ = change_scores(blend, bundle, n=20, train_evaluator=True)
    assert scores["identity"] == 0.0 and -1.0 <= scores["control"] <= 1.0
    assert "code_error" not in scores and floor["control"] > 0.9
    # a translator has no amount: --amount on its run is one line
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(inputs / "d.png")
    one_line_error(
        cli("translate", run.path, "--amount", "0.5", "--input", inputs, "--out", tmp_path / "o"),
        "drop --amount",
    )


def test_data_without_hidden_pairs_prints_no_individual_score():
    """Two periods with no operator (the user's own, say) have no hidden m: the scores
    that need one are missing, and a note says why, rather than a number."""
    bundle = load_dataset("series-change", n_train=64, n_test=50)
    bundle.extra.pop("change")
    for key in ("magnitude", "source_index"):
        bundle.domain_b.extra.pop(key)
    model = create_model("change", data_shape=(32,), width=8, n_layers=1)
    scores, floor, notes = change_scores(model, bundle, 20)
    assert not {"control", "individual_error", "calibration_error", "calibration_rank"} & (
        set(scores) | set(floor)
    )
    assert {"fd", "identity"} <= set(scores)
    assert any("missing (the data has no hidden pairs" in note for note in notes), notes


@pytest.mark.slow  # over 5 s: the default suite keeps under its 10-minute budget
def test_the_class_judge_knows_both_periods(tmp_path, monkeypatch):
    """Fitted to earlier and later digits alike, the judge names the class of held-out
    items of both periods (an untrained one is near 0.1). Once fitted it is cached: the
    second call loads the same weights, and an unreadable file is refitted."""
    from gankit.data import load_data
    from gankit.data.base import take
    from gankit.metrics.change import class_judge

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    bundle = load_data({"name": "digits-change", "operator": "thicken"})
    judge = class_judge(bundle)
    for split in (bundle.held_out, bundle.domain_b.held_out):
        x, y = take(split, 300, 0)
        assert float((judge.logits(x).argmax(dim=1) == y).float().mean()) > 0.85
    (cached,) = (tmp_path / "judges").iterdir()
    import gankit.metrics.features as features

    fit = features.fit_classifier
    with monkeypatch.context() as patch:  # a cache hit fits nothing
        patch.setattr(features, "fit_classifier", lambda *a, **k: pytest.fail("refitted"))
        again = class_judge(bundle)
    assert features.fit_classifier is fit
    assert torch.equal(again.logits(x), judge.logits(x))
    cached.write_bytes(b"not a checkpoint")
    refitted = class_judge(bundle)
    assert torch.allclose(refitted.logits(x), judge.logits(x), atol=1e-5)
    assert cached.stat().st_size > 1000
    other_seed = class_judge(bundle, seed=1)
    assert len(list((tmp_path / "judges").iterdir())) == 2
    assert not torch.equal(other_seed.logits(x), judge.logits(x))
