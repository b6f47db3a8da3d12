"""gankit study: the search space, its checks, trials as run folders, the page, and
workers sharing one SQLite study (one of them killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli, one_line_error
from gankit.errors import GankitError
from gankit.study import (
    Dimension,
    StudySpec,
    best_so_far,
    check_spec,
    default_storage,
    open_study,
    parse_dimension,
    read_space,
    run_study,
    study_sampler,
    write_study_report,
)

optuna = pytest.importorskip("optuna")

#: A trial of a few seconds: the ring GAN, small, few steps, a small eval.
TINY_SETS = [
    "train.steps=20", "train.log_every=10", "train.sample_every=20", "train.ckpt_every=20",
    "data.n_train=256", "data.n_test=128", "model.hidden_dim=16",
]  # fmt: skip
EVAL_N = 300


def tiny_spec(trials: int = 2, search: tuple[str, ...] = ("model.lr_g=log:1e-4..1e-3",), **kw):
    return StudySpec(["gan-ring"], list(search), trials=trials, overrides=TINY_SETS,
                     eval_n=EVAL_N, **kw)  # fmt: skip


# --------------------------------------------------------------------- the space
@pytest.mark.parametrize(
    "item, expected",
    [
        ("model.lr_g=1e-4..1e-3", Dimension("model.lr_g", low=1e-4, high=1e-3)),
        ("model.lr_g=log:1e-5..1e-3", Dimension("model.lr_g", low=1e-5, high=1e-3, log=True)),
        ("model.n_critic=1..5", Dimension("model.n_critic", low=1, high=5)),
        ("model.loss=ns,hinge,ns", Dimension("model.loss", choices=("ns", "hinge"))),
        ("train.batch_size=64", Dimension("train.batch_size", choices=(64,))),
    ],
)
def test_search_spellings(item, expected):
    assert parse_dimension(item) == expected


@pytest.mark.parametrize(
    "item, words",
    [
        ("model.lr_g", ["KEY=SPEC"]),
        ("model.lr_g=", ["no values"]),
        ("model.lr_g=1e-3..1e-4", ["empty", "1e-3..1e-4"]),
        ("model.lr_g=log:0..1e-3", ["above 0"]),
        ("model.lr_g=a..b", ["two numbers"]),
        ("model.lr_g=log:1,2", ["takes a range"]),
    ],
)
def test_bad_spellings_are_refused(item, words):
    with pytest.raises(GankitError) as err:
        parse_dimension(item)
    for word in words:
        assert word in str(err.value)


def test_best_so_far_follows_the_better_way():
    assert best_so_far([3, 1, 2, 0.5], lower=True) == [3, 1, 1, 0.5]
    assert best_so_far([1, 3, 2], lower=False) == [1, 3, 3]


def test_the_headline_and_its_way_are_found_from_the_data():
    spec = check_spec(tiny_spec())
    assert (spec.metric, spec.direction) == ("modes", "maximize")
    assert spec.trials == 2


def test_grid_budget_defaults_to_every_combination():
    spec = check_spec(
        tiny_spec(trials=None, search=("model.loss=non_saturating,hinge",), sampler="grid")
    )
    assert spec.trials == 2
    with pytest.raises(GankitError, match="more than the grid's 2"):
        check_spec(tiny_spec(trials=3, search=("model.loss=non_saturating,hinge",), sampler="grid"))


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "args, words",
    [
        (["--search", "model.nosuch=1,2"], ["nosuch", "unknown key", "valid: "]),
        (["--search", "model.lr_g=1e-3..1e-4"], ["empty"]),
        (["--search", "model.lr_g="], ["no values"]),
        (["--search", "model.lr_g=-0.1..1e-3"], ["lr_g=-0.1", "gan-ring", "> 0"]),
        (["--search", "model.hidden_dim=abc"], ["hidden_dim", "must be int"]),
        # a range's upper end, or one of the choices, failing the key's own check
        (["--search", "model.hidden_dim=16..100000"], ["hidden_dim=100000", "[1, 2048]"]),
        (["--search", "model.loss=hinge,nosuch"], ["loss=nosuch", "'hinge'"]),
        (["--storage", "nosuch://x"], ["cannot open the study storage", "nosuch://"]),
        (["--storage", "sqlite:////nonexistent/dir/x.db"], ["cannot open", "unable to open"]),
        (["--workers", "100000"], ["--workers 100000", "per CPU core"]),
        # the first count above 4 per core
        (["--workers", str(4 * (os.cpu_count() or 1) + 1)], ["per CPU core"]),
        (["--workers", "0"], ["--workers 0"]),
        (["--sampler", "grid", "--search", "model.lr_g=1e-4..1e-3"], ["grid needs choices"]),
        (["--sampler", "bayes"], ["unknown --sampler", "random"]),
        (["--trials", "0"], ["--trials"]),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(tmp_path, args, words):
    runs = tmp_path / "runs"
    result = cli("study", "run", "s", "--preset", "gan-ring", "--runs-dir", runs, *args)
    one_line_error(result, *words)
    assert not runs.exists()  # no storage file, no run folder


def test_a_storage_password_never_reaches_the_message(tmp_path):
    result = cli("study", "run", "s", "--preset", "gan-ring", "--runs-dir", tmp_path,
                 "--storage", "postgresql://user:hunter2@127.0.0.1:1/db")  # fmt: skip
    line = one_line_error(result, "cannot open the study storage", "user:***@")
    assert "hunter2" not in line


def test_a_study_name_is_a_folder_name(tmp_path):
    one_line_error(cli("study", "run", "../up", "--preset", "gan-ring", "--runs-dir", tmp_path),
                   "not a folder name")  # fmt: skip


def test_joining_a_study_that_is_not_there_says_how_to_start_it(tmp_path):
    one_line_error(cli("study", "run", "s", "--runs-dir", tmp_path), "no study 's'", "--preset")


# --------------------------------------------------------------------- --space FILE
SPACE = """
# the space of the command line's spellings above, as YAML
model.lr_g: {low: 1e-5, high: 1e-3, log: true}
model.lr_d: {low: 0.0001, high: 0.001}
model.n_critic: {low: 1, high: 5}
model.loss: [non_saturating, hinge, non_saturating]
train.batch_size: 64
model.spectral_norm: [true, false]
"""


def test_a_yaml_space_spells_what_the_command_line_does(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    items = read_space(tmp_path / "space.yaml")
    assert [parse_dimension(item) for item in items] == [
        parse_dimension("model.lr_g=log:1e-5..1e-3"),
        parse_dimension("model.lr_d=1e-4..1e-3"),
        parse_dimension("model.n_critic=1..5"),
        parse_dimension("model.loss=non_saturating,hinge"),
        parse_dimension("train.batch_size=64"),
        parse_dimension("model.spectral_norm=true,false"),
    ]


@pytest.mark.parametrize(
    "text, words",
    [
        ("model.nosuch: [1, 2]", ["nosuch", "unknown key"]),  # the preset's own check
        ("model.lr_g: {low: 1e-3, high: 1e-4}", ["empty"]),
        ("model.lr_g: {low: -0.1, high: 1e-3}", ["lr_g=-0.1", "> 0"]),
        ("model.loss: [hinge, nosuch]", ["loss=nosuch"]),
        ("model.lr_g: []", ["no values"]),
        ("model.lr_g: {low: 0, high: 1e-3, log: true}", ["above 0"]),
        ("model.lr_g: {low: 1e-4, high: 1e-3, step: 2}", ["a range has low and high"]),
        ("model.lr_g: {low: 1e-4, high: 1e-3, log: maybe}", ["log must be true or false"]),
        ("model.betas: [[0.5, 0.9]]", ["cannot be searched"]),
        ("model.loss: ['a,b']", ["cannot be spelled"]),
        ("lr_g: [1, 2]", ["section.name"]),
        ("[model.lr_g]", ["must map each searched key"]),
        ("model.lr_g: [1, 2", ["not valid YAML"]),
        ("a: &a [1, 2]\nb: *a\n" + "x" * 70_000, ["larger than"]),
    ],
)
def test_bad_space_files_are_one_line_and_start_nothing(tmp_path, text, words):
    (tmp_path / "space.yaml").write_text(text)
    runs = tmp_path / "runs"
    result = cli("study", "run", "s", "--preset", "gan-ring", "--runs-dir", runs,
                 "--space", tmp_path / "space.yaml")  # fmt: skip
    one_line_error(result, *words)
    assert not runs.exists()


def test_a_space_file_and_search_naming_one_key_or_a_missing_file_are_refused(tmp_path):
    (tmp_path / "space.yaml").write_text("model.lr_g: [0.001]")
    base = ("study", "run", "s", "--preset", "gan-ring", "--runs-dir", tmp_path / "runs")
    one_line_error(cli(*base, "--space", tmp_path / "space.yaml", "--search", "model.lr_g=1e-4"),
                   "model.lr_g", "twice")  # fmt: skip
    one_line_error(cli(*base, "--space", tmp_path / "nosuch.yaml"), "nosuch.yaml", "cannot be read")
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------- a study
@pytest.mark.slow  # 34 s on two busy shared cores: two trainings and evals
def test_a_study_trains_runs_scores_them_and_draws_its_page(tmp_path):
    runs = tmp_path / "runs"
    result = run_study("s", tiny_spec(trials=1, seeds=2), runs_dir=runs)
    assert result.finished == 1 and result.failed == 0
    names = sorted(p.name for p in runs.iterdir())
    assert names == ["s-t0000-s0", "s-t0000-s1", "s.study.db"]
    for name in names[:-1]:  # ordinary runs: config, checkpoint and the eval's scores
        assert (runs / name / "config.yaml").is_file() and (runs / name / "eval.json").is_file()
    # the same command again: the budget is spent, nothing more runs
    again = cli("study", "run", "s", "--runs-dir", runs)
    assert again.exit_code == 0, again.output
    assert "1 trials finished" in again.output
    assert len(list(runs.iterdir())) == 3

    page = cli("study", "report", "s", "--runs-dir", runs, "--out", tmp_path / "s.html")
    assert page.exit_code == 0, page.output
    html = (tmp_path / "s.html").read_text()
    for text in ("best so far", "Best settings", "s-t0000-s1", "model.lr_g=", "modes over trials"):
        assert text in html
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_a_study_with_other_settings_under_the_same_name_is_refused(tmp_path):
    runs = tmp_path / "runs"
    spec = check_spec(tiny_spec(trials=1))
    open_study("s", spec, default_storage("s", runs), runs, heartbeat=1)
    result = cli("study", "run", "s", "--preset", "gan-ring", "--runs-dir", runs,
                 "--search", "model.lr_g=1e-4..1e-3")  # fmt: skip
    one_line_error(result, "exists with other settings", "choose another name")


def test_the_page_escapes_what_the_storage_holds(tmp_path):
    """A shared database is anyone's: its names and values are text on the page."""
    runs = tmp_path / "runs"
    spec = check_spec(tiny_spec(trials=1))
    study = open_study("s", spec, default_storage("s", runs), runs, heartbeat=1)
    evil = "<script>alert(1)</script>"
    dist = optuna.distributions.CategoricalDistribution([evil])
    study.add_trial(
        optuna.trial.create_trial(
            params={"preset": evil, "model.lr_g": evil},
            distributions={"preset": dist, "model.lr_g": dist},
            value=1.0,
            user_attrs={"runs": ['"><img src=x onerror=alert(2)>']},
        )
    )
    out = write_study_report("s", runs_dir=runs, out=tmp_path / "s.html")[0]
    html = out.read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --------------------------------------------------------------------- workers and kills
def _worker(name: str, storage: str, runs: Path, index: int = 0) -> subprocess.Popen:
    """One worker process of the study, as ``--workers`` starts it (heartbeat 1 s)."""
    code = (
        "from gankit.study import Worker; "
        f"Worker({name!r}, {storage!r}, {str(runs)!r}, None, 1, 1, {index}).work()"
    )
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)


def _running_in(study, pid: int, timeout: float = 120):
    """Wait for a trial that process ``pid`` is running; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            if str(trial.user_attrs.get("worker", "")).endswith(f":{pid}"):
                return trial
        time.sleep(0.2)
    raise AssertionError(f"process {pid} ran no trial in {timeout} s")


def _check_budget_kept(study, budget: int, killed) -> None:
    trials = study.get_trials()
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == budget  # none lost, none run beyond the budget
    assert killed.number not in {t.number for t in done}
    # the killed trial's setting ran again, once, to the end
    again = [t for t in done if t.system_attrs.get("failed_trial") == killed.number]
    assert len(again) == 1 and again[0].params == killed.params
    # every finished trial's runs were trained by one worker each, into their own folders
    runs = [run for t in done for run in t.user_attrs["runs"]]
    assert len(runs) == len(set(runs)) == budget


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study_and_a_killed_ones_trial_is_retried(tmp_path):
    runs = tmp_path / "runs"
    sets = [*TINY_SETS, "train.steps=150"]  # a trial long enough to be killed in
    spec = check_spec(StudySpec(["gan-ring"], ["model.lr_g=log:1e-4..1e-3"], trials=4,
                                overrides=sets, eval_n=EVAL_N))  # fmt: skip
    url = default_storage("s", runs)
    study = open_study("s", spec, url, runs, heartbeat=1)
    first, second = _worker("s", url, runs, 0), _worker("s", url, runs, 1)
    killed = _running_in(study, first.pid)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    _, errors = second.communicate(timeout=240)
    assert second.returncode == 0, errors
    _check_budget_kept(study, 4, killed)
    failed = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in failed] == [killed.number]


@pytest.mark.slow
def test_a_killed_study_resumes_with_the_same_command(tmp_path):
    runs = tmp_path / "runs"
    sets = [*TINY_SETS, "train.steps=150"]
    spec = check_spec(StudySpec(["gan-ring"], ["model.lr_g=log:1e-4..1e-3"], trials=2,
                                overrides=sets, eval_n=EVAL_N))  # fmt: skip
    url = default_storage("s", runs)
    study = open_study("s", spec, url, runs, heartbeat=1)
    worker = _worker("s", url, runs)
    killed = _running_in(study, worker.pid)
    worker.kill()
    worker.wait(timeout=30)
    result = run_study("s", None, runs_dir=runs, heartbeat=1)
    assert result.finished == 2
    _check_budget_kept(study, 2, killed)


def test_random_search_draws_the_same_on_a_fresh_start_and_new_settings_on_a_resume():
    spec = check_spec(tiny_spec(trials=3))
    draws = []
    for started in (0, 0, 2):
        sampler = study_sampler(spec, started, 0)
        study = optuna.create_study(sampler=sampler)
        draws.append([study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}).params["x"]
                      for _ in range(2)])  # fmt: skip
    assert draws[0] == draws[1]
    assert draws[2] != draws[0]
