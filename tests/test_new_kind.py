"""A new kind of model is one file: this one.

It defines a family whose task no gankit module knows ("denoise": a network that learns
to remove noise from 2-D points), the task's evaluation, previews, scores and one explore
picture, registers both, and then trains, resumes, evaluates and explores it through
gankit's own train(), ``gankit eval`` and ``gankit explore`` with no edit anywhere in the
package. If the shared code recognised families by flags or attributes, this would fail.
"""

from __future__ import annotations

import json
import time

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from typer.testing import CliRunner

import gankit
from gankit.cli import app
from gankit.data.base import take
from gankit.errors import GankitError
from gankit.explore.explore import Picture
from gankit.metrics.evaluate import EvalReport
from gankit.models.base import Model
from gankit.nn import eval_mode, mlp
from gankit.registry import MODELS, get_spec, list_models, missing_methods, register_model
from gankit.tasks import TASKS, Task, list_tasks, register_task


# --------------------------------------------------------------------------- the family
class Denoiser(Model):
    """``min_f E ||f(x + σε) − x||²`` with ε ~ N(0, I): an MLP that removes noise."""

    task = "denoise"

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        hidden_dim: int = 64,
        noise: float = 0.5,
        lr: float = 3e-3,
    ) -> None:
        super().__init__(data_shape, num_classes)
        self.noise, self.lr = noise, lr
        self.net = mlp(data_shape[0], hidden_dim, 2, data_shape[0])

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": torch.optim.Adam(self.net.parameters(), lr=self.lr)}

    def train_step(self, batch, step):
        x = batch["x"]
        loss = F.mse_loss(self.net(x + self.noise * torch.randn_like(x)), x)
        optimizer = self.optimizers["net"]
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        self.step(optimizer)
        return {"loss": loss.item()}

    @torch.no_grad()
    def denoise(self, noisy: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.net):
            return self.net(noisy.to(self.device)).cpu()


# --------------------------------------------------------------------------- its task
def noisy_held_out(model, bundle, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, _ = take(bundle.held_out, n, seed)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return x, x + model.noise * noise


def mse_scores(model, bundle, n: int = 1000, seed: int = 0) -> dict[str, float]:
    """Error after denoising, and before (the noisy input itself)."""
    x, noisy = noisy_held_out(model, bundle, n, seed)
    return {
        "mse": float((model.denoise(noisy) - x).pow(2).mean()),
        "mse_noisy": float((noisy - x).pow(2).mean()),
    }


def evaluate(run, bundle, options) -> EvalReport:
    started = time.perf_counter()
    return EvalReport(
        run=str(run.path), step=run.step, n=1000, n_reference=1000, n_floor=0,
        split="test", features=None, scores=mse_scores(run.model, bundle, seed=options.seed),
        floor={}, seconds=time.perf_counter() - started, extra={},
    )  # fmt: skip


def scatter(path, noisy: torch.Tensor, clean: torch.Tensor, title: str) -> None:
    from gankit.explore.pictures import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.scatter(noisy[:, 0], noisy[:, 1], s=2, label="noisy")
    ax.scatter(clean[:, 0], clean[:, 1], s=2, label="denoised")
    ax.set_title(title)
    ax.legend()
    fig.savefig(path)
    plt.close(fig)


class DenoisePreviews:
    def __init__(self, model, bundle, seed: int) -> None:
        self.model, self.bundle = model, bundle

    def inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"noisy": noisy_held_out(self.model, self.bundle, n, 0)[1]}

    def draw(self, step, inputs, net, paths, title):
        path = paths.samples / f"step_{step:08d}.png"
        scatter(path, inputs["noisy"], self.model.denoise(inputs["noisy"]), title)
        return path


def denoised_view(run, options) -> list[Picture]:
    from gankit.data import load_data

    _, noisy = noisy_held_out(run.model, load_data(run.config["data"]), options.n, options.seed)
    clean = run.model.denoise(noisy)
    return [Picture("denoised.png", lambda path: scatter(path, noisy, clean, "denoised"))]


DENOISE = Task(
    name="denoise",
    summary="removes noise from points",
    evaluate=evaluate,
    previews=DenoisePreviews,
    scores=lambda model, bundle, cfg: lambda step, net: mse_scores(model, bundle, 200),
    views={"denoised": denoised_view},
    default_views=("denoised",),
    model_methods=("denoise",),  # what evaluate, the previews and the view call
)


@pytest.fixture(scope="module")
def registered():
    """Register the family and its task for this module only."""
    register_task(DENOISE)
    register_model("denoiser_test", Denoiser, "a denoising MLP, defined in a test")
    yield
    MODELS.pop("denoiser_test")
    TASKS.pop("denoise")


def config(steps: int) -> dict:
    return {
        "name": "denoise-ring",
        "model": {"name": "denoiser_test"},
        "data": {"name": "ring", "n_train": 2000, "n_test": 1000},
        "train": {
            "steps": steps, "batch_size": 64, "sample_every": 100, "eval_every": 100,
            "ckpt_every": 100, "log_every": 50, "progress": False,
        },
    }  # fmt: skip


# --------------------------------------------------------------------------- the test
def test_a_new_kind_trains_resumes_evaluates_and_explores(registered, tmp_path):
    gankit.train(config(100), runs_dir=tmp_path)
    result = gankit.train("denoise-ring", {"train.steps": 200}, runs_dir=tmp_path, resume=True)
    straight = gankit.train(config(200), runs_dir=tmp_path, name="straight")
    # the trainer's clock: resume is exact for a family it has never seen
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, result.model.state_dict()[key]), key

    run_dir = result.run_dir
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "step_00000100.png",
        "step_00000200.png",
    ]
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [line for line in lines if "eval_mse" in line]
    assert [line["step"] for line in evals] == [100, 200]

    # gankit eval reads the task's evaluation: the denoiser learned to remove noise
    cli = CliRunner()
    out = cli.invoke(app, ["eval", str(run_dir)])
    assert out.exit_code == 0, out.output
    scores = json.loads((run_dir / "eval.json").read_text())["scores"]
    assert scores["mse"] < 0.7 * scores["mse_noisy"], scores
    untrained = mse_scores(Denoiser((2,)), gankit.load_dataset("ring", n_test=1000))
    assert untrained["mse"] > scores["mse"]

    # gankit explore offers the task's view, and refuses the others with the valid list
    out = cli.invoke(app, ["explore", str(run_dir), "--what", "denoised", "--n", "300"])
    assert out.exit_code == 0, out.output
    with Image.open(run_dir / "explore" / "denoised.png") as picture:
        assert picture.width > 100
    out = cli.invoke(app, ["explore", str(run_dir), "--what", "grid"])
    assert out.exit_code == 2
    assert "grid does not apply" in out.output and "valid for it: denoised" in out.output

    # a sampler's commands say in one line that this kind draws no samples
    out = cli.invoke(app, ["sample", str(run_dir)])
    assert out.exit_code == 2 and "draws no samples" in out.output


def one_line_refusal(match: str, register) -> str:
    with pytest.raises(GankitError, match=match) as error:
        register()
    assert "\n" not in str(error.value)
    return str(error.value)


def test_a_family_lacking_a_method_its_task_calls_is_refused(registered):
    class Blind(Model):  # a denoise family with no denoise()
        task = "denoise"

    one_line_refusal(
        "model 'blind_test': Blind serves task 'denoise' but lacks denoise",
        lambda: register_model("blind_test", Blind, "no denoise()"),
    )
    assert "blind_test" not in MODELS

    class Silent(Model):  # a sampler that draws latents but cannot turn them into samples
        task = "sample"

        def sample_latent(self, n, generator=None):
            return {"z": torch.zeros(n, 2)}

    list_tasks()  # the built-in tasks are registered: the family is checked at once
    message = one_line_refusal(
        "model 'silent_test': Silent serves task 'sample' but lacks generate;",
        lambda: register_model("silent_test", Silent, "no generate()"),
    )
    assert "sample_latent, generate" in message  # what the task calls, both named
    assert "silent_test" not in MODELS


def test_a_family_registered_before_its_task_is_checked_when_the_task_comes():
    class Early(Model):
        task = "denoise_later"

    register_model("early_test", Early, "registered before its task")
    later = Task(name="denoise_later", summary="s", evaluate=evaluate, model_methods=("denoise",))
    try:
        one_line_refusal(
            "model 'early_test': Early serves task 'denoise_later' but lacks denoise",
            lambda: register_task(later),
        )
        assert "denoise_later" not in TASKS
    finally:
        MODELS.pop("early_test")


def test_every_built_in_family_has_the_methods_its_task_calls():
    built_in = ("sample", "translate", "classify", "segment", "sequence", "change")
    assert set(built_in) <= set(list_tasks())
    assert all(TASKS[name].model_methods for name in built_in)
    for name in list_models():
        assert missing_methods(get_spec(name).cls) == [], name


def test_a_family_must_declare_a_served_task(registered):
    class Unknown(Denoiser):
        task = "paint"

    register_model("unknown_task_test", Unknown, "declares a task nobody serves")
    try:
        valid = "valid: change, classify, denoise"
        with pytest.raises(GankitError, match=f"declares task 'paint'.*{valid}"):
            gankit.train(
                {**config(2), "model": {"name": "unknown_task_test"}}, runs_dir="/nonexistent"
            )
    finally:
        MODELS.pop("unknown_task_test")

    class NoTask(nn.Module):
        pass

    with pytest.raises(ValueError, match="declares no task"):
        register_model("no_task_test", NoTask, "not a family")
