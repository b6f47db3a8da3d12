"""``gankit lab``: the server, its sessions and its messages, through starlette's
TestClient (no browser; test_browser.py drives the page in Chromium)."""

from __future__ import annotations

import socket
import time

import pytest
import torch
from starlette.testclient import TestClient

import gankit
from conftest import cli, one_line_error
from gankit.lab import MAX_SESSIONS, create_app
from gankit.nn import torch_threads
from gankit.training.run import build

#: Small networks: the server's behaviour, not the quality of what it trains.
SMALL = {"width": 32, "depth": 2, "batch_size": 64}
#: The address the test apps are made for: what a browser on the lab's page sends as
#: Host and Origin.
HOST, PORT = "127.0.0.1", 8765
ORIGIN = f"http://{HOST}:{PORT}"


class LabClient(TestClient):
    """A TestClient that speaks as the lab's own page: its Host, its Origin, the token."""

    def __init__(self, app, **kwargs) -> None:
        super().__init__(app, base_url=ORIGIN, **kwargs)
        self.token = app.state.token

    def websocket_connect(self, url: str = "/ws", headers=None, token: str | None = None, **kw):
        token = self.token if token is None else token
        headers = {"origin": ORIGIN} if headers is None else headers
        separator = "&" if "?" in url else "?"
        address = f"ws://{HOST}:{PORT}{url}{separator}token={token}"
        return super().websocket_connect(address, headers=headers, **kw)

    def page(self, **kwargs):
        return self.get(f"/?token={self.token}", **kwargs)


def lab_app(runs_dir, **kwargs):
    return create_app(runs_dir, HOST, PORT, **kwargs)


@pytest.fixture
def client(tmp_path):
    yield from serving(tmp_path / "runs")


def serving(runs_dir):
    """A client of a lab saving to ``runs_dir``; at the end, no session thread is left."""
    # as gankit lab serves: one thread per session
    with torch_threads(1), LabClient(lab_app(runs_dir)) as client:
        yield client
    # a closed tab stops its session's thread: none may go on training (and drawing from
    # torch's global random stream) once the client has gone
    deadline = time.monotonic() + 10
    while lab_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not lab_threads(), "a lab session's thread outlived its tab"


def lab_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name == "gankit-lab" and t.is_alive()]


def receive(ws, kind: str, limit: int = 400) -> dict:
    """The next message of ``kind``, skipping frames and others on the way."""
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no '{kind}' message in {limit}")


def connect(ws, **settings) -> dict:
    """The setup of a tab's session: its default one, or (``settings``) a configured one."""
    setup = receive(ws, "setup")
    if not settings:
        return setup
    ws.send_json({"type": "configure", **settings})
    return receive(ws, "setup")


def settle(ws) -> dict:
    """Pause and return the first frame that shows the session paused with nothing pending."""
    ws.send_json({"type": "pause"})
    while True:
        frame = receive(ws, "frame")
        if not frame["running"]:
            return frame


def test_the_page_has_the_controls_and_warns_when_exposed(tmp_path):
    local = LabClient(lab_app(tmp_path)).page().text
    for control in ('id="plane"', 'id="start"', 'id="pause"', 'id="reset"', 'id="lr-g"'):
        assert control in local
    assert "<script src" not in local and 'id="exposed"' not in local
    app = create_app(tmp_path, "0.0.0.0", PORT)
    exposed = TestClient(app).get(f"/?token={app.state.token}").text
    assert 'id="exposed"' in exposed and "listens on 0.0.0.0" in exposed


def test_training_on_the_ring_covers_modes_it_did_not_cover_at_first(client):
    with client.websocket_connect("/ws") as ws:
        setup = connect(ws)
        assert setup["n_modes"] == 8 and len(setup["real"]) == 1000
        first = receive(ws, "frame")
        assert first["step"] == 0 and first["coverage"]["modes"] == 0  # G starts near 0
        ws.send_json({"type": "start"})
        deadline, best = time.monotonic() + 60, first
        while time.monotonic() < deadline and best["coverage"]["modes"] < 3:
            frame = receive(ws, "frame")
            if frame["coverage"]["modes"] > best["coverage"]["modes"]:
                best = frame
        assert best["coverage"]["modes"] >= 3, best["coverage"]
        assert best["fake"] != first["fake"] and best["field"]["values"] != first["field"]["values"]
        assert len(best["field"]["values"]) == 48 * 48 and len(best["arrows"]["push"]) == 15 * 15
        assert best["losses"] and {"loss_d", "loss_g"} <= set(best["losses"][-1])


def test_pause_step_and_reset(client):
    with client.websocket_connect("/ws") as ws:
        connect(ws, **SMALL)
        ws.send_json({"type": "start"})
        while receive(ws, "frame")["step"] == 0:
            pass
        paused = settle(ws)
        ws.send_json({"type": "step", "steps": 7})
        stepped = receive(ws, "frame")
        while stepped["step"] < paused["step"] + 7:
            stepped = receive(ws, "frame")
        assert stepped["step"] == paused["step"] + 7 and not stepped["running"]
        ws.send_json({"type": "reset"})
        receive(ws, "setup")
        assert receive(ws, "frame")["step"] == 0


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ('{"type": "configure", "lr_g": -0.001}', "lr_g must be a finite number > 0"),
        ('{"type": "configure", "lr_d": 0}', "lr_d must be a finite number > 0"),
        ('{"type": "configure", "loss": "nope"}', "unknown loss 'nope'; valid:"),
        ('{"type": "configure", "target": "moon"}', "unknown target 'moon'"),
        ('{"type": "configure", "width": "wide"}', "width must be a whole number"),
        ('{"type": "configure", "colour": 3}', "unknown setting 'colour'"),
        ('{"type": "configure", "target": "points"}', "needs points"),
        ('{"type": "configure", "n_critic": 0}', "n_critic"),
        ('{"type": "step", "steps": "x"}', "steps must be a whole number"),
        ('{"type": "launch"}', "unknown message type 'launch'"),
        ("[1, 2]", "a JSON object is expected"),
        ("{nope", "malformed message: not JSON"),
    ],
)
def test_bad_input_is_an_error_in_the_page_and_the_session_goes_on(client, message, words):
    with client.websocket_connect("/ws") as ws:
        setup = connect(ws, **SMALL)
        ws.send_text(message)
        assert words in receive(ws, "error")["message"]
        ws.send_json({"type": "step", "steps": 3})  # the same session still trains
        frame = receive(ws, "frame")
        while frame["step"] < 3:
            frame = receive(ws, "frame")
        assert frame["step"] == 3
    with client.websocket_connect("/ws") as ws:  # and the server still serves
        assert receive(ws, "setup")["settings"]["width"] == 128 != setup["settings"]["width"]


def test_tabs_have_their_own_sessions(client):
    with client.websocket_connect("/ws") as one, client.websocket_connect("/ws") as two:
        assert connect(one, **SMALL, target="grid")["config"]["data"]["name"] == "grid"
        assert (
            connect(two, **SMALL, target="moons", loss="hinge")["config"]["model"]["name"]
            == "hinge"
        )
        one.send_json({"type": "step", "steps": 5})
        frame = receive(one, "frame")
        while frame["step"] < 5:
            frame = receive(one, "frame")
        assert settle(two)["step"] == 0  # the other tab did not move
        assert "coverage" not in settle(two)  # moons have no modes


def test_too_many_tabs_are_refused_politely(client):
    sockets = [client.websocket_connect("/ws") for _ in range(MAX_SESSIONS)]
    opened = [s.__enter__() for s in sockets]
    try:
        for ws in opened:
            receive(ws, "setup")
        with client.websocket_connect("/ws") as extra:
            assert "already runs" in receive(extra, "error")["message"]
    finally:
        for s in sockets:
            s.__exit__(None, None, None)


def test_clicked_points_are_the_target(client):
    with client.websocket_connect("/ws") as ws:
        points = [[0.0, 0.0], [1.0, 0.5], [-1.0, 0.5]]
        setup = connect(ws, **SMALL, target="points", points=points)
        assert setup["n_modes"] == 3 and setup["config"]["data"]["centres"] == points


def test_a_saved_session_is_a_run_that_gankit_loads(client, tmp_path):
    with client.websocket_connect("/ws") as ws:
        connect(ws, **SMALL, loss="wgan_gp", n_critic=2)
        ws.send_json({"type": "step", "steps": 12})
        frame = receive(ws, "frame")
        while frame["step"] < 12:
            frame = receive(ws, "frame")
        ws.send_json({"type": "save", "name": "from-lab"})
        saved = receive(ws, "saved")
        ws.send_json({"type": "save", "name": "from-lab"})
        assert "already exists" in receive(ws, "error")["message"]
        ws.send_json({"type": "save", "name": "../out"})
        assert "not a folder name" in receive(ws, "error")["message"]
    run = gankit.load_run(saved["path"])
    assert run.step == 12 and run.config["model"]["name"] == "wgan_gp"
    assert run.config["train"]["steps"] == 12 and run.model.n_critic == 2
    # the checkpoint holds the trained weights: build() from the same config and seed
    # gives the weights the session started from
    initial, _ = build(run.config)
    trained = run.model.state_dict()
    assert any(not torch.equal(v, initial.state_dict()[k]) for k, v in trained.items())
    assert run.sample(5).shape == (5, 2)
    files = {p.name for p in (tmp_path / "runs" / "from-lab").iterdir()}
    assert {"config.yaml", "metrics.jsonl", "samples", "snapshots", "loss_curves.png"} <= files


def test_serve_warns_about_another_address(monkeypatch, capsys):
    import uvicorn

    from gankit.lab import serve

    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    serve("0.0.0.0", port)
    assert calls[0]["host"] == "0.0.0.0" and calls[0]["port"] == port
    out = capsys.readouterr()
    assert "anyone who can reach this machine" in out.err
    assert f"http://0.0.0.0:{port}/?token=" in out.out
    serve(port=port)
    assert calls[-1]["host"] == "127.0.0.1"
    out = capsys.readouterr()
    assert "anyone" not in out.err and f"http://localhost:{port}/?token=" in out.out


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(cli("lab", "--port", port, "--runs-dir", tmp_path), f"127.0.0.1:{port}")
    one_line_error(cli("lab", "--port", 0), "--port must be an integer in [1, 65535]")
