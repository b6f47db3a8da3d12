"""``gankit lab``: watch a GAN learn, live, and change its knobs, in a browser.

A Starlette app served by uvicorn. The page (:mod:`gankit.lab.page`) talks to the
server over one WebSocket, ``/ws``: it sends commands as JSON (``configure``,
``start``, ``pause``, ``step``, ``reset``, ``save``) and receives a ``setup`` message per
model, then frames several times a second while it trains (:mod:`gankit.lab.session`).

Sessions are per tab: each WebSocket connection gets its own model, data and training
thread, and closing the tab stops them. Tabs share nothing, so nothing one does can
corrupt another; :data:`MAX_SESSIONS` bounds how many tabs hold a session at once,
counted until each tab's training thread has ended.

Any web page the user visits can reach a port on 127.0.0.1, so the lab trusts no
request (:class:`Guard`): the ``Host`` must be the lab's own address (DNS rebinding),
the ``Origin`` the lab's own page (cross-site WebSocket hijacking), and the WebSocket
must carry the launch's random token, which only the printed URL holds (as Jupyter).

A bad setting (a learning rate <= 0, an unknown loss, a width past its bound), a
malformed message of any kind or a diverged model is answered with one ``error``
message shown in the page; the session keeps its last good model, and the server keeps
running. Everything sent is strict JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import secrets
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gankit.config import check_run_name
from gankit.errors import GankitError, choices, warn
from gankit.lab.page import page
from gankit.lab.session import MAX_STEP_COMMAND, Session, Settings, check_whole, shown

#: The most tabs holding a session at once: each holds a model and a thread.
MAX_SESSIONS = 4
#: Frames waiting for a slow page beyond this are dropped (the next one replaces them).
MAX_QUEUED_FRAMES = 4
#: Addresses that only this machine can reach.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Addresses that listen on every interface: any Host may name them.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
COMMANDS = ("configure", "start", "pause", "step", "reset", "save")
#: The longest command answered, in characters: a configure with 256 clicked points is
#: about 8,000. uvicorn drops a connection whose frame passes MAX_FRAME_BYTES.
MAX_MESSAGE_CHARS, MAX_FRAME_BYTES = 65_536, 1 << 20
#: The deepest nesting answered: a configure's points are 3 deep. Python's json parser
#: recurses, and 100,000 brackets raised RecursionError out of the socket's task.
MAX_DEPTH = 8
#: Run folders a tab may save, and all tabs of one launch (about 3 MB each).
MAX_SAVES_PER_TAB, MAX_SAVES = 20, 100
#: A WebSocket closed with this code was refused by the guard (RFC 6455: policy).
POLICY_VIOLATION = 1008


class Guard:
    """Who may use the lab, checked on every request (Jupyter checks the same three):

    - ``Host`` is one of the lab's own names with its port: the bound address and the
      local names (``localhost``, ``127.0.0.1``, ``[::1]``). A page that rebinds its own
      domain to 127.0.0.1 sends its own name and is refused. A wildcard bind
      (``--host 0.0.0.0``) has no name of its own, so any Host passes there;
    - ``Origin``, which browsers set on every WebSocket and cross-site request, is the
      lab's page: ``http://`` + the Host. The page may come without one (a navigation);
      the WebSocket may not;
    - the ``token`` of the page's URL and of its WebSocket is this launch's, which only
      the printed URL holds (the page without it says so, rather than a dead page).
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.token = token.encode()
        names = {host.lower(), *LOCAL_HOSTS}
        names = {f"[{n}]" if ":" in n else n for n in names}  # IPv6 literals in brackets
        self.hosts = (
            None
            if host in WILDCARD_HOSTS
            else {f"{n}:{port}" for n in names} | (names if port == 80 else set())
        )

    def refusal(self, headers: Any, query: Any, websocket: bool) -> str | None:
        """Why this request is refused, or None. The reasons name no value sent."""
        host = headers.get("host", "").lower()
        if self.hosts is not None and host not in self.hosts:
            return "Host is not this lab's address"
        origin = headers.get("origin")
        if origin is None:
            if websocket:
                return "a WebSocket needs the Origin of this lab's page"
        elif origin.lower() != f"http://{host}":
            return "Origin is not this lab's page"
        if not secrets.compare_digest(query.get("token", "").encode(), self.token):
            return "wrong or missing token: open the URL that gankit lab printed"
        return None


class Tab:
    """One tab's claim on :data:`MAX_SESSIONS`: held while its socket is open and while
    any of its training threads runs (each thread holds it too, until it ends), so a
    page that closes and reopens its socket while a step runs gets no second thread."""

    def __init__(self, lab: LabState) -> None:
        self.lab, self.holders = lab, 1

    def hold(self) -> None:
        with self.lab.lock:
            self.holders += 1

    def release(self) -> None:
        with self.lab.lock:
            self.holders -= 1
            if self.holders == 0:
                self.lab.tabs -= 1


class LabState:
    """What the tabs of one server share: the count of tabs, the saves, the sessions."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.lock = threading.Lock()
        self.tabs = 0
        self.saves = 0
        self.sessions: set[Session] = set()

    def admit(self) -> Tab | None:
        with self.lock:
            if self.tabs >= MAX_SESSIONS:
                return None
            self.tabs += 1
        return Tab(self)

    def stop_all(self, timeout: float = 0.0) -> None:
        """Stop every session's thread (within one D update); wait up to ``timeout`` s
        for each when asked."""
        with self.lock:
            sessions = list(self.sessions)
        for session in sessions:
            session.stop()
        for session in sessions:
            if timeout:
                session.close(timeout)


def create_app(
    runs_dir: str | Path = "runs",
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
):
    """The lab's Starlette app as served on ``host:port`` (the Host and Origin it accepts);
    saved sessions go to ``runs_dir``. ``app.state.token`` is the WebSocket's token (a
    new random one unless given) and ``app.state.url`` the page's address with it."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, PlainTextResponse
    from starlette.routing import Route, WebSocketRoute

    token = token or secrets.token_urlsafe(32)
    guard = Guard(host, port, token)
    lab = LabState(Path(runs_dir))
    exposed = None if host in LOCAL_HOSTS else host
    html = page(asdict(Settings()), exposed)
    # no framing by other pages, no token in a Referer, no copy of the page in caches
    page_headers = {
        "Content-Security-Policy": "frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }

    async def index(request) -> HTMLResponse | PlainTextResponse:
        reason = guard.refusal(request.headers, request.query_params, websocket=False)
        if reason is not None:
            return PlainTextResponse(f"gankit lab refused this request: {reason}\n", 403)
        return HTMLResponse(html, headers=page_headers)

    async def socket(websocket) -> None:
        reason = guard.refusal(websocket.headers, websocket.query_params, websocket=True)
        if reason is not None:  # before accepting: the handshake fails with a 403
            await websocket.close(code=POLICY_VIOLATION, reason=reason)
            return
        await websocket.accept()
        tab = lab.admit()
        if tab is None:
            message = f"the lab already runs {MAX_SESSIONS} sessions; close a tab and reload"
            await websocket.send_json({"type": "error", "message": message})
            await websocket.close()
            return
        try:
            await Connection(websocket, lab, tab).serve()
        finally:
            tab.release()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        lab.stop_all()  # the server is going: no thread goes on training

    shown_host = "localhost" if not exposed else (f"[{host}]" if ":" in host else host)
    app = Starlette(routes=[Route("/", index), WebSocketRoute("/ws", socket)], lifespan=lifespan)
    app.state.token, app.state.lab = token, lab
    app.state.url = f"http://{shown_host}:{port}/?token={token}"
    return app


class Connection:
    """One tab: its session, and the queue of messages going to its page."""

    def __init__(self, websocket, lab: LabState, tab: Tab) -> None:
        self.websocket, self.lab, self.tab = websocket, lab, tab
        self.session: Session | None = None
        self.saves = 0
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.loop = asyncio.get_running_loop()

    def emit(self, message: dict[str, Any]) -> None:
        """Called from the training thread: queue a message for the page."""
        # RuntimeError: the tab has gone and its event loop with it, nobody to tell
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._queue, message)

    def _queue(self, message: dict[str, Any]) -> None:
        if message.get("type") == "frame" and self.outbox.qsize() >= MAX_QUEUED_FRAMES:
            return
        self.outbox.put_nowait(message)

    def error(self, text: str) -> None:
        self.outbox.put_nowait({"type": "error", "message": text})

    async def serve(self) -> None:
        sender = asyncio.create_task(self._send())
        try:
            await self._replace(Settings())
            while True:
                received = await self.websocket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                try:
                    await self._handle(parse(received))
                except GankitError as err:
                    self.error(str(err))
                except Exception as err:  # a bug, not the page's fault: the tab goes on
                    self.error(f"internal error: {type(err).__name__}: {shown(str(err), 200)}")
        finally:
            # Never awaiting the thread: it ends within one D update, and the tab's slot
            # stays held until it has (Tab). When the server cancels this task (shutdown)
            # any await here raises at once; stop() before it is what must not be missed.
            if self.session is not None:
                self.session.stop()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send(self) -> None:
        while True:
            message = await self.outbox.get()
            await self.websocket.send_text(strict_json(message))

    async def _replace(self, settings: Settings) -> None:
        """A new session with ``settings``; the old one is kept when they are refused."""
        session = await asyncio.to_thread(Session, settings, self.emit)
        old, self.session = self.session, session
        if old is not None:
            await asyncio.to_thread(old.close)
        self.outbox.put_nowait(session.setup())
        self.tab.hold()
        with self.lab.lock:
            self.lab.sessions.add(session)
        session.open(on_exit=lambda: self._ended(session))

    def _ended(self, session: Session) -> None:
        """Called by a session's thread as it ends."""
        with self.lab.lock:
            self.lab.sessions.discard(session)
        self.tab.release()

    async def _handle(self, message: dict[str, Any]) -> None:
        kind, session = message["type"], self.session
        if kind == "configure":
            await self._replace(Settings.from_message(message))
        elif kind == "reset":
            await self._replace(session.settings)
        elif kind == "start":
            session.start()
        elif kind == "pause":
            session.pause()
        elif kind == "step":
            session.advance(check_whole("steps", message.get("steps", 1), 1, MAX_STEP_COMMAND))
        elif kind == "save":
            await self._save(message.get("name"))

    async def _save(self, name: Any) -> None:
        """Save the session as a new run: ``name``, or (none given) one made of the current
        settings and the time. Never over an existing run; at most MAX_SAVES_PER_TAB per
        tab and MAX_SAVES per launch."""
        if name in (None, ""):
            name = self.default_name()
        elif not isinstance(name, str):
            raise GankitError(f"a run name is text, got {shown(name)}")
        check_run_name(name)
        with self.lab.lock:
            if self.saves >= MAX_SAVES_PER_TAB or self.lab.saves >= MAX_SAVES:
                raise GankitError(
                    f"no more saves: a tab saves at most {MAX_SAVES_PER_TAB} runs and the lab "
                    f"{MAX_SAVES}; restart gankit lab to save more"
                )
            self.saves += 1  # counted before the save: two at once cannot pass the cap
            self.lab.saves += 1
        try:
            path = await asyncio.to_thread(self.session.save, self.lab.runs_dir, name)
        except BaseException:
            with self.lab.lock:
                self.saves -= 1
                self.lab.saves -= 1
            raise
        self.outbox.put_nowait({"type": "saved", "path": str(path), "name": name})

    def default_name(self) -> str:
        """``lab-TARGET-LOSS-DATE-TIME`` of the session now (so it follows the settings),
        with ``-2``, ``-3``, ... when a run of that name exists."""
        base = f"{self.session.config['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
        name, n = base, 1
        while (self.lab.runs_dir / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name


#: JSON strings, whose brackets are not nesting.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def nesting(text: str) -> int:
    """How deep the brackets of the JSON ``text`` nest, counted without recursion."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: Python reads it as inf
        raise ValueError(f"{shown(text)} is past a float's range")
    return value


def parse(received: dict[str, Any]) -> dict[str, Any]:
    """A command from the page (an ASGI ``websocket.receive`` message): JSON text of
    bounded size and depth, an object with a known ``type``.

    Raises:
        GankitError: anything else, named.
    """
    text = received.get("text")
    if text is None:
        raise GankitError("malformed message: a binary frame; commands are JSON text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise GankitError(
            f"malformed message: {len(text)} characters; commands have at most {MAX_MESSAGE_CHARS}"
        )
    depth = nesting(text)
    if depth > MAX_DEPTH:
        raise GankitError(f"malformed message: nested {depth} deep; at most {MAX_DEPTH}")
    try:
        message = json.loads(text, parse_constant=_no_constants, parse_float=_finite_float)
    except ValueError as err:  # not JSON, NaN, or an integer past Python's 4,300 digits
        reason = err.msg if isinstance(err, json.JSONDecodeError) else str(err).split(";")[0]
        raise GankitError(f"malformed message: not JSON ({shown(reason, 120)})") from None
    if not isinstance(message, dict):
        raise GankitError(
            f"malformed message: a JSON object is expected, got {type(message).__name__}"
        )
    if message.get("type") not in COMMANDS:
        raise GankitError(
            f"unknown message type {shown(message.get('type'))}; valid: {choices(COMMANDS)}"
        )
    return message


def strict_json(message: dict[str, Any]) -> str:
    """``message`` as strict JSON: a non-finite float (a diverged model's output) is sent
    as null, never as ``NaN`` or ``Infinity``, which JSON.parse refuses."""
    try:
        return json.dumps(message, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def check_free(host: str, port: int) -> None:
    """Refuse an address this machine cannot listen on (a port in use, a foreign address)
    with one line, before the server starts.

    Raises:
        GankitError: naming the address and the reason.
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise GankitError(f"--host '{host}' is no address here ({err.strerror})") from None
    family, kind, _, _, address = infos[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise GankitError(
                f"cannot listen on {host}:{port} ({err.strerror}); pass another --port"
            ) from None


def serve(host: str = "127.0.0.1", port: int = 8765, runs_dir: str | Path = "runs") -> None:
    """Serve the lab until Ctrl-C or SIGTERM. Another address than this machine's is
    allowed with a warning: the token is then the only lock, and it travels unencrypted."""
    import uvicorn

    from gankit.errors import check_int
    from gankit.nn import torch_threads

    check_int("--port", port, 1, 65535)
    check_free(host, port)
    if host not in LOCAL_HOSTS:
        warn(
            f"gankit lab listens on {host}: anyone who can reach this machine on port {port} "
            "and sees the URL's token can use the lab and make it train (plain HTTP)"
        )
    app = create_app(runs_dir, host, port)
    print(f"gankit lab: {app.state.url} (Ctrl-C stops it)", flush=True)
    # one thread per session: toy networks are far too small to share a step between threads
    with torch_threads(1):
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning", ws_max_size=MAX_FRAME_BYTES)
        finally:
            # every thread was told to stop; let each leave its D update before exiting
            app.state.lab.stop_all(timeout=5.0)


__all__ = ["create_app", "serve"]
