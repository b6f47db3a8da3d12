"""Precision, memory layout and compilation options of the trainer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gankit
from conftest import tiny_config
from gankit.errors import GankitError


@pytest.mark.parametrize("model", ["dcgan", "wgan_gp", "infogan"])
def test_bf16_autocast_trains_on_cpu(model, tmp_path):
    result = gankit.train(
        tiny_config(model, "digits", steps=4, precision="bf16", channels_last=True),
        runs_dir=tmp_path,
    )
    assert result.step == 4
    assert all(torch.isfinite(torch.tensor(v)) for v in result.last_metrics.values())
    # weights stay float32: autocast changes the arithmetic, not the parameters
    assert all(p.dtype == torch.float32 for p in result.model.parameters())


def test_gradient_penalty_runs_in_float32_under_autocast():
    from gankit.losses import gradient_penalty

    seen = []

    def critic(x):
        seen.append(x.dtype)
        return nn.functional.linear(x.flatten(1), torch.ones(1, 4))

    real, fake = torch.randn(3, 4), torch.randn(3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        penalty = gradient_penalty(critic, real, fake)
    # D(x) = sum(x): its gradient has norm 2 everywhere, so the penalty is (2 - 1)^2
    assert seen == [torch.float32] and penalty.item() == pytest.approx(1.0)


def test_fp16_without_cuda_is_refused(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the refusal is for CPU-only machines")
    with pytest.raises(GankitError, match="precision fp16 needs CUDA"):
        gankit.train(tiny_config("dcgan", "digits", steps=2, precision="fp16"), runs_dir=tmp_path)


def test_compile_failure_falls_back_to_eager_with_a_message(tmp_path, monkeypatch, capsys):
    class CompilerFailed(RuntimeError):
        pass

    CompilerFailed.__module__ = "torch._dynamo.exc"  # what a failing backend raises

    class Failing(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self._orig_mod = inner

        def forward(self, *args, **kwargs):
            raise CompilerFailed("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda module, **_: Failing(module))
    compiled = gankit.train(tiny_config("gan", "ring", steps=5, compile=True), runs_dir=tmp_path)
    assert "torch.compile failed (no C++ compiler found); training without it" in (
        capsys.readouterr().err
    )
    # and the run is exactly the eager run: the failed step was rolled back
    eager = gankit.train(tiny_config("gan", "ring", steps=5), runs_dir=tmp_path, name="eager")
    for (key, a), b in zip(compiled.model.state_dict().items(), eager.model.state_dict().values()):
        assert torch.equal(a, b), key


def test_the_bf16_race_preset_is_the_10min_recipe_with_two_settings_changed():
    from gankit.config import load_preset

    fp32, bf16 = load_preset("infogan-fashion-10min"), load_preset("infogan-fashion-10min-bf16")
    assert bf16["train"].pop("precision") == "bf16" and "precision" not in fp32["train"]
    assert (fp32["train"].pop("ema_decay"), bf16["train"].pop("ema_decay")) == (0.999, 0.9995)
    assert bf16["model"] == fp32["model"] and bf16["data"] == fp32["data"]
    assert bf16["train"] == fp32["train"]
