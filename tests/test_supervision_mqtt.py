"""Supervision end to end: Last Will, heartbeat silence and restarts, through a real broker."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

import pytest
from mqtt_helpers import Device, Listener

pytestmark = pytest.mark.integration

ALERTS = "hallwatch/demo/alerts"
# The engine's clock runs 20x faster: a camera heartbeat timeout of 30 s is 1.5 s here.
SPEED = 20.0


def alerts_for(listener: Listener, device: str, kind: str) -> list[dict]:
    return [a for a in listener.on(ALERTS) if a["device"] == device and a["kind"] == kind]


def wait_alert(listener: Listener, device: str, kind: str, state: str = "firing", timeout: float = 15.0) -> dict:
    def found(_messages):
        hits = [a for a in alerts_for(listener, device, kind) if a["state"] == state]
        return hits[-1] if hits else None

    return listener.wait_for(found, timeout)


def camera_with_will(port: int, device: str = "cam-w01") -> subprocess.Popen:
    """A camera client whose connection dies without DISCONNECT when killed: its Last Will
    (offline, lost) is then published by the broker."""
    topic = f"hallwatch/demo/dev/{device}/status"
    proc = subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-i",
            device,
            "-t",
            f"hallwatch/demo/dev/{device}/reply",
            "-q",
            "1",
            "--will-topic",
            topic,
            "--will-payload",
            '{"v":1,"state":"offline","reason":"lost"}',
            "--will-qos",
            "1",
            "--will-retain",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-r",
            "-t",
            topic,
            "-m",
            '{"v":1,"state":"online","kind":"camera","window":"w01","fw":"1.0"}',
        ],
        check=True,
    )
    return proc


@pytest.fixture
def fast_engine(engine_factory):
    return engine_factory(speed=SPEED).start()


def test_a_camera_killed_without_disconnecting_raises_device_offline(broker, fast_engine):
    alerts = Listener(broker.port, ALERTS)
    camera = camera_with_will(broker.port)
    panel = Device(broker.port, "panel-w01")
    try:
        assert panel.request("staff.login", staff="s001")["ok"]
        states = Listener(broker.port, "hallwatch/demo/window/w01/state")
        camera.send_signal(signal.SIGKILL)
        camera.wait()
        alert = wait_alert(alerts, "cam-w01", "device_offline")
        assert alert["severity"] == "critical"  # a supervision camera
        assert alert["detail"]["reason"] == "lost"
        assert alert["window"] == "w01"
        assert alert["staff"] == "s001"  # who was on duty at the camera's window
        assert alert["since"].startswith("2026-11-25T09:")
        # Its window cannot be verified while the camera is off.
        states.wait_for(lambda msgs: any(json.loads(p).get("staffing") == "unverified" for _, p, _, _ in msgs))
        states.close()
    finally:
        alerts.close()
        panel.close()
        if camera.poll() is None:
            camera.kill()


def test_a_device_that_stops_heartbeating_is_offline_after_its_timeout(broker, fast_engine):
    alerts = Listener(broker.port, ALERTS)
    camera = Device(broker.port, "cam-w02")
    try:
        camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": "w02"}), channel="status")
        for seq in range(3):
            camera.client.publish(camera.topic("heartbeat"), json.dumps({"v": 1, "seq": seq, "video": "ok"}))
            time.sleep(0.2)
        assert not [a for a in alerts_for(alerts, "cam-w02", "device_offline") if a["detail"]["reason"] == "silent"]
        alert = wait_alert(alerts, "cam-w02", "device_offline")  # silence: 3 x 10 s of engine time
        assert alert["detail"]["reason"] == "silent"
        # Heartbeats again: the alert resolves once the camera has been back for clear_after_s.
        for seq in range(3, 40):
            camera.client.publish(camera.topic("heartbeat"), json.dumps({"v": 1, "seq": seq, "video": "ok"}))
            time.sleep(0.1)
            if [a for a in alerts_for(alerts, "cam-w02", "device_offline") if a["state"] == "resolved"]:
                break
        resolved = wait_alert(alerts, "cam-w02", "device_offline", state="resolved")
        assert resolved["id"] == alert["id"] and resolved["duration_s"] > 0
    finally:
        alerts.close()
        camera.close()


def test_a_restarted_engine_keeps_open_alerts_open_and_does_not_fire_them_twice(broker, engine_factory):
    engine = engine_factory(speed=SPEED).start()
    alerts = Listener(broker.port, ALERTS)
    camera = camera_with_will(broker.port, "cam-w03")
    try:
        camera.send_signal(signal.SIGKILL)
        camera.wait()
        first = wait_alert(alerts, "cam-w03", "device_offline")
        assert engine.stop() == 0
        engine.start()
        assert "open alerts" in engine.log_text()
        time.sleep(1.0)  # the retained Last Will is delivered to the engine again on subscribe
        fired = [a for a in alerts_for(alerts, "cam-w03", "device_offline") if a["state"] == "firing"]
        assert [a["id"] for a in fired] == [first["id"]]
        with sqlite3.connect(engine.db) as db:
            rows = db.execute("select id, state from alerts where device = 'cam-w03' and kind = 'device_offline'")
            assert rows.fetchall() == [(first["id"], "firing")]
    finally:
        alerts.close()
        if camera.poll() is None:
            camera.kill()


def test_refused_messages_from_a_device_raise_unauthorized(broker, fast_engine):
    alerts = Listener(broker.port, ALERTS)
    intruder = Device(broker.port, "laptop-7")
    try:
        for n in range(5):
            intruder.raw(json.dumps({"v": 1, "id": f"x{n}", "type": "call.next"}))
        alert = wait_alert(alerts, "laptop-7", "unauthorized")
        assert alert["severity"] == "critical"
        assert alert["detail"]["refusals"] == 5 and alert["detail"]["configured"] is False
    finally:
        alerts.close()
        intruder.close()
