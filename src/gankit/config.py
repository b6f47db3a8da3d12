"""The run config: schema, presets, ``--set`` overrides and validation.

A run config has four sections, and a list of the user's modules::

    name: dcgan-digits          # the run directory's default name
    imports: [mypkg.models]     # optional: modules that register models (docs/byo.md)
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
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from gankit.conventions import MAX_SEED
from gankit.errors import GankitError, check_int, choices, did_you_mean, warn
from gankit.validation import validate_kwargs

DEFAULT_PRESET = "dcgan-digits"


@dataclass
class TrainConfig:
    """The trainer's settings. Every field can be set with ``--set train.FIELD=VALUE``.

    Attributes:
        steps: generator updates to run (a critic with ``n_critic`` steps per update
            still counts one step per generator update, as in the papers).
        batch_size: real samples per network update (at most 65,536).
        seed: seeds weights, data order and noise; the same seed gives the same weights.
            In [0, 2**32 - 1], numpy's range.
        device: ``auto`` picks CUDA, then MPS, then CPU.
        threads: CPU threads for torch. None: 1 for toy 2-D data, else the cores
            divided by the processes on this machine (see ``default_threads``). At
            most 1024.
        log_every: steps between lines of ``metrics.jsonl``.
        sample_every: steps between sample grids drawn from the fixed noise.
        ckpt_every: steps between checkpoints.
        keep_checkpoints: how many step checkpoints to keep (the newest).
        ema_decay: keep an exponential moving average of the generator with this decay;
            None disables it. Samples and ``gankit sample`` then use the average.
        n_fixed: how many fixed-noise samples each grid shows (at most 1024).
        num_workers: DataLoader workers for streamed (on-disk) data sources (at most 64).
        tensorboard: also write TensorBoard events (needs ``pip install tensorboard``).
        progress: show a progress bar.
        eval_every: steps between evaluations (``eval_*`` lines in ``metrics.jsonl``);
            None disables them. Image metrics use gankit's evaluator classifier for the
            dataset, trained once and cached if it is missing.
        eval_metrics: comma-separated metric names, e.g. ``"modes,w1"`` or ``"fd,kid"``;
            None uses the defaults for the data (see ``gankit eval --help``).
        eval_n: samples per evaluation; None uses 2500 for toy data, 2000 for images.
            At most 50,000.
        precision: ``fp32``; ``bf16`` (autocast, on CPU or CUDA); ``fp16`` (autocast with
            a gradient scaler, CUDA only). Gradient penalties run in float32.
        channels_last: keep conv models and image batches in NHWC memory layout.
        compile: ``torch.compile`` each network; if compiling fails, the run says why
            and continues without it.
        sync_batchnorm: under torchrun on CUDA, batch norm over the global batch.
        time_limit: stop cleanly after this much wall time of the training loop, e.g.
            ``"10m"``, ``"90s"``, ``"1h30m"`` or a number of seconds; the run saves a
            checkpoint of its last whole step and says how many steps it made. None: no
            limit. Schedules over ``steps`` (a learning-rate decay, DANN's ramp) follow
            the steps or the clock, whichever is further along, so they finish when the
            limit ends the run (``Model.progress``). Each call (a resume too) gets the
            whole limit, and its clock starts again at 0; PixelDA's phases count steps only.
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
    time_limit: str | float | None = None

    def __post_init__(self) -> None:
        self.time_limit_seconds = parse_duration(self.time_limit, "train.time_limit")
        for key in ("steps", "log_every", "sample_every", "ckpt_every", "keep_checkpoints"):
            check_int(f"train.{key}", getattr(self, key), 1)
        for key, high in TRAIN_BOUNDS.items():
            value = getattr(self, key)
            if value is not None:
                check_int(f"train.{key}", value, 0 if key == "num_workers" else 1, high)
        check_int("train.seed", self.seed, 0, MAX_SEED)
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise GankitError(f"train.ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        if self.eval_every is not None and self.eval_every < 1:
            raise GankitError(f"train.eval_every must be >= 1 or null, got {self.eval_every}")


#: ``10m`` or ``1h30m``: units of a duration.
DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value: str | float | None, what: str) -> float | None:
    """``"10m"``, ``"1h30m"``, ``"90s"``, ``"45"`` or a number -> seconds (None stays None).

    Raises:
        GankitError: anything else, or a duration that is not positive.
    """
    if value is None:
        return None
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.match(text)
            if match and text:
                hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
                seconds = hours * 3600 + minutes * 60 + secs
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise GankitError(
            f"{what} must be a positive duration such as 10m, 90s, 1h30m or 600, got {value!r}"
        )
    return seconds


#: Upper bounds of the train settings that size memory or processes: a batch, the
#: fixed-noise previews (one grid), the samples of an evaluation (FID's usual 50,000),
#: DataLoader worker processes and CPU threads.
TRAIN_BOUNDS = {
    "batch_size": 65_536,
    "n_fixed": 1024,
    "eval_n": 50_000,
    "num_workers": 64,
    "threads": 1024,
}


# --------------------------------------------------------------------------- YAML
#: Bounds on a YAML document (a config file, a preset, a ``--set`` value). The largest
#: preset is under 2 KB with about 60 values; these leave room for any real config but
#: stop a "billion laughs" document (a few nested aliases that expand to 10^9 values)
#: before it is built.
MAX_YAML_BYTES = 2**20
MAX_YAML_NODES = 10_000  # keys and values, each alias counted as the node it repeats
MAX_YAML_DEPTH = 64  # nested lists and mappings


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float, and refuses documents over the bounds.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-4``); learning rates
    are written ``1e-4`` everywhere, so we add YAML 1.2's float pattern.

    Nodes are counted while they are composed, an alias counting as the size of the
    node it repeats, so a document that would expand past ``MAX_YAML_NODES`` stops
    there, with the memory of at most that many nodes.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._expanded: dict[int, int] = {}  # id(anchored node) -> its node count

    def _count(self, nodes: int, mark) -> None:
        self._nodes += nodes
        if self._nodes > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_YAML_NODES} values (aliases expanded)", mark
            )

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                if id(node) not in self._expanded:
                    raise yaml.composer.ComposerError(
                        None, None, f"alias *{event.anchor} repeats a node that contains it",
                        event.start_mark,
                    )  # fmt: skip
                self._count(self._expanded[id(node)], event.start_mark)
            return super().compose_node(parent, index)
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark
            )
        before = self._nodes
        self._count(1, event.start_mark)
        self._depth += 1
        node = super().compose_node(parent, index)
        self._depth -= 1
        if event.anchor is not None:
            self._expanded[id(node)] = self._nodes - before
        return node


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
    """Parse one YAML document with the safe loader, within the bounds above.

    Raises:
        GankitError: naming ``source``, when the text is not YAML or exceeds a bound.
    """
    if len(text) > MAX_YAML_BYTES:
        raise GankitError(
            f"{source} has {len(text)} characters; a config is at most {MAX_YAML_BYTES}"
        )
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise GankitError(
            f"{source} is not valid YAML{at}: {getattr(err, 'problem', err)}"
        ) from None
    except (ValueError, OverflowError) as err:
        # a constructor's own error: a date such as 2024-02-30, an integer of more
        # digits than Python converts
        raise GankitError(f"{source} is not valid YAML: {err}") from None


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


def preset_text(name: str) -> str:
    """The preset's YAML file as written, with the comments that explain its choices.

    Raises:
        GankitError: no preset has that name (the message lists those that do).
    """
    files = _preset_files()
    if name not in files:
        raise GankitError(
            f"unknown preset '{name}'{did_you_mean(name, files)}; valid: {choices(files)}"
        )
    return files[name].read_text()


def load_preset(name: str) -> dict[str, Any]:
    return load_yaml(preset_text(name), f"preset '{name}'")


def read_config_source(source: str | Path | dict | None) -> dict[str, Any]:
    """A preset name, a path to a YAML file, or a dict -> the raw config dict."""
    if source is None:
        raw = load_preset(DEFAULT_PRESET)
    elif isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        text = str(source)
        if text.endswith((".yaml", ".yml")) or Path(text).is_file():
            raw = load_yaml(_read_config_file(Path(text)), f"config file '{text}'")
        else:
            raw = load_preset(text)
            raw.setdefault("name", text)
    if not isinstance(raw, dict):
        raise GankitError(f"config '{source}' must be a mapping with model, data and train")
    return raw


def _read_config_file(path: Path) -> str:
    """The text of a config file: a regular file of at most ``MAX_YAML_BYTES``."""
    if not path.exists():
        raise GankitError(f"config file '{path}' does not exist")
    if not path.is_file():
        raise GankitError(f"config file '{path}' is not a regular file; give a YAML file")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise GankitError(
            f"config file '{path}' has {size} bytes; a config is at most {MAX_YAML_BYTES}"
        )
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise GankitError(f"cannot read config file '{path}': {err}") from None


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
                f"--set key '{dotted}' must start with a section"
                f"{did_you_mean(parts[0], SECTIONS)}; valid: {choices(SECTIONS)}"
            )
        target = config
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise GankitError(f"--set key '{dotted}': '{part}' is not a section")
        target[parts[-1]] = value


SECTIONS = ("name", "imports", "model", "data", "train")


def resolve_config(
    source: str | Path | dict | None = None,
    overrides: Overrides = None,
    imports: list[str] | tuple[str, ...] = (),
    import_listed: bool = True,
) -> dict[str, Any]:
    """Read, override and validate a run config; returns the fully resolved dict.

    The result names every model, data and train setting explicitly (defaults filled
    in), so the run directory and each checkpoint record exactly what was trained.

    ``imports`` (``--import``) and the config's own ``imports`` list name the user's
    modules that register models; they are imported before the model is looked up.
    The result lists them, with the module that registered the model when it is the
    user's, so that a later command can say which ``--import`` the run needs (see
    docs/byo.md). ``import_listed=False`` imports only ``imports``, not the config's own
    list: for a saved run's config, which may come from anyone.
    """
    from gankit.data import check_data_config
    from gankit.registry import import_modules, model_defaults, user_module

    config = read_config_source(source)
    before = copy.deepcopy(config.get("data"))
    apply_overrides(config, overrides)
    _warn_kept_data_options(before, config.get("data"))
    listed = config.get("imports") or []
    if not isinstance(listed, list):
        raise GankitError(f"config 'imports' must be a list of module names, got {listed!r}")
    modules = list(dict.fromkeys([*listed, *imports]))
    # A saved run's list is not imported (import_listed=False): see runs.load's
    # import_run_modules. A config file the user passes is their own choice.
    import_modules(
        modules if import_listed else list(imports), "imports" if not imports else "--import"
    )
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
    registered_by = user_module(model_name)
    if registered_by is not None and registered_by not in modules:
        modules.append(registered_by)
    return {
        "name": name,
        **({"imports": modules} if modules else {}),
        "model": resolved_model,
        "data": {"name": data_name, **data},
        "train": train,
    }


#: Data options a recipe sizes for its dataset: kept across a change of ``data.name``,
#: they may no longer fit the new one.
SIZED_DATA_OPTIONS = ("resolution", "channels")


def _warn_kept_data_options(before: Any, after: Any) -> None:
    """Warn when an override changed ``data.name`` but left the recipe's resolution (or
    channels), chosen for the recipe's dataset, in place for the new one."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return
    old_name, new_name = before.get("name"), after.get("name")
    if old_name is None or old_name == new_name:
        return
    kept = [key for key in SIZED_DATA_OPTIONS if key in before and after.get(key) == before[key]]
    if kept:
        shown = ", ".join(f"data.{key}: {after[key]}" for key in kept)
        warn(
            f"data.name is now '{new_name}', but {shown} comes from the recipe made for "
            f"'{old_name}'; if it does not fit '{new_name}', set it with "
            f"--set data.{kept[0]}=VALUE"
        )


#: A run's name: one folder name under the runs folder. It starts with a letter, digit or
#: '_': a leading '-' reads as an option to the shell commands people run on runs
#: (``rm runs/-rf``), and a leading '.' hides the folder from ``ls`` (and makes '...').
RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
#: Bytes; a file system allows 255 in one name, and --overwrite appends "~old".
RUN_NAME_MAX_BYTES = 250


def check_run_name(name: Any) -> str:
    """``name`` if it names one folder under the runs folder, never a path: no
    separators, no leading '.' or '-', at most 250 bytes. ``gankit train --name`` and
    the lab's save both check here, so they accept the same names.

    Raises:
        GankitError: it does not; the message says what would be valid.
    """
    valid = (
        isinstance(name, str)
        and RUN_NAME.fullmatch(name) is not None
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
            f"starting with a letter, digit or '_', at most {RUN_NAME_MAX_BYTES} bytes"
        )
    return name


def dump_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
