"""The report and the lab in a real browser: Debian's Chromium, driven by Selenium.

Skipped only where Chromium or its driver is not installed (``.ci/run`` installs both
with apt-get). With ``GANKIT_SCREENSHOTS=1`` the tests also write the screenshots of
the docs (docs/report.png, docs/lab.png).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

import gankit
from conftest import tiny_config
from gankit.api import evaluate_run
from gankit.nn import torch_threads

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None or DRIVER is None,
        reason="needs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver)",
    ),
]
DOCS = Path(__file__).resolve().parent.parent / "docs"
#: Flags that let Chromium run headless in a container with no network to call home to.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)  # fmt: skip


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def chromium(profile: Path):
    """A headless Chromium driven by Selenium, its profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1300,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver, tmp_path: Path, name: str, height: int) -> None:
    """A screenshot of the page (``height`` px tall), kept in the docs when asked."""
    driver.set_window_size(1300, height)
    driver.execute_script("window.scrollTo(0, 0)")
    path = tmp_path / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a page, not a blank
    if os.environ.get("GANKIT_SCREENSHOTS"):
        shutil.copyfile(path, DOCS / name)


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {seconds} s")


# --------------------------------------------------------------------------- the report
def test_report_slider_floors_and_no_console_errors(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    runs = tmp_path / "runs"
    config = tiny_config("gan", "ring", steps=30, eval_every=10, eval_n=200)
    gankit.train(config, runs_dir=runs, name="ring")
    evaluate_run("ring", n=200, runs_dir=runs)
    page = gankit_report(runs, tmp_path / "ring.html")
    browser.get(page.as_uri())
    slider = browser.find_element(By.CSS_SELECTOR, ".slider input[type=range]")
    image = browser.find_element(By.CSS_SELECTOR, ".slider img.frame")
    label = browser.find_element(By.CSS_SELECTOR, ".slider .frame-label")
    newest = image.get_attribute("src")
    assert newest.startswith("data:image/png") and label.text == "ring step 30 (3 of 3)"
    slider.send_keys(Keys.HOME)  # the keyboard moves it, as a person would
    assert label.text == "ring step 10 (1 of 3)" and image.get_attribute("src") != newest
    slider.send_keys(Keys.END)
    assert image.get_attribute("src") == newest
    # the metric table: each score beside its real-vs-real floor
    table = browser.find_element(By.XPATH, "//table[.//th[text()='real-vs-real floor']]")
    cells = {
        row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[2].text
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    assert set(cells) >= {"modes", "high_quality", "w1"} and all(cells.values())
    assert cells["modes"] == "8"
    assert console_errors(browser) == []
    screenshot(browser, tmp_path, "report.png", 2400)


def gankit_report(runs: Path, out: Path) -> Path:
    from gankit.report import write_report

    return write_report(["ring"], out, runs_dir=runs)


def test_no_payload_of_a_run_folder_runs_script_in_the_report(browser, tmp_path):
    """The payload corpus of tests/test_report_trust.py, in every value a run folder
    carries, on a run's page, a page of a run training now, a page of an unknown model
    and the compare page: the title stays the page's, no dialog opens, nothing is
    logged, and every frame of every slider is shown without running anything."""
    from selenium.webdriver.common.by import By

    from test_report_trust import VALUE, hostile_runs, report_pages

    gankit.train(tiny_config("gan", "ring", steps=20), runs_dir=tmp_path, name="ring")
    runs = hostile_runs(tmp_path / "ring", tmp_path / "runs")
    for which, page in report_pages(runs, tmp_path, VALUE).items():
        browser.get(page.as_uri())
        browser.execute_script(
            "window.alert = window.confirm = window.prompt = function () {"
            " document.title = 'pwned'; };"
        )
        for box in browser.find_elements(By.CSS_SELECTOR, ".slider input[type=range]"):
            for index in range(int(box.get_attribute("max")) + 1):  # every frame shown
                browser.execute_script(
                    "arguments[0].value = arguments[1];"
                    "arguments[0].dispatchEvent(new Event('input'));",
                    box,
                    index,
                )
        time.sleep(0.3)  # an injected <img onerror> fires once its load fails
        labels = browser.find_elements(By.CSS_SELECTOR, ".slider .frame-label")
        assert all(label.text for label in labels), which  # the page's script ran
        assert labels or which == "compare", which  # (the compare page has no slider)
        assert browser.title.startswith("gankit report: "), which
        assert browser.execute_script("return document.title") != "pwned", which
        assert console_errors(browser) == [], which


# --------------------------------------------------------------------------- the lab
@pytest.fixture
def lab_url(browser, tmp_path):
    with serve_lab(tmp_path / "runs") as url:
        yield url
        browser.get("about:blank")  # closes the page's socket: its session stops


@contextlib.contextmanager
def serve_lab(runs_dir: Path):
    """A lab served on a free port of 127.0.0.1; yields its page's URL, with the token."""
    import uvicorn

    from gankit.lab import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(runs_dir, "127.0.0.1", port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    with torch_threads(1):  # as gankit lab serves: one thread per session
        thread.start()
        wait_for(lambda: server.started, 20, "the server did not start")
        try:
            yield f"http://127.0.0.1:{port}/?token={app.state.token}"
        finally:
            server.should_exit = True
            thread.join(timeout=20)


def test_lab_trains_pauses_resets_and_refuses_a_bad_rate(browser, lab_url, tmp_path):
    from selenium.webdriver.common.by import By

    def text(element_id: str) -> str:
        return browser.find_element(By.ID, element_id).text

    def canvas() -> str:
        return browser.execute_script("return document.getElementById('plane').toDataURL()")

    def modes() -> int:
        match = re.match(r"(\d+) of 8", text("modes"))
        return int(match.group(1)) if match else -1

    browser.get(lab_url)
    wait_for(lambda: text("state") == "paused", 30, "no first frame")
    assert text("step") == "0" and modes() == 0
    before = canvas()
    browser.find_element(By.ID, "start").click()
    wait_for(lambda: modes() >= 4, 120, "mode coverage did not rise to 4 of 8 on the ring")
    assert text("state") == "training"
    frame = canvas()
    wait_for(lambda: canvas() != frame, 10, "the canvas did not change between frames")
    assert frame != before
    screenshot(browser, tmp_path, "lab.png", 1000)

    browser.find_element(By.ID, "pause").click()
    wait_for(lambda: text("state") == "paused", 10, "pause did not pause")
    paused_at = text("step")
    time.sleep(1.0)
    assert text("step") == paused_at and int(paused_at) > 0

    browser.find_element(By.ID, "reset").click()
    wait_for(lambda: text("step") == "0", 30, "reset did not go back to step 0")

    rate = browser.find_element(By.ID, "lr-g")
    rate.clear()
    rate.send_keys("-0.001")
    browser.find_element(By.ID, "apply").click()
    error = browser.find_element(By.ID, "error")
    wait_for(lambda: error.is_displayed(), 10, "no error shown for a negative rate")
    assert "lr_g must be a finite number > 0" in error.text
    # the server and the session go on: a good rate is applied and trains
    rate.clear()
    rate.send_keys("0.002")
    browser.find_element(By.ID, "apply").click()
    wait_for(lambda: not error.is_displayed(), 30, "the error stayed after a good rate")
    browser.find_element(By.ID, "step-once").click()
    wait_for(lambda: text("step") == "1", 20, "one step after the error")
    assert browser.find_element(By.ID, "lr-g").get_attribute("value") == "0.002"
    assert console_errors(browser) == []
