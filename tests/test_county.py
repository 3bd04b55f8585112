"""The county service (``hallwatch county``) on a county deployed as townships: three real
Mosquitto brokers running the production configuration with their generated accounts (two
townships and the county), each township bridged up with the bridge file the county generated
(broker_config/bridge-to-county.conf), an engine per township, and the county service with
its console in a real browser."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request

import jsonschema
import pytest
from browser import launch
from conftest import ROOT, EngineProcess, free_port, wait_until
from core_helpers import make_site
from deploy_helpers import broker_config, make_certs, production_broker
from mqtt_helpers import Device, _client
from test_api_contract import answered, event_validator, schemathesis_command
from test_broker_security import raw_v5_puback
from test_web_hardening import exchange, request
from web_helpers import MANAGER_TOKEN, SUPERVISOR_TOKEN

from queue_engine import wire
from queue_engine.control import Control
from queue_engine.core import events as ev
from queue_engine.core.engine import Engine
from queue_engine.county.model import FIRST, NEW, RETIRED, SAME, County, SeqTrack
from queue_engine.county.openapi import county_openapi_document
from queue_engine.county.store import Changes, CountyStore
from queue_engine.ingest import RETRY_WINDOW_S, Ingest

pytestmark = pytest.mark.integration

TOWNSHIPS = ROOT / "examples" / "county" / "townships"
# Alerts at once: no settling after the engine connects, a window empty for 3 s is 空岗.
QUICK = "\n[supervision]\nsettle_s = 0\nunstaffed_grace_min = 0.05\ndevice_offline_grace_s = 0\n"


# -- the model ---------------------------------------------------------------------------------
def test_transition_numbers_tell_duplicates_and_gaps_and_a_replay_fills_them():
    track = SeqTrack()
    assert track.gap  # nothing known yet: ask for everything
    track.cover(0, 4)
    assert not track.gap and track.covered == 4
    assert track.add(5) and not track.add(5) and not track.add(3)  # a resend, an old one
    assert track.add(8) and track.gap and track.covered == 5  # 6 and 7 missing
    track.cover(5, 7)
    assert not track.gap and track.covered == 8


def test_a_late_older_transition_does_not_overwrite_the_alert():
    county = County()
    hall = county.hall("chimei", "townships/chimei/")
    fired = {"id": "chimei-1", "seq": 1, "state": "firing"}
    resolved = {"id": "chimei-1", "seq": 2, "state": "resolved"}
    assert county.alert(hall, resolved).latest
    applied = county.alert(hall, fired)
    assert applied.new and not applied.latest and hall.alerts["chimei-1"]["state"] == "resolved"


def test_the_county_s_acknowledgement_sent_again_however_late_is_answered_the_same_and_applied_once():
    """A device's resend is trusted for RETRY_WINDOW_S; the county's, whose ids are its own per
    acknowledgement, for as long as the engine remembers the id (a link cut for hours)."""
    site = make_site()
    ingest = Ingest(Engine([site]), [site], wire.Topics("hallwatch"))
    reply_topic = wire.Topics("hallwatch").control_reply(site.id, "acknowledge")
    ack = ev.Acknowledge(site=site.id, device="county:王监察", id="county-ack-1", alert="demo-9")  # type: ignore[call-arg]
    first = ingest.process_event(ack, 1000.0, reply_topic=reply_topic, resend=True)
    assert first.result.error == "unknown_alert" and first.reply.topic == reply_topic
    later = 1000.0 + RETRY_WINDOW_S + 3600
    again = ingest.process_event(ack, later, reply_topic=reply_topic, resend=True)
    assert again.duplicate and not again.commands and again.reply.payload == first.reply.payload
    # (a device's request as late is another request reusing the id: refused)
    assert ingest.process_event(ack, later).result.error == "id_reused"


def test_an_engine_on_a_new_store_numbers_from_1_again_and_the_county_follows_it(tmp_path):
    """Alert numbers (and ids) are those of one engine store: a hall whose engine starts on a
    new one is tracked from its new numbers, the previous store's alerts retired (kept in the
    county store, no longer live), and what still comes from the old store is told apart."""

    def alert(seq: int, store: str, state: str = "firing") -> dict:
        since = "2026-11-25T09:00:00.000+08:00"
        fields = {"kind": "window_unstaffed", "state": state, "since": since, "until": None, "store_id": store}
        return {"id": f"chimei-{seq:06d}", "seq": seq, **fields}

    county = County()
    hall = county.hall("chimei", "")
    store = CountyStore(tmp_path / "county.db")
    try:
        assert county.source(hall, "a" * 32, 100.0).kind == FIRST
        county.replay(hall, 0, 0, [])
        old = [alert(1, "a" * 32), alert(2, "a" * 32)]
        assert all(county.alert(hall, a).new for a in old)
        assert not county.alert(hall, alert(1, "a" * 32)).new  # a resend
        store.write(
            Changes(
                halls={"chimei": hall},
                alerts=[("chimei", a) for a in old],
                transitions=[("chimei", a["seq"], a["id"], "firing", 100.0) for a in old],
            )
        )
        # The engine starts on a new store: seq 1 again, under an id the county had.
        change = county.source(hall, "b" * 32, 200.0)
        assert (change.kind, change.previous, change.retired_alerts) == (NEW, "a" * 32, 2)
        assert hall.alerts == {} and county.needs_replay(hall, time.monotonic())
        new = alert(1, "b" * 32)
        applied = county.alert(hall, new)
        assert applied.new and applied.latest and hall.alerts["chimei-000001"]["store_id"] == "b" * 32
        store.write(
            Changes(
                halls={"chimei": hall},
                retire=[("chimei", 200.0)],
                alerts=[("chimei", new)],
                transitions=[("chimei", 1, new["id"], "firing", 200.0)],
            )
        )
        assert county.source(hall, "a" * 32, 300.0).kind == RETIRED  # (the service drops it)
        # The new store's engine publishes the day before its start, of which it has nothing:
        # the figures the previous store sent of that day stay.
        day = {**json.loads(PROTOCOL_DAY_FIGURES), "site": "chimei"}
        hall.figures[day["day"]] = {**day, "store_id": "a" * 32, "issued": 96}
        assert not county.figures(hall, {**day, "store_id": "b" * 32, "issued": 0})
        assert hall.figures[day["day"]]["issued"] == 96
        later = {**day, "day": "2099-01-01", "store_id": "b" * 32}
        assert county.figures(hall, later) and county.figures(hall, {**later, "issued": 97})  # (its own: replaced)
        assert county.source(hall, None, 300.0).kind == SAME  # an engine that names no store
        assert county.overview(hall, 300.0)["store_changed_at"] == 200.0
        with closing_db(tmp_path / "county.db") as conn:
            assert conn.execute("SELECT store, id FROM retired_alerts ORDER BY id").fetchall() == [
                ("a" * 32, "chimei-000001"),
                ("a" * 32, "chimei-000002"),
            ]
            assert conn.execute("SELECT store, seq FROM retired_transitions").fetchall() == [
                ("a" * 32, 1),
                ("a" * 32, 2),
            ]
        assert store.transitions("chimei") == [1]
        again = County()  # a restart: the new store's numbers, and the retired one known as such
        store.load(again, resolved_since=0.0)
        restored = again.halls["chimei"]
        assert (restored.store_id, restored.retired, list(restored.alerts)) == ("b" * 32, ["a" * 32], ["chimei-000001"])
        assert restored.alerts["chimei-000001"]["store_id"] == "b" * 32
        assert again.source(restored, "a" * 32, 400.0).kind == RETIRED
    finally:
        store.close()


@contextlib.contextmanager
def closing_db(path):
    conn = sqlite3.connect(path)
    try:
        yield conn
    finally:
        conn.close()


async def test_an_acknowledgement_of_an_alert_of_another_store_is_refused_by_the_engine():
    """The county names the store it knows the alert from: an engine on another store (where
    the same id is another alert) refuses it, and applies nothing."""
    site = make_site()
    published, submitted, done = [], [], asyncio.Event()

    async def submit(*args, **kwargs):
        submitted.append(args)

    control = Control(
        Engine([site]),
        [site],
        wire.Topics("hallwatch"),
        "unused.db",
        publish=published.append,
        publish_retained=published.append,
        submit=submit,
        now=lambda: 0.0,
    )
    control.store_id = "b" * 32
    request = {"v": 1, "id": "county-ack-7", "alert": f"{site.id}-000001", "by": "王监察", "store_id": "a" * 32}
    control.receive(site.id, "acknowledge", json.dumps(request).encode(), done.set)
    await asyncio.wait_for(done.wait(), 5)
    assert submitted == []
    (reply,) = published
    assert reply.topic == wire.Topics("hallwatch").control_reply(site.id, "acknowledge")
    body = json.loads(reply.payload)
    assert (body["re"], body["ok"], body["error"]) == ("county-ack-7", False, "unknown_alert")
    assert "新的数据库" in body["message"]


# -- three brokers -----
class LinkRelay:
    """A TCP relay between a township's bridge and the county broker: ``cut()`` drops the link
    (and refuses it) until ``restore()``."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = True
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up = False
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.sockets.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.server.close()


class CountyProcess(EngineProcess):
    """``hallwatch county`` as a child process (the engine's launcher, with the county's command)."""

    def __init__(self, broker, db, configs, workdir, *, broker_url: str, http_port: int):
        super().__init__(broker, db, configs, workdir, broker_url=broker_url)
        self.http_port = http_port

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("engine")] = "county"
        cmd[cmd.index("--client-id") : cmd.index("--client-id") + 2] = ["--client-id", "hallwatch-county"]
        return cmd + ["--http", f"127.0.0.1:{self.http_port}"]

    def api(self, path: str = "/api/v1/county") -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}", headers={"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


def http_json(port: int, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a GET, or of a POST of ``body``; an error status too."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def county_deployment(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HALLWATCH_SUPERVISOR_TOKEN", SUPERVISOR_TOKEN)
    monkeypatch.setenv("HALLWATCH_MANAGER_TOKEN_CHIMEI", MANAGER_TOKEN)
    certs = make_certs(tmp_path_factory.mktemp("certs"), "localhost", "127.0.0.1")
    configs = {}
    for township in ("chimei", "xiaguan"):
        configs[township] = tmp_path / f"{township}.toml"
        configs[township].write_text((TOWNSHIPS / f"{township}.toml").read_text(encoding="utf-8") + QUICK)
    county_var = tmp_path / "county-var"
    county_var.mkdir()
    (county_var / "certs").symlink_to(certs)
    county = production_broker(tmp_path / "county", county_var)
    county_secrets = broker_config(
        county_var / "broker",
        ROOT / "examples" / "county" / "county-centre.toml",
        extra=(
            "--townships",
            "chimei,xiaguan",
            "--county-url",
            f"mqtt://127.0.0.1:{county.port}",
            "--bridge-retry",
            "1",
        ),
    )
    county.start()
    brokers, engines, secrets = {"county": county}, {}, {"county": county_secrets}
    relays: dict[str, LinkRelay] = {}
    engine_http = {"chimei": free_port()}
    for township, config in configs.items():
        var = tmp_path / f"{township}-var"
        var.mkdir()
        (var / "certs").symlink_to(certs)
        secrets[township] = broker_config(var / "broker", config)
        bridge_conf = (county_var / "broker" / "bridges" / f"{township}.conf").read_text()
        # Township B's link runs through a relay the test can cut.
        relay = LinkRelay(county.port) if township == "xiaguan" else None
        if relay is not None:
            relays[township] = relay
            bridge_conf = bridge_conf.replace(f"address 127.0.0.1:{county.port}", f"address 127.0.0.1:{relay.port}")
        (var / "broker" / "bridge.d" / f"{township}.conf").write_text(bridge_conf)
        brokers[township] = production_broker(tmp_path / township, var).start()
        engines[township] = EngineProcess(
            brokers[township],
            tmp_path / f"{township}.db",
            [config],
            tmp_path / f"engine-{township}",
            broker_url=brokers[township].url_for("hallwatch-engine", secrets[township]["hallwatch-engine"]),
            extra_args=["--http", f"127.0.0.1:{engine_http[township]}"] if township in engine_http else [],
        ).start()
        engines[township].http_port = engine_http.get(township)  # type: ignore[attr-defined]
    service = CountyProcess(
        county,
        tmp_path / "county.db",
        list(configs.values()),
        tmp_path / "county-service",
        broker_url=county.url_for("hallwatch-county", county_secrets["hallwatch-county"]),
        http_port=free_port(),
    )
    clients: list[Device] = []

    def device(township: str, device_id: str) -> Device:
        d = Device(brokers[township].port, device_id, site=township, password=secrets[township][device_id])
        clients.append(d)
        return d

    device.secrets = secrets  # type: ignore[attr-defined]  # (each broker's accounts)
    device.relays = relays  # type: ignore[attr-defined]
    device.configs = configs  # type: ignore[attr-defined]
    try:
        yield brokers, engines, service, device, tmp_path
    finally:
        for client in clients:
            client.close()
        service.stop()
        for engine in engines.values():
            engine.stop()
        for broker in brokers.values():
            broker.stop()
        for relay in relays.values():
            relay.close()


def leave_window_empty(device, township: str) -> None:
    """Sign in at w01, then the camera sees nobody at the seat."""
    panel, camera = device(township, f"{township}-panel-w01"), device(township, f"{township}-cam-w01")
    camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": "w01"}), channel="status")
    assert panel.request("staff.login", staff="s201" if township == "chimei" else "s301")["ok"]
    camera.send("presence", window="w01", present=False, count=0)


def switch_off_camera(device, township: str, window: str) -> None:
    camera = device(township, f"{township}-cam-{window}")
    camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": window}), channel="status")
    camera.raw(json.dumps({"v": 1, "state": "offline", "reason": "shutdown"}), channel="status")


def engine_alerts(db) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute("select id, state, seq from alerts")}


def county_alerts(service: CountyProcess) -> dict[str, tuple[str, int]]:
    return {a["id"]: (a["state"], a["seq"]) for a in service.api()["alerts"]}


def test_a_township_window_left_empty_shows_on_the_county_console_and_a_killed_county_loses_nothing(
    county_deployment,
):
    brokers, engines, service, device, tmp_path = county_deployment
    playwright = pytest.importorskip("playwright.sync_api")
    service.start()
    staff = {"chimei": "s201", "xiaguan": "s301"}
    with playwright.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(locale="zh-CN").new_page()
        page.goto(f"http://127.0.0.1:{service.http_port}/county?token={SUPERVISOR_TOKEN}")
        page.wait_for_selector("#conn.up", timeout=10_000)
        leave_window_empty(device, "chimei")
        # The township's alert, on the county's console: the hall, the kind, the window, who was on duty.
        row = page.wait_for_selector('li[data-site="chimei"][data-kind="window_unstaffed"]', timeout=20_000)
        shown = time.monotonic()
        text = row.inner_text()
        assert "赤眉镇" in text and "窗口空岗" in text and "1号窗口" in text
        fired = engine_alerts(engines["chimei"].db)
        (alert_id,) = [i for i in fired if i.startswith("chimei")]
        page.wait_for_selector('#sites tr[data-site="chimei"] [data-unstaffed] .badge', timeout=10_000)
        # Filtering by hall: xiaguan's list is empty, chimei's has it.
        page.select_option("#filter-site", "xiaguan")
        assert page.locator('li[data-kind="window_unstaffed"]').count() == 0
        page.select_option("#filter-site", "chimei")
        assert page.locator('li[data-kind="window_unstaffed"]').count() == 1
        # The ranking shows the halls' latest day figures (yesterday's, published on start) first;
        # today's as alerted on its tab.
        page.wait_for_selector('#rank-basis:has-text("2026-11-24 各大厅日统计")', timeout=10_000)
        page.click('#rank-tabs [data-r="alerts"]')
        page.wait_for_selector('#rank-windows tr:has-text("1号窗口"):has-text("赤眉镇")', timeout=10_000)
        print(f"\ncounty console: {alert_id} shown {shown:.1f} (monotonic)")
        browser.close()
    assert (
        staff["chimei"] in service.api("/api/v1/county/alerts?site=chimei&kind=window_unstaffed")["alerts"][0]["staff"]
    )

    # The county service is killed; meanwhile township B raises alerts.
    service.kill()
    switch_off_camera(device, "xiaguan", "w02")
    switch_off_camera(device, "xiaguan", "w03")
    wait_until(lambda: len(engine_alerts(engines["xiaguan"].db)) >= 2, what="xiaguan's alerts")
    service.start()
    expected = {**engine_alerts(engines["chimei"].db), **engine_alerts(engines["xiaguan"].db)}
    wait_until(lambda: county_alerts(service) == expected, timeout=20, what="every alert at the county")
    with sqlite3.connect(f"file:{tmp_path / 'county.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute("select site, seq from transitions").fetchall()
    assert len(rows) == len(set(rows))  # (site, seq): each transition once

    # A county service started on a new store (or whose broker lost its session) asks the
    # engines for what it missed: alerts are not retained, the replay brings them.
    service.kill()
    service.db = tmp_path / "county-new.db"
    service.start()
    wait_until(lambda: county_alerts(service) == expected, timeout=20, what="the replayed alerts")
    overview = service.api()
    halls = {s["id"]: s for s in overview["sites"]}
    assert halls["chimei"]["township"] == "chimei" and halls["chimei"]["windows"]["unstaffed"] == 1
    assert {d["device"] for d in overview["devices_offline"]} >= {"xiaguan-cam-w02", "xiaguan-cam-w03"}
    assert overview["links"] == {"chimei": True, "xiaguan": True}


def engine_row(db, alert_id: str) -> dict:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("select * from alerts where id = ?", [alert_id]).fetchone())


def acknowledge_events(db, alert_id: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("select payload from events where type = 'Acknowledge'").fetchall()
    return sum(1 for (payload,) in rows if json.loads(payload)["alert"] == alert_id)


def test_an_alert_acknowledged_at_the_county_is_applied_and_kept_by_the_township_engine_that_owns_it(
    county_deployment,
):
    brokers, engines, service, device, tmp_path = county_deployment
    playwright = pytest.importorskip("playwright.sync_api")
    secrets = device.secrets
    service.start()
    chimei = engines["chimei"]
    leave_window_empty(device, "chimei")
    wait_until(lambda: [i for i in engine_alerts(chimei.db) if i.startswith("chimei")], what="chimei's alert")
    (alert_id,) = engine_alerts(chimei.db)
    wait_until(lambda: alert_id in county_alerts(service), what="the alert at the county")

    # Nobody but the county service may ask an engine anything: a device's account is refused
    # the control topic at its township broker (a township's bridge account at the county's: below).
    request = json.dumps({"v": 1, "id": "forged-1", "alert": alert_id, "by": "冒充"}).encode()
    kiosk = ("chimei-kiosk-1", secrets["chimei"]["chimei-kiosk-1"])
    assert raw_v5_puback(brokers["chimei"].port, kiosk, "hallwatch/chimei/control/acknowledge", request) == 135
    # On its own topic a device can only send device events: an acknowledgement is not one.
    panel = device("chimei", "chimei-panel-w02")
    panel.send("acknowledge", alert=alert_id)
    wait_until(lambda: "unknown_type" in chimei.log_text() or "not_allowed" in chimei.log_text(), what="refusal")
    assert engine_row(chimei.db, alert_id)["state"] == "firing"

    with playwright.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(locale="zh-CN").new_page()
        page.goto(f"http://127.0.0.1:{service.http_port}/county?token={SUPERVISOR_TOKEN}")
        page.wait_for_selector("#conn.up", timeout=10_000)
        page.fill("#by", "王监察")
        row = page.wait_for_selector(f'li[data-alert="{alert_id}"].firing', timeout=10_000)
        row.query_selector("input[name=note]").fill("已电话联系镇中心")
        row.query_selector("button.ack").click()
        # The acknowledged transition comes back up from the township's engine.
        page.wait_for_selector(f'li[data-alert="{alert_id}"].acknowledged', timeout=20_000)
        assert "王监察（县监察中心）" in page.inner_text(f'li[data-alert="{alert_id}"]')
        browser.close()

    # Stored by the engine that owns it, with who and when, and shown on its manager console.
    stored = engine_row(chimei.db, alert_id)
    assert stored["state"] == "acknowledged" and stored["acknowledged_by"] == "county:王监察"
    assert stored["acknowledged_at"] is not None and stored["note"] == "已电话联系镇中心"
    status, township = http_json(chimei.http_port, "/api/v1/sites/chimei/alerts", MANAGER_TOKEN)
    (shown,) = [a for a in township["alerts"] if a["id"] == alert_id]
    assert status == 200 and shown["state"] == "acknowledged" and shown["acknowledged_by"] == "county:王监察"
    wait_until(lambda: county_alerts(service)[alert_id] == ("acknowledged", stored["seq"]), what="the county's copy")

    # The same acknowledgement sent again (same id, same content) is answered the same and changes nothing.
    with sqlite3.connect(f"file:{tmp_path / 'county.db'}?mode=ro", uri=True) as conn:
        ((ack_id,),) = conn.execute("select id from acknowledgements").fetchall()
    body = {"id": ack_id, "by": "王监察", "note": "已电话联系镇中心"}
    path = f"/api/v1/county/sites/chimei/alerts/{alert_id}/acknowledge"
    status, again = http_json(service.http_port, path, SUPERVISOR_TOKEN, body)
    assert status == 200 and again["acknowledgement"]["state"] == "applied", again
    assert acknowledge_events(chimei.db, alert_id) == 1
    assert engine_row(chimei.db, alert_id)["seq"] == stored["seq"]
    # A new acknowledgement of it is refused by the engine, with its reason.
    status, refused = http_json(service.http_port, path, SUPERVISOR_TOKEN, {"by": "王监察"})
    assert status == 409 and refused["error"] == "already_acknowledged", refused

    # An alert the engine does not know: refused there, the reason shown at the county.
    path = "/api/v1/county/sites/chimei/alerts/chimei-no-such-alert/acknowledge"
    status, refused = http_json(service.http_port, path, SUPERVISOR_TOKEN, {"by": "王监察"})
    assert status == 404 and refused["error"] == "unknown_alert" and refused["message"], refused
    assert refused["acknowledgement"]["state"] == "refused"
    with sqlite3.connect(f"file:{tmp_path / 'county.db'}?mode=ro", uri=True) as conn:
        states = dict(conn.execute("select alert, state from acknowledgements where alert != ?", [alert_id]))
    assert states == {"chimei-no-such-alert": "refused"}

    # The bridge's account (last: it takes the bridge's place at the county broker) may not
    # publish a control request there either.
    bridge = ("bridge-chimei", secrets["county"]["bridge-chimei"])
    up = "townships/chimei/hallwatch/chimei/control/acknowledge"
    assert raw_v5_puback(brokers["county"].port, bridge, up, request) == 135


def county_figures(db) -> list[tuple[str, str, dict]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [(site, day, json.loads(p)) for site, day, p in conn.execute("select site, day, payload from figures")]


def test_a_township_cut_off_for_a_day_sends_its_alerts_and_the_day_s_figures_once_when_the_link_returns(
    county_deployment,
):
    brokers, engines, service, device, tmp_path = county_deployment
    service.start()
    xiaguan, relay = engines["xiaguan"], device.relays["xiaguan"]
    wait_until(lambda: "xiaguan" in {s["id"] for s in service.api()["sites"] if s["heard"]}, what="xiaguan heard")
    relay.cut()
    wait_until(lambda: service.api()["links"].get("xiaguan") is False, what="the county sees the link down")

    # Township B, alone, works late into its day (open until 23:59 for the test) and past midnight.
    config = device.configs["xiaguan"]
    late = config.read_text().replace('periods = ["08:30-12:00", "14:30-17:30"]', 'periods = ["08:30-23:59"]')
    config.write_text(late)
    xiaguan.stop()
    xiaguan.start_at, xiaguan.speed = "2026-11-25T23:57:30+08:00", 10.0
    xiaguan.start()
    kiosk = device("xiaguan", "xiaguan-kiosk-1")
    issued = [kiosk.request("ticket.request", service="shebao") for _ in range(3)]
    assert all(reply["ok"] for reply in issued), issued
    switch_off_camera(device, "xiaguan", "w02")
    wait_until(lambda: "figures of xiaguan for 2026-11-25 published" in xiaguan.log_text(), timeout=60, what="B's day")
    # Nothing of it reached the county meanwhile.
    assert not [f for f in county_figures(tmp_path / "county.db") if f[1] == "2026-11-25" and f[0] == "xiaguan"]
    expected = engine_alerts(xiaguan.db)
    assert set(expected) - set(county_alerts(service))  # B alerted while cut off

    relay.restore()
    wait_until(
        lambda: {k: v for k, v in county_alerts(service).items() if k.startswith("xiaguan")} == expected,
        timeout=30,
        what="every alert of B at the county",
    )
    wait_until(
        lambda: [f for f in county_figures(tmp_path / "county.db") if f[:2] == ("xiaguan", "2026-11-25")],
        timeout=30,
        what="B's day figures at the county",
    )
    rows = [f for f in county_figures(tmp_path / "county.db") if f[:2] == ("xiaguan", "2026-11-25")]
    assert len(rows) == 1  # (site, day): once, however many times it was sent
    figures = rows[0][2]
    with sqlite3.connect(f"file:{xiaguan.db}?mode=ro", uri=True) as conn:
        day_tickets = "select count(*) from tickets where site = 'xiaguan' and day = '2026-11-25'"
        (tickets,) = conn.execute(day_tickets).fetchone()
    assert figures["final"] and figures["issued"] == tickets >= 3
    assert figures["alerts"].get("device_shutdown", 0) >= 1
    with sqlite3.connect(f"file:{tmp_path / 'county.db'}?mode=ro", uri=True) as conn:
        seqs = conn.execute("select site, seq from transitions").fetchall()
    assert len(seqs) == len(set(seqs))
    # The county's ranking from the halls' day figures: the latest day, B's windows by 空岗.
    ranking = service.api()["ranking_figures"]
    assert ranking["day"] == "2026-11-25"
    assert {w["site"] for w in ranking["windows"]} <= {"xiaguan"}
    assert sum(figures["vacancy_min"].values()) == pytest.approx(
        sum(w["vacant_min"]["total"] for w in ranking["windows"]), abs=0.5
    )


@pytest.fixture
def county_on_broker(broker, tmp_path, monkeypatch):
    """``hallwatch county --http`` for chimei on the test broker (the engine's part played by
    the test), with these extra options."""
    monkeypatch.setenv("HALLWATCH_SUPERVISOR_TOKEN", SUPERVISOR_TOKEN)
    started = []

    def start(*options: str) -> CountyProcess:
        service = CountyProcess(
            broker,
            tmp_path / "county.db",
            [TOWNSHIPS / "chimei.toml"],
            tmp_path / "county",
            broker_url=broker.url,
            http_port=free_port(),
        )
        service.extra_args = list(options)
        started.append(service.start())
        return service

    yield start
    for service in started:
        service.stop()


def test_the_county_console_is_served_by_the_engine_s_hardened_server(county_on_broker):
    service = county_on_broker("--http-wrong-tokens", "3")
    port = service.http_port
    wait_until(lambda: service.api()["sites"] is not None, what="the county console")
    # Refused by aiohttp's parser before any handler: answered in JSON, with the safe headers.
    answer = exchange(port, request("GET", "/county", b"X-Probe-Nul: a\x00b"))
    assert (answer.status, answer.json()["error"]) == (400, "bad_request"), answer.body
    assert answer.header("X-Content-Type-Options") == "nosniff"
    assert "Traceback" not in service.log_text()
    answer = exchange(port, request("GET", "/healthz"))
    assert answer.status == 200 and answer.header("X-Content-Type-Options") == "nosniff"
    # Wrong tokens: refused, then the address is throttled, the right token too.
    wrong = b"Authorization: Bearer " + b"w" * 32
    assert [exchange(port, request("GET", "/api/v1/county", wrong)).status for _ in range(3)] == [403] * 3
    answer = exchange(port, request("GET", "/api/v1/county", b"Authorization: Bearer " + SUPERVISOR_TOKEN.encode()))
    assert (answer.status, answer.json()["error"]) == (429, "too_many_wrong_tokens")


NOW = "2026-11-25T09:00:00.000+08:00"
PROTOCOL_DAY_FIGURES = next(  # the example of docs/protocol-reference.md
    line
    for line in (ROOT / "docs" / "protocol-reference.md").read_text(encoding="utf-8").splitlines()
    if line.startswith('{"v": 1, "site": "demo", "day": ')
)
SEEN_BY_ENGINE = {  # what an engine publishes for the county (docs/protocol-reference.md), by topic
    "hallwatch/chimei/window/w01/state": {
        "v": 1, "window": "w01", "window_name": "1号窗口", "state": "idle", "staffing": "unstaffed", "staff": None,
        "staff_name": None, "ticket": None, "pause_reason": None, "paused_since": None, "served_today": 0,
        "present": False,
    },
    "hallwatch/chimei/queue/state": {"v": 1, "at": NOW, "waiting": 0, "services": []},
    "hallwatch/chimei/device/chimei-cam-w01/state": {
        "v": 1, "device": "chimei-cam-w01", "kind": "camera", "window": "w01", "online": False,
        "reason": "shutdown", "since": NOW, "tamper": None, "video_ok": True,
    },
    "hallwatch/chimei/alerts": {
        "v": 1, "id": "chimei-000001", "seq": 1, "kind": "window_unstaffed", "audience": "supervision",
        "audiences": ["supervision"], "severity": "warning", "state": "firing", "site": "chimei", "window": "w01",
        "device": None, "staff": None, "staff_name": None, "since": NOW, "until": None, "duration_s": None,
        "acknowledged_at": None, "acknowledged_by": None, "note": None, "due": None, "overdue": False,
        "detail": {"grace_min": 5},
    },
}  # fmt: skip


def answer_validator(document: dict):
    def check(path: str, method: str, status: int, body: dict) -> None:
        schema = document["paths"][path][method]["responses"][str(status)]
        if "$ref" in schema:
            schema = document["components"]["responses"][schema["$ref"].rsplit("/", 1)[1]]
        content = {**schema["content"]["application/json"]["schema"], "components": document["components"]}
        jsonschema.Draft202012Validator(content, format_checker=jsonschema.FormatChecker()).validate(body)

    return check


def test_the_county_routes_answer_as_their_openapi_document_says(broker, county_on_broker):
    service = county_on_broker()
    engine = _client("engine-of-chimei", broker.port)
    stream = http.client.HTTPConnection("127.0.0.1", service.http_port, timeout=20)
    try:
        port = service.http_port
        status, document = http_json(port, "/api/v1/openapi.json", SUPERVISOR_TOKEN)
        assert status == 200 and document == county_openapi_document()
        assert set(document["paths"]) == {
            "/api/v1/openapi.json",
            "/api/v1/county",
            "/api/v1/county/alerts",
            "/api/v1/county/sites/{site}/alerts/{alert}/acknowledge",
            "/api/v1/county/stream",
        }
        stream.request("GET", "/api/v1/county/stream", headers={"Authorization": f"Bearer {SUPERVISOR_TOKEN}"})
        events = stream.getresponse()
        assert events.status == 200
        for topic, body in SEEN_BY_ENGINE.items():
            engine.publish(topic, json.dumps(body), 1).wait_for_publish(10)
        engine.publish("townships/chimei/bridge/state", b"0", 1).wait_for_publish(10)
        day = {**json.loads(PROTOCOL_DAY_FIGURES), "site": "chimei"}
        engine.publish("hallwatch/chimei/figures/day", json.dumps(day), 1, retain=True).wait_for_publish(10)
        wait_until(lambda: service.api()["alerts"], what="the alert at the county")

        check = answer_validator(document)
        status, overview = http_json(port, "/api/v1/county", SUPERVISOR_TOKEN)
        check("/api/v1/county", "get", status, overview)
        assert overview["alerts"][0]["id"] == "chimei-000001" and overview["devices_offline"]
        assert overview["ranking"]["windows"] and overview["ranking_figures"]["windows"]
        status, listed = http_json(port, "/api/v1/county/alerts?site=chimei&state=firing", SUPERVISOR_TOKEN)
        check("/api/v1/county/alerts", "get", status, listed)
        status, refused = http_json(port, "/api/v1/county/alerts?kind=nonsense", SUPERVISOR_TOKEN)
        check("/api/v1/county/alerts", "get", status, refused)
        status, empty = http_json(port, "/api/v1/county/alerts?state=", SUPERVISOR_TOKEN)  # (found by schemathesis)
        assert (status, empty["field"]) == (400, "state")
        check("/api/v1/county/alerts", "get", status, empty)
        status, nowhere = http_json(port, "/api/v1/county/alerts?site=nowhere", SUPERVISOR_TOKEN)
        assert (status, nowhere["error"]) == (404, "unknown_site")
        check("/api/v1/county/alerts", "get", status, nowhere)
        ack = "/api/v1/county/sites/{site}/alerts/{alert}/acknowledge"
        status, pending = http_json(
            port, ack.format(site="chimei", alert="chimei-000001"), SUPERVISOR_TOKEN, {"note": "已电话督促"}
        )
        assert status == 202  # no engine answers here: sent, and sent again until answered
        check(ack, "post", status, pending)
        # The engine answers from now on: applied.
        subscribed = threading.Event()
        engine.on_subscribe = lambda *_: subscribed.set()
        engine.message_callback_add(
            "hallwatch/chimei/control/acknowledge",
            lambda client, _u, m: client.publish(
                "hallwatch/chimei/control/acknowledge/reply",
                json.dumps({"v": 1, "re": json.loads(m.payload)["id"], "ok": True}),
                1,
            ),
        )
        engine.subscribe("hallwatch/chimei/control/acknowledge", 1)
        assert subscribed.wait(10)
        status, applied = http_json(
            port, ack.format(site="chimei", alert="chimei-000001"), SUPERVISOR_TOKEN, {"note": "已到岗", "id": "a-2"}
        )
        assert status == 200 and applied["acknowledgement"]["state"] == "applied"
        check(ack, "post", status, applied)
        status, unknown = http_json(port, ack.format(site="nowhere", alert="x-1"), SUPERVISOR_TOKEN, {"note": ""})
        check(ack, "post", status, unknown)

        names, check_event = event_validator(document, "/api/v1/county/stream")
        seen: set[str] = set()
        buffer_kind = None
        deadline = time.monotonic() + 30
        while seen != names:
            assert time.monotonic() < deadline, f"events seen: {sorted(seen)} of {sorted(names)}"
            line = events.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                buffer_kind = line[7:]
            elif line.startswith("data: ") and buffer_kind:
                check_event(buffer_kind, line[6:])
                seen.add(buffer_kind)
    finally:
        stream.close()
        engine.loop_stop()
        engine.disconnect()


@pytest.mark.parametrize("deployment", ["one engine", "two shards"])
def test_the_county_console_reads_one_engine_for_all_sites_and_sharded_engines_alike(
    deployment, broker, engine_factory, county_on_broker, tmp_path
):
    """Not only bridged townships: one engine serving every hall, or the halls shared out
    between engines (--shard i/n), publish on plain topics the county service reads as well."""
    configs = []
    for township in ("chimei", "xiaguan"):
        configs.append(tmp_path / f"{township}.toml")
        configs[-1].write_text((TOWNSHIPS / f"{township}.toml").read_text(encoding="utf-8") + QUICK)
    if deployment == "one engine":
        engines = [engine_factory(configs=configs).start()]
    else:
        engines = [
            EngineProcess(
                broker,
                tmp_path / f"shard-{i}.db",
                configs,
                tmp_path / f"shard-{i}",
                client_id=f"hallwatch-engine-{i}",
                extra_args=["--shard", f"{i}/2"],
            ).start()
            for i in (1, 2)
        ]
    service = county_on_broker()
    clients = []
    try:
        for township, staff in (("chimei", "s201"), ("xiaguan", "s301")):
            panel = Device(broker.port, f"{township}-panel-w01", site=township)
            camera = Device(broker.port, f"{township}-cam-w01", site=township)
            clients += [panel, camera]
            camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": "w01"}), channel="status")
            assert panel.request("staff.login", staff=staff)["ok"]
            camera.send("presence", window="w01", present=False, count=0)

        def unstaffed_at_county() -> set[str]:
            return {a["site"] for a in service.api()["alerts"] if a["kind"] == "window_unstaffed"}

        wait_until(lambda: unstaffed_at_county() == {"chimei", "xiaguan"}, timeout=30)
        fired = {}
        for engine in engines:
            fired |= engine_alerts(engine.db)
        assert {i: s for i, (s, _) in county_alerts(service).items() if i in fired} == {
            i: s for i, (s, _) in fired.items()
        }
        if deployment == "two shards":  # each hall's alerts were one shard's only
            owners = [{i.split("-")[0] for i in engine_alerts(engine.db)} for engine in engines]
            assert set().union(*owners) == {"chimei", "xiaguan"} and not (owners[0] & owners[1]), owners
        halls = {s["id"] for s in service.api()["sites"]}
        assert {"chimei", "xiaguan"} <= halls
    finally:
        for client in clients:
            client.close()
        for engine in engines:
            engine.stop()


def engine_store_id(db) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("select value from store_meta where key = 'store_id'").fetchone()[0]


def test_an_engine_restarted_on_a_new_store_has_its_new_alerts_shown_at_the_county(
    broker, engine_factory, county_on_broker, tmp_path
):
    """The engine's store moved aside (a disk replaced): the engine starts again on a new store,
    numbering its alert transitions from 1 again. The county follows the new store's numbers
    (not taking them for duplicates), retires the old store's alerts and says so."""
    config = tmp_path / "chimei.toml"
    config.write_text((TOWNSHIPS / "chimei.toml").read_text(encoding="utf-8") + QUICK)
    engine = engine_factory(configs=[config]).start()
    service = county_on_broker()
    panel = Device(broker.port, "chimei-panel-w01", site="chimei")
    camera = Device(broker.port, "chimei-cam-w01", site="chimei")

    def leave_w01_empty() -> None:
        # (said again for the new store's engine, which did not count the retained one here: a
        # camera's heartbeats would do it too)
        camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": "w01"}), channel="status")
        assert panel.request("staff.login", staff="s201")["ok"]
        camera.send("presence", window="w01", present=False, count=0)

    def unstaffed_at_county() -> dict[str, str]:  # alert id -> its store
        return {a["id"]: a["store_id"] for a in service.api()["alerts"] if a["kind"] == "window_unstaffed"}

    try:
        leave_w01_empty()
        wait_until(lambda: unstaffed_at_county(), timeout=30, what="the first store's alert at the county")
        first = engine_store_id(engine.db)
        assert set(unstaffed_at_county().values()) == {first}
        assert engine.stop() == 0
        for path in tmp_path.glob(f"{engine.db.name}*"):
            path.unlink()
        engine.start()
        second = engine_store_id(engine.db)
        assert second != first
        leave_w01_empty()
        wait_until(
            lambda: second in unstaffed_at_county().values(), timeout=30, what="the new store's alert at the county"
        )
        fired = engine_alerts(engine.db)  # numbered from 1 again, under ids the county had
        assert {i: s for i, (s, _) in county_alerts(service).items() if i in fired} == {
            i: s for i, (s, _) in fired.items()
        }
        assert set(unstaffed_at_county().values()) == {second}  # the first store's: retired
        (hall,) = [s for s in service.api()["sites"] if s["id"] == "chimei"]
        assert hall["store_changed_at"] is not None
        assert f"chimei's engine started on a new store ({second}, was {first})" in service.log_text()
        # Each engine published the day before its start on starting (and the first the days
        # before that the county asked for): the first store's figures stay.
        days = {day: f["store_id"] for site, day, f in county_figures(tmp_path / "county.db") if site == "chimei"}
        assert "2026-11-24" in days and set(days.values()) == {first}
    finally:
        panel.close()
        camera.close()


COUNTY_SCHEMATHESIS = """\
max-stream-events = 1

[parameters]
"path.site" = "chimei"
"path.alert" = "chimei-000001"

# An acknowledgement the engine refuses (an alert already acknowledged, resolved, unknown
# there) is answered 409 or 422; one it has not answered yet, 202.
[checks.positive_data_acceptance]
expected-statuses = ["2xx", 401, 403, 404, 409, 422, 429]
"""


def test_schemathesis_finds_nothing_in_the_county_console_s_api(broker, county_on_broker, tmp_path):
    """The county console's routes against its own OpenAPI document, by schemathesis (every
    phase, every check), as tests/test_api_contract.py runs it on the engine's: a hall's engine
    played here publishes what the county reads and answers its acknowledgements."""
    service = county_on_broker()
    engine = _client("engine-of-chimei", broker.port)
    try:
        subscribed = threading.Event()
        engine.on_subscribe = lambda *_: subscribed.set()

        def answer(client, _userdata, message) -> None:
            request = json.loads(message.payload)
            body = {"v": 1, "re": request["id"], "ok": request["alert"] == "chimei-000001"}
            if not body["ok"]:
                body |= {"error": "unknown_alert", "message": "没有这条告警"}
            client.publish("hallwatch/chimei/control/acknowledge/reply", json.dumps(body), 1)

        engine.message_callback_add("hallwatch/chimei/control/acknowledge", answer)
        engine.subscribe("hallwatch/chimei/control/acknowledge", 1)
        assert subscribed.wait(10)
        for topic, body in SEEN_BY_ENGINE.items():
            engine.publish(topic, json.dumps(body), 1).wait_for_publish(10)
        wait_until(lambda: service.api()["alerts"], what="the alert at the county")

        (tmp_path / "schemathesis.toml").write_text(COUNTY_SCHEMATHESIS)
        url = f"http://127.0.0.1:{service.http_port}/api/v1/openapi.json"
        done = subprocess.run(
            schemathesis_command(url, tmp_path),
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
            timeout=600,
        )
        text = done.stdout + done.stderr
        assert done.returncode == 0, text[-20000:]
        requests = answered(text, tmp_path)
        assert any(m == "POST" and u.endswith("/acknowledge") and s == 200 for m, u, s in requests), requests
    finally:
        engine.loop_stop()
        engine.disconnect()
