"""The engine end to end: a real Mosquitto, the engine as a real process, a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import DEMO_SITE, ROOT, free_port
from mqtt_helpers import Device, Listener

pytestmark = pytest.mark.integration


@pytest.fixture
def kiosk(broker, engine):
    d = Device(broker.port, "kiosk-1")
    yield d
    d.close()


@pytest.fixture
def panel_w01(broker, engine):
    d = Device(broker.port, "panel-w01")
    yield d
    d.close()


@pytest.fixture
def panel_w02(broker, engine):
    d = Device(broker.port, "panel-w02")
    yield d
    d.close()


@pytest.fixture
def board(broker, engine):
    listener = Listener(
        broker.port,
        "hallwatch/demo/board/call",
        "hallwatch/demo/rejected",
        "hallwatch/demo/queue/state",
        "hallwatch/demo/window/+/state",
    )
    yield listener
    listener.close()


def test_kiosk_gets_a_ticket(kiosk):
    reply = kiosk.request("ticket.request", service="shebao")
    assert reply["ok"] is True
    ticket = reply["ticket"]
    assert ticket["no"] == "A001"
    assert ticket["service"] == "shebao"
    assert ticket["ahead"] == 0
    assert ticket["issued_at"].startswith("2026-11-25T09:00")  # the engine's (simulated) clock, local time
    assert ticket["issued_at"].endswith("+08:00")
    second = kiosk.request("ticket.request", service="shebao")
    assert second["ticket"]["no"] == "A002"
    assert second["ticket"]["ahead"] == 1
    other = kiosk.request("ticket.request", service="budongchan")
    assert other["ticket"]["no"] == "B001"


def test_unknown_service_is_refused_with_a_reason(kiosk):
    reply = kiosk.request("ticket.request", service="nosuch")
    assert reply["ok"] is False
    assert reply["error"] == "unknown_service"
    assert "nosuch" in reply["message"]


def test_panel_w02_calls_only_shebao_and_board_shows_each_call(kiosk, panel_w01, panel_w02, board):
    assert kiosk.request("ticket.request", service="budongchan")["ticket"]["no"] == "B001"
    assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
    assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A002"
    assert panel_w02.request("staff.login", staff="s001")["ok"]
    first = panel_w02.request("call.next")
    assert first == {"v": 1, "re": first["re"], "ok": True, "ticket": "A001"}  # B001 waited longer
    assert panel_w02.request("service.start")["ok"]
    assert panel_w02.request("service.finish", outcome="done")["ok"]
    assert panel_w02.request("call.next")["ticket"] == "A002"
    assert panel_w02.request("call.skip")["ok"]
    empty = panel_w02.request("call.next")
    assert (empty["ok"], empty["error"]) == (False, "queue_empty")  # B001 still waits, not for w02
    # The comprehensive window serves everything and picks up B001.
    assert panel_w01.request("staff.login", staff="s002")["ok"]
    assert panel_w01.request("call.next")["ticket"] == "B001"
    calls = board.wait_topic("hallwatch/demo/board/call", count=3)
    assert [(c["ticket"], c["window"], c["window_name"], c["recall"]) for c in calls] == [
        ("A001", "w02", "2号窗口", False),
        ("A002", "w02", "2号窗口", False),
        ("B001", "w01", "1号窗口", False),
    ]
    assert panel_w01.request("call.recall")["ok"]
    recall = board.wait_topic("hallwatch/demo/board/call", count=4)[-1]
    assert (recall["ticket"], recall["recall"]) == ("B001", True)
    states = board.wait_for(
        lambda msgs: [
            json.loads(p)
            for t, p, _, _ in msgs
            if t == "hallwatch/demo/window/w01/state" and json.loads(p)["state"] == "called"
        ]
    )
    assert states[-1]["ticket"] == "B001" and states[-1]["staff"] == "s002"


def test_the_same_event_delivered_twice_is_applied_once(kiosk, engine):
    event_id = kiosk.send("ticket.request", event_id="dup-1", service="shebao")
    first = kiosk.wait_reply(event_id)
    kiosk.send("ticket.request", event_id="dup-1", service="shebao")  # redelivered
    next_id = kiosk.send("ticket.request", service="shebao")
    assert kiosk.wait_reply(next_id)["ticket"]["no"] == "A002"  # not A003: the duplicate took no number
    repeated = [r for r in kiosk.reply_log if r["re"] == "dup-1"]
    assert len(repeated) == 2 and repeated[0] == repeated[1] == first
    with sqlite3.connect(engine.db) as db:
        assert db.execute("select count(*) from events where event_id = 'dup-1'").fetchone()[0] == 1
        assert db.execute("select count(*) from tickets").fetchone()[0] == 2


def test_bad_input_is_rejected_with_reasons_while_valid_traffic_continues(broker, kiosk, panel_w01, board):
    ghost = Device(broker.port, "ghost-9")
    camera = Device(broker.port, "cam-w01")
    try:
        kiosk.raw(b"{not json")
        valid_1 = kiosk.send("ticket.request", service="shebao")
        kiosk.raw(json.dumps({"v": 1, "id": "u1", "type": "ticket.teleport"}))
        kiosk.raw(json.dumps({"v": 1, "id": "m1", "type": "ticket.request"}))  # no service
        ghost.raw(json.dumps({"v": 1, "id": "g1", "type": "ticket.request", "service": "shebao"}))
        panel_w01.raw(json.dumps({"v": 1, "id": "w1", "type": "call.next", "window": "w02"}))
        camera.raw(json.dumps({"v": 1, "id": "c1", "type": "presence", "window": "w02", "present": True, "count": 1}))
        kiosk.raw(json.dumps({"v": 1, "id": "k1", "type": "call.next"}))  # a kiosk may not call
        kiosk.raw(json.dumps({"v": 1, "id": "b1", "type": "ticket.request", "service": "shebao", "priority": "vip"}))
        valid_2 = kiosk.send("ticket.request", service="shebao")
        rejected = board.wait_topic("hallwatch/demo/rejected", count=8)
        by_error = {(r["topic"].split("/")[3], r["error"]) for r in rejected}
        assert by_error == {
            ("kiosk-1", "bad_json"),
            ("kiosk-1", "unknown_type"),
            ("kiosk-1", "missing_field"),
            ("ghost-9", "unknown_device"),
            ("panel-w01", "wrong_window"),
            ("cam-w01", "wrong_window"),
            ("kiosk-1", "not_allowed"),
            ("kiosk-1", "bad_field"),
        }
        for r in rejected:
            assert r["v"] == 1 and r["reason"] and r["payload"]
        assert "service" in next(r for r in rejected if r["error"] == "missing_field")["reason"]
        assert "priority" in next(r for r in rejected if r["error"] == "bad_field")["reason"]
        assert kiosk.wait_reply(valid_1)["ticket"]["no"] == "A001"
        assert kiosk.wait_reply(valid_2)["ticket"]["no"] == "A002"
    finally:
        ghost.close()
        camera.close()


def test_refused_panel_events_change_nothing_and_say_why(kiosk, panel_w02):
    not_in = panel_w02.request("call.next")
    assert (not_in["error"], not_in["message"]) == ("not_logged_in", "本窗口尚未签到")
    assert panel_w02.request("staff.login", staff="nobody")["error"] == "unknown_staff"
    assert panel_w02.request("staff.login", staff="s001")["ok"]
    assert panel_w02.request("service.finish", outcome="done")["error"] == "no_current_ticket"
    kiosk.request("ticket.request", service="shebao")
    assert panel_w02.request("call.next")["ticket"] == "A001"
    assert panel_w02.request("service.finish", outcome="done")["error"] == "not_started"
    assert panel_w02.request("window.pause", reason="meal")["error"] == "busy"
    assert panel_w02.request("service.start")["ok"]
    assert panel_w02.request("service.finish", outcome="informed")["ok"]


def test_restart_restores_waiting_tickets_sequences_and_logins(broker, engine_factory):
    engine = engine_factory().start()
    kiosk, panel = Device(broker.port, "kiosk-1"), Device(broker.port, "panel-w02")
    try:
        for _ in range(3):
            kiosk.request("ticket.request", service="shebao")
        assert panel.request("staff.login", staff="s001")["ok"]
        assert panel.request("call.next")["ticket"] == "A001"
        assert engine.stop() == 0
        engine.start()
        assert "restored 3 tickets (2 waiting)" in engine.log_text()
        assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A004"
        assert panel.request("call.skip")["ok"]  # the login and the current ticket survived
        assert panel.request("call.next")["ticket"] == "A002"
    finally:
        kiosk.close()
        panel.close()


def test_transfer_keeps_the_place(kiosk, panel_w01, panel_w02):
    assert kiosk.request("ticket.request", service="budongchan")["ticket"]["no"] == "B001"
    assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
    assert panel_w01.request("staff.login", staff="s002")["ok"]
    assert panel_w01.request("call.next")["ticket"] == "B001"
    assert panel_w01.request("service.start")["ok"]
    # The citizen also needs social insurance: sent on to shebao, ahead of A001 who came later.
    assert panel_w01.request("ticket.transfer", to_service="shebao")["ok"]
    assert panel_w02.request("staff.login", staff="s001")["ok"]
    assert panel_w02.request("call.next")["ticket"] == "B001"
    assert panel_w02.request("call.skip")["ok"]
    assert panel_w02.request("call.next")["ticket"] == "A001"


def run_cli(*args, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


def test_engine_with_a_bad_config_exits_2_naming_file_field_and_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(DEMO_SITE.read_text(encoding="utf-8").replace('id = "w02"', 'id = "W 02"', 1), encoding="utf-8")
    result = run_cli("engine", "--config", str(bad), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2
    assert f"{bad}: windows[1].id:" in result.stderr
    assert "should match pattern" in result.stderr


def test_engine_with_an_unreachable_broker_exits_3(tmp_path):
    port = free_port()  # nothing listens there
    result = run_cli(
        "engine",
        "--config",
        str(DEMO_SITE),
        "--db",
        str(tmp_path / "x.db"),
        "--broker",
        f"mqtt://127.0.0.1:{port}",
        "--connect-timeout",
        "1",
    )
    assert result.returncode == 3
    assert f"cannot reach broker mqtt://127.0.0.1:{port}" in result.stderr


def test_engine_with_a_malformed_broker_url_exits_2(tmp_path):
    result = run_cli("engine", "--config", str(DEMO_SITE), "--db", str(tmp_path / "x.db"), "--broker", "http://x")
    assert result.returncode == 2
    assert "scheme must be mqtt:// or mqtts://" in result.stderr


def test_check_config_command():
    ok = run_cli("check-config", "--lang", "en", str(DEMO_SITE))
    assert ok.returncode == 0 and "ok: site demo" in ok.stdout
