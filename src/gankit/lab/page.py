"""The lab's one page (``page.html``): a canvas, the controls and a few hundred lines of
plain JavaScript that draw the frames the server streams over a WebSocket. No library,
no download: the page works with the machine offline."""

from __future__ import annotations

import html
import json
from importlib import resources


def page(defaults: dict, exposed_host: str | None = None) -> str:
    """The lab's page (``page.html``), with the default settings and, when the server
    listens beyond this machine, a warning that says so."""
    text = (resources.files("gankit.lab") / "page.html").read_text(encoding="utf-8")
    warning = (
        f'<div id="exposed">This lab listens on {html.escape(exposed_host)}: anyone who can '
        "reach this machine can use it and make it train.</div>"
        if exposed_host
        else ""
    )
    return text.replace("__EXPOSED__", warning).replace(
        "__DEFAULTS__", json.dumps(defaults).replace("</", "<\\/")
    )
