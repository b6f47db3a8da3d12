"""The run config: schema, presets, ``--set`` overrides and validation.

A run config has four sections::

    name: dcgan-digits          # the run directory's default name
    model: {name: dcgan, ...}   # the model's constructor keywords
    data:  {name: digits, ...}  # the data source's keywords
    train: {steps: 3000, ...}   # the trainer's clock: see TrainConfig

Everything is validated here, once, where it enters; unknown keys and wrong types
raise :class:`~gankit.errors.GankitError` naming the key and the valid choices.
Model and data keywords are checked against the constructor's signature, so the
constructor is the schema (see STYLE.md: "the constructor is the config").
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from gankit.errors import GankitError, choices
from gankit.validation import validate_kwargs

DEFAULT_PRESET = "dcgan-digits"


@dataclass
class TrainConfig:
    """The trainer's settings. Every field can be set with ``--set train.FIELD=VALUE``.

    Attributes:
        steps: generator updates to run (a critic with ``n_critic`` steps per update
            still counts one step per generator update, as in the papers).
        batch_size: real samples per network update.
        seed: seeds weights, data order and noise; the same seed gives the same weights.
        device: ``auto`` picks CUDA, then MPS, then CPU.
        threads: CPU threads for torch. None: 1 for toy 2-D data, else the cores
            divided by the processes on this machine (see ``default_threads``).
        log_every: steps between lines of ``metrics.jsonl``.
        sample_every: steps between sample grids drawn from the fixed noise.
        ckpt_every: steps between checkpoints.
        keep_checkpoints: how many step checkpoints to keep (the newest).
        ema_decay: keep an exponential moving average of the generator with this decay;
            None disables it. Samples and ``gankit sample`` then use the average.
        n_fixed: how many fixed-noise samples each grid shows.
        num_workers: DataLoader workers for streamed (on-disk) data sources.
        tensorboard: also write TensorBoard events (needs ``pip install tensorboard``).
        progress: show a progress bar.
        eval_every: steps between evaluations (``eval_*`` lines in ``metrics.jsonl``);
            None disables them. Image metrics use gankit's evaluator classifier for the
            dataset, trained once and cached if it is missing.
        eval_metrics: comma-separated metric names, e.g. ``"modes,w1"`` or ``"fd,kid"``;
            None uses the defaults for the data (see ``gankit eval --help``).
        eval_n: samples per evaluation; None uses 2500 for toy data, 2000 for images.
        precision: ``fp32``; ``bf16`` (autocast, on CPU or CUDA); ``fp16`` (autocast with
            a gradient scaler, CUDA only). Gradient penalties run in float32.
        channels_last: keep conv models and image batches in NHWC memory layout.
        compile: ``torch.compile`` each network; if compiling fails, the run says why
            and continues without it.
        sync_batchnorm: under torchrun on CUDA, batch norm over the global batch.
    """

    steps: int = 2000
    batch_size: int = 64
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: int | None = None
    log_every: int = 50
    sample_every: int = 500
    ckpt_every: int = 1000
    keep_checkpoints: int = 3
    ema_decay: float | None = None
    n_fixed: int = 64
    num_workers: int = 0
    tensorboard: bool = False
    progress: bool = True
    eval_every: int | None = None
    eval_metrics: str | None = None
    eval_n: int | None = None
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    compile: bool = False
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "log_every", "sample_every", "ckpt_every", "n_fixed"):
            if getattr(self, key) < 1:
                raise GankitError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if self.keep_checkpoints < 1:
            raise GankitError(f"train.keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise GankitError(f"train.ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        if self.threads is not None and self.threads < 1:
            raise GankitError(f"train.threads must be >= 1 or null, got {self.threads}")
        if self.eval_every is not None and self.eval_every < 1:
            raise GankitError(f"train.eval_every must be >= 1 or null, got {self.eval_every}")
        if self.num_workers < 0:
            raise GankitError(f"train.num_workers must be >= 0, got {self.num_workers}")


# --------------------------------------------------------------------------- YAML
class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-4``); learning rates
    are written ``1e-4`` everywhere, so we add YAML 1.2's float pattern.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise GankitError(
            f"{source} is not valid YAML{at}: {getattr(err, 'problem', err)}"
        ) from None


def parse_value(text: str) -> Any:
    """Parse the value of ``--set key=value`` as YAML: ``3`` is an int, ``true`` a bool."""
    return load_yaml(text, f"--set value '{text}'")


# --------------------------------------------------------------------------- presets
def _preset_files() -> dict[str, Any]:
    folder = resources.files("gankit") / "presets"
    return {p.name[: -len(".yaml")]: p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_presets() -> dict[str, str]:
    """Preset name -> its description: the first sentence of the file's opening comment."""
    out = {}
    for name, path in sorted(_preset_files().items()):
        opening = []
        for line in path.read_text().splitlines():
            if not line.startswith("#") or not line.lstrip("# ").strip():
                break
            opening.append(line.lstrip("# ").strip())
        # a sentence ends at ". " or at the end, but not at "et al. " or "e.g. "
        sentences = re.split(r"(?<!\bal)(?<!e\.g)(?<!i\.e)\.\s", " ".join(opening), maxsplit=1)
        out[name] = sentences[0].rstrip(".") + "." if sentences[0] else ""
    return out


def load_preset(name: str) -> dict[str, Any]:
    files = _preset_files()
    if name not in files:
        raise GankitError(f"unknown preset '{name}'; valid: {choices(files)}")
    return load_yaml(files[name].read_text(), f"preset '{name}'")


def read_config_source(source: str | Path | dict | None) -> dict[str, Any]:
    """A preset name, a path to a YAML file, or a dict -> the raw config dict."""
    if source is None:
        raw = load_preset(DEFAULT_PRESET)
    elif isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        text = str(source)
        if text.endswith((".yaml", ".yml")) or Path(text).is_file():
            path = Path(text)
            if not path.is_file():
                raise GankitError(f"config file '{path}' does not exist")
            raw = load_yaml(path.read_text(), f"config file '{path}'")
        else:
            raw = load_preset(text)
            raw.setdefault("name", text)
    if not isinstance(raw, dict):
        raise GankitError(f"config '{source}' must be a mapping with model, data and train")
    return raw


Overrides = list[str] | dict[str, Any] | None


def parse_overrides(overrides: Overrides) -> dict[str, Any]:
    """``["train.steps=100"]`` (CLI strings, values parsed as YAML) or a dict -> a dict."""
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    out = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GankitError(f"--set expects key=value (e.g. train.steps=100), got '{item}'")
        out[key.strip()] = parse_value(value)
    return out


def apply_overrides(config: dict[str, Any], overrides: Overrides) -> None:
    """Apply ``section.key=value`` overrides in place (``train.steps=100``)."""
    for dotted, value in parse_overrides(overrides).items():
        parts = dotted.split(".")
        if parts[0] not in SECTIONS:
            raise GankitError(
                f"--set key '{dotted}' must start with a section; valid: {choices(SECTIONS)}"
            )
        target = config
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise GankitError(f"--set key '{dotted}': '{part}' is not a section")
        target[parts[-1]] = value


SECTIONS = ("name", "model", "data", "train")


def resolve_config(
    source: str | Path | dict | None = None,
    overrides: Overrides = None,
) -> dict[str, Any]:
    """Read, override and validate a run config; returns the fully resolved dict.

    The result names every model, data and train setting explicitly (defaults filled
    in), so the run directory and each checkpoint record exactly what was trained.
    """
    from gankit.data import check_data_config
    from gankit.registry import model_defaults

    config = read_config_source(source)
    apply_overrides(config, overrides)
    unknown = set(config) - set(SECTIONS)
    if unknown:
        raise GankitError(
            f"unknown config section '{sorted(unknown)[0]}'; valid: {choices(SECTIONS)}"
        )
    for section in ("model", "data"):
        if not isinstance(config.get(section), dict) or "name" not in config[section]:
            raise GankitError(f"config section '{section}' needs a 'name'")

    model = dict(config["model"])
    model_name = model.pop("name")
    resolved_model = {"name": model_name, **model_defaults(model_name, model)}

    data = dict(config["data"])
    check_data_config(data)
    data_name = data.pop("name")

    train_raw = config.get("train") or {}
    if not isinstance(train_raw, dict):
        raise GankitError("config section 'train' must be a mapping")
    validate_kwargs(TrainConfig, train_raw, where="train")
    train = dataclasses.asdict(TrainConfig(**train_raw))

    name = check_run_name(config.get("name") or f"{model_name}-{data_name}")
    return {
        "name": name,
        "model": resolved_model,
        "data": {"name": data_name, **data},
        "train": train,
    }


#: A run's name: one folder name under the runs folder.
RUN_NAME = re.compile(r"[A-Za-z0-9._-]+")
#: Bytes; a file system allows 255 in one name, and --overwrite appends "~old".
RUN_NAME_MAX_BYTES = 250


def check_run_name(name: Any) -> str:
    """``name`` if it names one folder under the runs folder, never a path: no
    separators, not ``.`` or ``..``, at most 250 bytes.

    Raises:
        GankitError: it does not; the message says what would be valid.
    """
    valid = (
        isinstance(name, str)
        and RUN_NAME.fullmatch(name) is not None
        and name not in (".", "..")
        and len(name.encode()) <= RUN_NAME_MAX_BYTES
    )
    if not valid:
        shown = (
            str(name)
            if len(str(name)) <= 60
            else f"{str(name)[:40]}... ({len(str(name))} characters)"
        )
        raise GankitError(
            f"run name '{shown}' is not a folder name: use letters, digits, '.', '_' and '-', "
            f"not '.' or '..', at most {RUN_NAME_MAX_BYTES} bytes"
        )
    return name


def dump_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
