"""What ``gankit report`` trusts of a run folder: nothing.

A run folder is a file people mail and download; the report is a page meant to be
mailed too. Every value the folder carries (its name, its config's keys and values,
eval.json, metrics.jsonl's keys, file names, the lock's text) must reach the page as
text, and every command the page prints must be one a shell runs as written. Snapshots
are loaded without running code, and a damaged one is skipped with a warning.

The page corpus is built here (:func:`hostile_runs`) and also opened in Chromium by
tests/test_browser.py.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import pickle
import re
import shlex
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit.report import write_report
from gankit.report.page import escape

#: Classic payloads: markup, script, comment and attribute breakouts, URLs, line ends.
PAYLOADS = (
    "<img src=x onerror=\"document.title='pwned'\">",
    "<script>document.title='pwned'</script>",
    "<!--<script>",
    "</script><script>document.title='pwned'</script>",
    '"><svg onload="document.title=\'pwned\'">',
    "'><svg onload='document.title=`pwned`'>",
    '" onmouseover="document.title=\'pwned\'" x="',
    "' autofocus onfocus='document.title=\"pwned\"' x='",
    "javascript:document.title='pwned'",
    "</style><script>document.title='pwned'</script>",
    "</title><script>document.title='pwned'</script>",
    "]]><script>document.title='pwned'</script>",
    "<iframe srcdoc=\"<script>parent.document.title='pwned'</script>\"></iframe>",
    "<a href=\"javascript:document.title='pwned'\">x</a>",
    "line\u2028separator\u2029paragraph",
    "&lt;script&gt;document.title='pwned'&lt;/script&gt;",
)
#: The payloads that can be a file or folder name (no slash).
NAME_PAYLOADS = tuple(p for p in PAYLOADS if "/" not in p)
#: All of them in one value: each place a run carries text gets every payload.
VALUE = " ".join(PAYLOADS)
#: The smallest PNG there is: a picture of gankit explore's, by content.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory) -> Path:
    """A toy GAN run with previews, snapshots, checkpoints and metrics."""
    root = tmp_path_factory.mktemp("trusted")
    gankit.train(tiny_config("gan", "ring", steps=20), runs_dir=root, name="ring")
    return root / "ring"


def dressed_run(toy_run: Path, root: Path, name: str, text: str, known_model: bool = True) -> Path:
    """A copy of ``toy_run`` named ``name`` that carries ``text`` in every value a run
    folder can bring to the page. ``known_model``: the model and data names stay real
    (so the task's sections and the commands are drawn); otherwise they are ``text``."""
    run = root / name
    shutil.copytree(toy_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["name"] = text
    config[text] = text
    config["train"]["steps"] = text
    config["train"][text] = [text, {text: text}]
    config["model"][text] = text
    if not known_model:
        config["model"]["name"] = text
        config["data"]["name"] = text
    (run / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    evaluation = {
        "scores": {text: text, "fid": 1.5},
        "floor": {text: text, "fid": 0.5},
        "step": text,
        "n": text,
        "n_reference": text,
        "split": text,
        "seconds": 2.5,
        "extra": {"notes": [text]},
    }
    (run / "eval.json").write_text(json.dumps(evaluation))
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as metrics:
        metrics.write(json.dumps({"step": 21, text: 1.0, "loss_g": text, "time": 9.0}) + "\n")
    (run / "samples" / "step_00000030.txt").write_text(text, encoding="utf-8")
    (run / "explore").mkdir(exist_ok=True)
    for index, payload in enumerate(
        NAME_PAYLOADS if text != "plain" else ["plain"] * len(NAME_PAYLOADS)
    ):
        (run / "explore" / f"{payload}{index}.png").write_bytes(PNG)
    return run


def hostile_runs(toy_run: Path, root: Path, text: str = VALUE) -> list[Path]:
    """Runs named by each payload that can be a folder name, each carrying ``text``
    everywhere; the last has unknown model and data names. With ``text`` "plain", the
    same folders with innocent names: the page's own structure to compare with."""
    names = NAME_PAYLOADS if text != "plain" else [f"plain{i}" for i in range(len(NAME_PAYLOADS))]
    runs = [dressed_run(toy_run, root, name, text) for name in names[:-1]]
    return [*runs, dressed_run(toy_run, root, names[-1], text, known_model=False)]


class Locked:
    """Hold a run's lock the way a training process does, with ``holder`` as its text."""

    def __init__(self, run: Path, holder: str) -> None:
        self.run, self.holder = run, holder

    def __enter__(self) -> Locked:
        self.handle = open(self.run / "train.lock", "w", encoding="utf-8")
        self.handle.write(self.holder)
        self.handle.flush()
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def report_pages(runs: list[Path], out: Path, holder: str) -> dict[str, Path]:
    """The pages of the corpus: a run's page, a run training now, one with unknown model
    and data names, and the compare page of them all."""
    with Locked(runs[1], holder):
        pages = {"training": write_report([runs[1]], out / "training.html")}
    pages["single"] = write_report([runs[0]], out / "single.html")
    pages["unknown model"] = write_report([runs[-1]], out / "unknown.html")
    pages["compare"] = write_report(runs, out / "compare.html")
    return pages


@pytest.fixture(scope="session")
def corpus_pages(toy_run, tmp_path_factory) -> dict[str, dict[str, Path]]:
    """{"hostile": pages, "plain": the same pages of innocent runs}."""
    out = {}
    for kind, text in (("hostile", VALUE), ("plain", "plain")):
        root = tmp_path_factory.mktemp(f"corpus-{kind}")
        runs = hostile_runs(toy_run, root / "runs", text)
        out[kind] = report_pages(runs, root, text)
    return out


class Structure(HTMLParser):
    """The elements and attributes of a page, as an HTML parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: dict[str, int] = {}
        self.attributes: set[tuple[str, str]] = set()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            self.attributes.add((tag, name))
            if name in ("src", "href", "xlink:href", "action", "formaction"):
                self.urls.append(value or "")
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def structure(path: Path) -> Structure:
    parser = Structure()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# --------------------------------------------------------------------------- the page
def test_no_payload_makes_an_element_or_attribute_of_its_own(corpus_pages):
    """Each page of hostile runs has exactly the elements (and the same number of
    scripts) and attributes the same page of innocent runs has; no URL but data: and
    the page's own anchors; every JSON block parses back to frames."""
    for which, page in corpus_pages["hostile"].items():
        hostile, plain = structure(page), structure(corpus_pages["plain"][which])
        assert set(hostile.tags) <= set(plain.tags), (which, set(hostile.tags) - set(plain.tags))
        assert hostile.attributes <= plain.attributes, (
            which,
            hostile.attributes - plain.attributes,
        )
        for tag in ("script", "img", "svg", "iframe", "a", "style", "title"):
            assert hostile.tags.get(tag) == plain.tags.get(tag), (which, tag)
        assert not any(name.startswith("on") for _, name in hostile.attributes), which
        assert all(url.startswith(("data:image/", "#")) for url in hostile.urls), which
        text = page.read_text(encoding="utf-8")
        plain_text = corpus_pages["plain"][which].read_text(encoding="utf-8")
        for marker in ("<script", "<!--", "<img", "<svg", "</script", "<iframe", "<style"):
            assert text.count(marker) == plain_text.count(marker), (which, marker)


def test_the_training_page_shows_its_status_and_holder_as_text(corpus_pages):
    page = corpus_pages["hostile"]["training"].read_text(encoding="utf-8")
    shown = re.search(r"training now</span> \((.*?)\): step 30 of (.*?) so far", page)
    assert shown, "the status line"
    assert shown.group(1) == escape(VALUE[:200]) and shown.group(2) == escape(VALUE)


def test_json_in_a_script_cannot_end_or_open_one():
    from gankit.report.page import script_json

    frames = [{"label": p, "content": p} for p in PAYLOADS]
    text = script_json(frames)
    for banned in ("<", ">", "&", "\u2028", "\u2029"):
        assert banned not in text
    assert json.loads(text) == frames


def test_plain_strings_are_text_and_only_markup_passes():
    from gankit.report.page import markup

    assert markup("<b>{}</b>", "<i>") == "<b>&lt;i&gt;</b>"
    assert markup("<b>{}</b>", markup("<i>{}</i>", "'")) == "<b><i>&#x27;</i></b>"
    assert markup("<p>{}</p>", "x") + "<script>" == "<p>x</p>&lt;script&gt;"
    assert "<script>" + markup("<p>{}</p>", "x") == "&lt;script&gt;<p>x</p>"


def test_text_where_a_number_belongs_gives_a_page(toy_run, tmp_path):
    run = dressed_run(toy_run, tmp_path, "steps", "<b>many</b>")
    evaluation = json.loads((run / "eval.json").read_text())
    (run / "eval.json").write_text(json.dumps({**evaluation, "seconds": "<b>long</b>"}))
    page = write_report([run], tmp_path / "p.html").read_text(encoding="utf-8")
    assert "at step 30 (config.yaml's train.steps: &lt;b&gt;many&lt;/b&gt;)" in page
    assert "<td>&lt;b&gt;long&lt;/b&gt; s</td>" in page


def test_mathtext_and_text_steps_in_the_log_give_a_page(toy_run, tmp_path):
    """A logged key or a run name with ``$...$`` is drawn as text (matplotlib's mathtext
    used to fail the figure), and a row whose step is not a number is left out."""
    run = tmp_path / "r$\\bar$"
    shutil.copytree(toy_run, run)
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 21, "$\\foo{$": 1.0}) + "\n")
        handle.write(json.dumps({"step": "x", "loss_d": 2.0}) + "\n")
    page = write_report([run], tmp_path / "p.html").read_text(encoding="utf-8")
    assert "<svg" in page


# --------------------------------------------------------------------------- the shell
SHELL_NAMES = (
    "r$(touch PWNED)",
    "it's",
    'say "hi"',
    "a b",
    "a;touch PWNED",
    "`touch PWNED`",
    "line\nbreak",
    "$HOME",
    "back\\slash",
    "*",
)


def printed_commands(page: str) -> dict[str, str]:
    """The Commands section of a page: what each does -> the command, as text."""
    block = re.search(r"Commands</h2>\s*<pre>(.*?)</pre>", page, re.S).group(1)
    parts = re.split(r"^# (.*)\n", html.unescape(block), flags=re.M)[1:]
    return {what: command.removesuffix("\n") for what, command in zip(parts[::2], parts[1::2])}


@pytest.mark.parametrize("name", SHELL_NAMES)
def test_every_printed_command_gives_exactly_its_arguments(toy_run, tmp_path, name):
    runs_dir = tmp_path / "my runs;$(touch PWNED)"
    run = runs_dir / name
    shutil.copytree(toy_run, run)
    for drawn in ("snapshots", "samples", "metrics.jsonl"):  # a quick page: no pictures
        shutil.rmtree(run / drawn) if (run / drawn).is_dir() else (run / drawn).unlink()
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["train"]["steps"] = 21  # an override for the preset's command
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    page = write_report([run], tmp_path / "p.html").read_text(encoding="utf-8")
    printed = printed_commands(page)
    where = ["--runs-dir", str(runs_dir)]
    preset = next(k for k in printed if k.startswith("train it again from the preset"))
    argv = shlex.split(printed[preset])
    assert argv[:5] == ["gankit", "train", "gan-ring", "--name", name]
    assert argv[5:7] == where and "train.steps=21" in argv
    assert shlex.split(printed["train it again from its own config"]) == [
        "gankit", "train", str(run / "config.yaml"), "--name", f"{name}-again", *where,
    ]  # fmt: skip
    assert shlex.split(printed["score its newest checkpoint (writes eval.json)"]) == [
        "gankit", "eval", name, *where,
    ]  # fmt: skip
    assert shlex.split(printed["draw its toy pictures into explore/"]) == [
        "gankit", "explore", name, "--what", "toy", *where,
    ]  # fmt: skip
    assert shlex.split(printed["this page"]) == ["gankit", "report", name, *where]


def test_the_page_prints_the_commands_quoted_then_escaped(toy_run, tmp_path):
    run = tmp_path / "runs" / "r$(touch PWNED)"
    shutil.copytree(toy_run, run)
    page = write_report([run], tmp_path / "p.html").read_text(encoding="utf-8")
    assert "gankit eval &#x27;r$(touch PWNED)&#x27;" in page
    assert "gankit eval r$(touch PWNED)" not in page


# --------------------------------------------------------------------------- snapshots
class Payload:
    """Unpickling this would run a command that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def spoil_snapshots(run: Path, marker: Path) -> None:
    """Three bad files among the run's snapshots: cut short, random bytes, a payload."""
    snapshots = sorted((run / "snapshots").glob("step_*.pt"))
    whole = snapshots[0].read_bytes()
    (run / "snapshots" / "step_00000001.pt").write_bytes(whole[: len(whole) // 2])
    (run / "snapshots" / "step_00000003.pt").write_bytes(os.urandom(4000))
    (run / "snapshots" / "step_00000005.pt").write_bytes(pickle.dumps({"x": Payload(marker)}))


@pytest.fixture
def spoiled(toy_run, tmp_path) -> tuple[Path, Path]:
    run = tmp_path / "runs" / "spoiled"
    shutil.copytree(toy_run, run)
    marker = tmp_path / "PWNED"
    spoil_snapshots(run, marker)
    return run, marker


def test_report_skips_damaged_and_unsafe_snapshots_with_a_warning(spoiled, tmp_path):
    run, marker = spoiled
    result = cli("report", run, "--out", tmp_path / "p.html")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and not marker.exists()
    warnings = [line for line in result.stderr.splitlines() if "gankit: warning: skipped" in line]
    assert len(warnings) == 3 and all("step_0000000" in w for w in warnings), result.stderr
    page = (tmp_path / "p.html").read_text()
    assert "G against D on the plane" in page  # the two good frames


def test_explore_animate_skips_damaged_and_unsafe_snapshots(spoiled, tmp_path):
    run, marker = spoiled
    result = cli("explore", run, "--what", "toy", "--animate", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and not marker.exists()
    assert result.stderr.count("gankit: warning: skipped") == 3, result.stderr
    assert (tmp_path / "out" / "toy_animation.gif").is_file()


def test_explore_animate_without_two_good_snapshots_is_one_line(spoiled, tmp_path):
    run, marker = spoiled
    for good in ("step_00000010.pt", "step_00000020.pt"):
        (run / "snapshots" / good).write_bytes(b"\x80\x02garbage")
    result = cli("explore", run, "--what", "toy", "--animate", "--out", tmp_path / "out")
    one_line_error(result, "--animate needs two of the run's snapshots", "holds 0")
    assert not marker.exists()


# --------------------------------------------------------------------------- suggestions
def suggestion_runs(root: Path) -> dict[str, Path]:
    """A tiny run of each kind: a toy GAN, an image GAN, a translator and an adapter."""
    translate = tiny_config("cyclegan", "digits", steps=2, sample_every=2, ckpt_every=2)
    translate["model"]["identity_weight"] = 0.0
    translate["data"].update(target="digits-m", target_options={"resolution": 8})
    adapt = tiny_config("dann", "moons", steps=2, sample_every=2, ckpt_every=2)
    adapt["data"].update(target="moons", target_options={"n_train": 512, "n_test": 128})
    configs = {
        "toy": tiny_config("gan", "ring", steps=2, sample_every=2, ckpt_every=2),
        "digits": tiny_config("infogan", "digits", steps=2, sample_every=2, ckpt_every=2),
        "translate": translate,
        "adapt": adapt,
    }
    return {name: gankit.train(c, runs_dir=root, name=name).run_dir for name, c in configs.items()}


def test_every_suggested_view_draws_the_run_and_no_other_does(tmp_path):
    """The report's list (and its commands) holds exactly the views that draw each run;
    explore's errors list those same views."""
    from gankit.api import explore
    from gankit.explore.explore import ExploreOptions
    from gankit.tasks import all_views

    for name, run_dir in suggestion_runs(tmp_path / "runs").items():
        page = write_report([run_dir], tmp_path / f"{name}.html").read_text()
        listed = re.search(r"Pictures that apply to this run: (.*?)\.</p>", page)
        suggested = re.findall(r"--what (\w+)", listed.group(1) if listed else "")
        printed = printed_commands(page)
        commands = [
            re.search(r"--what (\w+)", c).group(1) for c in printed.values() if "--what" in c
        ]
        assert commands == suggested, name
        run = gankit.load_run(run_dir)
        works = []
        for view in sorted(all_views() - {"segment", "change", "temperature"}):
            try:
                explore(run, view, ExploreOptions(n=4, pairs=1, steps=2), tmp_path / name / view)
            except gankit.GankitError as err:
                if view in suggested:
                    raise AssertionError(f"{name}: suggested --what {view} fails: {err}") from None
                assert "valid for it: " + ", ".join(sorted(suggested) or ["none"]) in str(err)
            else:
                works.append(view)
        assert sorted(suggested) == works, name
