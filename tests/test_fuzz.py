"""Fuzzing the edge where configs enter: ``--set`` overrides and config files.

Hypothesis draws settings with keys from the real schema (``train.*``, the ``model.*``
of several presets, ``data.*``, plus unknown keys) and values of every YAML type: null,
booleans, integers small, negative and huge, floats with NaN and infinities, odd
strings, nested lists and mappings, and raw text that is YAML only by accident. Whatever
comes in, :func:`gankit.config.resolve_config` and building the model and data
(:func:`gankit.training.run.build`) either succeed or raise one ``GankitError`` of one
line. Sizes stay small: a huge value must be refused by a stated bound, never built.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import resource
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tiny_kwargs
from gankit.config import TrainConfig, resolve_config
from gankit.data import dataset_loader
from gankit.errors import GankitError
from gankit.registry import model_defaults
from gankit.training.run import build

#: Presets whose model and data keys are fuzzed, each made tiny so a build takes
#: milliseconds: (preset, its tiny overrides).
PRESETS = {
    "gan-ring": {"data.n_train": 256, "data.n_test": 64},
    "dcgan-digits": {"data.resolution": 8},
    "cgan-digits": {"data.resolution": 8},
    "infogan-digits": {"data.resolution": 8},
    "vae-digits": {"data.resolution": 8},
    "wgan-gp-grid": {"data.n_train": 256, "data.n_test": 64},
    "dann-digits-m": {"data.resolution": 8},
    "cyclegan-digits-m": {},
    "adaptseg-segshift": {"data.n_train": 8, "data.n_test": 4, "data.resolution": 16},
    "charlstm-devils": {"data.window": 8},
    "change-series": {"data.n_train": 64, "data.n_test": 16},
}
#: Data sources built from nothing on disk (no download, no folder).
OFFLINE_DATA = (
    "ring", "grid", "spiral", "swissroll", "moons", "digits", "digits-m", "segshift",
    "devils-dictionary", "series-change", "digits-change",
)  # fmt: skip


def _tiny(preset: str) -> dict:
    config = resolve_config(preset)
    overrides = {f"model.{k}": v for k, v in tiny_kwargs(config["model"]["name"]).items()}
    return resolve_config(preset, {**overrides, **PRESETS[preset]})


BASES = {preset: _tiny(preset) for preset in PRESETS}


def _schema_keys(config: dict) -> list[str]:
    """The keys a config of this preset has: its model's, its data source's, train's."""
    keys = {f"train.{f.name}" for f in dataclasses.fields(TrainConfig)}
    keys |= {f"model.{k}" for k in model_defaults(config["model"]["name"])}
    loader, _ = dataset_loader(config["data"]["name"])
    keys |= {f"data.{k}" for k in inspect.signature(loader).parameters}
    return sorted(keys | {"name", "model.name", "data.name", "data.target", "data.target_options"})


PRESET_KEYS = {preset: _schema_keys(config) for preset, config in BASES.items()}
#: Every key of every preset and offline source: another preset's keys are wrong here.
ALL_KEYS = sorted(
    {key for keys in PRESET_KEYS.values() for key in keys}
    | {
        f"data.{k}"
        for name in OFFLINE_DATA
        for k in inspect.signature(dataset_loader(name)[0]).parameters
    }
)

HUGE_INTS = [2**31, 2**32, 2**53 + 1, 2**63, 2**64, 10**9, 10**30, -(2**63) - 1, -(10**9)]
ODD_STRINGS = ["", " ", "\n", "a\nb", "\x00", "\x1b[31m", "~", "null", "1e-4", "é", "../x"]


def mostly(common, rare, one_in: int = 10):
    """``rare`` about once in ``one_in`` draws, else ``common``. Hypothesis leans towards
    the first branch of a ``one_of`` and towards the simplest values, so the weight is
    explicit; drawing 0, the simplest, gives ``common``."""
    return st.integers(0, one_in - 1).flatmap(lambda i: rare if i == one_in - 1 else common)


numbers = st.one_of(
    st.integers(-3, 64),
    st.sampled_from(HUGE_INTS),
    st.floats(-1e3, 1e3),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 5e-324, 0.5, 1.0]),
)
printable = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12)
others = st.one_of(
    st.none(),
    st.booleans(),
    printable,
    st.text(max_size=8),
    st.sampled_from(ODD_STRINGS),
    st.sampled_from(OFFLINE_DATA),
)
# numbers two times in three: they get past the type checks to the range checks
scalars = mostly(numbers, others, one_in=3)
values = mostly(
    scalars,
    st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(printable, inner, max_size=3)
        ),
        max_leaves=8,
    ),
    one_in=4,
)


def as_yaml(value) -> str:
    """A value as the text of ``--set key=TEXT``: flow-style YAML on one line when it can
    be, else block style."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix("\n...\n")


set_values = mostly(values.map(as_yaml), st.text(max_size=24), one_in=6)


@st.composite
def preset_and_overrides(draw) -> tuple[str, list[str]]:
    """A preset, and 1 to 3 ``--set`` items for it: mostly its own keys (one unknown key
    spoils a whole example), sometimes any schema key or any text."""
    preset = draw(st.sampled_from(sorted(PRESETS)))
    keys = mostly(
        st.sampled_from(PRESET_KEYS[preset]),
        st.one_of(st.sampled_from(ALL_KEYS), st.text(max_size=16)),
        one_in=8,
    )
    pairs = draw(st.lists(st.tuples(keys, set_values), min_size=1, max_size=3))
    return preset, [f"{key}={text}" for key, text in pairs]


@pytest.fixture(autouse=True, scope="module")
def _bounded_memory():
    """3 GiB of address space more than the tests hold now: a huge value that got past a
    bound fails its example with a MemoryError instead of filling the machine."""
    if not sys.platform.startswith("linux"):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    limit = pages * os.sysconf("SC_PAGE_SIZE") + 3 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (min(limit, hard) if hard > 0 else limit, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


FUZZ = settings(
    max_examples=600,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def one_line_or_nothing(fn, *args):
    """``fn(*args)``, or None when it raised a one-line GankitError; anything else (a
    traceback the user would see, or a message of several lines) fails the test."""
    try:
        return fn(*args)
    except GankitError as err:
        message = str(err)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return None


@FUZZ
@given(case=preset_and_overrides())
def test_set_overrides_resolve_or_fail_in_one_line(case):
    preset, items = case
    one_line_or_nothing(resolve_config, BASES[preset], items)


@settings(FUZZ, max_examples=250)
@given(case=preset_and_overrides())
def test_set_overrides_build_or_fail_in_one_line(case):
    preset, items = case
    config = one_line_or_nothing(resolve_config, BASES[preset], items)
    if config is not None:
        one_line_or_nothing(build, config)


@settings(FUZZ, max_examples=300)
@given(
    preset=st.sampled_from(sorted(PRESETS)),
    sections=st.dictionaries(
        st.sampled_from(["name", "model", "data", "train", "extra"]),
        st.dictionaries(
            mostly(st.sampled_from(ALL_KEYS), st.text(max_size=8)).map(
                lambda key: key.rpartition(".")[2]
            ),
            values,
            max_size=3,
        ),
        max_size=3,
    ),
    raw=st.one_of(st.none(), st.text(max_size=40)),
)
def test_config_files_resolve_or_fail_in_one_line(tmp_path_factory, preset, sections, raw):
    """A config file: the preset's sections with fuzzed keys merged in, or raw text."""
    config = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in BASES[preset].items()
    }
    for section, settings_ in sections.items():
        if isinstance(config.get(section), dict):
            config[section].update(settings_)
        else:
            config[section] = settings_
    path = tmp_path_factory.getbasetemp() / "fuzzed.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump(config, allow_unicode=True))
    resolved = one_line_or_nothing(resolve_config, str(path))
    if resolved is not None and raw is None:
        one_line_or_nothing(build, resolved)


def test_the_fuzz_check_fails_on_a_traceback_or_a_second_line():
    """The check above can fail: another exception, or a message of two lines."""

    def crash():
        raise TypeError("unhashable type: 'list'")

    class TwoLines(GankitError):
        def __str__(self) -> str:
            return "first\nsecond"

    def two_lines():
        raise TwoLines("x")

    with pytest.raises(TypeError):
        one_line_or_nothing(crash)
    with pytest.raises(AssertionError):
        one_line_or_nothing(two_lines)
    assert one_line_or_nothing(lambda: 3) == 3
