"""``gankit study``: searches over the settings of presets, on Optuna.

Lucic et al. (2018, "Are GANs Created Equal?") compare GAN losses as distributions of a
score over random hyper-parameter searches, not as single runs. A study here is such a
search: one or more presets, a search space over ``--set`` keys, a number of seeds per
setting and a budget of trials. Each trial draws one setting, trains it once per seed
as an ordinary run folder (``STUDY-tNNNN-sK``), scores each run with ``gankit eval``
and hands Optuna the mean of one score (the eval's headline by default).

Optuna keeps the study: by default a SQLite file beside the runs
(``RUNS/STUDY.study.db``); any database URL Optuna accepts lets workers on several
machines share one study. Each trial beats a heartbeat into the storage; a trial whose
worker died stops beating, and the next worker to look marks it failed and queues the
same setting again (Optuna's ``RetryHeartbeatStaleTrialCallback``). So a killed study resumes
by running the same command: finished trials are kept, the running ones retried.

Search space spelling (``--search KEY=SPEC``, repeatable; values read as YAML):

- ``model.lr_g=1e-4..1e-3``: uniform in [low, high] (integers if both ends are);
- ``model.lr_g=log:1e-5..1e-3``: log-uniform;
- ``model.n_critic=1,2,5``: one of the choices (a grid dimension);
- ``model.n_critic=5``: fixed.

The same space as a YAML file (``--space FILE``, :func:`read_space`), one key a line::

    model.lr_g: {low: 1e-5, high: 1e-3, log: true}
    model.n_critic: [1, 2, 5]
    train.batch_size: 64
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError, choices

if TYPE_CHECKING:
    import optuna

#: The most worker processes per CPU core ``--workers`` accepts.
WORKERS_PER_CORE = 4
#: Seconds between a trial's heartbeats; a trial silent for GRACE_BEATS beats is retried.
HEARTBEAT_SECONDS = 10
GRACE_BEATS = 4
#: How many times a trial whose worker died is queued again.
MAX_RETRY = 3
#: The user attribute of a trial queued again after a signal stopped the trial it names.
RETRY_OF = "retry_of"
#: The most trials and seeds a study asks for.
MAX_TRIALS = 100_000
#: Random search's budget when --trials is not given (Lucic et al. drew 100 per loss).
DEFAULT_TRIALS = 20
MAX_SEEDS = 100
#: Where the default storage goes: RUNS/<name> + this.
STORAGE_SUFFIX = ".study.db"
#: The most characters of a study name (its runs append ``-tNNNNN-sNN``).
MAX_NAME = 200
#: The bounds of a ``--space`` file: its bytes, its keys and each key's choices.
MAX_SPACE_BYTES = 64 * 1024
MAX_SPACE_KEYS = 100
MAX_SPACE_CHOICES = 1000
#: The fields of a range in a ``--space`` file.
RANGE_FIELDS = ("low", "high", "log")


# --------------------------------------------------------------------- the space
@dataclass(frozen=True)
class Dimension:
    """One searched ``--set`` key: a list of choices, or a range [low, high] (log scale
    with ``log``; integers when both ends are)."""

    key: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    def values(self) -> tuple:
        """The values the key's own checks must accept: each choice, or both ends."""
        return self.choices if self.choices is not None else (self.low, self.high)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)

    def spelling(self) -> str:
        if self.choices is not None:
            return f"{self.key}={','.join(map(str, self.choices))}"
        return f"{self.key}={'log:' if self.log else ''}{self.low}..{self.high}"


def parse_dimension(item: str) -> Dimension:
    """``KEY=SPEC`` (see the module's docstring) -> a :class:`Dimension`.

    Raises:
        GankitError: no ``=``, an empty list or range, ends that are not numbers, or a
            log range that reaches 0 or below.
    """
    from gankit.config import parse_value

    key, sep, spec = item.partition("=")
    key, spec = key.strip(), spec.strip()
    if not sep or not key:
        raise GankitError(
            f"--search expects KEY=SPEC (e.g. model.lr=1e-4..1e-3, model.n_critic=1,5), "
            f"got '{item}'"
        )
    log = spec.startswith("log:")
    body = spec[4:] if log else spec
    if ".." in body:
        low, _, high = (parse_value(part.strip()) for part in body.partition(".."))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if not numeric or not all(math.isfinite(v) for v in (low, high)):
            raise GankitError(f"--search {key}: range '{spec}' needs two numbers, as 1e-4..1e-3")
        if low > high:
            raise GankitError(f"--search {key}: range '{spec}' is empty: low {low} > high {high}")
        if log and low <= 0:
            raise GankitError(f"--search {key}: log range '{spec}' must be above 0")
        return Dimension(key, low=low, high=high, log=log)
    if log:
        raise GankitError(f"--search {key}: 'log:' takes a range LOW..HIGH, got '{spec}'")
    values = tuple(parse_value(part.strip()) for part in body.split(",") if part.strip())
    if not values:
        raise GankitError(
            f"--search {key}: no values; give choices (1,2,5) or a range (1e-4..1e-3)"
        )
    return Dimension(key, choices=tuple(dict.fromkeys(values)))


def read_space(path: str | Path) -> list[str]:
    """A ``--space`` YAML file -> the ``--search`` items that spell the same space, so
    that it is checked, saved and joined exactly as the command line's. The file maps
    each searched key to a range ``{low: L, high: H}`` (``log: true`` for a log scale),
    a list of choices, or one fixed value.

    Read with gankit's bounded safe YAML loader (:func:`gankit.config.load_yaml`: no
    tags that build objects, a bound on size, depth and aliases); the file is at most
    ``MAX_SPACE_BYTES``, read without following a link.

    Raises:
        GankitError: a file that cannot be read or is not such a mapping, a key that is
            not ``section.name``, a range with other fields, a value that is a list or
            mapping, or a value the command line would read otherwise (e.g. the string
            ``"true"``), naming the file and the key.
    """
    from gankit.config import load_yaml
    from gankit.files import read_bytes

    source = f"--space '{path}'"
    try:
        text = read_bytes(Path(path), MAX_SPACE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise GankitError(f"{source} cannot be read: {reason}") from None
    space = load_yaml(text, source)
    if not isinstance(space, dict) or not space:
        raise GankitError(
            f"{source} must map each searched key to its values, e.g. "
            "'model.lr_g: {low: 1e-5, high: 1e-3, log: true}' or 'model.n_critic: [1, 2, 5]'"
        )
    if len(space) > MAX_SPACE_KEYS:
        raise GankitError(f"{source} searches {len(space)} keys; at most {MAX_SPACE_KEYS}")
    return [_space_item(source, key, value) for key, value in space.items()]


def _space_item(source: str, key: Any, value: Any) -> str:
    """One key of a ``--space`` file as its ``--search KEY=SPEC`` spelling."""
    if not isinstance(key, str) or not all(key.partition(".")[::2]):
        raise GankitError(f"{source}: key '{key}' must be section.name, as model.lr_g")
    if isinstance(value, dict):
        if not {"low", "high"} <= set(value) <= set(RANGE_FIELDS):
            raise GankitError(
                f"{source}: {key} is a mapping with {sorted(map(str, value))}; a range has "
                "low and high, and log: true for a log scale"
            )
        log = value.get("log", False)
        if not isinstance(log, bool):
            raise GankitError(f"{source}: {key} log must be true or false, got {log!r}")
        ends = [_space_value(source, key, value[end]) for end in ("low", "high")]
        item = f"{key}={'log:' if log else ''}{ends[0]}..{ends[1]}"
        wanted = None
    else:
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_SPACE_CHOICES:
            raise GankitError(
                f"{source}: {key} has {len(values)} choices; at most {MAX_SPACE_CHOICES}"
            )
        item = f"{key}=" + ",".join(_space_value(source, key, v) for v in values)
        wanted = tuple(dict.fromkeys(values))
    dim = parse_dimension(item)  # the command line's checks: an empty range, ...
    if wanted is not None and dim.choices != wanted:
        raise GankitError(
            f"{source}: {key}'s choices {list(wanted)} cannot be spelled for --search "
            "(a string with a comma, or one that reads as another value)"
        )
    return item


def _space_value(source: str, key: str, value: Any) -> str:
    """A scalar of a ``--space`` file as ``--search`` writes it (read back as YAML)."""
    import json

    if isinstance(value, (list, dict)):
        raise GankitError(
            f"{source}: {key} has the value {value!r}; values are numbers, strings, "
            "booleans or null (a list value such as model.betas cannot be searched)"
        )
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class StudySpec:
    """What a study searches; saved in the study, so that a worker on another machine
    (or a resume) needs only the study's name and storage."""

    presets: list[str]
    search: list[str]
    seeds: int = 1
    trials: int | None = None
    metric: str | None = None
    direction: str = "minimize"
    overrides: list[str] = field(default_factory=list)
    sampler: str = "random"
    seed: int = 0
    eval_n: int | None = None
    train_evaluator: bool = False

    def dimensions(self) -> list[Dimension]:
        dims = [parse_dimension(item) for item in self.search]
        keys = [d.key for d in dims]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise GankitError(f"--search names '{twice[0]}' twice; give each key once")
        return dims

    def run_names(self, study: str, number: int) -> list[str]:
        """The run folders of trial ``number``, one per seed."""
        return [f"{study}-t{number:04d}-s{seed}" for seed in range(self.seeds)]


def check_spec(spec: StudySpec, data_dir: str | None = None) -> StudySpec:
    """Check a study before anything starts: each preset resolves and builds with every
    searched key at each of its values (a choice, or both ends of a range), so an
    unknown key or a value that fails the key's own check stops here; sets the score
    and its direction (the eval's headline: the first directed score of the first
    preset's default metrics) where ``spec.metric`` is None.

    Raises:
        GankitError: what is wrong, naming the key, the value and the preset.
    """
    from gankit.config import parse_overrides, resolve_config
    from gankit.errors import check_int
    from gankit.metrics.evaluate import score_direction
    from gankit.metrics.registry import default_metrics, registered
    from gankit.nn import torch_threads
    from gankit.training.run import build

    if not spec.presets:
        raise GankitError("a study needs a preset: --preset NAME (comma-separated for several)")
    check_int("--seeds", spec.seeds, 1, MAX_SEEDS)
    if spec.sampler not in SAMPLERS:
        raise GankitError(f"unknown --sampler '{spec.sampler}'; valid: {choices(SAMPLERS)}")
    dims = spec.dimensions()
    if spec.sampler == "grid":
        ranged = [d.key for d in dims if d.choices is None]
        if ranged:
            raise GankitError(
                f"--sampler grid needs choices, and --search {ranged[0]} is a range; give "
                "its values (1,2,5) or use --sampler random"
            )
        size = math.prod(len(d.choices) for d in dims) * len(spec.presets)
        if spec.trials is not None and spec.trials > size:
            raise GankitError(
                f"--trials {spec.trials} is more than the grid's {size} combinations; give "
                f"at most {size}, or leave --trials out"
            )
        spec.trials = size if spec.trials is None else spec.trials
    spec.trials = DEFAULT_TRIALS if spec.trials is None else spec.trials
    check_int("--trials", spec.trials, 1, MAX_TRIALS)
    base = parse_overrides(spec.overrides)
    kind = None
    with torch_threads(1):
        for preset in spec.presets:
            for dim in dims:
                for value in dim.values():
                    try:
                        config = resolve_config(preset, {**base, dim.key: value})
                        bundle = build(config, data_dir)[1]
                    except GankitError as err:
                        raise GankitError(
                            f"--search {dim.spelling()}: {dim.key}={value} fails for preset "
                            f"'{preset}': {err}"
                        ) from None
                    kind = kind or bundle.kind
            if not dims:
                kind = kind or build(resolve_config(preset, base), data_dir)[1].kind
    if spec.metric is None:
        metrics = registered()
        directed = [
            name
            for metric in default_metrics(kind or "image")
            for name, way in metrics[metric].scores
            if way is not None
        ]
        if not directed:
            raise GankitError(f"no default score for {kind} data; name one with --metric")
        spec.metric = directed[0]
    way = score_direction(spec.metric)
    if way is None:
        raise GankitError(
            f"--metric '{spec.metric}' has no better way (lower or higher); name a score "
            "that gankit eval writes with an arrow"
        )
    spec.direction = "minimize" if way == "lower" else "maximize"
    return spec


#: ``--sampler``: random search (Lucic et al.) or every combination of the choices.
SAMPLERS = ("random", "grid")


# --------------------------------------------------------------------- the storage
def default_storage(name: str, runs_dir: str | Path) -> str:
    """``sqlite:///RUNS/NAME.study.db``: the study beside its runs."""
    return "sqlite:///" + str(Path(runs_dir).resolve() / f"{name}{STORAGE_SUFFIX}")


def shown_url(url: str) -> str:
    """The storage URL with its password hidden, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy reads: say only its scheme
        return url.partition("://")[0] + "://..."


def open_storage(url: str, heartbeat: int = HEARTBEAT_SECONDS) -> optuna.storages.RDBStorage:
    """Optuna's storage at ``url``, with heartbeats and the retry of dead trials.

    Raises:
        GankitError: Optuna is not installed, or the URL cannot be opened.
    """
    optuna = import_optuna()
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    # SQLite: wait for a lock held by another worker instead of failing at once
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat,
                grace_period=heartbeat * GRACE_BEATS,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRY
                ),
            )
    except Exception as err:  # sqlalchemy's and the drivers' errors have no common base
        shown = shown_url(url)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GankitError(
            f"cannot open the study storage '{shown}': {reason[:200]}; give a URL Optuna "
            "accepts, e.g. sqlite:///studies.db or postgresql://user@host/db"
        ) from None


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise GankitError(
            "gankit study needs Optuna: pip install 'gankit[study]' (or pip install optuna)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --------------------------------------------------------------------- running
@dataclass
class StudyResult:
    """What ``gankit study run`` did: the study's trials by state and its best."""

    name: str
    storage: str
    finished: int
    failed: int
    best: dict[str, Any] | None
    metric: str

    def summary(self) -> list[str]:
        lines = [
            f"study {self.name}: {self.finished} trials finished, {self.failed} failed "
            f"(storage {shown_url(self.storage)})"
        ]
        if self.best is not None:
            lines.append(
                f"best {self.metric} {self.best['value']:.4g}: trial {self.best['number']} "
                f"({self.best['preset']}) {self.best['params']}"
            )
        return lines


def run_study(
    name: str,
    spec: StudySpec | None,
    *,
    runs_dir: str | Path = "runs",
    storage: str | None = None,
    workers: int = 1,
    data_dir: str | None = None,
    heartbeat: int = HEARTBEAT_SECONDS,
    on_line: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run (or join, or resume) the study ``name`` until its budget of trials is spent.

    ``spec`` None joins the study as saved in ``storage``; a spec given for a study that
    exists must be the one it was made with. ``workers`` processes of this machine run
    trials side by side, the CPU cores divided among them.

    Raises:
        GankitError: a bad name, space, preset, worker count or storage: each checked
            before any trial starts or any file is written.
    """
    from gankit.config import check_run_name
    from gankit.runs.folder import check_runs_dir

    if len(name) > MAX_NAME:
        raise GankitError(f"study name '{name[:40]}...' is over {MAX_NAME} characters")
    check_run_name(name)
    cores = os.cpu_count() or 1
    if not 1 <= workers <= cores * WORKERS_PER_CORE:
        raise GankitError(
            f"--workers {workers}: use 1 to {cores * WORKERS_PER_CORE} ({WORKERS_PER_CORE} "
            f"per CPU core of this machine's {cores})"
        )
    if spec is not None:
        check_spec(spec, data_dir)
    import_optuna()
    runs_root = check_runs_dir(runs_dir)
    url = storage or default_storage(name, runs_root)
    if storage is None and spec is None and not Path(url.removeprefix("sqlite:///")).exists():
        raise GankitError(
            f"no study '{name}' in '{runs_root}': start it with --preset and --search"
        )
    study = open_study(name, spec, url, runs_root, heartbeat)
    spec = saved_spec(study)
    threads = max(1, cores // workers)
    job = Worker(name, url, str(runs_root), data_dir, threads, heartbeat)
    if workers == 1:
        job.work(on_line)
    else:
        _spawn(job, workers)
    return _result(name, url, heartbeat)


def open_study(
    name: str, spec: StudySpec | None, url: str, runs_root: Path, heartbeat: int
) -> optuna.Study:
    """Create the study, or load it and check that ``spec`` is the one it was made with."""
    import optuna

    if url.startswith("sqlite:///") and url == default_storage(name, runs_root):
        runs_root.mkdir(parents=True, exist_ok=True)
    storage = open_storage(url, heartbeat)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        study = None
    if study is not None:
        if spec is not None and asdict(spec) != study.user_attrs.get("spec"):
            raise GankitError(
                f"study '{name}' exists with other settings ({_spec_line(saved_spec(study))}); "
                "run it with no --preset/--search to resume it, or choose another name"
            )
        return study
    if spec is None:
        raise GankitError(f"no study '{name}' in '{shown_url(url)}': start it with --preset")
    taken = sorted(p.name for p in runs_root.glob(f"{name}-t*-s*")) if runs_root.is_dir() else []
    if taken:
        raise GankitError(
            f"runs of a study '{name}' ({taken[0]}, ...) are in '{runs_root}' but its storage "
            "has no such study; choose another name or --storage"
        )
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction=spec.direction)
    except optuna.exceptions.DuplicatedStudyError:  # another machine made it just now
        return open_study(name, spec, url, runs_root, heartbeat)
    study.set_user_attr("spec", asdict(spec))
    return study


def saved_spec(study: optuna.Study) -> StudySpec:
    saved = study.user_attrs.get("spec")
    if not isinstance(saved, dict):
        raise GankitError(f"study '{study.study_name}' was not made by gankit study")
    return StudySpec(**saved)


def _spec_line(spec: StudySpec) -> str:
    return f"presets {','.join(spec.presets)}; search {' '.join(spec.search) or 'none'}"


@dataclass
class Worker:
    """One process's share of a study: run trials while the budget lasts."""

    name: str
    url: str
    runs_dir: str
    data_dir: str | None
    threads: int
    heartbeat: int
    #: which of this machine's ``--workers`` processes it is
    index: int = 0

    def work(self, on_line: Callable[[str], None] | None = None) -> None:
        import optuna
        from optuna.storages import fail_stale_trials

        storage = open_storage(self.url, self.heartbeat)
        study = optuna.load_study(study_name=self.name, storage=storage)
        spec = saved_spec(study)
        study.sampler = study_sampler(spec, len(study.get_trials(deepcopy=False)), self.index)
        while True:
            # A trial whose worker died stops beating: fail it, which queues it again.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            states = [t.state for t in counted(trials)]
            waiting = optuna.trial.TrialState.WAITING in states
            if waiting or len(states) < spec.trials:
                study.optimize(
                    lambda trial: self.trial(trial, spec, on_line), n_trials=1, catch=(Exception,)
                )
            elif optuna.trial.TrialState.RUNNING in states:
                time.sleep(self.heartbeat)  # another worker's: done, or retried here
            else:
                return

    def trial(
        self, trial: optuna.Trial, spec: StudySpec, on_line: Callable[[str], None] | None
    ) -> float:
        """Train and score one drawn setting, once per seed; the mean score."""
        import socket

        from gankit.config import parse_overrides
        from gankit.jobs import evaluate_run, train

        # which process ran it: a trial runs in one worker, or again as a new trial
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        preset = trial.suggest_categorical("preset", spec.presets)
        settings = {dim.key: dim.suggest(trial) for dim in spec.dimensions()}
        base = {**parse_overrides(spec.overrides), **settings}
        base.update({"train.threads": self.threads, "train.progress": False})
        scores = []
        for seed, run in enumerate(spec.run_names(self.name, trial.number)):
            trial.set_user_attr("runs", spec.run_names(self.name, trial.number)[: seed + 1])
            try:
                trained = train(
                    preset, {**base, "train.seed": seed}, name=run, runs_dir=self.runs_dir,
                    data_dir=self.data_dir,
                )  # fmt: skip
                if trained.interrupted:  # the trainer saved and stopped on a signal
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                # Ctrl-C or SIGTERM: this setting runs again when the study resumes
                trial.study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
                raise
            report = evaluate_run(
                run, n=spec.eval_n, runs_dir=self.runs_dir, data_dir=self.data_dir,
                train_evaluator=spec.train_evaluator, seed=seed,
            )  # fmt: skip
            if spec.metric not in report.scores:
                raise GankitError(
                    f"gankit eval of '{run}' wrote no '{spec.metric}'; it wrote "
                    f"{choices(report.scores)}"
                )
            scores.append(float(report.scores[spec.metric]))
        trial.set_user_attr("scores", scores)
        value = sum(scores) / len(scores)
        if on_line is not None:
            on_line(f"trial {trial.number} ({preset}) {settings}: {spec.metric} {value:.4g}")
        return value


def counted(trials: Sequence[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials that spend the budget: finished, failed, running or queued, but not a
    trial whose worker died and that runs again as a new one."""
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials}
    retried |= {t.user_attrs.get(RETRY_OF) for t in trials}
    spending = (TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)
    return [t for t in trials if t.state in spending and t.number not in retried]


def study_sampler(spec: StudySpec, started: int, index: int) -> Any:
    """Optuna's sampler for one worker. Random search draws from a seed of the study's
    ``--seed``, the trials the study held when the worker started (a resumed study draws
    new settings, not the first ones again), the worker's index and its machine (one
    seed in every process would draw alike): a fresh study with one worker draws the
    same settings on every run."""
    import socket
    import zlib

    import numpy as np
    import optuna

    dims = spec.dimensions()
    if spec.sampler == "grid":
        grid = {d.key: list(d.choices) for d in dims}
        return optuna.samplers.GridSampler({"preset": spec.presets, **grid}, seed=spec.seed)
    host = zlib.crc32(socket.gethostname().encode())
    seed = np.random.SeedSequence([spec.seed, started, index, host]).generate_state(1)[0]
    return optuna.samplers.RandomSampler(seed=int(seed))


def _work(job: Worker) -> None:
    job.work(None)


def _spawn(job: Worker, workers: int) -> None:
    """``workers`` processes, each running ``job``; waits for all of them."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no torch state forked mid-use
    processes = [
        context.Process(target=_work, args=(replace(job, index=index),)) for index in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()


def _result(name: str, url: str, heartbeat: int) -> StudyResult:
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat))
    spec = saved_spec(study)
    trials = counted(study.get_trials(deepcopy=False))
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    best = None
    if done:
        top = study.best_trial
        params = {k: v for k, v in top.params.items() if k != "preset"}
        best = {"number": top.number, "value": top.value, "preset": top.params.get("preset"),
                "params": params}  # fmt: skip
    failed = sum(t.state == TrialState.FAIL for t in trials)
    return StudyResult(name, url, len(done), failed, best, spec.metric or "score")


# --------------------------------------------------------------------- the report
#: A searched key the report groups by beside the preset (Lucic et al. compare losses).
LOSS_KEY = "model.loss"


@dataclass
class TrialRow:
    """One finished trial as the report shows it."""

    number: int
    preset: str
    value: float
    params: dict[str, Any]
    runs: list[str]

    @property
    def group(self) -> str:
        """What the report compares: the preset, and its loss where the study searched it."""
        loss = self.params.get(LOSS_KEY)
        return self.preset if loss is None else f"{self.preset} {LOSS_KEY}={loss}"


def finished_trials(name: str, url: str) -> tuple[StudySpec, list[TrialRow]]:
    """The study's finished trials, in the order they were made."""
    import optuna
    from optuna.trial import TrialState

    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise GankitError(f"no study '{name}' in '{shown_url(url)}'") from None
    spec = saved_spec(study)
    rows = [
        TrialRow(
            t.number,
            str(t.params.get("preset", "?")),
            float(t.value),
            {k: v for k, v in t.params.items() if k != "preset"},
            [str(run) for run in t.user_attrs.get("runs", [])],
        )
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    return spec, sorted(rows, key=lambda row: row.number)


def by_group(rows: list[TrialRow]) -> dict[str, list[TrialRow]]:
    grouped: dict[str, list[TrialRow]] = {}
    for row in rows:
        grouped.setdefault(row.group, []).append(row)
    return grouped


def best_so_far(values: Sequence[float], lower: bool) -> list[float]:
    """The best of the first k values, for k = 1..n (Lucic et al., figures 4 and 5)."""
    pick = min if lower else max
    out: list[float] = []
    for value in values:
        out.append(value if not out else pick(out[-1], value))
    return out


def study_figure(name: str, spec: StudySpec, rows: list[TrialRow]) -> Any:
    """Left: the score's distribution over the trials of each preset (box and points).
    Right: the best score so far against the number of trials, per preset."""
    from gankit.explore.pictures import pyplot

    plt = pyplot()
    grouped = by_group(rows)
    lower = spec.direction == "minimize"
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    labels = list(grouped)
    left.boxplot([[r.value for r in grouped[p]] for p in labels], showmeans=True)
    left.set_xticks(range(1, len(labels) + 1), labels, rotation=15)
    for i, preset in enumerate(labels, start=1):
        values = [r.value for r in grouped[preset]]
        left.plot([i] * len(values), values, ".", alpha=0.5, color="black")
    arrow = "lower is better" if lower else "higher is better"
    left.set(title=f"{spec.metric} over trials", ylabel=f"{spec.metric} ({arrow})")
    for preset in labels:
        curve = best_so_far([r.value for r in grouped[preset]], lower)
        right.plot(range(1, len(curve) + 1), curve, marker=".", label=preset)
    right.set(title="best so far", xlabel="trials of the preset", ylabel=f"best {spec.metric}")
    right.xaxis.get_major_locator().set_params(integer=True)  # a count of trials
    right.legend()
    fig.suptitle(f"study {name}: {len(rows)} finished trials")
    return fig


def study_page(name: str, spec: StudySpec, rows: list[TrialRow]) -> Any:
    """The study's HTML page: the figure, the best settings per preset, every trial.
    Everything read from the storage (names, settings) is text, escaped by the page."""
    from gankit.report.page import Page, figure_svg, table

    lower = spec.direction == "minimize"
    page = Page(
        f"study {name}",
        meta=f"{len(rows)} finished trials of {spec.trials}; {spec.seeds} seed(s) each; "
        f"score: mean {spec.metric} of gankit eval ({'lower' if lower else 'higher'} is "
        f"better); search: {' '.join(spec.search) or 'none'}",
    )
    if not rows:
        page.add("Trials", "no finished trial yet")
        return page
    page.add("Scores", figure_svg(study_figure(name, spec, rows)),
             "the distribution over trials per preset; the best score after k trials")  # fmt: skip
    best = []
    for preset, group in by_group(rows).items():
        top = (min if lower else max)(group, key=lambda r: r.value)
        best.append([preset, len(group), f"{top.value:.4g}", top.number, _settings(top.params),
                     ", ".join(top.runs)])  # fmt: skip
    header = ["preset", "trials", f"best {spec.metric}", "trial", "settings", "runs"]
    page.add("Best settings", table([header, *best]))
    every = [[r.number, r.preset, f"{r.value:.4g}", _settings(r.params), ", ".join(r.runs)]
             for r in rows]  # fmt: skip
    page.add("Trials", table([["trial", "preset", spec.metric, "settings", "runs"], *every]))
    return page


def _settings(params: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items()) or "-"


def write_study_report(
    name: str,
    storage: str | None = None,
    runs_dir: str | Path = "runs",
    out: str | Path | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write the study's page (``NAME-study.html``) and its figure beside it (``.png``);
    returns both paths.

    Raises:
        GankitError: no such study, Optuna missing, an ``out`` that is not ``.html``, or
            files that exist without ``overwrite``.
    """
    from gankit.config import check_run_name
    from gankit.explore.pictures import writing
    from gankit.files import atomic_write, atomic_write_text
    from gankit.report.page import figure_png

    check_run_name(name)
    import_optuna()
    url = storage or default_storage(name, runs_dir)
    if storage is None and not (Path(runs_dir) / f"{name}{STORAGE_SUFFIX}").is_file():
        raise GankitError(f"no study '{name}' in '{runs_dir}' (no {name}{STORAGE_SUFFIX})")
    path = Path(out) if out is not None else Path(f"{name}-study.html")
    if path.suffix.lower() not in (".html", ".htm"):
        raise GankitError(f"--out '{path}' must end in .html: the study page is one HTML file")
    picture = path.with_suffix(".png")
    for target in (path, picture):
        if target.exists() and not overwrite:
            raise GankitError(
                f"'{target}' already exists; pass --overwrite or choose another --out"
            )
    spec, rows = finished_trials(name, url)
    page = study_page(name, spec, rows)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, page.html())
        if rows:
            png = figure_png(study_figure(name, spec, rows))
            atomic_write(picture, lambda temporary: temporary.write_bytes(png))
    return [path, picture] if rows else [path]
