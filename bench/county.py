"""The county service under a whole county's traffic, and the county month report for it.

A county as docs/scaling.md counts it: 1 county centre, 16 township centres, 300 village
stations (317 site files generated from examples/county/), publishing on one county broker
(Mosquitto, the project's development configuration) what their engines publish for the
county: window and queue states, device states and alert transitions (each alert firing,
acknowledged, resolved, with its site's ``seq``), at the rates of a working day sped up
``--speed`` times. The county service runs as a real process (``hallwatch county --http``).

Measured: the county service's CPU (share of one core over the run) and memory (resident,
peak), and for every alert transition the delay from its publication to its frame on the
county console's live stream (``/api/v1/county/stream``, what the page shows), p50/p99/max
(target p99 <= 500 ms). Then a county store holding a month of day figures for the 317 sites,
and ``hallwatch report --county`` on it, HTML and CSV, each timed as a process (target < 5 s).

Assumed per working day (8 h of opening): visits 1,500 (county centre), 150 (township), 20
(village), each five state messages (two queue states, three window states); alerts 40, 10
and 2, each three transitions; one device state change per device (100, 35, 5).

    .venv/bin/python bench/county.py [--duration 240] [--speed 10] [--no-report]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Workspace, free_port, percentile  # noqa: E402

from queue_engine.county.store import Changes, CountyStore  # noqa: E402

EXAMPLES = ROOT / "examples" / "county"
TOKEN = "bench-county-supervisor-token-0123456789"
CST = ZoneInfo("Asia/Shanghai")
OPEN_S = 8 * 3600.0
# kind: (halls, example file, its id, windows, visits a day, alerts a day, devices)
HALLS = {
    "county": (1, EXAMPLES / "county-centre.toml", "neixiang", 30, 1500, 40, 100),
    "township": (16, EXAMPLES / "townships" / "chimei.toml", "chimei", 10, 150, 10, 35),
    "village": (300, EXAMPLES / "villages" / "nanwan.toml", "nanwan", 2, 20, 2, 5),
}
STATES_PER_VISIT = 5
TRANSITIONS = ("firing", "acknowledged", "resolved")
MONTH = "2026-11"


def write_county(workdir: Path) -> tuple[Path, dict[str, str]]:
    """317 site files (each example with its id, and its devices' ids, changed) and the county
    file that includes them; returns the county file and each site's kind."""
    kinds = {}
    sites = workdir / "sites"
    sites.mkdir(parents=True)
    for kind, (count, example, example_id, *_rest) in HALLS.items():
        text = example.read_text(encoding="utf-8")
        for n in range(count):
            site = example_id if count == 1 else f"{kind[0]}{n + 1:03d}"
            body = re.sub(rf'"{example_id}(["-])', rf'"{site}\1', text)
            (sites / f"{site}.toml").write_text(body, encoding="utf-8")
            kinds[site] = kind
    county = workdir / "county.toml"
    county.write_text('name = "基准县"\ninclude = ["sites/*.toml"]\n', encoding="utf-8")
    return county, kinds


def stamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, CST).isoformat(timespec="milliseconds")


class Traffic:
    """What the engines publish for the county, drawn message by message at the day's rates."""

    def __init__(self, kinds: dict[str, str], speed: float, seed: int = 7):
        self.random = random.Random(seed)
        self.kinds = kinds
        self.sites = list(kinds)
        self.seq = dict.fromkeys(self.sites, 0)
        self.open_alert: dict[str, tuple[str, int, float]] = {}  # site -> (id, next transition, since)
        self.rates = []  # (rate per second, what, site)
        for site, kind in kinds.items():
            _c, _e, _i, _w, visits, alerts, devices = HALLS[kind]
            self.rates.append((visits * STATES_PER_VISIT * speed / OPEN_S, "state", site))
            self.rates.append((alerts * len(TRANSITIONS) * speed / OPEN_S, "alert", site))
            self.rates.append((devices * speed / OPEN_S, "device", site))
        self.total = sum(r for r, _, _ in self.rates)
        self.weights = [r for r, _, _ in self.rates]

    def next(self) -> tuple[float, str, str, bytes, str | None]:
        """(gap to wait, topic, kind, payload, alert key or None)."""
        gap = self.random.expovariate(self.total)
        _rate, what, site = self.random.choices(self.rates, self.weights)[0]
        if what == "state":
            if self.random.random() < 0.4:
                return gap, f"hallwatch/{site}/queue/state", what, queue_state(self.random.randint(0, 9)), None
            window = f"w{self.random.randint(1, 4 if self.kinds[site] != 'village' else 1):02d}"
            return gap, f"hallwatch/{site}/window/{window}/state", what, window_state(window), None
        if what == "device":
            device = f"{site}-panel-w01"
            payload = {"v": 1, "device": device, "kind": "panel", "window": "w01", "online": True, "reason": None}
            payload.update({"since": stamp(), "tamper": None, "video_ok": True})
            return gap, f"hallwatch/{site}/device/{device}/state", what, dumps(payload), None
        self.seq[site] += 1
        alert_id, step, since = self.open_alert.get(site) or (f"{site}-{self.seq[site]:06d}", 0, time.time())
        state = TRANSITIONS[step]
        self.open_alert[site] = (alert_id, step + 1, since)
        if step + 1 == len(TRANSITIONS):
            del self.open_alert[site]
        body = alert(site, alert_id, self.seq[site], state, since)
        return gap, f"hallwatch/{site}/alerts", what, body, f"{alert_id}/{self.seq[site]}"


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def queue_state(waiting: int) -> bytes:
    services = [{"service": "shebao", "name": "社保", "prefix": "A", "waiting": waiting, "priority_waiting": 0}]
    services[0].update({"oldest_wait_s": 60.0 * waiting, "eta_min": waiting * 3, "open_windows": 1})
    return dumps({"v": 1, "at": stamp(), "waiting": waiting, "services": services})


def window_state(window: str) -> bytes:
    body = {"v": 1, "window": window, "window_name": window, "state": "serving", "staffing": "staffed"}
    body.update({"staff": "s001", "staff_name": "张三", "ticket": "A001", "pause_reason": None, "paused_since": None})
    return dumps({**body, "served_today": 3, "present": True})


def alert(site: str, alert_id: str, seq: int, state: str, since: float) -> bytes:
    resolved = state == "resolved"
    acknowledged = state != "firing"
    body = {"v": 1, "id": alert_id, "seq": seq, "kind": "window_unstaffed", "audience": "supervision"}
    body.update({"audiences": ["supervision"], "severity": "warning", "state": state, "site": site})
    body.update({"window": "w01", "device": None, "staff": None, "staff_name": None, "since": stamp(since)})
    body.update({"until": stamp() if resolved else None, "duration_s": time.time() - since if resolved else None})
    body.update(
        {"acknowledged_at": stamp() if acknowledged else None, "acknowledged_by": "bench" if acknowledged else None}
    )
    return dumps({**body, "note": None, "due": None, "overdue": False, "detail": {"grace_min": 5}})


class Stream(threading.Thread):
    """The county console's live stream: the arrival time of every alert frame, by id/seq."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.arrivals: dict[str, float] = {}
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=None)
        self.sock.sendall(
            f"GET /api/v1/county/stream HTTP/1.1\r\nHost: county\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )

    def run(self) -> None:
        buffer, event = b"", None
        while chunk := self.sock.recv(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            now = time.perf_counter()
            for line in lines:
                if line.startswith(b"event: "):
                    event = line[7:].strip()
                elif line.startswith(b"data: ") and event == b"alert":
                    body = json.loads(line[6:])
                    self.arrivals.setdefault(f"{body['id']}/{body['seq']}", now)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def start_county(ws: Workspace, county: Path, http_port: int) -> subprocess.Popen:
    log_path = ws.dir / "county.log"
    cmd = [sys.executable, "-m", "queue_engine.cli", "county", "--config", str(county), "--db", str(ws.dir / "c.db")]
    cmd += ["--broker", f"mqtt://127.0.0.1:{ws.port}", "--http", f"127.0.0.1:{http_port}", "--log-level", "WARNING"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HALLWATCH_SUPERVISOR_TOKEN": TOKEN}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"county service did not start:\n{log_path.read_text()}") from None
            time.sleep(0.1)


def run_service(args, ws: Workspace, county: Path, kinds: dict[str, str]) -> list[str]:
    http_port = free_port()
    proc = start_county(ws, county, http_port)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-engines", protocol=paho.MQTTv311)
    client.connect("127.0.0.1", ws.port, keepalive=30)
    client.loop_start()
    traffic = Traffic(kinds, args.speed)
    try:
        # As the engines do at start: every hall's windows and queue, retained.
        for site, kind in kinds.items():
            for n in range(1, 5 if kind != "village" else 2):
                client.publish(f"hallwatch/{site}/window/w{n:02d}/state", window_state(f"w{n:02d}"), 1, True)
            client.publish(f"hallwatch/{site}/queue/state", queue_state(0), 1, True)
        time.sleep(5)
        stream = Stream(http_port)
        stream.start()
        time.sleep(1)
        sent: dict[str, float] = {}
        counts = dict.fromkeys(("state", "alert", "device"), 0)
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        due = t0
        while time.perf_counter() - t0 < args.duration:
            gap, topic, what, payload, key = traffic.next()
            due += gap
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            counts[what] += 1
            if key is not None:
                sent[key] = time.perf_counter()
            client.publish(topic, payload, 1, what != "alert")
        time.sleep(3)  # the last ones through
        elapsed = time.perf_counter() - t0
        cpu = (cpu_seconds(proc.pid) - cpu0) / elapsed * 100
        rss, peak = memory_mb(proc.pid)
    finally:
        client.loop_stop()
        client.disconnect()
        proc.terminate()
        proc.wait(30)
    delays = [(stream.arrivals[k] - t) * 1000 for k, t in sent.items() if k in stream.arrivals]
    missing = len(sent) - len(delays)
    rate = sum(counts.values()) / args.duration
    return [
        f"county service, {len(kinds)} sites, x{args.speed:g}, {args.duration:.0f} s: "
        f"{counts['state']} states, {counts['device']} device states, {counts['alert']} alert transitions "
        f"({rate:.1f} messages/s)",
        f"  CPU {cpu:.1f} % of one core; memory {rss:.0f} MB resident, {peak:.0f} MB peak",
        f"  alert published -> on the console's stream: p50 {percentile(delays, 50):.1f} ms, "
        f"p99 {percentile(delays, 99):.1f} ms, max {max(delays, default=float('nan')):.1f} ms "
        f"({len(delays)} alerts, {missing} not shown)",
    ]


def month_figures(kinds: dict[str, str]) -> list[tuple[str, str, bool, str, float]]:
    rng = random.Random(11)
    first = date.fromisoformat(f"{MONTH}-01")
    rows = []
    for site, kind in kinds.items():
        windows, visits = HALLS[kind][3], HALLS[kind][4]
        for n in range(30):
            day = first + timedelta(days=n)
            working = day.weekday() < 5
            empty = [rng.choice((0.0, 0.0, 0.0, 5.0, 12.5)) if working else 0.0 for _ in range(windows)]
            wins = [
                {"id": f"w{i + 1:02d}", "name": f"{i + 1}号窗口", "served": visits // windows if working else 0}
                | {"staffed_min": 390.0 - e if working else 0.0, "not_opened_min": 0.0, "unstaffed_min": e}
                | {"unverified_min": 0.0, "ratings": 0, "satisfied_pct": None}
                for i, e in enumerate(empty)
            ]
            ratings = {str(s): rng.randint(0, visits // 10) if working else 0 for s in range(1, 6)}
            body = {"v": 1, "site": site, "day": day.isoformat(), "final": True, "as_of": stamp()}
            body |= {"issued": visits if working else 0, "served": visits if working else 0, "no_shows": 0}
            body |= {"expired": 0, "transferred": 0, "wait_mean_min": 6.0, "wait_p90_min": 14.0, "wait_max_min": 30.0}
            body |= {"within_target_pct": 92.0, "windows": wins, "staff": [], "devices": []}
            body |= {"vacancy_min": {"not_opened": 0.0, "unstaffed": sum(empty), "unverified": 0.0}}
            body |= {"device_offline_min": 0.0, "ratings": ratings, "satisfied_pct": None, "bad_ratings": 0}
            body |= {"follow_ups_overdue": 0, "alerts": {}}
            rows.append((site, day.isoformat(), True, json.dumps(body, ensure_ascii=False), time.time()))
    return rows


def run_report(ws: Workspace, county: Path, kinds: dict[str, str]) -> list[str]:
    db = ws.dir / "report.db"
    store = CountyStore(db)
    figures = month_figures(kinds)
    store.write(Changes(figures=figures))
    store.close()
    lines = []
    for fmt in ("html", "csv"):
        cmd = [sys.executable, "-m", "queue_engine.cli", "report", "--county", "--config", str(county)]
        cmd += ["--db", str(db), "--month", MONTH, "--format", fmt, "--out", str(ws.dir / "out")]
        t0 = time.perf_counter()
        done = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        took = time.perf_counter() - t0
        if done.returncode:
            raise RuntimeError(done.stderr)
        size = sum(Path(p).stat().st_size for p in done.stdout.split())
        lines.append(
            f"hallwatch report --county --format {fmt}: {len(kinds)} sites x 30 days ({len(figures)} day figures): "
            f"{took:.2f} s, {size / 1024:.0f} KB"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=240.0, help="seconds of traffic")
    parser.add_argument("--speed", type=float, default=10.0, help="the working day's rates, sped up this many times")
    parser.add_argument("--no-report", action="store_true", help="skip the month report")
    parser.add_argument("--no-service", action="store_true", help="skip the county service")
    args = parser.parse_args()
    ws = Workspace()
    try:
        county, kinds = write_county(ws.dir)
        lines = []
        if not args.no_service:
            ws.start_broker()
            lines += run_service(args, ws, county, kinds)
        if not args.no_report:
            lines += run_report(ws, county, kinds)
        print("\n".join(lines))
    finally:
        ws.close()


if __name__ == "__main__":
    main()
