"""Bring your own network: the examples of docs/byo.md, run as a user would.

The files are copied out of the page (each code block that starts with ``# FILENAME``)
into a folder of the user's, so the page cannot drift from what works.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

import gankit
from conftest import cli, one_line_error
from gankit import registry
from gankit.config import load_yaml
from gankit.models.gan import GAN
from gankit.registry import MODELS, get_spec, model_defaults
from gankit.validation import keyword_parameters

DOC = Path(__file__).resolve().parents[1] / "docs" / "byo.md"
USER_MODULES = ("mynets", "myfamily")
USER_MODELS = ("residual_gan", "gmmn")
FAST = ["--set", "train.batch_size=64", "--set", "train.log_every=10", "--no-progress"]


def doc_files() -> dict[str, str]:
    """``FILENAME -> text`` of the page's code blocks that start with ``# FILENAME``."""
    files = {}
    for block in re.findall(r"```(?:python|yaml)\n(.*?)```", DOC.read_text(), re.S):
        first = block.splitlines()[0]
        match = re.fullmatch(r"# ([\w.-]+\.(?:py|yaml))", first)
        if match:
            files[match.group(1)] = block
    return files


def forget_user_code() -> None:
    """As in a new process: the user's modules unimported, their models unregistered,
    and their folder off Python's path (``--import`` put it there)."""
    sys.path[:] = [p for p in sys.path if Path(p).name != "user"]
    for name in USER_MODELS:
        MODELS.pop(name, None)
    for module in USER_MODULES:
        sys.modules.pop(module, None)


@pytest.fixture
def user(tmp_path, monkeypatch):
    """The user's folder holding the page's files, as the current folder; Python's path
    without the current folder (as under the installed ``gankit`` command)."""
    folder = tmp_path / "user"
    folder.mkdir()
    for name, text in doc_files().items():
        (folder / name).write_text(text)
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(folder))])
    forget_user_code()
    yield folder
    forget_user_code()


def test_the_page_holds_the_files_the_tests_use():
    assert set(doc_files()) == {"mynets.py", "myfamily.py", "residual-ring.yaml", "gmmn-ring.yaml"}


def test_your_networks_in_gans_family_train_and_load_again_by_name(user):
    runs = user / "runs"
    result = cli(
        "train", "residual-ring.yaml", "--set", "train.steps=20", *FAST, "--runs-dir", runs
    )
    assert result.exit_code == 0, result.output
    run = runs / "residual-ring"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["imports"] == ["mynets"]
    assert saved["model"]["width"] == 64 and saved["model"]["latent_dim"] == 2
    assert saved["model"]["loss"] == "hinge"  # the variant's default, through **kwargs

    forget_user_code()
    out = user / "ring.pt"
    sample = ("sample", "residual-ring", "--runs-dir", runs, "--n", 16, "--out", out)
    # loading a run never imports its modules by itself: the user says so
    one_line_error(cli(*sample), "'residual_gan' from the module(s) mynets", "--import mynets")
    result = cli(*sample, "--import", "mynets")
    assert result.exit_code == 0, result.output
    assert torch.load(out).shape == (16, 2)
    loaded = gankit.load_run(run)
    assert type(loaded.model).__name__ == "ResidualGAN"
    assert type(loaded.model.G[0][1]).__name__ == "Residual"  # the user's block, not GAN's
    assert torch.equal(torch.load(out), loaded.sample(16, seed=0))


def test_your_options_and_the_parents_are_checked_by_name_and_type(user):
    args = ("train", "residual-ring.yaml", "--runs-dir", user / "runs")
    one_line_error(cli(*args, "--set", "model.width=wide"), "'width' must be int")
    message = one_line_error(
        cli(*args, "--set", "model.latent_dims=2"), "did you mean 'latent_dim'?"
    )
    assert "width" in message and "n_critic" in message  # its own key and GAN's
    assert not (user / "runs").exists()


def test_a_whole_family_of_your_own_learns_and_is_evaluated_and_explored(user):
    runs = user / "runs"
    steps = ["--set", "train.steps=300", "--set", "train.batch_size=128"]
    result = cli("train", "gmmn-ring.yaml", *steps, "--no-progress", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    forget_user_code()
    result = cli("eval", "gmmn-ring", "--runs-dir", runs, "--n", 1000, "--import", "myfamily")
    assert result.exit_code == 0, result.output
    trained = json.loads((runs / "gmmn-ring" / "eval.json").read_text())["scores"]
    # the same network untrained is farther from the ring
    from gankit.metrics.divergences import wasserstein

    real = gankit.load_dataset("ring", n_test=1000).test.tensors[0]
    untrained = gankit.create_model("gmmn", data_shape=(2,), width=128).sample(
        1000, torch.Generator().manual_seed(0)
    )
    assert trained["w1"] < 0.5 * wasserstein(untrained, real), trained
    explore = ("explore", "gmmn-ring", "--what", "toy", "--runs-dir", runs)
    result = cli(*explore, "--import", "myfamily")
    assert result.exit_code == 0, result.output


def test_a_run_whose_module_cannot_be_found_says_which_to_import(user, tmp_path, monkeypatch):
    runs = user / "runs"
    result = cli(
        "train", "residual-ring.yaml", "--set", "train.steps=10", *FAST, "--runs-dir", runs
    )
    assert result.exit_code == 0, result.output
    forget_user_code()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = runs / "residual-ring"
    one_line_error(cli("sample", run, "--n", 4), "module(s) mynets", "pass --import mynets")
    message = one_line_error(cli("sample", run, "--n", 4, "--import", "mynets"), "'mynets'")
    assert "No module named" in message and "PYTHONPATH" in message
    # the run's folder is never searched, even when it holds the module
    (run / "mynets.py").write_text((user / "mynets.py").read_text())
    one_line_error(cli("sample", run, "--n", 4, "--import", "mynets"), "cannot import 'mynets'")
    one_line_error(cli("train", "--resume", "--name", "residual-ring", "--runs-dir", runs),
                   "pass --import mynets")  # fmt: skip
    (run / "mynets.py").unlink()
    # from the folder that holds it, --import finds it
    monkeypatch.chdir(user)
    result = cli("sample", run, "--n", 4, "--out", user / "s.pt", "--import", "mynets")
    assert result.exit_code == 0, result.output


def test_import_on_the_command_line_and_before_any_command(user):
    runs = user / "runs"
    result = cli(
        "train", "gan-ring", "--import", "mynets", "--set", "model.name=residual_gan",
        "--set", "train.steps=10", *FAST, "--name", "from-preset", "--runs-dir", runs,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((runs / "from-preset" / "config.yaml").read_text())["imports"] == [
        "mynets"
    ]
    forget_user_code()
    listing = cli("--import", "myfamily", "models")
    assert listing.exit_code == 0 and "gmmn" in listing.output
    one_line_error(cli("--import", "no_such_module", "models"), "cannot import 'no_such_module'")
    one_line_error(cli("--import", "not a module", "models"), "is not a module name")


def test_a_python_user_gets_the_registering_module_recorded(user):
    sys.path.append(str(user))
    import mynets  # noqa: F401  (registers residual_gan)

    config = load_yaml((user / "residual-ring.yaml").read_text(), "residual-ring.yaml")
    del config["imports"]
    config["train"].update(steps=10, batch_size=64, progress=False)
    result = gankit.train(config, runs_dir=user / "runs")
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["imports"] == ["mynets"]


def test_an_entry_point_registers_models_without_import(user, tmp_path, monkeypatch):
    site = tmp_path / "site"
    info = site / "myplugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[gankit.models]\nmine = myfamily\nbroken = no_such_plugin_module\n"
    )
    (site / "myfamily.py").write_text((user / "myfamily.py").read_text())
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    result = cli("models")
    assert result.exit_code == 0 and "gmmn" in result.output
    assert "entry point 'broken = no_such_plugin_module'" in result.stderr
    assert result.stderr.count("gankit: warning:") == 1


def test_keyword_parameters_follow_kwargs_to_the_parent():
    class Wider(GAN):
        def __init__(self, data_shape, num_classes=None, *, width: int = 3, **kwargs):
            super().__init__(data_shape, num_classes, **kwargs)

    class Closed(GAN):
        def __init__(self, data_shape, num_classes=None, *, width: int = 3):
            super().__init__(data_shape, num_classes)

    params = keyword_parameters(Wider)
    assert params["width"][1] is int and params["latent_dim"][1] is int
    assert set(keyword_parameters(GAN)) < set(params)
    assert set(keyword_parameters(Closed)) == {"data_shape", "num_classes", "width"}
    registry.register_model("wider_test", Wider, "a test", loss="hinge", latent_dim=5)
    try:
        defaults = model_defaults("wider_test")
        assert defaults["width"] == 3 and defaults["latent_dim"] == 5
        assert defaults["lr_g"] == keyword_parameters(GAN)["lr_g"][0].default
        assert get_spec("wider_test").module == __name__
        with pytest.raises(ValueError, match="no argument"):
            registry.register_model("closed_test", Closed, "a test", loss="hinge")
    finally:
        MODELS.pop("wider_test", None)


BAD_GENERATOR = '''
import torch
from torch import nn

from gankit import register_model
from gankit.models.gan import GAN


class WrongShapeGAN(GAN):
    """G draws 3 numbers for data of 2: the wrong output shape."""

    def __init__(self, data_shape, num_classes=None, **kwargs) -> None:
        super().__init__(data_shape, num_classes, **kwargs)
        self.G = nn.Linear(self.latent_dim, 3)


class WrongCriticGAN(GAN):
    """D takes 5 numbers where samples have 2: torch fails at the first step."""

    def __init__(self, data_shape, num_classes=None, **kwargs) -> None:
        super().__init__(data_shape, num_classes, **kwargs)
        self.D = nn.Linear(5, 1)


register_model("wrong_shape_gan", WrongShapeGAN, "G of the wrong output shape")
register_model("wrong_critic_gan", WrongCriticGAN, "D of the wrong input shape")
'''


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("wrong_shape_gan", ["wrong_shape_gan", "shape (3,)", "(2,)"]),
        ("wrong_critic_gan", ["wrong_critic_gan", "first training step"]),
    ],
)
def test_networks_of_the_wrong_shape_are_one_line_and_leave_no_run(
    tmp_path, monkeypatch, model, words
):
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "badnets.py").write_text(BAD_GENERATOR)
    monkeypatch.syspath_prepend(str(folder))
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({
        "name": "bad", "imports": ["badnets"],
        "model": {"name": model, "latent_dim": 2, "hidden_dim": 8},
        "data": {"name": "ring", "n_train": 256, "n_test": 64},
        "train": {"steps": 5, "batch_size": 16},
    }))  # fmt: skip
    try:
        result = cli("train", config, "--no-progress", "--runs-dir", tmp_path / "runs")
        one_line_error(result, *words)
        assert not (tmp_path / "runs" / "bad").exists()  # the name stays free
    finally:
        for name in ("wrong_shape_gan", "wrong_critic_gan"):
            MODELS.pop(name, None)
        sys.modules.pop("badnets", None)
