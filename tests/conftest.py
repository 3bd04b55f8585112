"""Fixtures that start the real things: a Mosquitto broker with the project's own broker
configuration on a free port, and the engine as a real process on a real SQLite file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from queue_engine.deploy import devbroker
from queue_engine.deploy.devbroker import free_port, wait_for_port  # noqa: F401 (used by tests)

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = ROOT / "examples" / "demo-site.toml"
# A working-day morning in the demo site's timezone: tests run the engine's clock from here
# so that opening hours do not depend on when the suite runs.
WORKDAY_9AM = "2026-11-25T09:00:00+08:00"

sys.path.insert(0, str(Path(__file__).resolve().parent))


def wait_until(probe, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``probe`` until it returns something truthy (returned); TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what} not met after {timeout} s; last: {last!r}")


class Broker:
    """A Mosquitto process: the project's conf.d plus a loopback listener of its own.

    ``config_text`` replaces that configuration whole (it must open a listener on ``port``):
    e.g. the production configuration with accounts, ACL and TLS (tests/deploy_helpers.py)."""

    def __init__(self, workdir: Path, port: int | None = None, extra: str = "", *, config_text: str | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.extra = extra
        self.config_text = config_text
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def url_for(self, username: str, password: str) -> str:
        return f"mqtt://{username}:{password}@127.0.0.1:{self.port}"

    def start(self) -> Broker:
        if self.config_text is None:
            self.proc, self.port = devbroker.start(self.workdir, self.port, self.extra, log=self.log)
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text)
        self.proc = subprocess.Popen(
            [devbroker.mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.port)
        except RuntimeError:
            self.proc.kill()
            raise RuntimeError(f"mosquitto did not start with {conf}: {self.log_text()}") from None
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def restart(self) -> Broker:
        """An orderly stop (the broker saves its persistence) and a start on the same port."""
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


class EngineProcess:
    """``hallwatch engine`` as a child process, with its log in a file."""

    def __init__(
        self,
        broker: Broker,
        db: Path,
        configs: list[Path],
        workdir: Path,
        *,
        start_at: str | None = WORKDAY_9AM,
        speed: float = 1.0,
        extra_args: list[str] | None = None,
        client_id: str = "hallwatch-engine-test",
        broker_url: str | None = None,
    ):
        self.broker = broker
        self.broker_url = broker_url
        self.db = db
        self.configs = configs
        self.workdir = workdir
        self.start_at = start_at
        self.speed = speed
        self.extra_args = extra_args or []
        self.client_id = client_id
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"engine-{self.starts}.log"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "queue_engine.cli",
            "engine",
            "--broker",
            self.broker_url or self.broker.url,
            "--db",
            str(self.db),
            "--client-id",
            self.client_id,
            "--connect-timeout",
            "10",
        ]
        for config in self.configs:
            cmd += ["--config", str(config)]
        if self.start_at:
            cmd += ["--start-at", self.start_at, "--speed", str(self.speed)]
        return cmd + self.extra_args

    def start(self, wait: bool = True) -> EngineProcess:
        self.starts += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready: subscribed" in self.log_text():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited with {self.proc.returncode}:\n{self.log_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"engine not ready after {timeout} s:\n{self.log_text()}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else 0


@pytest.fixture
def engine_factory(broker, tmp_path):
    engines: list[EngineProcess] = []

    def make(configs: list[Path] | None = None, **kwargs) -> EngineProcess:
        engine = EngineProcess(broker, tmp_path / "hallwatch.db", configs or [DEMO_SITE], tmp_path / "engine", **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()


@pytest.fixture
def engine(engine_factory):
    return engine_factory().start()
