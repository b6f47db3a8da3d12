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


class Markup(str):
    """HTML that gankit's own helpers built: inserted into the page as it is.

    Every other value (a plain ``str``, a number, anything read from a run) is text,
    and reaches the page only through :func:`escape`. So a value read from a run
    cannot become markup however it is passed along: only this module and
    :func:`markup`'s literal templates make a ``Markup``.
    """

    __slots__ = ()

    def __add__(self, other: object) -> Markup:
        return Markup(str.__add__(self, escape(other)))

    def __radd__(self, other: object) -> Markup:
        return Markup(str.__add__(escape(other), self))


def escape(value: object) -> Markup:
    """``value`` as HTML text (``& < > " '`` escaped, so it is safe in an element and
    in a quoted attribute); a :class:`Markup` is returned as it is."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def markup(template: str, *values: object) -> Markup:
    """``template`` (gankit's own literal HTML, with ``{}`` placeholders) filled with
    ``values``, each escaped unless it is :class:`Markup`: Django's ``format_html``."""
    return Markup(template.format(*(escape(v) for v in values)))


def join(parts: Iterable[object], separator: str = "") -> Markup:
    """Fragments one after the other; each plain string among them is escaped."""
    return Markup(escape(separator).join(escape(p) for p in parts))


def script_json(value: object) -> Markup:
    """``value`` as JSON that is safe inside ``<script>``: ``<``, ``>`` and ``&`` as
    ``\\u003c`` etc., so that ``</script``, ``<!--`` and ``<script`` cannot appear in it,
    and U+2028/U+2029 escaped for older JavaScript parsers. ``JSON.parse`` reads it back
    to the same value."""
    text = json.dumps(value, ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return Markup(text)


def data_uri(content: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def figure_svg(fig) -> Markup:
    """A matplotlib figure as inline SVG markup (text kept as text: small and searchable).

    Trusted: matplotlib writes every text of the figure (titles, legends: names read
    from a run) XML-escaped.
    """
    import matplotlib

    from gankit.explore.pictures import pyplot

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg")
    pyplot().close(fig)
    svg = buffer.getvalue()
    return Markup(svg[svg.index("<svg") :])


def figure_png(fig) -> bytes:
    from gankit.explore.pictures import pyplot

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pyplot().close(fig)
    return buffer.getvalue()


def table(rows: list[list[object]]) -> Markup:
    """Rows of cells as an HTML table, the first row the header; every cell is text."""
    if not rows:
        return Markup()
    head = join(markup("<th>{}</th>", c) for c in rows[0])
    body = join(markup("<tr>{}</tr>", join(markup("<td>{}</td>", c) for c in r)) for r in rows[1:])
    return markup("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


def slider(frames: list[tuple[str, bytes | str, str]]) -> Markup:
    """Frames (label, content, mime) behind a range input; the newest shown first.

    The frames travel as JSON (:func:`script_json`); the page's script shows them
    through ``textContent``, ``src`` and ``alt``, never as markup.
    """
    if not frames:
        return Markup()
    items = [
        {
            "label": str(label),
            "mime": mime,
            "content": str(content) if mime == "text/plain" else data_uri(content, mime),
        }
        for label, content, mime in frames
    ]
    view = Markup(
        '<pre class="frame"></pre>' if frames[0][2] == "text/plain" else '<img class="frame">'
    )
    last = len(frames) - 1
    return markup(
        '<div class="slider"><label>frame <input type="range" min="0" max="{}" value="{}" '
        'step="1"></label> <span class="frame-label"></span><div>{}</div>'
        '<script type="application/json">{}</script></div>',
        last,
        last,
        view,
        script_json(items),
    )


def pictures(items: Iterable[tuple[str, bytes, str]]) -> Markup:
    """(caption, content, mime) pictures side by side."""
    figures = join(
        markup(
            '<figure><img src="{}" alt="{}"><figcaption>{}</figcaption></figure>',
            data_uri(content, mime),
            label,
            label,
        )
        for label, content, mime in items
    )
    return markup('<div class="pictures">{}</div>', figures)


@dataclass
class Page:
    """An HTML page built section by section.

    Every title, caption and body is text (escaped) unless it is :class:`Markup`.
    """

    title: str
    meta: object = ""
    sections: list[tuple[object, object, object]] = field(default_factory=list)

    def add(self, title: object, body: object, caption: object = "") -> None:
        if body or caption:
            self.sections.append((title, caption, body))

    def html(self) -> str:
        anchors = [f"s{i}" for i in range(len(self.sections))]
        nav = join(
            markup('<a href="#{}">{}</a>', a, t) for a, (t, _, _) in zip(anchors, self.sections)
        )
        parts = [
            Markup("<!DOCTYPE html>"),
            Markup('<html lang="en"><head><meta charset="utf-8">'),
            Markup('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            markup("<title>{}</title><style>{}</style></head><body>", self.title, Markup(STYLE)),
            markup("<h1>{}</h1>", self.title),
            markup('<p class="meta">{}</p>', self.meta) if self.meta else Markup(),
            markup("<nav>{}</nav>", nav),
        ]
        for anchor, (title, caption, body) in zip(anchors, self.sections):
            parts.append(markup('<section id="{}"><h2>{}</h2>', anchor, title))
            if caption:
                parts.append(markup('<p class="caption">{}</p>', caption))
            parts.append(markup("{}</section>", body))
        parts.append(markup("<script>{}</script></body></html>", Markup(SCRIPT)))
        return str(join(parts, Markup("\n")))
