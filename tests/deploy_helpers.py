"""The production broker, as docker-compose.yml runs it, on this machine: the generated
accounts (``hallwatch broker-config``), a CA and server certificate of our own
(``broker_config/make-certs.sh``), and ``broker_config/mosquitto.conf`` with each container
path replaced by the host path that docker-compose.yml mounts there and each listener moved
to a free loopback port."""

from __future__ import annotations

import csv
import os
import re
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from conftest import ROOT, Broker, free_port

COMPOSE = ROOT / "docker-compose.yml"
PRODUCTION_CONF = ROOT / "broker_config" / "mosquitto.conf"
MAKE_CERTS = ROOT / "broker_config" / "make-certs.sh"
_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """docker compose's ``${VAR:-default}`` (only the forms docker-compose.yml uses)."""
    env = env or {}
    return _VAR.sub(lambda m: env.get(m[1]) or (m[2] or ""), text)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def volume_mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, is_bind) of each ``source:target[:mode]`` entry."""
    mounts = []
    for entry in service.get("volumes", []):
        parts = interpolate(entry).split(":")
        source, target = parts[0], parts[1]
        mounts.append((source, target, source.startswith((".", "/"))))
    return mounts


def run_cli(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env=env,
    )


def broker_config(out: Path, *configs: Path, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Run ``hallwatch broker-config``; returns {user name: password} from credentials.csv."""
    args = ["broker-config", "--out", str(out)]
    for config in configs:
        args += ["--config", str(config)]
    result = run_cli(*args, *extra)
    assert result.returncode == 0, result.stderr
    return read_credentials(out)


def read_credentials(out: Path) -> dict[str, str]:
    with (out / "credentials.csv").open(newline="", encoding="utf-8") as f:
        return {row["username"]: row["password"] for row in csv.DictReader(f)}


def make_certs(out: Path, *names: str) -> Path:
    subprocess.run(
        ["sh", str(MAKE_CERTS), str(out), *(names or ("localhost", "127.0.0.1"))],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def production_config(
    workdir: Path, *, var: Path, plain_port: int, tls_port: int, conf_text: str | None = None, drop_root: bool = False
) -> str:
    """broker_config/mosquitto.conf for this machine. ``var`` stands for the repository's
    ``var/`` folder (where broker-config and make-certs.sh write). Run as root, Mosquitto
    drops to the `mosquitto` user, which cannot enter the test's private temporary folders:
    unless ``drop_root``, it is told to stay root."""
    service = compose()["services"]["mosquitto"]
    mapping: list[tuple[str, Path]] = []
    for source, target, is_bind in volume_mounts(service):
        if not is_bind:
            host = workdir / "volumes" / source
            host.mkdir(parents=True, exist_ok=True)
        elif source.startswith("./var/"):
            host = var / source.removeprefix("./var/")
        else:
            host = ROOT / source.removeprefix("./")
        mapping.append((target, host))
    mapping.sort(key=lambda m: -len(m[0]))
    ports = {"1883": plain_port, "8883": tls_port}
    lines = []
    for line in (conf_text or PRODUCTION_CONF.read_text(encoding="utf-8")).splitlines():
        words = line.split()
        if words[:1] == ["listener"]:
            line = f"listener {ports[words[1]]} 127.0.0.1"
        elif words[:2] == ["log_dest", "stdout"]:
            line = f"log_dest file {workdir / 'mosquitto.log'}"
        else:
            for target, host in mapping:
                line = line.replace(target, str(host))
        lines.append(line)
    if os.geteuid() == 0 and not drop_root:
        lines.insert(0, "user root")
    return "\n".join(lines) + "\n"


def production_broker(workdir: Path, var: Path, *, drop_root: bool = False) -> Broker:
    """A Mosquitto running the production configuration: ``.port`` is the plain listener,
    ``.tls_port`` the TLS one. ``var`` must hold broker/ (broker-config) and certs/."""
    plain, tls = free_port(), free_port()
    broker = Broker(
        workdir,
        plain,
        config_text=production_config(workdir, var=var, plain_port=plain, tls_port=tls, drop_root=drop_root),
    )
    broker.tls_port = tls
    return broker


def connect(
    port: int,
    client_id: str,
    auth: tuple[str, str] | None = None,
    *,
    v5: bool = False,
    tls_ca: Path | None = None,
    timeout: float = 10,
    clean: bool = True,
) -> tuple[paho.Client, object]:
    """Connect a paho client and return it with the broker's CONNACK reason code (0 = accepted).
    The client is left running (loop started) when accepted, stopped otherwise. ``clean``
    False (MQTT 3.1.1 only) resumes the persistent session of ``client_id``."""
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        **({} if v5 else {"clean_session": clean}),
    )
    if auth:
        client.username_pw_set(*auth)
    if tls_ca:
        client.tls_set_context(ssl.create_default_context(cafile=str(tls_ca)))
    done = threading.Event()
    result: dict = {}

    def on_connect(_c, _u, _flags, reason_code, _props=None):
        result["rc"] = reason_code
        done.set()

    client.on_connect = on_connect
    client.reconnect_delay_set(60, 60)
    client.connect("localhost" if tls_ca else "127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not done.wait(timeout):
        client.loop_stop()
        raise TimeoutError(f"no CONNACK from port {port}")
    rc = result["rc"]
    if rc != 0:
        client.loop_stop()
        client.disconnect()
    return client, rc
