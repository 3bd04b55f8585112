"""Township to county: two real Mosquitto brokers, each running the production configuration
with its generated accounts, the township bridged up to the county over TLS with the bridge
file the county generated (broker_config/bridge-to-county.conf)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROOT, EngineProcess
from deploy_helpers import broker_config, make_certs, production_broker, run_cli
from mqtt_helpers import Device, Listener

pytestmark = pytest.mark.integration

COUNTY = ROOT / "examples" / "county"
CHIMEI = COUNTY / "townships" / "chimei.toml"
UP = "townships/chimei/hallwatch/chimei/alerts"
LINK = "townships/chimei/bridge/state"


def test_the_bridge_template_renders_one_account_per_township(tmp_path):
    result = run_cli(
        "broker-config",
        "--config",
        str(COUNTY / "county-centre.toml"),
        "--out",
        str(tmp_path / "c"),
        "--townships",
        "chimei,xiaguan",
        "--county-url",
        "mqtts://county.example:8883",
    )
    assert result.returncode == 0, result.stderr
    secrets = {
        line.split(",")[0]: line.split(",")[1]
        for line in (tmp_path / "c" / "credentials.csv").read_text().splitlines()[1:]
    }
    chimei = (tmp_path / "c" / "bridges" / "chimei.conf").read_text()
    assert "address county.example:8883" in chimei
    assert f"remote_username bridge-chimei\nremote_password {secrets['bridge-chimei']}\n" in chimei
    assert "remote_clientid bridge-chimei\n" in chimei  # the county uses the user name as client id anyway
    assert "bridge_cafile /mosquitto/config/generated/bridge.d/county-ca.crt" in chimei
    assert "topic +/alerts out 1 hallwatch/ townships/chimei/hallwatch/" in chimei
    assert "$" not in chimei.replace("$SYS", "")  # every placeholder filled in
    acl = (tmp_path / "c" / "acl").read_text()
    bridge_acl = acl.split("user bridge-xiaguan\n")[1].split("\n\n")[0].splitlines()
    assert bridge_acl[0] == "topic read townships/xiaguan/hallwatch/+/control/+"
    # It writes what its bridge carries up, never a control request (only the county service may).
    assert "topic write townships/xiaguan/hallwatch/+/alerts" in bridge_acl
    assert "topic write townships/xiaguan/bridge/state" in bridge_acl
    assert not [line for line in bridge_acl if line.startswith("topic write") and line.endswith("/control/+")]
    assert not [line for line in bridge_acl if line.endswith("#")]
    assert "user hallwatch-county\n" in acl and "topic write townships/+/hallwatch/+/control/+" in acl
    assert "topic +/control/+ in 1 hallwatch/ townships/chimei/hallwatch/" in chimei
    assert "topic read townships/+/hallwatch/+/alerts" in acl
    # Without the county's address there is nothing to write in the bridge files.
    result = run_cli(
        "broker-config",
        "--config",
        str(COUNTY / "county-centre.toml"),
        "--out",
        str(tmp_path / "d"),
        "--townships",
        "chimei",
    )
    assert result.returncode == 2 and "--county-url" in result.stderr


def test_alerts_reach_the_county_and_wait_out_a_county_outage(tmp_path, tmp_path_factory):
    certs = make_certs(tmp_path_factory.mktemp("certs"), "localhost", "127.0.0.1")
    county_var, township_var = tmp_path / "county-var", tmp_path / "township-var"
    for var in (county_var, township_var):
        var.mkdir()
        (var / "certs").symlink_to(certs)
    county = production_broker(tmp_path / "county", county_var)
    county_secrets = broker_config(
        county_var / "broker",
        COUNTY / "county-centre.toml",
        extra=(
            "--townships",
            "chimei",
            "--county-url",
            f"mqtts://127.0.0.1:{county.tls_port}",
            "--county-ca",
            str(certs / "ca.crt"),
            "--bridge-retry",
            "1",
        ),
    )
    township_secrets = broker_config(township_var / "broker", CHIMEI)
    # What the county's IT office hands the township: its bridge file.
    shutil.copy(county_var / "broker" / "bridges" / "chimei.conf", township_var / "broker" / "bridge.d")
    township = production_broker(tmp_path / "township", township_var)
    county.start()
    township.start()
    engine = EngineProcess(
        township,
        tmp_path / "chimei.db",
        [CHIMEI],
        tmp_path / "engine",
        broker_url=township.url_for("hallwatch-engine", township_secrets["hallwatch-engine"]),
    )
    clients = []
    try:
        engine.start()
        # The county's supervision console: a persistent session, so that what arrives while
        # it reconnects after the county broker's restart is kept for it.
        console = Listener(
            county.port,
            "townships/+/hallwatch/+/alerts",
            LINK,
            client_id="county-console",
            clean=False,
            auth=("hallwatch-supervision", county_secrets["hallwatch-supervision"]),
        )
        console.client.reconnect_delay_set(1, 1)
        county_board = Listener(
            county.port,
            "townships/+/hallwatch/+/queue/state",
            auth=("hallwatch-county-board", county_secrets["hallwatch-county-board"]),
        )
        local = Listener(
            township.port,
            "hallwatch/chimei/alerts",
            auth=("hallwatch-supervision", township_secrets["hallwatch-supervision"]),
        )
        clients += [console, county_board, local]
        console.wait_for(lambda m: [p for t, p, _, _ in m if t == LINK and p == b"1"], timeout=15)

        def device(device_id):
            d = Device(township.port, device_id, site="chimei", password=township_secrets[device_id])
            clients.append(d)
            return d

        def switch_off(camera: Device, window: str) -> None:
            camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": window}), channel="status")
            camera.raw(json.dumps({"v": 1, "state": "offline", "reason": "shutdown"}), channel="status")

        kiosk, panel = device("chimei-kiosk-1"), device("chimei-panel-w02")
        switch_off(device("chimei-cam-w01"), "w01")
        first = local.wait_topic("hallwatch/chimei/alerts")[0]
        assert console.wait_topic(UP)[0] == first  # the same alert, at the county, under the township's prefix
        assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
        county_board.wait_for(lambda m: [p for t, p, _, _ in m if json.loads(p).get("waiting") == 1])

        county.stop()
        # The township works on: tickets issued and called, alerts raised.
        assert [kiosk.request("ticket.request", service="shebao")["ticket"]["no"] for _ in range(3)] == [
            "A002",
            "A003",
            "A004",
        ]
        assert panel.request("staff.login", staff="s202")["ok"]
        assert panel.request("call.next")["ticket"] == "A001"
        switch_off(device("chimei-cam-w02"), "w02")
        switch_off(device("chimei-cam-w03"), "w03")
        raised = local.wait_topic("hallwatch/chimei/alerts", count=3)
        during_outage = raised[1:]
        # The township's broker restarts too (an orderly restart: it saves what it queued for
        # the bridge, whose local session persists).
        township.restart()

        county.start()
        arrived = console.wait_topic(UP, count=3, timeout=30)
        lost = [a for a in raised if a not in arrived]
        print(
            f"\nbridge: {len(during_outage)} alerts raised while the county broker was down, "
            f"{len(arrived) - 1} of them delivered after it returned, {len(lost)} lost"
        )
        assert lost == []
        assert [a["id"] for a in arrived] == [a["id"] for a in raised]  # in order, none twice
        assert {a["device"] for a in during_outage} == {"chimei-cam-w02", "chimei-cam-w03"}
        # The queue state retained at the county is the township's latest: three waiting.
        county_board = Listener(
            county.port,
            "townships/+/hallwatch/+/queue/state",
            auth=("hallwatch-county-board", county_secrets["hallwatch-county-board"]),
        )
        clients.append(county_board)
        (state,) = county_board.wait_topic("townships/chimei/hallwatch/chimei/queue/state")
        assert state["waiting"] == 3
        console.wait_for(lambda m: [p for t, p, _, _ in m if t == LINK][-1:] == [b"1"], timeout=15)
    finally:
        for client in clients:
            client.close()
        engine.stop()
        township.stop()
        county.stop()
