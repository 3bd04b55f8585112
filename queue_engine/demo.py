"""``make demo``: a broker with the project's configuration on a free port, and the engine
with the demo township centre, its clock starting at 09:00 of a working morning so that
the hall is open whenever the demo is run. Ctrl-C stops everything."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .deploy import devbroker

ROOT = Path(__file__).resolve().parent.parent


def start_broker(workdir: Path) -> tuple[subprocess.Popen, int]:
    try:
        return devbroker.start(workdir, own_process_group=True)
    except devbroker.BrokerMissing as exc:
        sys.exit(str(exc))


def working_morning(tz: ZoneInfo) -> str:
    day = datetime.now(tz).date()
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, 8, 20, tzinfo=tz).isoformat()


def stop_in_order(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each in turn, waiting for it: the simulator signs its devices off while the
    engine and the broker still run, the engine closes its store while the broker still runs."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(ROOT / "examples" / "demo-site.toml"))
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--speed", type=float, default=60.0, help="a working day in about ten minutes")
    args = parser.parse_args()

    # Ctrl-C reaches every process of the terminal's foreground group at once: the broker
    # would vanish under the engine and the simulator. The children therefore run in process
    # groups of their own, and only this process hears Ctrl-C and stops them, in order.
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    workdir = Path(tempfile.mkdtemp(prefix="hallwatch-demo-"))
    started: list[subprocess.Popen] = []  # in the order of starting; stopped in reverse
    try:
        broker, port = start_broker(workdir)
        started.append(broker)
        start_at = working_morning(ZoneInfo("Asia/Shanghai"))
        manager, supervisor = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        env = {
            **os.environ,
            "HALLWATCH_MANAGER_TOKEN_DEMO": manager,
            "HALLWATCH_SUPERVISOR_TOKEN": supervisor,
            "HALLWATCH_TICKET_SECRET": secrets.token_urlsafe(24),  # the slips' links (one demo run)
        }
        clock = ["--start-at", start_at, "--speed", str(args.speed)]
        broker_url = ["--broker", f"mqtt://127.0.0.1:{port}"]
        hallwatch = [sys.executable, "-m", "queue_engine.cli"]
        engine = subprocess.Popen(
            [
                *hallwatch,
                "engine",
                "--config",
                args.config,
                *broker_url,
                "--db",
                str(workdir / "demo.db"),
                "--http",
                f"127.0.0.1:{args.http_port}",
                "--log-level",
                "WARNING",  # the addresses below say what its start-up lines would
                *clock,
            ],
            cwd=ROOT,
            env=env,
            process_group=0,
        )
        started.append(engine)
        deadline = time.monotonic() + 2.0
        while not stopping and engine.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if not stopping and engine.poll() is None:
            simulate = ["simulate", "--config", args.config, *broker_url, *clock, "--engine-clock-set"]
            started.append(subprocess.Popen([*hallwatch, *simulate], cwd=ROOT, process_group=0))
            web = f"http://127.0.0.1:{args.http_port}"
            print(
                f"""
hallwatch demo: the demo township centre, a simulated day from {start_at} at x{args.speed:g}
  TV board:            {web}/board/demo
  manager console:     {web}/manage/demo?token={manager}
  supervision console: {web}/supervise?token={supervisor}
  metrics, health:     {web}/metrics  {web}/healthz
  broker:              mosquitto_sub -p {port} -v -t 'hallwatch/#'
  store:               {workdir}/demo.db

Ctrl-C stops everything.
""",
                flush=True,
            )
        while not stopping and engine.poll() is None:
            time.sleep(0.2)
    finally:
        stop_in_order(started[::-1])
        shutil.rmtree(workdir, ignore_errors=True)
    if stopping:
        print("hallwatch demo stopped: broker, engine, simulator and web pages", flush=True)
        return 0
    print(f"hallwatch demo: the engine exited with {engine.returncode}", file=sys.stderr)
    return engine.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
