"""Hysteresis of state changes and webhook delivery (to a loopback receiver)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from conftest_helpers import make_run  # type: ignore[import-not-found]

from diag.monitor import alerts
from diag.monitor.store import Store

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)


def feed(store: Store, seq: list[str], confirm: int = 2) -> list[list[alerts.Change]]:
    out = []
    for i, state in enumerate(seq):
        run = make_run({"cam1": state}, T0 + i * STEP)  # type: ignore[dict-item]
        out.append(
            alerts.update(store, {"cam1": alerts.observed(run)["cam1"]}, run.started_at, confirm)
        )
    return out


def test_first_sight_online_is_silent_offline_is_news(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as s:
        assert feed(s, ["online"]) == [[]]
    with Store(tmp_path / "b.sqlite") as s:
        ((c,),) = feed(s, ["offline"])
        assert c.old is None and c.new == "offline" and c.cause == "device-no-power"


def test_change_needs_confirmation(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as s:
        res = feed(s, ["online", "offline", "offline", "offline", "online", "online"])
        assert [len(r) for r in res] == [0, 0, 1, 0, 0, 1]
        assert (res[2][0].old, res[2][0].new) == ("online", "offline")
        assert (res[5][0].old, res[5][0].new) == ("offline", "online")


def test_flapping_link_raises_no_alert_storm(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as s:
        res = feed(s, ["online"] + ["offline", "online"] * 10)
        assert all(r == [] for r in res)


def test_hysteresis_survives_process_restarts(tmp_path: Path) -> None:
    p = tmp_path / "h.sqlite"
    for i, state in enumerate(["online", "offline"]):
        with Store(p) as s:
            run = make_run({"cam1": state}, T0 + i * STEP)  # type: ignore[dict-item]
            assert alerts.update(s, alerts.observed(run), run.started_at) == []
    with Store(p) as s:
        run = make_run({"cam1": "offline"}, T0 + 2 * STEP)
        changes = alerts.update(s, alerts.observed(run), run.started_at)
        assert {c.key for c in changes} == {"cam1"}  # the link itself never went down


def test_revert_makes_the_next_run_retry(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as s:
        res = feed(s, ["online", "offline", "offline"])
        alerts.revert(s, res[2])
        # the confirmed state is back to online: the next offline sample re-confirms at once
        again = feed(s, ["offline"])
        assert len(again[0]) == 1


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).got.append((dict(self.headers), body))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.got = []
    _Receiver.fail_first = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()


CHANGES = [alerts.Change("Gate <cam>", "online", "offline", T0, "device-no-power")]


def test_generic_payload(receiver: str) -> None:
    assert alerts.deliver(receiver, "generic", "Site A", CHANGES, "en") is None
    _headers, body = _Receiver.got[0]
    data = json.loads(body)
    assert data["site"] == "Site A"
    assert data["changes"][0]["device"] == "Gate <cam>"
    assert data["changes"][0]["new"] == "offline"
    assert "online → offline" in data["changes"][0]["text"]


def test_ntfy_payload_in_polish(receiver: str) -> None:
    assert alerts.deliver(receiver, "ntfy", "Site A", CHANGES, "pl") is None
    headers, body = _Receiver.got[0]
    assert headers["Priority"] == "urgent"
    assert "Gate <cam>" in body.decode()
    assert "offline" not in body.decode()  # the state words are Polish


def test_slack_payload(receiver: str) -> None:
    assert alerts.deliver(receiver, "slack", "Site A", CHANGES, "en") is None
    data = json.loads(_Receiver.got[0][1])
    assert set(data) == {"text"} and "Gate <cam>" in data["text"]


def test_retries_then_succeeds(receiver: str) -> None:
    _Receiver.fail_first = 2
    assert alerts.deliver(receiver, "generic", "S", CHANGES, "en") is None
    assert len(_Receiver.got) == 3


def test_gives_up_with_a_reason(receiver: str) -> None:
    _Receiver.fail_first = 10
    assert alerts.deliver(receiver, "generic", "S", CHANGES, "en") == "HTTP 503"


def test_guess_format() -> None:
    assert alerts.guess_format("https://hooks.slack.com/services/x") == "slack"
    assert alerts.guess_format("https://ntfy.sh/mysite") == "ntfy"
    assert alerts.guess_format("https://example.invalid/hook") == "generic"
