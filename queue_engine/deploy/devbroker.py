"""A local Mosquitto for the demo, the tests and the benchmarks: the project's broker
settings (broker_config/conf.d) plus a loopback listener on a port of its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONF_D = Path(__file__).resolve().parents[2] / "broker_config" / "conf.d"


class BrokerMissing(RuntimeError):
    pass


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerMissing(
        "mosquitto is not installed: `sudo apt-get install mosquitto mosquitto-clients` "
        "(make demo and make test do it when run as root)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def start(
    workdir: Path,
    port: int | None = None,
    extra: str = "",
    log: Path | None = None,
    own_process_group: bool = False,
) -> tuple[subprocess.Popen, int]:
    """Start Mosquitto with its persistence in ``workdir``; returns the process and port.

    ``own_process_group``: out of the caller's process group, so that a Ctrl-C at the
    terminal does not stop it; the caller stops it (``make demo`` does, last)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    # Started as root, Mosquitto drops to the `mosquitto` user, which may not write into this
    # (private, temporary) folder: it would then keep neither its persistence (retained
    # messages, persistent sessions and what is queued for them) across a restart nor its log.
    # This broker listens on loopback only; it stays the user that started it.
    as_root = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{as_root}listener {port} 127.0.0.1\nallow_anonymous true\npersistence_location {workdir}/\n"
        + (f"log_dest file {log}\n" if log else "")
        + f"{extra}\ninclude_dir {CONF_D}\n"
    )
    proc = subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        process_group=0 if own_process_group else None,
    )
    try:
        wait_for_port(port)
    except RuntimeError:
        proc.kill()
        raise
    return proc, port
