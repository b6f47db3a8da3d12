"""The trainer: determinism, exact resume, checkpoints, divergence, run-directory safety."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

import gankit
from conftest import tiny_config
from gankit.errors import DivergenceError, GankitError
from gankit.models.gan import GAN
from gankit.runs.checkpoint import list_checkpoints, load_checkpoint


def final_state(run_dir):
    step, path = list_checkpoints(run_dir / "checkpoints")[-1]
    return step, load_checkpoint(path)


def assert_same_state(a, b):
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"] or {}:
        assert torch.equal(a["ema"][key], b["ema"][key]), key


def test_run_directory_layout(tmp_path):
    result = gankit.train(tiny_config(), runs_dir=tmp_path)
    run = tmp_path / "tiny-gan"
    assert result.run_dir == run and result.step == 20
    for name in ("config.yaml", "metrics.jsonl", "fixed_noise.pt", "loss_curves.png"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_00000010.png",
        "step_00000020.png",
    ]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= set(rows[0])
    state = load_checkpoint(result.checkpoint)
    assert state["config"]["model"]["name"] == "gan" and state["step"] == 20
    assert not list(run.rglob("*.tmp")), "atomic writes leave no temporary files"


def test_same_seed_gives_the_same_weights(tmp_path):
    a = gankit.train(tiny_config(), name="a", runs_dir=tmp_path)
    b = gankit.train(tiny_config(), name="b", runs_dir=tmp_path)
    c = gankit.train(tiny_config(seed=1), name="c", runs_dir=tmp_path)
    state_a, state_b, state_c = (load_checkpoint(r.checkpoint) for r in (a, b, c))
    assert_same_state(state_a, state_b)
    assert not torch.equal(state_a["model"]["G.0.0.weight"], state_c["model"]["G.0.0.weight"])


@pytest.mark.parametrize(("model", "data"), [("dcgan", "digits"), ("wgan_gp", "ring")])
def test_resume_is_bit_identical(tmp_path, model, data):
    """2N steps in one go == N steps, then --resume for N more (BN, Adam, EMA, n_critic)."""
    config = tiny_config(model, data, steps=12, ckpt_every=4, sample_every=6, ema_decay=0.9)
    gankit.train(config, name="straight", runs_dir=tmp_path)
    half = tiny_config(model, data, steps=6, ckpt_every=4, sample_every=6, ema_decay=0.9)
    gankit.train(half, name="resumed", runs_dir=tmp_path)
    torch.manual_seed(999)  # resume must restore the RNG itself
    result = gankit.train(None, ["train.steps=12"], name="resumed", runs_dir=tmp_path, resume=True)
    assert result.step == 12
    _, straight = final_state(tmp_path / "straight")
    _, resumed = final_state(tmp_path / "resumed")
    assert_same_state(straight, resumed)
    logged = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in logged] == [5, 6, 10, 12]


def test_keeps_only_the_newest_checkpoints(tmp_path):
    gankit.train(tiny_config(steps=30, ckpt_every=5, keep_checkpoints=2), runs_dir=tmp_path)
    steps = [s for s, _ in list_checkpoints(tmp_path / "tiny-gan" / "checkpoints")]
    assert steps == [25, 30]


def test_existing_run_is_never_overwritten(tmp_path):
    gankit.train(tiny_config(), runs_dir=tmp_path)
    before = (tmp_path / "tiny-gan" / "metrics.jsonl").read_text()
    with pytest.raises(GankitError, match="already exists; pass --resume"):
        gankit.train(tiny_config(), runs_dir=tmp_path)
    assert (tmp_path / "tiny-gan" / "metrics.jsonl").read_text() == before
    result = gankit.train(tiny_config(steps=10), runs_dir=tmp_path, overwrite=True)
    assert result.step == 10


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = GAN.train_step

    def explode_at_step_7(self, batch, step):
        stats = original(self, batch, step)
        if step == 6:
            stats["loss_d"] = float("nan")
        return stats

    monkeypatch.setattr(GAN, "train_step", explode_at_step_7)
    with pytest.raises(
        DivergenceError,
        match=r"diverged at step 7 \(loss_d = nan\).*step_00000005.*\(model.lr_g, model.lr_d\)",
    ):
        gankit.train(tiny_config(ckpt_every=5), runs_dir=tmp_path)
    steps = [s for s, _ in list_checkpoints(tmp_path / "tiny-gan" / "checkpoints")]
    assert steps == [5]
    load_checkpoint(tmp_path / "tiny-gan" / "checkpoints" / "step_00000005.pt")


def test_the_divergence_hint_names_the_models_own_learning_rates(tmp_path, monkeypatch):
    """A VAE has one learning rate, model.lr; the hint used to name the GAN family's
    model.lr_g and model.lr_d for every family."""
    from gankit.models.vae import VAE

    original = VAE.train_step

    def explode(self, batch, step):
        stats = original(self, batch, step)
        stats["loss"] = float("nan")
        return stats

    monkeypatch.setattr(VAE, "train_step", explode)
    with pytest.raises(DivergenceError) as raised:
        gankit.train(tiny_config("vae", "digits"), runs_dir=tmp_path)
    assert "(model.lr)" in str(raised.value) and "lr_g" not in str(raised.value)


def test_resume_refuses_model_changes_and_finished_runs(tmp_path):
    gankit.train(tiny_config(), runs_dir=tmp_path)
    with pytest.raises(GankitError, match="only train.\\* settings may change"):
        gankit.train(None, ["model.lr_g=0.1"], name="tiny-gan", runs_dir=tmp_path, resume=True)
    with pytest.raises(GankitError, match="already has 20 of 20 steps"):
        gankit.train(None, name="tiny-gan", runs_dir=tmp_path, resume=True)
    with pytest.raises(GankitError, match="is not a run"):
        gankit.train(None, name="nothing", runs_dir=tmp_path, resume=True)


def test_load_run_samples_from_the_ema_generator(tmp_path):
    gankit.train(tiny_config(ema_decay=0.5), runs_dir=tmp_path)
    run = gankit.load_run(tmp_path / "tiny-gan")
    assert run.step == 20 and run.sampler_net is not run.model.generator
    a, b = run.sample(16, seed=3), run.sample(16, seed=3)
    assert a.shape == (16, 2) and torch.equal(a, b)
    assert not torch.equal(a, run.model.sample(16, torch.Generator().manual_seed(3)))


def test_interrupt_saves_a_checkpoint(tmp_path, monkeypatch):
    """The stop flag (set by Ctrl-C / SIGTERM) ends the run after the current step."""
    import signal

    original = GAN.train_step

    def interrupt_at_step_3(self, batch, step):
        if step == 3:
            signal.raise_signal(signal.SIGTERM)
        return original(self, batch, step)

    monkeypatch.setattr(GAN, "train_step", interrupt_at_step_3)
    result = gankit.train(tiny_config(), runs_dir=tmp_path)
    assert result.interrupted == "SIGTERM" and result.step == 4
    assert [s for s, _ in list_checkpoints(tmp_path / "tiny-gan" / "checkpoints")] == [4]
    monkeypatch.setattr(GAN, "train_step", original)
    resumed = gankit.train(None, name="tiny-gan", runs_dir=tmp_path, resume=True)
    assert resumed.step == 20 and resumed.interrupted is None


def test_tensorboard_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(GankitError, match=r"pip install 'gankit\[tensorboard\]'"):
        gankit.train(tiny_config(tensorboard=True), runs_dir=tmp_path)
    assert not (tmp_path / "tiny-gan").exists()  # nothing written before the error


def test_ema_batch_norm_statistics_are_re_estimated_for_the_averaged_weights():
    from gankit.ema import make_ema, recompute_batch_norm, update_ema
    from gankit.registry import create_model

    model = create_model("dcgan", data_shape=(1, 8, 8), g_channels=8, d_channels=8, latent_dim=4)
    ema = make_ema(model.G, decay=0.5)
    with torch.no_grad():
        for p in model.G.parameters():
            p.add_(torch.randn_like(p))
    update_ema(ema, model.G)
    assert recompute_batch_norm(ema.module, model, n_batches=4, batch_size=32, seed=3)
    # the first batch norm's running mean is the exact mean of its inputs over the
    # same 4 x 32 latents
    generator = torch.Generator().manual_seed(3)
    latents = torch.cat([model.sample_latent(32, generator)["z"] for _ in range(4)])
    projection = ema.module.project
    with torch.no_grad():
        inputs = projection[1](projection[0](latents))
    assert torch.allclose(projection[2].running_mean, inputs.mean(dim=(0, 2, 3)), atol=1e-5)
    # models without batch norm are left alone
    gan = create_model("gan", data_shape=(2,), hidden_dim=8)
    assert not recompute_batch_norm(gan.G, gan)


def test_time_limit_stops_cleanly_and_the_resumed_run_is_exact(tmp_path, monkeypatch):
    """train.time_limit ends the loop after the step that crossed it, with a checkpoint
    of that step; resuming gives the weights of a run that was never stopped."""
    import time

    original = GAN.train_step

    def slow_at_step_3(self, batch, step):
        if step == 3:
            time.sleep(1.2)
        return original(self, batch, step)

    gankit.train(tiny_config(), name="straight", runs_dir=tmp_path)
    monkeypatch.setattr(GAN, "train_step", slow_at_step_3)
    result = gankit.train(tiny_config(time_limit="1s"), name="limited", runs_dir=tmp_path)
    assert result.time_limited and result.interrupted is None
    assert 1 <= result.step <= 4
    assert list_checkpoints(tmp_path / "limited" / "checkpoints")[-1][0] == result.step
    rows = (tmp_path / "limited" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(rows[-1])["step"] == result.step  # the last partial window is logged
    monkeypatch.setattr(GAN, "train_step", original)
    # each call gets the whole limit again; lift it to finish
    lifted = ["train.time_limit=null"]
    resumed = gankit.train(None, lifted, name="limited", runs_dir=tmp_path, resume=True)
    assert resumed.step == 20 and not resumed.time_limited
    assert_same_state(final_state(tmp_path / "straight")[1], final_state(tmp_path / "limited")[1])


def slow_decaying_steps(monkeypatch) -> list[float]:
    """GAN steps of 0.1 s each; the returned list gets G's learning rate after each step,
    as a share of its base rate."""
    import time

    original, rates = GAN.train_step, []

    def slow_step(self, batch, step):
        time.sleep(0.1)
        out = original(self, batch, step)
        rates.append(self.optimizers["G"].param_groups[0]["lr"] / self.lr_g)
        return out

    monkeypatch.setattr(GAN, "train_step", slow_step)
    return rates


def decaying_config(limit: str) -> dict:
    """10,000 steps under ``limit``, G and D's learning rates decaying from the start."""
    config = tiny_config(steps=10_000, time_limit=limit, sample_every=10_000, ckpt_every=10_000)
    config["model"].update(lr_schedule="linear", decay_start=0.0)
    return config


def test_a_schedule_over_the_steps_ends_with_the_time_limit(tmp_path, monkeypatch):
    """Under train.time_limit, a learning-rate decay laid out over train.steps follows the
    clock when the clock is further along: a run cut at step ~10 of 10,000 still ends
    with its learning rate near zero, not at its full value."""
    rates = slow_decaying_steps(monkeypatch)
    config = decaying_config("1s")
    result = gankit.train(config, name="decayed", runs_dir=tmp_path)
    assert result.time_limited and 5 <= result.step < 100
    assert rates[0] == 1.0  # the first step: neither clock nor steps have moved
    assert rates[-1] < 0.15  # the step that crossed the limit started after 0.9 s of it
    assert all(later <= earlier for earlier, later in itertools.pairwise(rates))


def test_a_resumed_run_continues_its_schedule_and_the_rule_is_said(tmp_path, monkeypatch, capsys):
    """The decay that train.time_limit squeezed into the limit goes on where it was when
    the run resumes (it used to start again at the full rate), and the rule is printed
    when it applies."""
    rates = slow_decaying_steps(monkeypatch)
    config = decaying_config("0.6s")
    first = gankit.train(config, name="decayed", runs_dir=tmp_path)
    assert first.time_limited
    said = capsys.readouterr().err
    assert "gankit: note: train.time_limit 0.6s: schedules" in said
    stopped_at = rates[-1]
    assert stopped_at < 0.5
    rates.clear()
    gankit.train(None, name="decayed", runs_dir=tmp_path, resume=True)
    assert rates[0] <= stopped_at + 1e-9  # not 1.0: the decay did not start again
    assert "resumed at" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, seconds",
    [("10m", 600), ("90s", 90), ("1h30m", 5400), ("45", 45), (2.5, 2.5), ("0.5m", 30)],
)
def test_time_limit_reads_durations(text, seconds):
    from gankit.config import parse_duration

    assert parse_duration(text, "t") == seconds


@pytest.mark.parametrize("text", ["0", "-1", "10x", "m", "", "1m1h", True, "nan", "inf"])
def test_time_limit_refuses_what_is_not_a_positive_duration(text):
    from gankit.config import parse_duration

    with pytest.raises(GankitError, match="must be a positive duration such as 10m"):
        parse_duration(text, "train.time_limit")
