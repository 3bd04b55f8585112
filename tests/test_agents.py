"""The device agents against a real Mosquitto and a real engine process (the demo site, its
clock at 09:00 of a working day). Agents run as real ``hallwatch agent`` processes where a
person or a script would run them, and in-process where the device base itself is under
test."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError
from conftest import DEMO_SITE, ROOT, Broker, EngineProcess, free_port, wait_for_port, wait_until
from deploy_helpers import broker_config, make_certs, production_broker
from mqtt_helpers import Device as PahoDevice
from mqtt_helpers import Listener

from queue_engine.config import load_site
from queue_engine.core.errors import MESSAGES, ErrorCode
from queue_engine.privacy import citizen_key
from queue_engine.shells.mqtt import BrokerSettings, parse_broker_url
from window_agents import camera, kiosk, pad, panel
from window_agents.device import BrokerUnreachable, Device, DeviceSettings, NoReply, _refused

SITE = load_site(DEMO_SITE)
integration = pytest.mark.integration  # needs the mosquitto binary
DEV = "hallwatch/demo/dev"


# -- helpers -----------------------------------------------------------------------------
def agent_command(kind: str, broker: Broker | str, *args: str) -> list[str]:
    url = broker if isinstance(broker, str) else broker.url
    return [sys.executable, "-m", "queue_engine.cli", "agent", kind, "--config", str(DEMO_SITE), "--broker", url, *args]


CITIZEN_SECRET = bytes(range(32))  # a panel's citizen key (privacy.citizen_secret)


def run_agent(
    kind: str, broker: Broker | str, *args: str, stdin: str = "", timeout: float = 30, env: dict | None = None
):
    return subprocess.run(
        agent_command(kind, broker, *args),
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def spawn(broker):
    """Start long-running agents; whatever is still running at the end is killed."""
    procs: list[subprocess.Popen] = []

    def start(kind: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            agent_command(kind, broker, *args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def decoded(messages, topic: str) -> list[dict]:
    return [json.loads(p) for t, p, _, _ in messages if t == topic]


def wait_json(listener: Listener, topic: str, predicate=lambda body: True, timeout: float = 15.0) -> dict:
    """The first message on ``topic`` that satisfies ``predicate``."""
    return listener.wait_for(lambda msgs: next((b for b in decoded(msgs, topic) if predicate(b)), None), timeout)


def retained(port: int, topic: str) -> dict:
    """What a newcomer to ``topic`` is told (its retained message)."""
    listener = Listener(port, topic)
    try:
        return wait_json(listener, topic, timeout=5)
    finally:
        listener.close()


def settings(broker: Broker, device_id: str, **overrides) -> DeviceSettings:
    device = SITE.device(device_id)
    values = dict(
        site="demo",
        device_id=device_id,
        kind=device.kind.value,
        window=device.window,
        broker=parse_broker_url(broker.url),
        heartbeat_s=device.heartbeat_s,
    )
    values.update(overrides)
    return DeviceSettings(**values)


def online(body: dict) -> bool:
    return body["state"] == "online"


def db_rows(engine, sql: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(engine.db)) as db:
        return db.execute(sql, params).fetchall()


def serve_one(broker: Broker, service: str = "shebao", panel: str = "panel-w02", staff: str = "s002") -> str:
    """A visit served to the end by test-side devices: the ticket number."""
    kiosk, desk = PahoDevice(broker.port, "kiosk-1"), PahoDevice(broker.port, panel)
    try:
        number = kiosk.request("ticket.request", service=service)["ticket"]["no"]
        assert desk.request("staff.login", staff=staff)["ok"]
        assert desk.request("call.next")["ticket"] == number
        assert desk.request("service.start")["ok"]
        assert desk.request("service.finish", outcome="done")["ok"]
        return number
    finally:
        kiosk.close()
        desk.close()


# -- kiosk -------------------------------------------------------------------------------
@integration
def test_kiosk_takes_numbers_and_prints_the_slip(broker, engine):
    first = run_agent("kiosk", broker, "--device", "kiosk-1", "--take", "shebao")
    assert first.returncode == 0, first.stderr
    slip = first.stdout
    assert "内乡县赤眉镇行政审批服务中心" in slip and "排队凭条" in slip
    assert "号码：A001" in slip
    assert "事项：城乡居民基本养老保险参保登记及待遇领取" in slip
    assert "前面还有：0 人" in slip
    assert "取号时间：2026-11-25 09:00" in slip  # the engine's clock, in the hall's local time
    second = run_agent("kiosk", broker, "--device", "kiosk-1", "--take", "shebao")
    assert "号码：A002" in second.stdout and "前面还有：1 人" in second.stdout
    assert "预计等候：约" in second.stdout

    # At the kiosk's screen: the menu, a service by its number with a green channel, a bad
    # choice explained, then q.
    menu = run_agent("kiosk", broker, "--device", "kiosk-1", stdin="3 老年人\n99\n1\nq\n")
    assert menu.returncode == 0, menu.stderr
    out = menu.stdout
    assert "欢迎取号" in out and "1. 城乡居民基本养老保险参保登记及待遇领取（A）" in out
    assert "号码：C001" in out and "绿色通道：老年人" in out  # the 3rd service is yibao (C)
    assert "没有序号 99" in out
    assert "号码：A003" in out
    assert sorted(db_rows(engine, "select no, service, priority from tickets")) == [
        ("A001", "shebao", None),
        ("A002", "shebao", None),
        ("A003", "shebao", None),
        ("C001", "yibao", "elderly"),
    ]
    # Each run ended in order: the retained status says so.
    assert retained(broker.port, f"{DEV}/kiosk-1/status") == {"v": 1, "state": "offline", "reason": "shutdown"}


@integration
def test_kiosk_reports_a_refusal_and_a_bad_service(broker, engine):
    bad = run_agent("kiosk", broker, "--device", "kiosk-1", "--take", "nosuch")
    assert bad.returncode == 2 and "--take：站点 demo 没有业务 'nosuch'（可选：shebao, " in bad.stderr
    wrong_kind = run_agent("kiosk", broker, "--device", "panel-w01", "--take", "shebao")
    assert wrong_kind.returncode == 2
    assert "设备 'panel-w01' 是窗口叫号器（panel），不是取号机（kiosk）" in wrong_kind.stderr
    english = run_agent("kiosk", broker, "--device", "panel-w01", "--take", "shebao", "--lang", "en")
    assert english.returncode == 2 and "is a panel, not a kiosk" in english.stderr


@integration
def test_kiosk_checks_in_a_number_taken_with_a_phone(engine_factory, monkeypatch):
    """A phone's number is reserved (never called) until its citizen checks in at the hall:
    at the kiosk, by the six-digit code the phone shows; the kiosk then gives its slip."""
    monkeypatch.setenv("HALLWATCH_TICKET_SECRET", "a ticket secret of the test hall")
    port = free_port()
    engine = engine_factory(extra_args=["--http", f"127.0.0.1:{port}"]).start()
    wait_for_port(port)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/sites/demo/tickets",
        data=json.dumps({"service": "shebao", "phone": "13800138000"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        taken = json.load(answer)
    number, code = taken["ticket"]["no"], taken["ticket"]["check_in_code"]
    assert (taken["ticket"]["status"], len(code)) == ("reserved", 6)
    broker = engine.broker

    mistyped = run_agent("kiosk", broker, "--device", "kiosk-1", "--checkin", "1234567")
    assert mistyped.returncode == 2 and "six digits" in mistyped.stderr
    wrong = "000000" if code != "000000" else "111111"
    refused = run_agent("kiosk", broker, "--device", "kiosk-1", "--checkin", wrong)
    assert refused.returncode == 1 and "签到失败" in refused.stderr
    assert db_rows(engine, "select status from tickets where no = ?", number) == [("reserved",)]

    menu = run_agent("kiosk", broker, "--device", "kiosk-1", stdin=f"签到 12\n签到 {code}\nq\n")
    assert menu.returncode == 0, menu.stderr
    assert "签到码是六位数字" in menu.stdout
    assert f"号码：{number}" in menu.stdout and "排队凭条" in menu.stdout
    assert db_rows(engine, "select status from tickets where no = ?", number) == [("waiting",)]
    again = run_agent("kiosk", broker, "--device", "kiosk-1", "--checkin", code)
    assert again.returncode == 1  # checked in already: the code checks nothing in


# -- panel -------------------------------------------------------------------------------
@integration
def test_panel_logs_in_calls_and_finishes_a_ticket(broker, engine, spawn):
    assert run_agent("kiosk", broker, "--device", "kiosk-1", "--take", "shebao").returncode == 0
    board = Listener(broker.port, "hallwatch/demo/board/call", "hallwatch/demo/window/w02/state")
    try:
        result = run_agent("panel", broker, "--device", "panel-w02", stdin="l s002\nn\nr\nb\nf done\nq\n")
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        for line in ("签到成功：李建军（s002）", "已叫号：A001", "已重呼：A001", "开始办理：A001", "已办结：A001"):
            assert line in out
        # The screen follows the engine's window and queue states.
        assert "【2号窗口】 | 李建军（s002） | 办理中 | 当前号 A001" in out
        assert "今日已办 1 件 | 本窗口可办等候 0 人" in out
        calls = board.wait_topic("hallwatch/demo/board/call", count=2)
        assert [(c["ticket"], c["window"], c["recall"]) for c in calls] == [
            ("A001", "w02", False),
            ("A001", "w02", True),
        ]
        state = wait_json(board, "hallwatch/demo/window/w02/state", lambda s: s["served_today"] == 1)
        assert (state["state"], state["staff"], state["ticket"]) == ("idle", "s002", None)
    finally:
        board.close()
    assert db_rows(engine, "select status, window, staff from tickets where no = 'A001'") == [("done", "w02", "s002")]

    # A refused command is shown in Chinese, and a script sees the failure in the exit code.
    empty = run_agent("panel", broker, "--device", "panel-w02", stdin="n\np 吃饭\nu\nzz\n")
    assert empty.returncode == 1
    assert "操作失败：当前没有可叫的号" in empty.stdout
    assert "暂停服务：就餐" in empty.stdout and "恢复服务" in empty.stdout
    assert "不认识的按键“zz”" in empty.stdout


@integration
def test_an_agent_tells_every_refusal_in_the_engine_s_chinese_words(broker, engine):
    """The panel and the pad show the engine's reason for a refusal, the Chinese text of
    core.errors (never its code), and everything the panel prints is Chinese."""
    result = run_agent("panel", broker, "--device", "panel-w02", stdin="n\nl s999\nl s002\nu\nb\nc Z999\nn\nq\n")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line]
    refused = [line.removeprefix("操作失败：") for line in lines if line.startswith("操作失败：")]
    assert refused == [
        MESSAGES[ErrorCode.NOT_LOGGED_IN],
        f"{MESSAGES[ErrorCode.UNKNOWN_STAFF]}：s999",
        MESSAGES[ErrorCode.NOT_PAUSED],
        MESSAGES[ErrorCode.NO_CURRENT_TICKET],
        f"{MESSAGES[ErrorCode.UNKNOWN_TICKET]}：Z999",
        MESSAGES[ErrorCode.QUEUE_EMPTY],
    ]
    assert lines[0] == "内乡县赤眉镇行政审批服务中心 2号窗口 叫号器已就绪，输入 h 查看帮助。"
    assert "【2号窗口】 | 李建军（s002） | 空闲 | 今日已办 0 件 | 本窗口可办等候 0 人" in lines
    assert [line for line in lines if not re.search(r"[\u4e00-\u9fff]", line)] == []
    assert not set(re.findall(r"[a-z]+_[a-z_]+", result.stdout)) & {code.value for code in ErrorCode}
    rated = run_agent("pad", broker, "--device", "pad-w01", "--score", "5")
    assert (rated.returncode, rated.stderr.strip()) == (1, f"评价未成功：{MESSAGES[ErrorCode.NOTHING_TO_RATE]}")


@integration
def test_panel_transfers_and_picks(broker, engine):
    kiosk = PahoDevice(broker.port, "kiosk-1")
    try:
        assert kiosk.request("ticket.request", service="budongchan")["ticket"]["no"] == "B001"
    finally:
        kiosk.close()
    w01 = run_agent("panel", broker, "--device", "panel-w01", stdin="l s001\nn\nb\nt shebao\no\n")
    assert w01.returncode == 0, w01.stdout
    assert "已转移：B001 → 城乡居民基本养老保险参保登记及待遇领取" in w01.stdout
    w02 = run_agent("panel", broker, "--device", "panel-w02", stdin="l s002\nn\ns\nc b001\nt w10\n")
    assert w02.returncode == 0, w02.stdout
    assert "已叫号：B001" in w02.stdout and "已过号：B001" in w02.stdout
    assert "已转移：B001 → 10号窗口（办不成事反映窗口）" in w02.stdout


# -- rating pad --------------------------------------------------------------------------
@integration
def test_pad_sends_the_rating_for_its_window(broker, engine):
    number = serve_one(broker)
    replies = Listener(broker.port, f"{DEV}/pad-w02/reply")
    try:
        result = run_agent("pad", broker, "--device", "pad-w02", "--score", "4")
        assert result.returncode == 0, result.stderr
        assert f"感谢您的评价！（满意，{number}）" in result.stdout
        reply = wait_json(replies, f"{DEV}/pad-w02/reply")
        assert (reply["ok"], reply["ticket"]) == (True, number)
    finally:
        replies.close()
    assert db_rows(engine, "select window, device, ticket, staff, score from ratings") == [
        ("w02", "pad-w02", number, "s002", 4)
    ]
    # The buttons again: the visit is rated already, the pad says so; a bad key is explained.
    again = run_agent("pad", broker, "--device", "pad-w02", stdin="9\n非常满意\nq\n")
    assert "请按 1 到 5 评价" in again.stdout
    assert "[5] 非常满意  [4] 满意  [3] 基本满意  [2] 不满意  [1] 非常不满意" in again.stdout
    assert "评价未成功：这次办事已经评价过了" in again.stdout
    assert len(db_rows(engine, "select * from ratings")) == 1


# -- camera bridge -----------------------------------------------------------------------
def publish(port: int, topic: str, payload: str, retain: bool = False) -> None:
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-m", payload]
    subprocess.run(args + (["-r"] if retain else []), check=True, timeout=10)


@integration
def test_camera_bridge_turns_frigate_zone_counts_into_presence(broker, engine, spawn, tmp_path):
    mapping = tmp_path / "frigate.toml"
    mapping.write_text(
        'prefix = "frigate"\nobject = "person"\n[cameras.cam-w02]\ncamera = "hall_east"\nzone = "seat_w02"\n',
        encoding="utf-8",
    )
    watch = Listener(broker.port, "hallwatch/demo/window/w02/state", f"{DEV}/cam-w02/#", "hallwatch/demo/alerts")
    bridge = spawn("camera", "--map", str(mapping))  # every camera in the map: cam-w02
    panel = PahoDevice(broker.port, "panel-w02")
    try:
        assert panel.request("staff.login", staff="s002")["ok"]
        status = wait_json(watch, f"{DEV}/cam-w02/status", online)
        assert status == {"v": 1, "state": "online", "kind": "camera", "window": "w02", "fw": status["fw"]}
        # The bridge reports the camera's video once it follows Frigate: from then on it hears.
        wait_json(watch, f"{DEV}/cam-w02/event", lambda e: e["type"] == "tamper")
        publish(broker.port, "frigate/seat_w02/person", "1")
        wait_json(watch, "hallwatch/demo/window/w02/state", lambda s: s["present"] is True)
        publish(broker.port, "frigate/seat_w02/person", "0")
        wait_json(watch, "hallwatch/demo/window/w02/state", lambda s: s["present"] is False)
        publish(broker.port, "frigate/seat_w02/person", "2")
        # (waiting for the third presence itself: a window state "present" was seen already)
        presence = watch.wait_for(
            lambda msgs: (lambda p: p if len(p) >= 3 else None)(
                [e for e in decoded(msgs, f"{DEV}/cam-w02/event") if e["type"] == "presence"]
            )
        )
        assert [(e["window"], e["present"], e["count"]) for e in presence] == [
            ("w02", True, 1),
            ("w02", False, 0),
            ("w02", True, 2),
        ]
        assert len({e["id"] for e in presence}) == 3

        # The detect stream goes down: video_lost, the window cannot be verified, and the
        # supervision office is alerted; it comes back: restored.
        publish(broker.port, "frigate/hall_east/status/detect", "offline")
        alert = wait_json(watch, "hallwatch/demo/alerts", lambda a: a["kind"] == "camera_tamper")
        assert (alert["device"], alert["window"], alert["state"]) == ("cam-w02", "w02", "firing")
        assert alert["detail"]["tamper"] == "video_lost"
        wait_json(watch, "hallwatch/demo/window/w02/state", lambda s: s["staffing"] == "unverified")
        publish(broker.port, "frigate/hall_east/status/detect", "online")
        tampers = watch.wait_for(
            lambda msgs: (lambda t: t if t[-1:] == ["restored"] and len(t) >= 3 else None)(
                [e["kind"] for e in decoded(msgs, f"{DEV}/cam-w02/event") if e["type"] == "tamper"]
            )
        )
        assert tampers == ["restored", "video_lost", "restored"]  # the first: the bridge's initial report
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(15) == 0
        assert retained(broker.port, f"{DEV}/cam-w02/status")["reason"] == "shutdown"
    finally:
        watch.close()
        panel.close()


@integration
def test_camera_bridge_on_a_separate_frigate_broker_raises_unstaffed_and_offline(
    broker, engine_factory, spawn, tmp_path
):
    # Supervision that fires at once, so that the test need not wait out the grace periods.
    site = tmp_path / "site.toml"
    site.write_text(
        DEMO_SITE.read_text(encoding="utf-8")
        + "\n[supervision]\nunstaffed_grace_min = 0\nclear_after_s = 0\nsettle_s = 0\n"
        "device_offline_grace_s = 0\n",
        encoding="utf-8",
    )
    engine_factory(configs=[site]).start()
    frigate = Broker(tmp_path / "frigate-broker").start()
    watch = Listener(broker.port, "hallwatch/demo/alerts", f"{DEV}/cam-w03/status", f"{DEV}/cam-w03/event")
    try:
        spawn("camera", "--device", "cam-w03", "--frigate-camera", "desk3", "--frigate-broker", frigate.url)
        wait_json(watch, f"{DEV}/cam-w03/event", lambda e: e["type"] == "tamper")  # following Frigate now
        panel = PahoDevice(broker.port, "panel-w03")
        try:
            assert panel.request("staff.login", staff="s003")["ok"]
        finally:
            panel.close()
        publish(frigate.port, "frigate/available", "online", retain=True)
        publish(frigate.port, "frigate/w03/person", "0")  # the zone is named after the window
        alert = wait_json(watch, "hallwatch/demo/alerts", lambda a: a["kind"] == "window_unstaffed")
        assert (alert["window"], alert["staff"], alert["state"]) == ("w03", "s003", "firing")
        publish(frigate.port, "frigate/w03/person", "1")
        wait_json(
            watch, "hallwatch/demo/alerts", lambda a: a["kind"] == "window_unstaffed" and a["state"] == "resolved"
        )
        # Frigate itself goes away: the camera is offline (lost), a critical alert.
        publish(frigate.port, "frigate/available", "offline", retain=True)
        assert wait_json(watch, f"{DEV}/cam-w03/status", lambda s: s["state"] == "offline") == {
            "v": 1,
            "state": "offline",
            "reason": "lost",
        }
        offline = wait_json(watch, "hallwatch/demo/alerts", lambda a: a["kind"] == "device_offline")
        assert (offline["device"], offline["severity"], offline["staff"]) == ("cam-w03", "critical", "s003")
        # ... and is back: the camera is online again.
        publish(frigate.port, "frigate/available", "online", retain=True)
        wait_json(
            watch,
            f"{DEV}/cam-w03/status",
            lambda s: (
                online(s) and len([m for m in decoded(watch.messages, f"{DEV}/cam-w03/status") if online(m)]) >= 2
            ),
        )
    finally:
        watch.close()
        frigate.stop()


@integration
async def test_camera_repeats_presence_after_every_heartbeat_and_reports_video(broker, engine):
    device = Device(settings(broker, "cam-w01", heartbeat_s=0.2))
    link = camera.resolve_links(SITE, camera.BridgeMap(), ["cam-w01"])[0]
    bridge = camera.CameraBridge(link=link, device=device)
    router = camera.FrigateRouter([bridge], "frigate", "person")
    watch = Listener(broker.port, f"{DEV}/cam-w01/event", f"{DEV}/cam-w01/heartbeat")
    await device.start(10)
    task = asyncio.create_task(camera.run([bridge], router, parse_broker_url(broker.url), "cam-w01-frigate"))
    try:
        await asyncio.to_thread(wait_json, watch, f"{DEV}/cam-w01/event", lambda e: e["kind"] == "restored")
        await asyncio.to_thread(publish, broker.port, "frigate/w01/person", "1")
        presence = await asyncio.to_thread(
            watch.wait_for,
            lambda msgs: (lambda hits: hits if len(hits) >= 3 else None)(
                [e for e in decoded(msgs, f"{DEV}/cam-w01/event") if e["type"] == "presence"]
            ),
        )
        assert all((e["present"], e["count"]) == (True, 1) for e in presence)
        beats = decoded(watch.messages, f"{DEV}/cam-w01/heartbeat")
        assert beats and all(b["video"] == "ok" for b in beats)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await device.close()
        watch.close()


# -- the device base ---------------------------------------------------------------------
@integration
async def test_device_connects_as_itself_announces_and_heartbeats(broker, engine):
    watch = Listener(broker.port, f"{DEV}/panel-w05/#")
    device = Device(settings(broker, "panel-w05", heartbeat_s=0.2))
    await device.start(10)
    try:
        status = await asyncio.to_thread(wait_json, watch, f"{DEV}/panel-w05/status")
        assert status == {"v": 1, "state": "online", "kind": "panel", "window": "w05", "fw": status["fw"]}
        beats = await asyncio.to_thread(watch.wait_topic, f"{DEV}/panel-w05/heartbeat", 3)
        assert [b["seq"] for b in beats[:3]] == [1, 2, 3]
        assert all(b["v"] == 1 and b["uptime_s"] >= 0 and "video" not in b for b in beats)
        sock = device._client._client.socket()  # noqa: SLF001 - the socket itself is what is checked
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        reply = await device.request("staff.login", staff="s005")
        assert reply["ok"] is True
        ids = {device.new_event_id() for _ in range(100)}
        other_boot = Device(settings(broker, "panel-w05"))
        assert len(ids) == 100 and other_boot.new_event_id() not in ids  # unique across restarts too
        assert all(len(i) <= 64 for i in ids)
    finally:
        await device.close()
        watch.close()
    with pytest.raises(ValueError):
        settings(broker, "panel-w05", keepalive=60)  # the protocol allows at most 30 s


@integration
async def test_the_client_id_is_the_device_id(broker):
    """Another client connecting as ``panel-w07`` takes the device's session over: the broker
    drops the device (its Last Will goes out), and the device comes back by itself."""
    watch = Listener(broker.port, f"{DEV}/panel-w07/status")
    device = Device(settings(broker, "panel-w07", backoff_initial_s=0.1))
    await device.start(10)
    try:
        intruder = await asyncio.to_thread(PahoDevice, broker.port, "panel-w07")
        await asyncio.to_thread(intruder.close)
        states = await asyncio.to_thread(
            watch.wait_for,
            lambda msgs: (lambda s: s if len(s) >= 3 else None)(
                [
                    b["state"] + ("/" + b["reason"] if "reason" in b else "")
                    for b in decoded(msgs, f"{DEV}/panel-w07/status")
                ]
            ),
        )
        assert states[:3] == ["online", "offline/lost", "online"]
        await asyncio.wait_for(device.connected.wait(), 10)
        assert device.connections == 2
    finally:
        await device.close()
        watch.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"), "localhost", "127.0.0.1")


@integration
def test_agents_sign_in_with_their_device_id_and_password(tmp_path, certs):
    """The production broker (accounts and ACL from `hallwatch broker-config`): the user name
    is the device id, the password comes from the environment or a file."""
    var = tmp_path / "var"
    var.mkdir()
    (var / "certs").symlink_to(certs)
    secrets = broker_config(var / "broker", DEMO_SITE)
    secure = production_broker(tmp_path / "broker", var).start()
    engine = EngineProcess(
        secure,
        tmp_path / "hallwatch.db",
        [DEMO_SITE],
        tmp_path / "engine",
        broker_url=secure.url_for("hallwatch-engine", secrets["hallwatch-engine"]),
    )
    try:
        engine.start()
        env = {**os.environ, "HALLWATCH_DEVICE_PASSWORD": secrets["kiosk-1"]}
        taken = run_agent("kiosk", secure, "--device", "kiosk-1", "--take", "shebao", env=env)
        assert taken.returncode == 0, taken.stderr
        assert "号码：A001" in taken.stdout
        password_file = tmp_path / "kiosk-1.secret"
        password_file.write_text(secrets["kiosk-1"] + "\n")
        again = run_agent(
            "kiosk", secure, "--device", "kiosk-1", "--take", "shebao", "--password-file", str(password_file)
        )
        assert "号码：A002" in again.stdout
        wrong = run_agent(
            "kiosk",
            secure,
            "--device",
            "kiosk-1",
            "--take",
            "shebao",
            env={**os.environ, "HALLWATCH_DEVICE_PASSWORD": secrets["panel-w01"]},
        )
        assert wrong.returncode == 3  # refused at once, not retried until the connect timeout
        assert "设备 kiosk-1 连不上消息服务器" in wrong.stderr
    finally:
        engine.stop()
        secure.stop()


@integration
def test_a_killed_agent_leaves_its_last_will(broker, engine, spawn):
    watch = Listener(broker.port, f"{DEV}/panel-w04/status")
    try:
        panel = spawn("panel", "--device", "panel-w04")
        wait_json(watch, f"{DEV}/panel-w04/status", online)
        panel.send_signal(signal.SIGKILL)
        panel.wait()
        will = wait_json(watch, f"{DEV}/panel-w04/status", lambda s: s["state"] == "offline")
        assert will == {"v": 1, "state": "offline", "reason": "lost"}
    finally:
        watch.close()
    assert retained(broker.port, f"{DEV}/panel-w04/status") == {"v": 1, "state": "offline", "reason": "lost"}
    assert db_rows(engine, "select online, reason from devices where device = 'panel-w04'") == [(0, "lost")]


@integration
@pytest.mark.parametrize("how", ["SIGTERM", "q"])
def test_an_orderly_shutdown_says_shutdown_and_no_will_follows(broker, engine, spawn, how):
    watch = Listener(broker.port, f"{DEV}/panel-w06/status")
    try:
        panel = spawn("panel", "--device", "panel-w06")
        wait_json(watch, f"{DEV}/panel-w06/status", online)
        if how == "SIGTERM":
            panel.send_signal(signal.SIGTERM)
        else:
            panel.stdin.write("q\n")
            panel.stdin.flush()
        assert panel.wait(15) == 0
        wait_json(watch, f"{DEV}/panel-w06/status", lambda s: s["state"] == "offline")
        # A message sent after the agent's exit arrives after anything the broker did about
        # that exit: by then a Last Will would have been delivered too.
        publish(broker.port, f"{DEV}/panel-w06/status", '{"marker":1}')
        wait_json(watch, f"{DEV}/panel-w06/status", lambda s: "marker" in s)
        statuses = [s for s in decoded(watch.messages, f"{DEV}/panel-w06/status") if "marker" not in s]
        assert [s["state"] for s in statuses] == ["online", "offline"]
        assert statuses[-1] == {"v": 1, "state": "offline", "reason": "shutdown"}
    finally:
        watch.close()
    # (the engine commits what it received a moment later: wait for it, then compare)
    wait_until(lambda: db_rows(engine, "select online from devices where device = 'panel-w06'") == [(0,)])
    assert db_rows(engine, "select online, reason from devices where device = 'panel-w06'") == [(0, "shutdown")]


@integration
async def test_a_reply_that_does_not_come_is_asked_for_again_with_the_same_id(broker, engine):
    topic = f"{DEV}/kiosk-1/event"
    watch = Listener(broker.port, topic)
    device = Device(settings(broker, "kiosk-1", reply_timeout=0.3, attempts=50))
    await device.start(10)
    try:
        engine.proc.send_signal(signal.SIGSTOP)  # the engine hangs: no reply comes in time
        try:
            request = asyncio.create_task(device.request("ticket.request", service="shebao"))
            await asyncio.to_thread(watch.wait_topic, topic, 2)
        finally:
            engine.proc.send_signal(signal.SIGCONT)
        reply = await asyncio.wait_for(request, 20)
        assert reply["ok"] is True and reply["ticket"]["no"] == "A001"
        sent = [p for t, p, _, _ in watch.messages if t == topic]
        assert len(sent) >= 2 and len(set(sent)) == 1  # the very same bytes, the same id
        event_id = json.loads(sent[0])["id"]
        assert reply["re"] == event_id
        # Applied once: one event in the log, one ticket; the next request gets the next number.
        assert db_rows(engine, "select count(*) from events where event_id = ?", event_id) == [(1,)]
        assert (await device.request("ticket.request", service="shebao"))["ticket"]["no"] == "A002"
        assert db_rows(engine, "select count(*) from tickets") == [(2,)]
    finally:
        await device.close()
        watch.close()


@integration
async def test_no_reply_at_all_gives_up_after_the_attempts(broker):
    watch = Listener(broker.port, f"{DEV}/kiosk-1/event")
    device = Device(settings(broker, "kiosk-1", reply_timeout=0.2, attempts=3))
    await device.start(10)
    try:
        with pytest.raises(NoReply) as caught:
            await device.request("ticket.request", service="shebao")  # no engine is running
        assert caught.value.attempts == 3
        sent = await asyncio.to_thread(watch.wait_topic, f"{DEV}/kiosk-1/event", 3)
        assert len({e["id"] for e in sent}) == 1
    finally:
        await device.close()
        watch.close()


@integration
async def test_the_device_reconnects_after_the_broker_restarts(broker, engine):
    device = Device(settings(broker, "kiosk-1", backoff_initial_s=0.1, backoff_max_s=0.5, reply_timeout=1, attempts=20))
    await device.start(10)
    try:
        assert (await device.request("ticket.request", service="shebao"))["ticket"]["no"] == "A001"
        await asyncio.to_thread(broker.stop)

        async def until(condition):
            while not condition():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until(lambda: not device.connected.is_set()), 10)
        await asyncio.to_thread(broker.start)
        await asyncio.wait_for(device.connected.wait(), 15)
        assert device.connections == 2
        assert (await device.request("ticket.request", service="shebao"))["ticket"]["no"] == "A002"
        status = await asyncio.to_thread(retained, broker.port, f"{DEV}/kiosk-1/status")
        assert status["state"] == "online"
    finally:
        await device.close()


def test_agent_with_an_unreachable_broker_exits_3(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "queue_engine.cli",
            "agent",
            "pad",
            "--config",
            str(DEMO_SITE),
            "--device",
            "pad-w01",
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--score",
            "5",
            "--connect-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 3
    assert f"设备 pad-w01 连不上消息服务器 mqtt://127.0.0.1:{port}" in result.stderr
    assert "请检查网络和服务器，或找信息员" in result.stderr


async def test_a_device_retries_a_broker_that_is_not_listening_until_the_connect_timeout():
    """Only a broker's refusal ends the first connection's attempts at once; a broker that is
    not (yet) listening is retried with backoff until the timeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    device = Device(
        DeviceSettings(
            site="demo",
            device_id="pad-w01",
            kind="pad",
            broker=BrokerSettings(port=port),
            backoff_initial_s=0.05,
            backoff_max_s=0.1,
        )
    )
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable):
        await device.start(0.6)
    assert time.monotonic() - started >= 0.55


def test_a_refusal_is_told_from_an_unreachable_broker():
    assert _refused(MqttConnectError(5))  # not authorised
    assert not _refused(MqttConnectError(3))  # server unavailable: try again
    assert not _refused(aiomqtt.MqttError("[Errno 111] Connection refused"))


# -- what the keys mean (pure) -----------------------------------------------------------
@pytest.mark.parametrize(
    "line, expected",
    [
        ("l s001", ("staff.login", {"staff": "s001"})),
        ("o", ("staff.logout", {})),
        ("n", ("call.next", {})),
        ("c a003", ("call.pick", {"ticket": "A003"})),
        ("r", ("call.recall", {})),
        ("s", ("call.skip", {})),
        ("b", ("service.start", {})),
        ("f", ("service.finish", {"outcome": "done"})),
        ("f 办不成", ("service.finish", {"outcome": "failed"})),
        ("f informed", ("service.finish", {"outcome": "informed"})),
        ("t shebao", ("ticket.transfer", {"to_service": "shebao"})),
        ("t w03", ("ticket.transfer", {"to_window": "w03"})),
        ("p meal", ("window.pause", {"reason": "meal"})),
        ("p 会议", ("window.pause", {"reason": "meeting"})),
        ("u", ("window.resume", {})),
        # 办件: the finish's options and the case events
        ("f 告知 缺=1,户口簿", ("service.finish", {"outcome": "informed", "missing": [1, "户口簿"]})),
        (
            "f proxy 转=县人社局 代办员=s002",
            ("service.finish", {"outcome": "proxy", "passed_to": "县人社局", "agent": "s002"}),
        ),
        ("f 编号=g20261125001", ("service.finish", {"outcome": "done", "refer": "G20261125001"})),
        (
            "f 受理 id=13800000000",
            ("service.finish", {"outcome": "accepted", "citizen": citizen_key(CITIZEN_SECRET, "13800000000")}),
        ),
        ("k j20261125001 进展 已报县局", ("case.note", {"case": "J20261125001", "note": "已报县局"})),
        ("k J20261125001 转 市 自然资源局", ("case.pass", {"case": "J20261125001", "to": "市 自然资源局"})),
        ("k J20261125001 done 已发证", ("case.complete", {"case": "J20261125001", "result": "已发证"})),
        ("k J20261125001 退回 材料不符", ("case.return", {"case": "J20261125001", "note": "材料不符"})),
        ("k J20261125001 撤回", ("case.withdraw", {"case": "J20261125001"})),
    ],
)
def test_panel_keys(line, expected):
    action = panel.parse_command(SITE, line, CITIZEN_SECRET)
    assert (action.type, action.fields) == expected


@pytest.mark.parametrize(
    "line",
    # (the last: an ID or mobile number without the panel's citizen key, which it is sent hashed with)
    [
        "l",
        "t nowhere",
        "p nap",
        "f maybe",
        "x",
        "f 告知 漏=1",
        "f 缺=",
        "k J1",
        "k J1 办结",
        "k J1 飞",
        "f 受理 id=13800000000",
    ],
)
def test_panel_keys_that_mean_nothing_are_explained(line):
    with pytest.raises(panel.CommandError):
        panel.parse_command(SITE, line)


def test_kiosk_choices_and_pad_buttons():
    assert kiosk.parse_choice(SITE, "1") == ("shebao", None)
    assert kiosk.parse_choice(SITE, "budongchan 军人") == ("budongchan", "veteran")
    for bad in ("0", "nosuch", "1 vip", "1 2 3"):
        with pytest.raises(kiosk.ChoiceError):
            kiosk.parse_choice(SITE, bad)
    assert [pad.parse_score(t) for t in ("5", "满意", "3", "不满意", "1")] == [5, 4, 3, 2, 1]
    with pytest.raises(pad.ScoreError):
        pad.parse_score("6")


def test_frigate_states_map_to_status_and_video():
    state = camera.CameraState()
    assert (state.declared(), state.video_ok()) == ((True, None), True)  # nothing said yet: assume up
    state.detect_status = "offline"
    assert (state.declared(), state.video_ok()) == ((True, None), False)  # stream down: video_lost
    state.detect_status, state.detect_enabled = "online", False
    assert state.video_ok() is False  # detection switched off: the count means nothing
    state.detect_status = "disabled"
    assert state.declared() == (False, "shutdown")  # the camera switched off in Frigate
    state.available = False
    assert state.declared() == (False, "lost")  # Frigate itself gone


def test_the_camera_mapping_is_checked_against_the_site(tmp_path):
    links = camera.resolve_links(SITE, camera.BridgeMap())
    assert len(links) == 10 and links[2] == camera.CameraLink("cam-w03", "w03", "cam-w03", "w03")
    with pytest.raises(camera.MappingError, match="is a panel"):
        camera.resolve_links(SITE, camera.BridgeMap(), ["panel-w01"])
    with pytest.raises(camera.MappingError, match="one camera"):
        camera.resolve_links(SITE, camera.BridgeMap(), None, "hall_east")
    bad = tmp_path / "map.toml"
    bad.write_text('[cameras.cam-w01]\nzone = "seat/#"\n', encoding="utf-8")
    with pytest.raises(camera.MappingError, match="cameras.cam-w01.zone"):
        camera.load_map(bad)


def test_a_camera_that_watches_no_window_is_bridged_without_presence(tmp_path):
    """A lobby camera (a camera's window is optional) has its status and video bridged, and
    no seat: the bridge follows no zone for it, so it never sends a presence without a window."""
    site_file = tmp_path / "site.toml"
    lobby = '\n[[devices]]\nid = "cam-lobby"\nkind = "camera"\n'
    site_file.write_text(DEMO_SITE.read_text(encoding="utf-8") + lobby, encoding="utf-8")
    site = load_site(site_file)
    [link] = camera.resolve_links(site, camera.BridgeMap(), ["cam-lobby"])
    assert link.window is None
    broker = BrokerSettings()
    device = Device(DeviceSettings(site="demo", device_id="cam-lobby", kind="camera", broker=broker))
    router = camera.FrigateRouter([camera.CameraBridge(link, device)], "frigate", "person")
    assert sorted(router.subscriptions()) == [
        "frigate/available",
        "frigate/cam-lobby/detect/state",
        "frigate/cam-lobby/status/detect",
    ]
