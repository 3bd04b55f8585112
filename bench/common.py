"""Shared by the benchmarks: a real broker with the project's configuration, the engine as
a real process, and a fast publisher (``mosquitto_pub -l``, one message per stdin line)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from queue_engine.deploy import devbroker  # noqa: E402
from queue_engine.deploy.devbroker import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = ROOT / "examples" / "demo-site.toml"
WORKDAY_9AM = "2026-11-25T09:00:00+08:00"


class Workspace:
    """A temporary directory holding a broker and, optionally, an engine."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hallwatch-bench-"))
        self.port = free_port()
        self.broker: subprocess.Popen | None = None
        self.engine: subprocess.Popen | None = None

    def start_broker(self) -> None:
        self.broker, self.port = devbroker.start(self.dir, self.port)

    def start_engine(
        self, *extra: str, db_name: str = "bench.db", client_id: str = "hallwatch-bench-engine", tree: Path = ROOT
    ) -> None:
        """The engine of this source tree, or of ``tree`` (another checkout, e.g. the
        baseline a change is compared with, alternating in one run)."""
        log_path = self.dir / "engine.log"
        log = open(log_path, "w")
        self.engine = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "queue_engine.cli",
                "engine",
                "--config",
                # each tree's own demo site: a later tree's configuration may carry keys an
                # earlier engine refuses (the sites, services and windows are the same)
                str(Path(tree) / DEMO_SITE.relative_to(ROOT)),
                "--broker",
                f"mqtt://127.0.0.1:{self.port}",
                "--db",
                str(self.dir / db_name),
                "--start-at",
                WORKDAY_9AM,
                "--client-id",
                client_id,
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
        )
        deadline = time.monotonic() + 20
        while "ready: subscribed" not in log_path.read_text():
            if self.engine.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"engine did not start:\n{log_path.read_text()}")
            time.sleep(0.05)

    def stop_engine(self) -> None:
        if self.engine and self.engine.poll() is None:
            self.engine.send_signal(signal.SIGTERM)
            self.engine.wait(30)
        self.engine = None

    def close(self) -> None:
        self.stop_engine()
        if self.broker and self.broker.poll() is None:
            self.broker.terminate()
            self.broker.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def ticket_request_lines(device: str, count: int, services=("shebao", "budongchan", "yibao", "huji")) -> bytes:
    return b"".join(
        json.dumps(
            {"v": 1, "id": f"{device}-{n}", "type": "ticket.request", "service": services[n % len(services)]},
            separators=(",", ":"),
        ).encode()
        + b"\n"
        for n in range(count)
    )


def fast_publish(port: int, topic: str, lines: bytes, client_id: str, qos: int = 1) -> subprocess.Popen:
    """Start ``mosquitto_pub -l``; returns the process (stdin already written and closed)."""
    proc = subprocess.Popen(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", str(qos), "-l", "-t", topic, "-i", client_id],
        stdin=subprocess.PIPE,
    )
    proc.stdin.write(lines)
    proc.stdin.close()
    return proc


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
