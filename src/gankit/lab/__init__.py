"""``gankit lab``: watch a GAN learn, live, and change its knobs, in a browser.

A Starlette app served by uvicorn. The page (:mod:`gankit.lab.page`) talks to the
server over one WebSocket, ``/ws``: it sends commands as JSON (``configure``,
``start``, ``pause``, ``step``, ``reset``, ``save``) and receives a ``setup`` message per
model, then frames several times a second while it trains (:mod:`gankit.lab.session`).

Sessions are per tab: each WebSocket connection gets its own model, data and training
thread, and closing the tab stops them. Tabs share nothing, so nothing one does can
corrupt another; :data:`MAX_SESSIONS` bounds how many train at once.

A bad setting (a learning rate <= 0, an unknown loss), a malformed message or a
diverged model is answered with an ``error`` message shown in the page; the session
keeps its last good model, and the server keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gankit.errors import GankitError, choices, warn
from gankit.lab.page import page
from gankit.lab.session import Session, Settings

#: The most sessions (tabs) training at once: each holds a model and a thread.
MAX_SESSIONS = 4
#: Frames waiting for a slow page beyond this are dropped (the next one replaces them).
MAX_QUEUED_FRAMES = 4
#: Addresses that only this machine can reach.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
COMMANDS = ("configure", "start", "pause", "step", "reset", "save")


def create_app(runs_dir: str | Path = "runs", exposed_host: str | None = None):
    """The lab's Starlette app; saved sessions go to ``runs_dir``."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route, WebSocketRoute

    sessions = {"count": 0}
    count_lock = threading.Lock()
    html = page(asdict(Settings()), exposed_host)

    async def index(request) -> HTMLResponse:
        return HTMLResponse(html)

    async def socket(websocket) -> None:
        await websocket.accept()
        with count_lock:
            full = sessions["count"] >= MAX_SESSIONS
            if not full:
                sessions["count"] += 1
        if full:
            message = f"the lab already runs {MAX_SESSIONS} sessions; close a tab and reload"
            await websocket.send_json({"type": "error", "message": message})
            await websocket.close()
            return
        try:
            await Connection(websocket, Path(runs_dir)).serve()
        finally:
            with count_lock:
                sessions["count"] -= 1

    return Starlette(routes=[Route("/", index), WebSocketRoute("/ws", socket)])


class Connection:
    """One tab: its session, and the queue of messages going to its page."""

    def __init__(self, websocket, runs_dir: Path) -> None:
        self.websocket, self.runs_dir = websocket, runs_dir
        self.session: Session | None = None
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

    async def serve(self) -> None:
        from starlette.websockets import WebSocketDisconnect

        sender = asyncio.create_task(self._send())
        try:
            await self._replace(Settings())
            while True:
                text = await self.websocket.receive_text()
                try:
                    await self._handle(parse(text))
                except GankitError as err:
                    self.outbox.put_nowait({"type": "error", "message": str(err)})
        except WebSocketDisconnect:
            pass
        finally:
            # First, without awaiting: when the server cancels this task (a tab closed
            # under shutdown), any await below raises at once, and a session that was
            # only closed after one would go on training in its thread.
            if self.session is not None:
                self.session.stop()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            if self.session is not None:
                await asyncio.to_thread(self.session.close)

    async def _send(self) -> None:
        while True:
            message = await self.outbox.get()
            await self.websocket.send_text(json.dumps(message))

    async def _replace(self, settings: Settings) -> None:
        """A new session with ``settings``; the old one is kept when they are refused."""
        session = await asyncio.to_thread(Session, settings, self.emit)
        old, self.session = self.session, session
        if old is not None:
            await asyncio.to_thread(old.close)
        self.outbox.put_nowait(session.setup())
        session.open()

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
            steps = message.get("steps", 1)
            if isinstance(steps, bool) or not isinstance(steps, int):
                raise GankitError(f"steps must be a whole number, got {steps!r}")
            session.advance(steps)
        elif kind == "save":
            name = (
                message.get("name") or f"{session.config['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
            )
            if not isinstance(name, str):
                raise GankitError(f"a run name is text, got {name!r}")
            path = await asyncio.to_thread(session.save, self.runs_dir, name)
            self.outbox.put_nowait({"type": "saved", "path": str(path), "name": name})


def parse(text: str) -> dict[str, Any]:
    """A command from the page: a JSON object with a known ``type``.

    Raises:
        GankitError: anything else, named.
    """
    try:
        message = json.loads(text)
    except json.JSONDecodeError as err:
        raise GankitError(f"malformed message: not JSON ({err.msg})") from None
    if not isinstance(message, dict):
        raise GankitError(
            f"malformed message: a JSON object is expected, got {type(message).__name__}"
        )
    if message.get("type") not in COMMANDS:
        raise GankitError(
            f"unknown message type {message.get('type')!r}; valid: {choices(COMMANDS)}"
        )
    return message


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
    """Serve the lab until Ctrl-C. Another address than this machine's is allowed with
    a warning: the lab has no login, and anyone who reaches it can make it train."""
    import uvicorn

    from gankit.errors import check_int
    from gankit.nn import torch_threads

    check_int("--port", port, 1, 65535)
    check_free(host, port)
    exposed = None if host in LOCAL_HOSTS else host
    if exposed:
        warn(
            f"gankit lab listens on {host}: anyone who can reach this machine on port {port} "
            "can use the lab and make it train (it has no login)"
        )
    print(f"gankit lab: http://{'localhost' if not exposed else host}:{port}/ (Ctrl-C stops it)")
    # one thread per session: toy networks are far too small to share a step between threads
    with torch_threads(1):
        uvicorn.run(create_app(runs_dir, exposed), host=host, port=port, log_level="warning")


__all__ = ["create_app", "serve"]
