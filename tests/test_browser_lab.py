"""The lab's page in Chromium against hostile strings: whatever the server sends (error
messages echo what a page sent; names, paths) reaches the DOM as text, never as HTML.

Skipped where Chromium or its driver is missing, as tests/test_browser.py.
"""

from __future__ import annotations

import json

import pytest

from test_browser import CHROMIUM, DRIVER, chromium, console_errors, serve_lab, wait_for

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
#: Markup that changes the page's title if it is ever parsed as HTML.
PAYLOADS = (
    "<img src=x onerror=\"document.title='pwned'\">",
    '"><svg onload="document.title=\'pwned\'">',
    "<script>document.title='pwned'</script>",
)
TITLE = "gankit lab"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture
def lab(browser, tmp_path):
    """The lab's page, open and paused at step 0."""
    with serve_lab(tmp_path / "runs") as url:
        browser.get(url)
        wait_for(lambda: text(browser, "state") == "paused", 30, "no first frame")
        yield browser
        browser.get("about:blank")


def text(browser, element_id: str) -> str:
    return browser.execute_script(f"return document.getElementById('{element_id}').textContent")


def unharmed(browser) -> None:
    """No payload ran and none became an element."""
    assert browser.title == TITLE
    assert (
        browser.execute_script(
            "return document.querySelectorAll('#error img, #error svg, #error script, "
            "#saved *, #model *, #modes *, #hq *, #step *, #state *').length"
        )
        == 0
    )


def test_hostile_strings_echoed_by_the_server_stay_text(lab):
    """Through the page's own socket: every field a command carries, filled with markup
    that the server's error message then quotes back."""
    for payload in PAYLOADS:
        for message in (
            {"type": "configure", "target": payload},
            {"type": "configure", "loss": payload},
            {"type": "configure", payload: 1},
            {"type": "configure", "width": payload},
            {"type": "configure", "points": [[payload, 0]]},
            {"type": "save", "name": payload},
            {"type": "step", "steps": payload},
            {"type": payload},
        ):
            lab.execute_script("socket.send(arguments[0])", json.dumps(message))
            wait_for(
                lambda quoted=payload[:20]: quoted in text(lab, "error"),
                10,
                f"no error quoting {message}",
            )
            lab.execute_script("showError('')")
        unharmed(lab)
    assert console_errors(lab) == []


def test_hostile_strings_in_every_message_the_page_draws_stay_text(lab):
    """As if the server itself sent markup in every string the page shows: the setup's
    names, a frame's counts, a saved run's path, an error, a close reason."""
    payload = PAYLOADS[0]
    setup = {
        "type": "setup",
        "settings": {"target": payload, "loss": payload, "lr_g": payload, "lr_d": payload,
                     "n_critic": payload, "width": payload, "depth": payload,
                     "batch_size": payload},
        "config": {"name": payload, "model": {"name": payload, "loss": payload},
                   "data": {"name": payload}},
        "bounds": [-2, 2, -2, 2], "real": [], "n_modes": payload,
    }  # fmt: skip
    frame = {
        "type": "frame", "step": payload, "running": False, "fake": [], "losses": [],
        "coverage": {"modes": payload, "n_modes": payload, "high_quality": 0.5},
    }  # fmt: skip
    for message in (
        setup,
        frame,
        {**frame, "coverage": None},
        {"type": "saved", "path": payload, "name": payload},
        {"type": "error", "message": payload},
    ):
        lab.execute_script("socket.onmessage({data: arguments[0]})", json.dumps(message))
        unharmed(lab)
    assert payload in text(lab, "model") and payload in text(lab, "saved")
    assert payload in text(lab, "error")
    lab.execute_script("socket.onclose({reason: arguments[0]})", payload)
    unharmed(lab)
    assert payload in text(lab, "error")


def test_an_empty_run_name_saves_under_the_current_settings(lab):
    """The name field does not keep the first target's name: applied grid, saved as grid."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(lab.find_element(By.ID, "target")).select_by_visible_text("grid")
    lab.find_element(By.ID, "apply").click()
    wait_for(lambda: text(lab, "model").endswith("on grid"), 30, "grid was not applied")
    lab.find_element(By.ID, "step-once").click()
    wait_for(lambda: text(lab, "step") == "1", 20, "one step")
    name = lab.find_element(By.ID, "run-name")
    assert "lab-grid-non_saturating" in name.get_attribute("placeholder")
    lab.find_element(By.ID, "save").click()
    wait_for(lambda: "saved" in text(lab, "saved"), 30, "the run was not saved")
    assert "lab-grid-non_saturating-" in text(lab, "saved")
    assert name.get_attribute("value") == ""


def test_the_page_without_its_token_says_how_to_open_it(lab):
    url = lab.current_url
    lab.get(url.split("?")[0])
    assert "token" in lab.find_element("tag name", "body").text
    assert lab.title != TITLE  # a plain-text refusal, not the page
