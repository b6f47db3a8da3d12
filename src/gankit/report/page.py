"""The report as one HTML file: sections of text, tables, inline SVG and embedded
pictures, with a few lines of plain JavaScript for the sliders. Nothing is fetched:
the page opens offline, and can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

#: The page's style: readable without any of it, tidier with it.
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 0 20px 40px; color: #222; }
h1 { margin: 18px 0 4px; font-size: 24px; } h2 { margin-top: 28px; font-size: 18px;
     border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.meta { color: #555; margin: 0 0 8px; } .caption { color: #444; max-width: 900px; }
nav a { margin-right: 12px; } table { border-collapse: collapse; margin: 6px 0; }
td, th { border: 1px solid #ccc; padding: 3px 9px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 8px 10px; overflow-x: auto; font-size: 12px; }
.slider input { width: 420px; vertical-align: middle; }
.slider img, .pictures img { max-width: 100%; image-rendering: pixelated;
     border: 1px solid #ddd; }
.pictures img { max-height: 520px; }
.pictures figure { display: inline-block; margin: 6px 12px 12px 0; vertical-align: top; }
figcaption { font-size: 12px; color: #555; } svg { max-width: 100%; height: auto; }
.status-training { color: #b36b00; font-weight: 600; }
"""

#: The sliders: each ``.slider`` holds its frames as JSON and shows the chosen one.
SCRIPT = """
document.querySelectorAll('.slider').forEach(function (box) {
  var frames = JSON.parse(box.querySelector('script[type="application/json"]').textContent);
  var input = box.querySelector('input[type=range]');
  var label = box.querySelector('.frame-label');
  var view = box.querySelector('.frame');
  function show(i) {
    var frame = frames[i];
    label.textContent = frame.label + ' (' + (i + 1) + ' of ' + frames.length + ')';
    if (frame.mime === 'text/plain') { view.textContent = frame.content; }
    else { view.src = frame.content; view.alt = frame.label; }
  }
  input.addEventListener('input', function () { show(Number(input.value)); });
  show(Number(input.value));
});
"""


def escape(text: object) -> str:
    return html.escape(str(text))


def data_uri(content: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def figure_svg(fig) -> str:
    """A matplotlib figure as inline SVG markup (text kept as text: small and searchable)."""
    import matplotlib

    from gankit.explore.pictures import pyplot

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg")
    pyplot().close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def figure_png(fig) -> bytes:
    from gankit.explore.pictures import pyplot

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pyplot().close(fig)
    return buffer.getvalue()


def table(rows: list[list[object]]) -> str:
    """Rows of cells as an HTML table, the first row the header."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def slider(frames: list[tuple[str, bytes | str, str]]) -> str:
    """Frames (label, content, mime) behind a range input; the newest shown first."""
    if not frames:
        return ""
    items = [
        {
            "label": label,
            "mime": mime,
            "content": content if mime == "text/plain" else data_uri(content, mime),
        }
        for label, content, mime in frames
    ]
    # "</" inside a script element would end it
    payload = json.dumps(items).replace("</", "<\\/")
    view = '<pre class="frame"></pre>' if frames[0][2] == "text/plain" else '<img class="frame">'
    last = len(frames) - 1
    return (
        f'<div class="slider"><label>{escape("frame")} <input type="range" min="0" '
        f'max="{last}" value="{last}" step="1"></label> <span class="frame-label"></span>'
        f'<div>{view}</div><script type="application/json">{payload}</script></div>'
    )


def pictures(items: Iterable[tuple[str, bytes, str]]) -> str:
    """(caption, content, mime) pictures side by side."""
    return (
        '<div class="pictures">'
        + "".join(
            f'<figure><img src="{data_uri(content, mime)}" alt="{escape(label)}">'
            f"<figcaption>{escape(label)}</figcaption></figure>"
            for label, content, mime in items
        )
        + "</div>"
    )


@dataclass
class Page:
    """An HTML page built section by section."""

    title: str
    meta: str = ""
    sections: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, title: str, body: str, caption: str = "") -> None:
        if body or caption:
            self.sections.append((title, caption, body))

    def html(self) -> str:
        anchors = [f"s{i}" for i in range(len(self.sections))]
        nav = "".join(
            f'<a href="#{a}">{escape(t)}</a>' for a, (t, _, _) in zip(anchors, self.sections)
        )
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(self.title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{escape(self.title)}</h1>",
            f'<p class="meta">{self.meta}</p>' if self.meta else "",
            f"<nav>{nav}</nav>",
        ]
        for anchor, (title, caption, body) in zip(anchors, self.sections):
            parts.append(f'<section id="{anchor}"><h2>{escape(title)}</h2>')
            if caption:
                parts.append(f'<p class="caption">{escape(caption)}</p>')
            parts.append(body + "</section>")
        parts.append(f"<script>{SCRIPT}</script></body></html>")
        return "\n".join(parts)
