"""``make demo``: a broker with the project's configuration on a free port, and the engine
with the demo township centre, its clock starting at 09:00 of a working morning so that
the hall is open whenever the demo is run. Ctrl-C stops everything."""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from . import devbroker

ROOT = Path(__file__).resolve().parent.parent


def start_broker(workdir: Path) -> tuple[subprocess.Popen, int]:
    try:
        return devbroker.start(workdir)
    except devbroker.BrokerMissing as exc:
        sys.exit(str(exc))


def working_morning(tz: ZoneInfo) -> str:
    day = datetime.now(tz).date()
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=tz).isoformat()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(ROOT / "examples" / "demo-site.toml"))
    parser.add_argument("--http-port", type=int, default=8080)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hallwatch-demo-"))
    broker, port = start_broker(workdir)
    start_at = working_morning(ZoneInfo("Asia/Shanghai"))
    engine = subprocess.Popen([sys.executable, "-m", "queue_engine.cli", "engine", "--config", args.config,
                               "--broker", f"mqtt://127.0.0.1:{port}", "--db", str(workdir / "demo.db"),
                               "--start-at", start_at], cwd=ROOT)
    pub = f"mosquitto_pub -p {port} -q 1"
    print(f"""
hallwatch demo: broker on 127.0.0.1:{port}, engine clock from {start_at}, store {workdir}/demo.db

Watch everything:   mosquitto_sub -p {port} -v -t 'hallwatch/#'
Take a number:      {pub} -t hallwatch/demo/dev/kiosk-1/event -m '{{"v":1,"id":"r1","type":"ticket.request","service":"shebao"}}'
Sign in window 2:   {pub} -t hallwatch/demo/dev/panel-w02/event -m '{{"v":1,"id":"l1","type":"staff.login","staff":"s002"}}'
Call the next:      {pub} -t hallwatch/demo/dev/panel-w02/event -m '{{"v":1,"id":"c1","type":"call.next"}}'

Ctrl-C stops everything.
""", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and engine.poll() is None:
            time.sleep(0.2)
    finally:
        for proc in (engine, broker):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return engine.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
