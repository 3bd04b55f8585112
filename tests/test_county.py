"""The county service (``hallwatch county``) on a county deployed as townships: three real
Mosquitto brokers running the production configuration with their generated accounts (two
townships and the county), each township bridged up with the bridge file the county generated
(broker_config/bridge-to-county.conf), an engine per township, and the county service with
its console in a real browser."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import urllib.request

import pytest
from browser import launch
from conftest import ROOT, EngineProcess, free_port, wait_until
from deploy_helpers import broker_config, make_certs, production_broker
from mqtt_helpers import Device
from web_helpers import SUPERVISOR_TOKEN

from queue_engine.county.model import County, SeqTrack

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


# -- three brokers -----------------------------------------------------------------------------
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


@pytest.fixture
def county_deployment(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HALLWATCH_SUPERVISOR_TOKEN", SUPERVISOR_TOKEN)
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
    brokers, engines, secrets = {"county": county}, {}, {}
    for township, config in configs.items():
        var = tmp_path / f"{township}-var"
        var.mkdir()
        (var / "certs").symlink_to(certs)
        secrets[township] = broker_config(var / "broker", config)
        shutil.copy(county_var / "broker" / "bridges" / f"{township}.conf", var / "broker" / "bridge.d")
        brokers[township] = production_broker(tmp_path / township, var).start()
        engines[township] = EngineProcess(
            brokers[township],
            tmp_path / f"{township}.db",
            [config],
            tmp_path / f"engine-{township}",
            broker_url=brokers[township].url_for("hallwatch-engine", secrets[township]["hallwatch-engine"]),
        ).start()
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
