"""Broker security against a real Mosquitto running the production configuration
(broker_config/mosquitto.conf, as docker-compose.yml mounts it) with the accounts and ACL that
`hallwatch broker-config` generates from the demo site."""

from __future__ import annotations

import inspect
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import stat
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import paho.mqtt.client as paho
import pytest
from asyncapi_helpers import load as asyncapi_document
from conftest import DEMO_SITE, ROOT, EngineProcess, wait_until
from deploy_helpers import broker_config, connect, make_certs, production_broker, run_cli
from mqtt_helpers import Device, Listener
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from queue_engine.config import load_configs, load_site
from queue_engine.deploy import brokerconf
from queue_engine.deploy.sharding import shard_plan
from queue_engine.wire import Topics

pytestmark = pytest.mark.integration

ALERTS = "hallwatch/demo/alerts"


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"), "localhost", "127.0.0.1")


@pytest.fixture
def var(tmp_path, certs):
    """The repository's var/ for one test: var/broker from broker-config, var/certs."""
    var = tmp_path / "var"
    var.mkdir()
    (var / "certs").symlink_to(certs)
    return var


@pytest.fixture
def secrets(var):
    return broker_config(var / "broker", DEMO_SITE)


@pytest.fixture
def secure_broker(tmp_path, var, secrets):
    b = production_broker(tmp_path / "broker", var).start()
    yield b
    b.stop()


def engine_process(broker, secrets, tmp_path) -> EngineProcess:
    """The engine of the demo site, with its own account."""
    return EngineProcess(
        broker,
        tmp_path / "hallwatch.db",
        [DEMO_SITE],
        tmp_path / "engine",
        broker_url=broker.url_for("hallwatch-engine", secrets["hallwatch-engine"]),
    )


@pytest.fixture
def secure_engine(secure_broker, secrets, tmp_path):
    engine = engine_process(secure_broker, secrets, tmp_path)
    yield engine.start()
    engine.stop()


def device(broker, secrets, device_id: str) -> Device:
    return Device(broker.port, device_id, password=secrets[device_id])


# -- the generated files ---------------------------------------------------------------------
def test_generated_secrets_are_owner_only_hashed_and_kept_across_runs(var):
    out = var / "broker"
    first = broker_config(out, DEMO_SITE)
    site = load_site(DEMO_SITE)
    assert set(first) == {d.id for d in site.devices} | {
        "hallwatch-engine",
        "hallwatch-board-demo",
        "hallwatch-supervision",
        "hallwatch-county",
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o711  # the broker's user may reach its files, not list them
    assert stat.S_IMODE((out / "bridge.d").stat().st_mode) == 0o755
    for name in ("passwd", "acl", "credentials.csv", "credentials.md", "engine.env"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    passwd = (out / "passwd").read_text()
    for user, secret in first.items():
        assert secret not in passwd  # hashed by mosquitto_passwd, never in clear
        assert f"{user}:$7$" in passwd  # Mosquitto 2's PBKDF2-SHA512
    assert len(set(first.values())) == len(first)
    assert "0600" in (out / "credentials.md").read_text()
    assert (out / "engine.env").read_text().splitlines()[-1] == (
        f"HALLWATCH_BROKER=mqtt://hallwatch-engine:{first['hallwatch-engine']}@mosquitto:1883"
    )
    # A second run keeps every secret; --rotate changes only the account named.
    assert broker_config(out, DEMO_SITE) == first
    rotated = broker_config(out, DEMO_SITE, extra=("--rotate", "kiosk-1"))
    assert rotated["kiosk-1"] != first["kiosk-1"]
    assert {u: s for u, s in rotated.items() if u != "kiosk-1"} == {u: s for u, s in first.items() if u != "kiosk-1"}


def test_broker_config_never_writes_through_a_symlink_planted_in_its_directory(tmp_path):
    out = tmp_path / "broker"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious")
    # At a file's own name, and at the name its temporary file once had.
    for name in ("credentials.md", ".acl.tmp", ".passwd.plain"):
        (out / name).symlink_to(victim)
    broker_config(out, DEMO_SITE)
    assert victim.read_text() == "precious"
    for name in ("passwd", "acl", "credentials.csv", "credentials.md", "engine.env"):
        assert not (out / name).is_symlink() and stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert "kiosk-1" in (out / "acl").read_text()


def test_every_engine_topic_has_its_place_in_the_acl():
    """A topic the engine publishes that the ACL does not grant is dropped by the broker
    without a word: a new Topics method must be classified in brokerconf."""
    methods = {name for name, _ in inspect.getmembers(Topics, inspect.isfunction) if not name.startswith("_")}
    assert methods - {"subscriptions", "device", "control"} == set(brokerconf.ENGINE_WRITES)
    assert set(brokerconf.BOARD_READS) | set(brokerconf.SUPERVISION_READS) | set(brokerconf.BRIDGED) <= methods


def test_broker_config_refuses_device_ids_one_broker_cannot_tell_apart(tmp_path):
    text = DEMO_SITE.read_text(encoding="utf-8")
    clash = tmp_path / "clash.toml"
    clash.write_text(text.replace('id = "kiosk-1"', 'id = "hallwatch-engine"', 1), encoding="utf-8")
    result = run_cli("broker-config", "--config", str(clash), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"{clash}: devices[0].id:" in result.stderr and "reserved for the engine account" in result.stderr
    other = tmp_path / "other.toml"
    other.write_text(text.replace('id = "demo"', 'id = "demo2"', 1), encoding="utf-8")
    result = run_cli(
        "broker-config", "--config", str(DEMO_SITE), "--config", str(other), "--out", str(tmp_path / "out")
    )
    assert result.returncode == 2
    assert f"{other}: devices[0].id: device id 'kiosk-1' is also a device of site demo" in result.stderr


# -- the broker -------------------------------------------------------------------------------
def test_anonymous_clients_and_wrong_passwords_are_refused(secure_broker, secrets, certs, tmp_path):
    for port, ca in ((secure_broker.port, None), (secure_broker.tls_port, certs / "ca.crt")):
        _, rc = connect(port, "visitor-laptop", tls_ca=ca)
        assert rc == paho.CONNACK_REFUSED_NOT_AUTHORIZED or rc.value == 135, rc  # not authorised
        _, rc = connect(port, "kiosk-1", ("kiosk-1", secrets["panel-w01"]), tls_ca=ca)
        assert rc != 0
        client, rc = connect(port, "kiosk-1", ("kiosk-1", secrets["kiosk-1"]), tls_ca=ca)
        assert rc == 0
        client.disconnect()
        client.loop_stop()
    # The engine with a wrong password gives up at once with exit code 3, saying why.
    result = run_cli(
        "engine",
        "--config",
        str(DEMO_SITE),
        "--db",
        str(tmp_path / "x.db"),
        "--broker",
        secure_broker.url_for("hallwatch-engine", "wrong"),
        "--connect-timeout",
        "5",
    )
    assert result.returncode == 3
    assert "refused the engine" in result.stderr


def test_the_engine_with_its_account_works_end_to_end(secure_broker, secure_engine, secrets):
    board = Listener(
        secure_broker.port,
        "hallwatch/demo/board/call",
        "hallwatch/demo/queue/state",
        "hallwatch/demo/window/+/state",
        ALERTS,
        auth=("hallwatch-board-demo", secrets["hallwatch-board-demo"]),
    )
    supervision = Listener(
        secure_broker.port,
        ALERTS,
        "hallwatch/demo/board/call",
        auth=("hallwatch-supervision", secrets["hallwatch-supervision"]),
    )
    display = Listener(
        secure_broker.port, "hallwatch/demo/queue/state", client_id="board-1", auth=("board-1", secrets["board-1"])
    )
    kiosk, panel, camera = (device(secure_broker, secrets, d) for d in ("kiosk-1", "panel-w02", "cam-w02"))
    try:
        assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
        assert panel.request("staff.login", staff="s001")["ok"]
        assert panel.request("call.next")["ticket"] == "A001"
        (call,) = board.wait_topic("hallwatch/demo/board/call")
        assert (call["ticket"], call["window"]) == ("A001", "w02")
        assert display.wait_topic("hallwatch/demo/queue/state")[-1]["v"] == 1
        # A supervision camera switched off in working hours: the supervision office sees it.
        camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": "w02"}), channel="status")
        camera.raw(json.dumps({"v": 1, "state": "offline", "reason": "shutdown"}), channel="status")
        alert = supervision.wait_for(lambda m: [json.loads(p) for t, p, _, _ in m if t == ALERTS])[0]
        assert (alert["kind"], alert["device"]) == ("device_shutdown", "cam-w02")
        # Each reader sees its own topics only: no alert for the board, no call for supervision.
        assert board.on(ALERTS) == []
        assert supervision.on("hallwatch/demo/board/call") == []
    finally:
        for client in (board, supervision, display, kiosk, panel, camera):
            client.close()


def test_a_device_cannot_speak_for_another_nor_read_what_is_not_its_own(secure_broker, secure_engine, secrets):
    panel = device(secure_broker, secrets, "panel-w01")
    camera = device(secure_broker, secrets, "cam-w01")
    snoop = Listener(
        secure_broker.port, ALERTS, "hallwatch/#", client_id="cam-w03", auth=("cam-w03", secrets["cam-w03"])
    )
    supervision = Listener(secure_broker.port, ALERTS, auth=("hallwatch-supervision", secrets["hallwatch-supervision"]))
    kiosk, rc = connect(secure_broker.port, "kiosk-1", ("kiosk-1", secrets["kiosk-1"]), v5=True)
    assert rc == 0
    try:
        assert panel.request("staff.login", staff="s002")["ok"]
        # kiosk-1 forges panel-w01's events: the broker refuses them (MQTT 5: PUBACK 135).
        acks: dict[int, int] = {}
        acked = threading.Event()

        def on_publish(_c, _u, mid, reason_code, _props):
            acks[mid] = reason_code.value
            acked.set()

        kiosk.on_publish = on_publish
        forged = {"v": 1, "id": "forged-1", "type": "staff.logout"}
        info = kiosk.publish("hallwatch/demo/dev/panel-w01/event", json.dumps(forged), qos=1)
        assert acked.wait(10)
        assert acks[info.mid] == 135  # not authorised
        # Nothing reached the engine: the panel is still signed in, and no event was stored.
        assert panel.request("call.next")["error"] == "queue_empty"  # not "not_logged_in"
        with sqlite3.connect(secure_engine.db) as db:
            assert db.execute("select count(*) from events where event_id = 'forged-1'").fetchone()[0] == 0
        # A camera switched off: the supervision account gets the alert, another camera
        # subscribed to the alerts (and to everything) gets nothing at all. Mosquitto 2.0's
        # acl_file grants the SUBSCRIBE itself but delivers nothing the ACL does not allow.
        camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": "w01"}), channel="status")
        camera.raw(json.dumps({"v": 1, "state": "offline", "reason": "shutdown"}), channel="status")
        supervision.wait_topic(ALERTS)
        reply = panel.request("call.next")  # a full round trip after the alert: it had time to arrive
        assert reply["error"] == "queue_empty"
        assert snoop.messages == []
    finally:
        kiosk.disconnect()
        kiosk.loop_stop()
        for client in (panel, camera, snoop, supervision):
            client.close()


def test_events_sent_while_the_engine_is_down_survive_a_broker_restart(secure_broker, secure_engine, secrets):
    kiosk = device(secure_broker, secrets, "kiosk-1")
    assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
    assert secure_engine.stop() == 0
    before = [kiosk.send("ticket.request", service="shebao") for _ in range(5)]
    kiosk.close()
    secure_broker.restart()  # orderly: the broker saves the engine's session and its queue
    kiosk = device(secure_broker, secrets, "kiosk-1")
    try:
        after = [kiosk.send("ticket.request", service="shebao") for _ in range(3)]
        secure_engine.start()
        numbers = [kiosk.wait_reply(event_id)["ticket"]["no"] for event_id in before + after]
        assert numbers == [f"A{n:03d}" for n in range(2, 10)]  # all eight, in the order sent
        with sqlite3.connect(secure_engine.db) as db:
            assert db.execute("select count(*) from tickets").fetchone()[0] == 9
    finally:
        kiosk.close()


def test_the_engine_connects_over_tls_with_its_ca_file(secure_broker, secrets, certs, tmp_path):
    password = secrets["hallwatch-engine"]
    tls_url = f"mqtts://hallwatch-engine:{password}@localhost:{secure_broker.tls_port}"
    engine = EngineProcess(
        secure_broker,
        tmp_path / "tls.db",
        [DEMO_SITE],
        tmp_path / "engine",
        broker_url=tls_url,
        extra_args=["--ca-file", str(certs / "ca.crt")],
    )
    kiosk = device(secure_broker, secrets, "kiosk-1")  # on the plain listener of the same broker
    try:
        engine.start()
        assert "connected to mqtts://hallwatch-engine@localhost" in engine.log_text()
        assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
    finally:
        kiosk.close()
        engine.stop()
    # A broker whose certificate the given CA did not sign is not trusted.
    stranger = make_certs(tmp_path / "stranger", "localhost", "127.0.0.1")
    result = run_cli(
        "engine",
        "--config",
        str(DEMO_SITE),
        "--db",
        str(tmp_path / "y.db"),
        "--broker",
        tls_url,
        "--ca-file",
        str(stranger / "ca.crt"),
        "--connect-timeout",
        "1",
    )
    assert result.returncode == 3
    assert "certificate verify failed" in result.stderr or "CERTIFICATE_VERIFY_FAILED" in result.stderr


def _mosquitto_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        return None


@pytest.mark.skipif(
    os.geteuid() != 0 or _mosquitto_user() is None,
    reason="needs root and the mosquitto user, to let the broker drop root as in production",
)
def test_the_broker_reads_its_files_as_its_own_user_and_reloads_them(tmp_path):
    """The documented procedure: the files are given to the broker's user (here Debian's
    `mosquitto`; 1883 in the container), the broker drops root before reading them, and a
    device added later is let in after a reload (SIGHUP), with nobody disconnected."""
    user = _mosquitto_user()
    base = Path(tempfile.mkdtemp(prefix="hallwatch-perms-", dir="/tmp"))
    os.chmod(base, 0o711)
    broker = None
    try:
        var = base / "var"
        var.mkdir(mode=0o711)
        make_certs(var / "certs", "localhost", "127.0.0.1")
        site = tmp_path / "site.toml"
        site.write_text(DEMO_SITE.read_text(encoding="utf-8"), encoding="utf-8")
        secrets = broker_config(var / "broker", site)

        def give_to_broker():  # sudo chown 1883:1883 var/broker/passwd var/broker/acl var/certs/server.key
            for path in (var / "broker" / "passwd", var / "broker" / "acl", var / "certs" / "server.key"):
                os.chown(path, user.pw_uid, user.pw_gid)

        give_to_broker()
        data = base / "data"
        broker = production_broker(data, var, drop_root=True)
        for path in [data, *data.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        broker.start()
        kiosk, rc = connect(broker.port, "kiosk-1", ("kiosk-1", secrets["kiosk-1"]))
        assert rc == 0, broker.log_text()
        # A new kiosk: the site file gains a device, broker-config runs again, the broker reloads.
        site.write_text(
            site.read_text(encoding="utf-8") + '\n[[devices]]\nid = "kiosk-2"\nkind = "kiosk"\n', encoding="utf-8"
        )
        _, rc = connect(broker.port, "kiosk-2", ("kiosk-2", "unknown yet"))
        assert rc != 0
        again = broker_config(var / "broker", site)
        assert again["kiosk-1"] == secrets["kiosk-1"] and "kiosk-2" in again
        give_to_broker()
        broker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "Reloading config" not in broker.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        new, rc = connect(broker.port, "kiosk-2", ("kiosk-2", again["kiosk-2"]))
        assert rc == 0, broker.log_text()
        assert kiosk.is_connected()  # the reload disconnected nobody
        for client in (kiosk, new):
            client.disconnect()
            client.loop_stop()
        assert "Error" not in broker.log_text()
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- one account, one client id: no session takeover ---------------------------------------------
# kiosk-1's credentials have leaked. Mosquitto closes the older connection of a client id when a
# new one arrives; the production broker replaces every client id by the account's user name
# (use_username_as_clientid), so whatever id the attacker asks for, it can displace only kiosk-1.
ATTACKER = "kiosk-1"
TAKEN_IDS = ("hallwatch-engine", "panel-w02")  # the engine's client id, another device's


@pytest.fixture
def hall(tmp_path, var):
    """The demo hall with a second kiosk (the one citizens use while kiosk-1's credentials are
    abused), its production broker, and the engine as production runs it: client id
    hallwatch-engine, its user name."""
    site = tmp_path / "site.toml"
    site.write_text(
        DEMO_SITE.read_text(encoding="utf-8") + '\n[[devices]]\nid = "kiosk-2"\nkind = "kiosk"\n', encoding="utf-8"
    )
    secrets = broker_config(var / "broker", site)
    broker = production_broker(tmp_path / "broker", var).start()
    engine = EngineProcess(
        broker,
        tmp_path / "hallwatch.db",
        [site],
        tmp_path / "engine",
        client_id="hallwatch-engine",
        broker_url=broker.url_for("hallwatch-engine", secrets["hallwatch-engine"]),
    )
    clients: list = []

    def device(device_id: str, **kwargs) -> Device:
        clients.append(Device(broker.port, device_id, password=secrets[device_id], **kwargs))
        return clients[-1]

    try:
        engine.start()
        # panel-w02 is online with its Last Will set: were it knocked off, its will would say "lost".
        panel = device("panel-w02", will=True)
        panel.raw(json.dumps({"v": 1, "state": "online", "kind": "panel", "window": "w02"}), channel="status")
        dropped: list = []
        panel.client.on_disconnect = lambda *args: dropped.append(args)
        yield SimpleNamespace(
            broker=broker, engine=engine, secrets=secrets, panel=panel, panel_dropped=dropped, kiosk=device("kiosk-2")
        )
    finally:
        for client in clients:
            client.close()
        engine.stop()
        broker.stop()


def assert_nobody_was_displaced(hall) -> None:
    """Checked after a round trip through the engine, which comes after the attacker's
    connections: a takeover happens before the broker accepts the new connection."""
    assert hall.kiosk.request("ticket.request", service="jiuye")["ok"]
    assert "disconnected" not in hall.engine.log_text()
    assert hall.panel_dropped == []
    assert hall.panel.request("staff.login", staff="s002")["ok"]
    with sqlite3.connect(hall.engine.db) as db:
        assert db.execute("select count(*) from alerts where kind = 'device_offline'").fetchone()[0] == 0
        assert db.execute("select online from devices where device = 'panel-w02'").fetchone() == (1,)


def test_a_device_account_cannot_take_the_engine_s_or_another_device_s_client_id(hall, certs):
    password = hall.secrets[ATTACKER]
    for port, ca in ((hall.broker.port, None), (hall.broker.tls_port, certs / "ca.crt")):
        for client_id in TAKEN_IDS:
            attacker, rc = connect(port, client_id, (ATTACKER, password), tls_ca=ca, clean=False)
            assert rc == 0  # the account gets in, as itself
            attacker.disconnect()
            attacker.loop_stop()
    assert_nobody_was_displaced(hall)
    connected = [line for line in hall.broker.log_text().splitlines() if f"u'{ATTACKER}'" in line]
    assert len(connected) == 4 and all(f" as {ATTACKER} (" in line for line in connected), connected


def test_a_leaked_device_credential_reconnecting_every_second_costs_the_hall_nothing(hall):
    kiosk = hall.kiosk
    stop = threading.Event()
    attempts: list = []

    def attack():  # every second, alternately as the engine and as panel-w02, resuming its session
        for n in itertools.count():
            client, rc = connect(hall.broker.port, TAKEN_IDS[n % 2], (ATTACKER, hall.secrets[ATTACKER]), clean=False)
            attempts.append(rc)
            stop.wait(1)
            client.disconnect()
            client.loop_stop()
            if stop.is_set():
                return

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        sent = []
        for _ in range(100):  # the citizens keep taking numbers at kiosk-2 meanwhile: 20 s
            sent.append(kiosk.send("ticket.request", service="shebao"))
            time.sleep(0.2)
    finally:
        stop.set()
        attacker.join()
    assert len(attempts) >= 15 and all(rc == 0 for rc in attempts)  # it got in, every time
    assert [kiosk.wait_reply(event_id)["ticket"]["no"] for event_id in sent] == [f"A{n:03d}" for n in range(1, 101)]
    with sqlite3.connect(hall.engine.db) as db:
        assert db.execute("select count(*) from events where device = 'kiosk-2'").fetchone()[0] == 100
        assert db.execute("select count(*) from tickets where service = 'shebao'").fetchone()[0] == 100
    assert_nobody_was_displaced(hall)


def test_two_shard_engines_on_the_production_broker_each_with_its_own_account(tmp_path, var):
    """broker-config --shards 2: each engine connects with its engine-IofN.env as written, and
    the two (which the broker knows by their user names) leave each other alone."""
    county = ROOT / "examples" / "county" / "county.toml"
    broker = production_broker(tmp_path / "broker", var)
    secrets = broker_config(var / "broker", county, extra=("--shards", "2", "--engine-url", broker.url))
    broker.start()
    services = {site.id: site.services[0].code for site in load_configs([county])}
    engines, kiosks = [], []
    try:
        for index, sites in shard_plan(services, 2).items():
            env = (var / "broker" / f"engine-{index}of2.env").read_text(encoding="utf-8")
            url = env.rsplit("HALLWATCH_BROKER=", 1)[1].strip()
            engines.append(
                EngineProcess(
                    broker,
                    tmp_path / f"shard{index}.db",
                    [county],
                    tmp_path / f"engine{index}",
                    client_id="hallwatch-engine",
                    broker_url=url,
                    extra_args=["--shard", f"{index}/2"],
                ).start()
            )
            kiosks.append(
                Device(broker.port, f"{sites[0]}-kiosk-1", site=sites[0], password=secrets[f"{sites[0]}-kiosk-1"])
            )
        for kiosk in kiosks:
            assert kiosk.request("ticket.request", service=services[kiosk.site])["ticket"]["no"] == "A001"
        for engine in engines:
            log = engine.log_text()
            assert "disconnected" not in log and "is not the broker user name" not in log, log
    finally:
        for client in kiosks:
            client.close()
        for engine in engines:
            engine.stop()
        broker.stop()


# -- the message size limit -------------------------------------------------------------------------
def message_size_limit() -> int:
    conf = (ROOT / "broker_config" / "conf.d" / "tuning.conf").read_text(encoding="utf-8")
    (value,) = re.findall(r"^message_size_limit (\d+)$", conf, re.M)
    return int(value)


def test_an_oversize_message_never_reaches_the_engine_and_its_device_carries_on(secure_broker, secure_engine, secrets):
    kiosk = device(secure_broker, secrets, "kiosk-1")
    try:
        oversize = {
            "v": 1,
            "id": "oversize-1",
            "ts": "2026-11-25T09:00:00+08:00",
            "type": "ticket.request",
            "service": "shebao",
            "appointment": "x" * 32,
            "padding": " " * message_size_limit(),
        }
        kiosk.raw(json.dumps(oversize))  # a QoS 1 publication the broker acknowledges, and drops
        # The same connection's next request, behind it in order: answered, and the first number.
        assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
        assert "oversize-1" not in kiosk.replies
        with sqlite3.connect(secure_engine.db) as db:
            assert db.execute("select count(*) from events where event_id = 'oversize-1'").fetchone()[0] == 0
            assert db.execute("select count(*) from rejections").fetchone()[0] == 0
    finally:
        kiosk.close()


def test_the_engine_s_largest_messages_fit_the_size_limit():
    """A queue state of a site with 40 services (the demo's longest service name, codes of the
    longest allowed length, four-digit queues) and an alert acknowledged with the longest note
    the API accepts: measured with the engine's own encoder."""
    from queue_engine import wire
    from queue_engine.core.alerts import Alert, AlertKind, AlertState
    from queue_engine.core.hall import ServiceQueue

    site = load_site(DEMO_SITE)
    name = max((s.name for s in site.services), key=len)
    view = [
        ServiceQueue(
            code=f"{n:02d}".ljust(64, "x"),
            name=f"{name}{n:02d}",
            prefix="ZZ",
            waiting=9999,
            priority_waiting=9999,
            oldest_wait_s=99999.9,
            eta_min=9999,
            open_windows=99,
        )
        for n in range(40)
    ]
    queue_state = wire.encode(wire.queue_payload(view, 1.8e9, site.tz))
    alert = Alert(
        id="a" * 64,
        site="s" * 64,
        kind=AlertKind.WINDOW_UNSTAFFED,
        severity="critical",
        state=AlertState.ACKNOWLEDGED,
        subject="w" * 64,
        since=1.8e9,
        window="w" * 64,
        device="d" * 64,
        staff="s" * 64,
        acknowledged_at=1.8e9,
        acknowledged_by="manager:" + "值" * 32,
        note="窗" * 500,
        detail={"grace_min": 240, "cameras": ["c" * 64] * 8, "window_state": "open", "ticket": "ZZ9999"},
    )
    alert_message = wire.encode(wire.alert_payload(alert, site.tz, staff_name="名" * 64))
    limit = message_size_limit()
    print(f"\nqueue state of 40 services: {len(queue_state)} bytes; alert: {len(alert_message)} bytes; limit {limit}")
    assert len(queue_state) < limit and len(alert_message) < limit


# -- MQTT 5 ------------------------------------------------------------------------------------
def _mqtt_string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return len(data).to_bytes(2, "big") + data


def _mqtt_packet(first_byte: int, body: bytes) -> bytes:
    length, remaining = b"", len(body)
    while True:
        digit, remaining = remaining % 128, remaining // 128
        length += bytes([digit | (0x80 if remaining else 0)])
        if not remaining:
            return bytes([first_byte]) + length + body


def raw_v5_puback(port: int, account: tuple[str, str], topic: str, payload: bytes) -> int:
    """The reason code of the PUBACK the broker sends an MQTT 5 client for one QoS 1 PUBLISH,
    read off the socket: paho refuses a PUBACK whose code MQTT 5 does not list for PUBACK."""
    user, password = account
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        connect = _mqtt_string("MQTT") + bytes([5, 0xC2]) + (30).to_bytes(2, "big") + b"\x00"
        sock.sendall(_mqtt_packet(0x10, connect + _mqtt_string(user) + _mqtt_string(user) + _mqtt_string(password)))
        connack = sock.recv(64)
        assert connack[0] == 0x20 and connack[3] == 0, connack.hex()  # CONNACK, accepted
        sock.sendall(_mqtt_packet(0x32, _mqtt_string(topic) + (7).to_bytes(2, "big") + b"\x00" + payload))
        puback = sock.recv(64)
        assert puback[0] == 0x40 and puback[2:4] == (7).to_bytes(2, "big"), puback.hex()
        return puback[4] if puback[1] >= 3 else 0


def test_a_device_on_mqtt5_gets_the_documented_reason_codes_and_its_replies_on_its_reply_topic(
    secure_broker, secrets, tmp_path
):
    """docs/asyncapi.yaml's MQTT 5 table, against the production configuration; and
    response-topic/correlation-data are not honoured: the reply comes on the device's own
    reply topic, without correlation data, and nothing is published where the sender asked."""
    description = asyncapi_document()["info"]["description"]
    account = ("kiosk-1", secrets["kiosk-1"])
    event = {"v": 1, "id": "v5-1", "type": "ticket.request", "service": "shebao"}
    _, rc = connect(secure_broker.port, "kiosk-1", ("kiosk-1", "wrong"), v5=True)
    assert rc.value == 135 and "| CONNACK | 135 not authorised |" in description
    # Before the engine ever connected, nobody subscribes to a device's event topic.
    assert raw_v5_puback(secure_broker.port, account, "hallwatch/demo/dev/kiosk-1/event", b"{}") == 16
    assert "| PUBACK | 16 no matching subscribers |" in description
    engine = engine_process(secure_broker, secrets, tmp_path).start()
    board = Listener(
        secure_broker.port, "hallwatch/demo/board/call", auth=("hallwatch-board-demo", secrets["hallwatch-board-demo"])
    )
    kiosk, rc = connect(secure_broker.port, "kiosk-1", account, v5=True)
    assert rc == 0
    try:
        assert (
            raw_v5_puback(
                secure_broker.port, ("cam-w01", secrets["cam-w01"]), "hallwatch/demo/dev/kiosk-1/event", b"{}"
            )
            == 135
        )
        assert "| PUBACK | 135 not authorised |" in description
        oversize = json.dumps({**event, "id": "v5-big", "padding": " " * message_size_limit()}).encode()
        assert (
            raw_v5_puback(
                secure_broker.port, ("cam-w01", secrets["cam-w01"]), "hallwatch/demo/dev/cam-w01/event", oversize
            )
            == 149
        )
        assert "| PUBACK | 149 packet too large |" in description
        replies: list[paho.MQTTMessage] = []
        answered = threading.Event()
        kiosk.on_message = lambda _c, _u, message: (replies.append(message), answered.set())
        subscribed = threading.Event()
        kiosk.on_subscribe = lambda *_: subscribed.set()
        kiosk.subscribe("hallwatch/demo/dev/kiosk-1/reply", qos=1)
        assert subscribed.wait(10)
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = "hallwatch/demo/board/call"  # the engine may write there; the kiosk may not
        properties.CorrelationData = b"request-1"
        properties.UserProperty = ("tenant", "demo")
        kiosk.publish("hallwatch/demo/dev/kiosk-1/event", json.dumps(event), qos=1, properties=properties)
        assert answered.wait(10)
        (reply,) = replies
        assert reply.topic == "hallwatch/demo/dev/kiosk-1/reply"
        assert json.loads(reply.payload)["re"] == "v5-1" and json.loads(reply.payload)["ticket"]["no"] == "A001"
        assert not hasattr(reply.properties, "CorrelationData")
        # A round trip later, still nothing on the topic the request named.
        kiosk.publish("hallwatch/demo/dev/kiosk-1/event", json.dumps({**event, "id": "v5-2"}), qos=1)
        wait_until(lambda: len(replies) >= 2, what="the second reply")
        assert [json.loads(r.payload)["re"] for r in replies] == ["v5-1", "v5-2"]
        assert board.messages == []
        assert "`response-topic` and `correlation-data` are **not** honoured" in description
    finally:
        kiosk.disconnect()
        kiosk.loop_stop()
        board.close()
        engine.stop()
